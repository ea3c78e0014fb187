"""Folders of objects (`cp -r`, `cp --archive none`, Argo's `archive: none`) as a user
moves them: where the objects and the tree manifest go, what a download says it
verified, and what a failure leaves behind (nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# `argosy` with a disk that fills after FULL_AFTER writes (every byte a download writes
# goes through os.pwrite)
_FULL_DISK = """
import errno, os, sys, threading
from argosy.main import main
lock, left, real = threading.Lock(), [int(os.environ["FULL_AFTER"])], os.pwrite
def pwrite(fd, data, offset):
    with lock:
        left[0] -= 1
        if left[0] < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
    return real(fd, data, offset)
os.pwrite = pwrite
sys.argv[0] = "argosy"
sys.exit(main())
"""


def _src(root: Path, files: int = 6) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(files):
        (root / ("sub" if i % 2 else "") / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    return root


def _urls(listing: str) -> list[str]:
    return [line.split()[-1] for line in listing.splitlines()]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "argosy" in p.name)


def test_the_tree_manifest_sits_beside_the_folder_so_a_listing_of_it_shows_only_files(
    argosy_local, tmp_path: Path
) -> None:
    _src(tmp_path / "src", files=2)
    up = argosy_local("cp", "--archive", "none", "src", "local://bkt/run/")
    assert up.code == 0, up.err
    assert "tree manifest at local://bkt/run.argosy-manifest.json" in up.err

    assert _urls(argosy_local("ls", "-r", "local://bkt/run/").text) == [
        "local://bkt/run/f0.txt",
        "local://bkt/run/sub/f1.txt",
    ]
    assert _urls(argosy_local("ls", "local://bkt/").text) == [
        "local://bkt/run/",
        "local://bkt/run.argosy-manifest.json",
    ]


def test_rm_r_deletes_a_folder_with_its_manifest_and_never_its_lookalike(
    argosy_local, tmp_path: Path
) -> None:
    _src(tmp_path / "src", files=2)
    for name in ("run1", "run10"):
        assert argosy_local("cp", "--archive", "none", "src", f"local://bkt/{name}/").code == 0

    gone = argosy_local("rm", "-r", "local://bkt/run1")

    assert gone.code == 0, gone.err
    assert "deleted 3 object(s)" in gone.err
    assert _urls(argosy_local("ls", "-r", "local://bkt/").text) == [
        "local://bkt/run10.argosy-manifest.json",
        "local://bkt/run10/f0.txt",
        "local://bkt/run10/sub/f1.txt",
    ]


def test_a_download_says_it_verified_against_the_tree_manifest_only_when_there_is_one(
    argosy_local, tmp_path: Path
) -> None:
    _src(tmp_path / "src")
    argosy_local("cp", "--archive", "none", "src", "local://bkt/whole/")
    argosy_local("cp", "-r", "src", "local://bkt/plain/")

    whole = argosy_local("cp", "-r", "local://bkt/whole/", "a")
    plain = argosy_local("cp", "-r", "local://bkt/plain/", "b")
    plain_archive = argosy_local("cp", "--archive", "none", "local://bkt/plain/", "c")

    assert whole.code == 0 and "every file verified against the tree manifest" in whole.err
    for got in (plain, plain_archive):
        assert got.code == 0, got.err
        assert "tree manifest" not in got.err.replace("no tree manifest", "")
        assert "every file verified against its own checksum record" in got.err
        assert "no tree manifest, so nothing vouches that the folder is complete" in got.err


def test_objects_without_a_checksum_record_download_as_unverified(
    argosy_local, tmp_path: Path
) -> None:
    foreign = tmp_path / "local-root" / "bkt" / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("written by another tool")

    got = argosy_local("cp", "--archive", "none", "local://bkt/foreign/", "back")

    assert got.code == 0, got.err
    assert "unverified: no checksum records" in got.err
    assert "verified against" not in got.err


def test_archive_auto_recognises_a_folder_of_objects(argosy_local, tmp_path: Path) -> None:
    _src(tmp_path / "src")
    argosy_local("cp", "--archive", "none", "src", "local://bkt/whole/")
    argosy_local("cp", "-r", "src", "local://bkt/plain/")

    for key, dest in (("whole", "a"), ("plain", "b"), ("plain/", "c")):
        got = argosy_local("cp", "--archive", "auto", f"local://bkt/{key}", dest)
        assert got.code == 0, got.err
        assert (tmp_path / dest / "sub" / "f1.txt").read_text() == "file 1\n" * 100

    missing = argosy_local("cp", "--archive", "auto", "local://bkt/nothing", "d")
    assert missing.code == 3 and missing.err.count("\n") == 1, missing.err


def test_a_folder_of_objects_needs_a_key_to_keep_its_manifest_beside(
    argosy_local, tmp_path: Path
) -> None:
    _src(tmp_path / "src")
    got = argosy_local("cp", "--archive", "none", "src", "local://bkt/")
    assert got.code == 2 and got.err.count("\n") == 1, got.err
    assert "KEY.argosy-manifest.json" in got.err
    assert argosy_local("ls", "-r", "local://bkt/").text == ""


def test_a_failed_upload_takes_back_what_it_wrote_and_the_same_command_then_works(
    argosy_local, tmp_path: Path
) -> None:
    _src(tmp_path / "src")
    bucket = tmp_path / "local-root" / "bkt"
    (bucket / "run").mkdir()
    (bucket / "run" / "sub").write_text("an object where the tree needs a folder")

    failed = argosy_local("cp", "--archive", "none", "src", "local://bkt/run/")

    assert failed.code == 2 and failed.err.count("\n") == 1, failed.err
    assert "this upload had written were deleted" in failed.err
    assert _urls(argosy_local("ls", "-r", "local://bkt/").text) == ["local://bkt/run/sub"]

    (bucket / "run" / "sub").unlink()
    again = argosy_local("cp", "--archive", "none", "src", "local://bkt/run/")
    assert again.code == 0, again.err
    back = argosy_local("cp", "-r", "local://bkt/run/", "back")
    assert "every file verified against the tree manifest" in back.err


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_a_download_that_fills_the_disk_leaves_no_file_behind(
    argosy_local, tmp_path: Path, existing: bool
) -> None:
    _src(tmp_path / "src", files=20)
    argosy_local("cp", "-r", "src", "local://bkt/run/")
    if existing:
        (tmp_path / "back").mkdir()
        (tmp_path / "back" / "mine.txt").write_text("mine")

    got = argosy_local(
        "-c",
        _FULL_DISK,
        "cp",
        "-r",
        "local://bkt/run/",
        "back",
        python=True,
        env={"FULL_AFTER": "5"},
    )

    assert got.code == 1 and got.err.count("\n") == 1, got.err
    assert "disk full" in got.err
    assert _leftovers(tmp_path) == []  # no staging folder
    if existing:
        assert os.listdir(tmp_path / "back") == ["mine.txt"]
    else:
        assert not (tmp_path / "back").exists()


def test_a_download_meeting_a_corrupt_object_leaves_no_file_behind(
    argosy_local, tmp_path: Path
) -> None:
    _src(tmp_path / "src", files=20)
    argosy_local("cp", "-r", "src", "local://bkt/run/")
    stored = tmp_path / "local-root" / "bkt" / "run" / "sub" / "f7.txt"
    meta = tmp_path / "local-root" / ".argosy-meta" / "bkt" / "run" / "sub" / "f7.txt.json"
    record = json.loads(meta.read_text())
    stored.write_text("file 7\n" * 99 + "file X\n")  # same size, other bytes
    record["etag"] = json.loads(argosy_local("stat", "local://bkt/run/sub/f7.txt").text)["etag"]
    meta.write_text(json.dumps(record))

    got = argosy_local("cp", "-r", "local://bkt/run/", "deep/er/back")

    assert got.code == 4 and got.err.count("\n") == 1, got.err
    assert not (tmp_path / "deep").exists()
    assert _leftovers(tmp_path) == []
