"""`argosy cp --archive` and `ls --archive-contents`, as a user runs them."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.archive.helpers import (
    TAR_DIALECTS,
    VERY_LONG,
    MiB,
    compressed,
    foreign_tar,
    foreign_tree,
    snapshot,
    tar_bomb,
    zip_bomb,
)


def _tree(root: Path) -> None:
    (root / "data" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "data" / "a.csv").write_text("1,2,3\n" * 1000)
    (root / "data" / "deep" / "b.bin").write_bytes(os.urandom(200_000))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("data/a.csv")


def _same_tree(a: Path, b: Path) -> None:
    for path in sorted(a.rglob("*")):
        other = b / path.relative_to(a)
        if path.is_symlink():
            assert os.readlink(other) == os.readlink(path)
        elif path.is_dir():
            assert other.is_dir()
        else:
            assert other.read_bytes() == path.read_bytes()
            assert other.stat().st_mode == path.stat().st_mode


@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz", "tar", "zip"])
def test_a_folder_round_trips_as_one_archive(argosy_local, tmp_path: Path, fmt: str) -> None:
    _tree(tmp_path / "src")
    up = argosy_local("cp", "--archive", fmt, "src", f"local://bkt/out/src.{fmt}")
    assert up.code == 0, up.err
    assert "crc32c recorded" in up.err
    down = argosy_local("cp", "--archive", "auto", f"local://bkt/out/src.{fmt}", "back")
    assert down.code == 0, down.err
    _same_tree(tmp_path / "src", tmp_path / "back")
    assert (tmp_path / "back" / "empty").is_dir()
    if fmt != "zip":
        assert "verified crc32c:" in down.err


def test_include_extracts_only_the_matching_paths(argosy_local, tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    argosy_local("cp", "--archive", "tar.zst", "src", "local://bkt/a.tar.zst")
    got = argosy_local(
        "cp", "--archive", "auto", "--include", "data/**/*.bin", "local://bkt/a.tar.zst", "part"
    )
    assert got.code == 0, got.err
    files = sorted(
        p.relative_to(tmp_path / "part").as_posix()
        for p in (tmp_path / "part").rglob("*")
        if p.is_file()
    )
    assert files == ["data/deep/b.bin"]


def test_ls_archive_contents_lists_entries(argosy_local, tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    argosy_local("cp", "--archive", "tar.gz", "src", "local://bkt/a.tgz")
    rows = [
        json.loads(x)
        for x in argosy_local(
            "ls", "--archive-contents", "--json", "local://bkt/a.tgz"
        ).text.splitlines()
    ]
    by_path = {r["path"].rstrip("/"): r for r in rows}
    assert by_path["run.sh"]["mode"] == "0o755"
    assert by_path["link"]["type"] == "symlink" and by_path["link"]["link"] == "data/a.csv"
    assert by_path["data/deep/b.bin"]["size"] == 200_000


def test_a_corrupted_archive_leaves_no_destination_folder(argosy_local, tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    argosy_local("cp", "--archive", "tar", "src", "local://bkt/a.tar")
    stored = tmp_path / "local-root" / "bkt" / "a.tar"
    data = bytearray(stored.read_bytes())
    data[600] ^= 0xFF  # inside the first member's bytes: still a valid tar
    meta = tmp_path / "local-root" / ".argosy-meta" / "bkt" / "a.tar.json"
    record = json.loads(meta.read_text())
    stored.write_bytes(bytes(data))
    record["etag"] = (
        argosy_local("stat", "local://bkt/a.tar").text
        and json.loads(argosy_local("stat", "local://bkt/a.tar").text)["etag"]
    )
    meta.write_text(json.dumps(record))
    got = argosy_local("cp", "--archive", "auto", "local://bkt/a.tar", "back")
    assert got.code == 4, got.err
    assert not (tmp_path / "back").exists()
    assert [p.name for p in tmp_path.iterdir() if "argosy" in p.name] == []


def test_an_archive_never_overwrites_a_folder_with_content(argosy_local, tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    argosy_local("cp", "--archive", "tar.zst", "src", "local://bkt/a.tar.zst")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep").write_text("mine")
    got = argosy_local("cp", "--archive", "auto", "local://bkt/a.tar.zst", "busy")
    assert got.code == 2 and "already exists" in got.err
    assert (tmp_path / "busy" / "keep").read_text() == "mine"


@pytest.mark.parametrize("how", [["-r"], ["--archive", "none"]])
def test_a_folder_of_objects_holds_the_folders_contents_under_the_destination_prefix(
    argosy_local, tmp_path: Path, how: list[str]
) -> None:
    _tree(tmp_path / "src")
    assert argosy_local("cp", *how, "src", "local://bkt/flat/").code == 0
    listing = argosy_local("ls", "-r", "local://bkt/flat/").text
    assert "local://bkt/flat/data/deep/b.bin" in listing
    assert "/src/" not in listing  # as `aws s3 cp --recursive` and Argo's `archive: none`


def test_archive_none_keeps_links_empty_folders_and_modes_through_its_manifest(
    argosy_local, tmp_path: Path
) -> None:
    _tree(tmp_path / "src")
    for name, mode in (
        ("read-only.txt", 0o440),
        ("group-writable.txt", 0o664),
        ("sticky.txt", 0o1644),
    ):  # created with their modes, or chmodded
        (tmp_path / "src" / name).write_text(name)
        (tmp_path / "src" / name).chmod(mode)
    assert argosy_local("cp", "--archive", "none", "src", "local://bkt/t/").code == 0
    keys = argosy_local("ls", "-r", "local://bkt/").text
    assert "local://bkt/t.argosy-manifest.json" in keys
    assert "local://bkt/t/link" not in keys  # a link is kept as a link, not a copy
    got = argosy_local("cp", "--archive", "none", "local://bkt/t/", "back")
    assert got.code == 0, got.err
    _same_tree(tmp_path / "src", tmp_path / "back")
    assert (tmp_path / "back" / "empty").is_dir()
    assert not (tmp_path / "back" / ".argosy-manifest.json").exists()


def test_a_file_missing_from_a_manifested_tree_fails_and_leaves_nothing(
    argosy_local, tmp_path: Path
) -> None:
    _tree(tmp_path / "src")
    argosy_local("cp", "--archive", "none", "src", "local://bkt/t/")
    assert argosy_local("rm", "local://bkt/t/data/a.csv").code == 0
    got = argosy_local("cp", "--archive", "none", "local://bkt/t/", "back")
    assert got.code == 4 and "missing" in got.err and "data/a.csv" in got.err
    assert not (tmp_path / "back").exists()


def test_an_extra_object_in_a_manifested_tree_is_reported_and_left_out(
    argosy_local, tmp_path: Path
) -> None:
    _tree(tmp_path / "src")
    argosy_local("cp", "--archive", "none", "src", "local://bkt/t/")
    (tmp_path / "stray").write_text("not part of it")
    argosy_local("cp", "stray", "local://bkt/t/stray")
    got = argosy_local("cp", "--archive", "none", "local://bkt/t/", "back")
    assert got.code == 0 and "not in the tree manifest" in got.err
    assert not (tmp_path / "back" / "stray").exists()


HOSTILE_MANIFEST = json.dumps(
    {
        "schema": "argosy.tree-manifest",
        "version": 1,
        "files": [],
        "symlinks": [{"path": "x/l", "target": ".."}, {"path": "x/l/m", "target": "../.."}],
        "dirs": [],
    }
)


@pytest.mark.parametrize("how", [["-r"], ["--archive", "none"]])
@pytest.mark.parametrize("at", ["evil.argosy-manifest.json", "evil/.argosy-manifest.json"])
def test_a_hostile_tree_manifest_writes_nothing_beside_the_destination(
    argosy_local, tmp_path: Path, how: list[str], at: str
) -> None:
    (tmp_path / "manifest.json").write_text(HOSTILE_MANIFEST)
    (tmp_path / "f").write_text("f")
    assert argosy_local("cp", "f", "local://bkt/evil/f").code == 0
    assert argosy_local("cp", "manifest.json", f"local://bkt/{at}").code == 0
    before = sorted(os.listdir(tmp_path))
    got = argosy_local("cp", *how, "local://bkt/evil/", "back")
    assert got.code == 2 and "'x/l/m' goes through 'x/l', which is a symlink" in got.err
    assert len(got.err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == before  # no 'back', no 'm', no staging folder


@pytest.mark.parametrize(
    ("codec", "suffix"), [("none", "tar"), ("gzip", "tar.gz"), ("zstd", "tar.zst")]
)
@pytest.mark.parametrize("dialect", TAR_DIALECTS)
@pytest.mark.parametrize("tool", ["tarfile", "gnu-tar"])
def test_tars_made_by_other_tools_extract_with_archive_auto(
    argosy_local, tmp_path: Path, tool: str, dialect: str, codec: str, suffix: str
) -> None:
    src = foreign_tree(tmp_path / "src", dialect=dialect)
    stored = tmp_path / "local-root" / "bkt" / f"made.{suffix}"
    stored.write_bytes(compressed(foreign_tar(src, tool=tool, dialect=dialect), codec))
    got = argosy_local(
        "cp", "--archive", "auto", "--keep-mtime", f"local://bkt/made.{suffix}", "back"
    )
    assert got.code == 0, got.err
    assert snapshot(tmp_path / "back", mtimes=True) == snapshot(src, mtimes=True)


def test_a_pax_tar_made_by_gnu_tar_is_listed_with_archive_contents(
    argosy_local, tmp_path: Path
) -> None:
    src = foreign_tree(tmp_path / "src", dialect="pax")
    stored = tmp_path / "local-root" / "bkt" / "made.tar"
    stored.write_bytes(foreign_tar(src, tool="gnu-tar", dialect="pax"))
    got = argosy_local("ls", "--archive-contents", "--json", "local://bkt/made.tar")
    assert got.code == 0, got.err
    rows = {json.loads(x)["path"].removeprefix("./"): json.loads(x) for x in got.text.splitlines()}
    assert rows["longlink"]["link"] == VERY_LONG


def test_a_member_5000_folders_deep_is_refused_in_one_line_leaving_nothing(
    argosy_local, tmp_path: Path
) -> None:
    deep = tarfile.TarInfo("a/" * 5000 + "f")
    deep.size = 1
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(deep, io.BytesIO(b"x"))
    (tmp_path / "local-root" / "bkt" / "deep.tar").write_bytes(buffer.getvalue())
    before = sorted(os.listdir(tmp_path))
    got = argosy_local("cp", "--archive", "auto", "local://bkt/deep.tar", "back")
    assert got.code == 2, got.err
    assert len(got.err.strip().splitlines()) == 1
    assert "5000 folders deep" in got.err and "PATH_MAX" in got.err
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize(
    ("name", "what"),
    [("bomb.tar.zst", "archive"), ("bomb.zip", "zip member 'zeros.bin'")],
)
def test_a_decompression_bomb_is_refused_in_one_line_naming_it_and_the_flag(
    argosy_local, tmp_path: Path, name: str, what: str
) -> None:
    data = (
        tar_bomb(100 * MiB, "zstd") if name.endswith("zst") else zip_bomb(("zeros.bin", 100 * MiB))
    )
    (tmp_path / "local-root" / "bkt" / name).write_bytes(data)
    before = sorted(os.listdir(tmp_path))
    got = argosy_local("cp", "--archive", "auto", f"local://bkt/{name}", "back")
    assert got.code == 2, got.err
    assert len(got.err.strip().splitlines()) == 1
    assert f"local://bkt/{name}: {what} expands past 1000:1" in got.err
    assert "--max-expansion RATIO raises the limit (0 turns it off)" in got.err
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("ratio", ["0", "100000"])
def test_max_expansion_lets_a_known_archive_of_zeros_through(
    argosy_local, tmp_path: Path, ratio: str
) -> None:
    (tmp_path / "local-root" / "bkt" / "zeros.tar.zst").write_bytes(tar_bomb(80 * MiB, "zstd"))
    got = argosy_local(
        "cp", "--archive", "auto", "--max-expansion", ratio, "local://bkt/zeros.tar.zst", "back"
    )
    assert got.code == 0, got.err
    assert (tmp_path / "back" / "zeros.bin").stat().st_size == 80 * MiB


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--archive", "auto", "--max-expansion", "lots"], "--max-expansion takes a ratio"),
        (["--archive", "auto", "--max-expansion", "-5"], "--max-expansion takes a ratio"),
        (["--max-expansion", "10"], "--max-expansion needs --archive"),
    ],
)
def test_a_wrong_max_expansion_is_a_one_line_error(
    argosy_local, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "local-root" / "bkt" / "a.tar.zst").write_bytes(tar_bomb(MiB, "zstd"))
    got = argosy_local("cp", *args, "local://bkt/a.tar.zst", "back")
    assert got.code == 2 and message in got.err
    assert len(got.err.strip().splitlines()) == 1


def test_max_expansion_is_refused_on_an_upload(argosy_local, tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    got = argosy_local(
        "cp", "--archive", "tar.zst", "--max-expansion", "10", "src", "local://bkt/a.tar.zst"
    )
    assert got.code == 2 and "--max-expansion is for downloads" in got.err


def test_listing_a_tar_bomb_is_refused_unless_max_expansion_allows_it(
    argosy_local, tmp_path: Path
) -> None:
    (tmp_path / "local-root" / "bkt" / "bomb.tar.zst").write_bytes(tar_bomb(100 * MiB, "zstd"))
    refused = argosy_local("ls", "--archive-contents", "local://bkt/bomb.tar.zst")
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1
    assert "local://bkt/bomb.tar.zst: archive expands past 1000:1" in refused.err
    listed = argosy_local(
        "ls", "--archive-contents", "--max-expansion", "0", "local://bkt/bomb.tar.zst"
    )
    assert listed.code == 0, listed.err
    assert "zeros.bin" in listed.text
