"""A local object's ETag is the version of its bytes, its metadata belongs to the file:
an object rewritten in place gets a new ETag (reads pinned to the old one fail) but keeps
its checksum record, so the record catches the change; a file that replaced the object
does not inherit it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import PreconditionFailed

META = {"argosy-checksum": "crc32c:00000000", "colour": "blue"}


@pytest.fixture
def driver(tmp_path: Path) -> LocalDriver:
    made = LocalDriver(tmp_path / "repo", "b")
    made.create_bucket()
    made.put("k", b"0123456789", size=10, metadata=META)
    return made


def _rewrite_in_place(path: Path, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.write(data)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_an_object_rewritten_in_place_has_a_new_etag_and_keeps_its_metadata(
    driver: LocalDriver, tmp_path: Path
) -> None:
    before = driver.stat("k")
    _rewrite_in_place(tmp_path / "repo" / "b" / "k", b"X")
    after = driver.stat("k")
    assert after.etag != before.etag
    assert after.metadata == META


def test_a_read_pinned_to_the_etag_fails_once_the_bytes_were_rewritten_in_place(
    driver: LocalDriver, tmp_path: Path
) -> None:
    etag = driver.stat("k").etag
    _rewrite_in_place(tmp_path / "repo" / "b" / "k", b"X")
    with pytest.raises(PreconditionFailed):
        driver.read("k", if_match=etag)


def test_a_file_moved_over_the_object_does_not_take_its_metadata(
    driver: LocalDriver, tmp_path: Path
) -> None:
    (tmp_path / "other").write_bytes(b"9876543210")
    os.replace(tmp_path / "other", tmp_path / "repo" / "b" / "k")
    assert driver.stat("k").metadata == {}


def test_a_repository_copied_with_its_times_kept_keeps_its_metadata(
    driver: LocalDriver, tmp_path: Path
) -> None:
    shutil.copytree(tmp_path / "repo", tmp_path / "copy", copy_function=shutil.copy2)
    copied = LocalDriver(tmp_path / "copy", "b")
    assert copied.stat("k").metadata == META
