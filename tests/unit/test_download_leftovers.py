"""What a killed download leaves beside its destination: a temporary file the next run of
the same download resumes from, keeping only the parts whose bytes match the record; a
temporary of another version removed; and nothing that is not ours, or is in use, ever
touched. Restores' staging folders likewise."""

from __future__ import annotations

import fcntl
import os
import random
from pathlib import Path

import pytest

from argosy.artifacts import download, upload
from argosy.artifacts.archive.layout import new_staging, remove_staging
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings
from tests.unit.fakes import MisbehavingDriver

MiB = 1 << 20
PART = 5 * MiB
SIZE = 4 * PART + 100  # five parts, the last one short
SETTINGS = TransferSettings(
    part_size=PART,
    multipart_threshold=PART,
    concurrency=2,
    retry=RetryPolicy(attempts=3, base=0.0, cap=0.0),
)


@pytest.fixture
def driver(tmp_path: Path) -> MisbehavingDriver:
    d = MisbehavingDriver(tmp_path / "repo", "b")
    d.create_bucket()
    return d


def _put(driver: MisbehavingDriver, tmp_path: Path, seed: int = 1) -> bytes:
    data = random.Random(seed).randbytes(SIZE)
    (tmp_path / "src").write_bytes(data)
    upload.upload_file(driver, "k", tmp_path / "src", settings=SETTINGS)
    return data


def _temp_for(driver: MisbehavingDriver, dest: Path) -> Path:
    """Where a download of the object as it is now into `dest` resumes from."""
    return download._resume_path(dest, driver.url("k"), driver.stat("k").etag)


def _ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.lstrip(".").startswith("out"))


def test_a_temporary_holding_some_parts_resumes_fetching_only_the_others(
    driver: MisbehavingDriver, tmp_path: Path
) -> None:
    data = _put(driver, tmp_path)
    left = bytearray(data)
    left[2 * PART + 7] ^= 0xFF  # part 3: one byte wrong
    left[3 * PART : 4 * PART] = bytes(PART)  # part 4: never written
    out = tmp_path / "out"
    _temp_for(driver, out).write_bytes(left)

    got = download.download_file(driver, "k", out, settings=SETTINGS)
    assert got.verified and got.resumed_parts == 3 and got.parts == 5
    assert sorted(start for start, _, _ in driver.reads) == [2 * PART, 3 * PART]
    assert out.read_bytes() == data
    assert _ours(tmp_path) == ["out"]


def test_a_temporary_of_another_version_is_removed_and_the_download_starts_afresh(
    driver: MisbehavingDriver, tmp_path: Path
) -> None:
    old = _put(driver, tmp_path, seed=1)
    out = tmp_path / "out"
    _temp_for(driver, out).write_bytes(old)
    new = _put(driver, tmp_path, seed=2)

    got = download.download_file(driver, "k", out, settings=SETTINGS)
    assert got.resumed_parts == 0 and len(driver.reads) == 5
    assert out.read_bytes() == new
    assert _ours(tmp_path) == ["out"]


def test_a_temporary_of_an_object_without_part_checksums_is_removed(
    driver: MisbehavingDriver, tmp_path: Path
) -> None:
    data = random.Random(3).randbytes(SIZE)
    driver.put("k", data, size=SIZE, metadata={})
    out = tmp_path / "out"
    _temp_for(driver, out).write_bytes(data)

    got = download.download_file(driver, "k", out, settings=SETTINGS)
    assert not got.verified and got.resumed_parts == 0 and len(driver.reads) == 5
    assert _ours(tmp_path) == ["out"]


def test_temporaries_in_use_by_live_downloads_are_left_alone(
    driver: MisbehavingDriver, tmp_path: Path
) -> None:
    data = _put(driver, tmp_path)
    out = tmp_path / "out"
    same = _temp_for(driver, out)  # a live download of this very version
    other = out.with_name(".out.argosy-0123abcd.part")  # and of some other one
    held = []
    for path in (same, other):
        path.write_bytes(b"in use")
        held.append(os.open(path, os.O_RDONLY))
        fcntl.flock(held[-1], fcntl.LOCK_EX)
    try:
        got = download.download_file(driver, "k", out, settings=SETTINGS)
        assert got.verified and out.read_bytes() == data
        assert same.read_bytes() == b"in use" and other.read_bytes() == b"in use"
        assert _ours(tmp_path) == sorted(["out", same.name, other.name])
    finally:
        for fd in held:
            os.close(fd)


def test_only_files_named_by_our_own_pattern_beside_the_destination_are_swept(
    driver: MisbehavingDriver, tmp_path: Path
) -> None:
    data = _put(driver, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"not ours")
    stale = tmp_path / ".out.argosy-5f3e9a0c1.part"
    stale.write_bytes(b"left by a killed run")
    kept = [
        tmp_path / ".out.argosy-notours.part",  # not our pattern
        tmp_path / ".out.argosy-abc.part.keep",
        tmp_path / ".outer.argosy-abc.part",  # another destination's
        tmp_path / ".out.b.argosy-abc.part",
        tmp_path / "out.argosy-abc.part",
    ]
    for path in kept:
        path.write_bytes(b"not ours")
    folder = tmp_path / ".out.argosy-abd.part"  # a folder, not a temporary file
    folder.mkdir()
    link = tmp_path / ".out.argosy-abe.part"  # a link is never followed nor removed
    link.symlink_to(elsewhere)
    stable = _temp_for(driver, tmp_path / "out")
    stable.symlink_to(elsewhere)  # even at the very name the download resumes from

    got = download.download_file(driver, "k", tmp_path / "out", settings=SETTINGS)
    assert got.verified and (tmp_path / "out").read_bytes() == data
    assert not stale.exists()
    assert all(path.read_bytes() == b"not ours" for path in kept)
    assert folder.is_dir() and link.is_symlink() and stable.is_symlink()
    assert elsewhere.read_bytes() == b"not ours"


def test_a_download_that_does_not_resume_leaves_what_is_beside_it_alone(
    driver: MisbehavingDriver, tmp_path: Path
) -> None:
    _put(driver, tmp_path)
    stale = tmp_path / ".out.argosy-5f3e9a0c1.part"
    stale.write_bytes(b"not looked at")
    download.download_file(driver, "k", tmp_path / "out", settings=SETTINGS, resume=False)
    assert stale.exists()


def test_a_staging_folder_a_killed_restore_left_is_removed_by_the_next_one(
    tmp_path: Path,
) -> None:
    final = str(tmp_path / "dest")
    stale = tmp_path / ".dest.argosy-k1ll3d_x.tmp"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "f").write_bytes(b"half")
    os.chmod(stale / "sub", 0o500)  # restores apply read-only modes too
    kept = [tmp_path / ".dest.argosy-other.tmp", tmp_path / ".dest2.argosy-k1ll3d_x.tmp"]
    for path in kept:
        path.mkdir()
    (tmp_path / ".dest.argosy-afile000.tmp").write_bytes(b"a file")
    live = new_staging(final)  # a live restore's: held
    try:
        mine = new_staging(final)
        assert not stale.exists() and os.path.isdir(live) and os.path.isdir(mine)
        assert all(path.is_dir() for path in kept)
        assert (tmp_path / ".dest.argosy-afile000.tmp").is_file()
        remove_staging(mine)
    finally:
        remove_staging(live)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".dest.")) == [
        ".dest.argosy-afile000.tmp",
        ".dest.argosy-other.tmp",
    ]
