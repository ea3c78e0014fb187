"""Downloads check every range and resume broken streams from the byte they reached."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from argosy.artifacts import download, upload
from argosy.artifacts.errors import IntegrityError, TransientError
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings
from tests.unit.fakes import MisbehavingDriver

MiB = 1 << 20
SETTINGS = TransferSettings(
    part_size=5 * MiB,
    multipart_threshold=5 * MiB,
    concurrency=1,
    retry=RetryPolicy(attempts=3, base=0.0, cap=0.0),
)


@pytest.fixture
def driver(tmp_path: Path) -> MisbehavingDriver:
    d = MisbehavingDriver(tmp_path / "repo", "b")
    d.create_bucket()
    return d


def _put(driver, tmp_path: Path, size: int) -> bytes:
    data = random.Random(size).randbytes(size)
    (tmp_path / "src").write_bytes(data)
    upload.upload_file(driver, "k", tmp_path / "src", settings=SETTINGS)
    return data


def test_a_broken_stream_resumes_at_the_byte_it_reached_pinned_by_etag(driver, tmp_path) -> None:
    data = _put(driver, tmp_path, 7 * MiB)
    driver.break_after = [1_000_000]
    result = download.download_file(driver, "k", tmp_path / "out", settings=SETTINGS)
    assert result.verified and (tmp_path / "out").read_bytes() == data
    etag = driver.stat("k").etag
    assert driver.reads[0] == (0, 5 * MiB - 1, etag)
    assert driver.reads[1] == (1_000_000, 5 * MiB - 1, etag)


def test_a_stream_that_keeps_breaking_fails_and_leaves_no_file(driver, tmp_path) -> None:
    _put(driver, tmp_path, 6 * MiB)
    driver.break_after = [10, 10, 10, 10, 10, 10]
    with pytest.raises(TransientError):
        download.download_file(driver, "k", tmp_path / "out", settings=SETTINGS)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "src"]


def test_a_range_answered_at_the_wrong_offset_is_refused(driver, tmp_path) -> None:
    _put(driver, tmp_path, 1000)
    driver.shift_range = True
    with pytest.raises(IntegrityError, match="asked for bytes"):
        download.download_file(driver, "k", tmp_path / "out", settings=SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "src"]


def test_a_download_into_a_missing_folder_fails_clearly(driver, tmp_path) -> None:
    _put(driver, tmp_path, 10)
    with pytest.raises(Exception, match="does not exist"):
        download.download_file(driver, "k", tmp_path / "nope" / "out", settings=SETTINGS)


def test_an_existing_file_is_untouched_when_a_download_fails(driver, tmp_path) -> None:
    _put(driver, tmp_path, 2000)
    (tmp_path / "keep").write_bytes(b"precious")
    driver.shift_range = True
    with pytest.raises(IntegrityError):
        download.download_file(driver, "k", tmp_path / "keep", settings=SETTINGS)
    assert (tmp_path / "keep").read_bytes() == b"precious"
    assert os.path.exists(tmp_path / "keep")
