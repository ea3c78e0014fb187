"""How a download learns what it reads: from its first ranged read when the driver
describes the object in its answer (S3), from the caller (a listing and a tree manifest),
or from a stat; every plan still checks each range and the whole object."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from argosy.artifacts import download, tree, upload
from argosy.artifacts.errors import IntegrityError
from argosy.artifacts.record import KEY_PARTS, Record, read_record
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings
from tests.unit.fakes import DescribingDriver, MisbehavingDriver

MiB = 1 << 20
NO_WAIT = RetryPolicy(attempts=3, base=0.0, cap=0.0)


def _settings(part_mib: int, *, concurrency: int = 2) -> TransferSettings:
    return TransferSettings(
        part_size=part_mib * MiB,
        multipart_threshold=part_mib * MiB,
        concurrency=concurrency,
        retry=NO_WAIT,
    )


@pytest.fixture
def driver(tmp_path: Path) -> DescribingDriver:
    d = DescribingDriver(tmp_path / "repo", "b")
    d.create_bucket()
    return d


def _put(driver, tmp_path: Path, size: int, *, part_mib: int = 5) -> bytes:
    data = random.Random(size).randbytes(size)
    (tmp_path / "src").write_bytes(data)
    upload.upload_file(driver, "k", tmp_path / "src", settings=_settings(part_mib))
    driver.stats = 0  # the upload's own
    return data


def test_a_driver_that_describes_its_reads_downloads_without_a_stat(driver, tmp_path) -> None:
    data = _put(driver, tmp_path, 12 * MiB)
    result = download.download_file(driver, "k", tmp_path / "out", settings=_settings(5))
    assert result.verified and (tmp_path / "out").read_bytes() == data
    assert driver.stats == 0


def test_the_first_range_is_unpinned_and_the_rest_are_pinned_to_the_etag_it_answered(
    driver, tmp_path
) -> None:
    _put(driver, tmp_path, 12 * MiB)
    etag = _head(driver, "k").etag
    download.download_file(driver, "k", tmp_path / "out", settings=_settings(5))
    assert driver.reads[0] == (0, 5 * MiB - 1, None)
    assert sorted(driver.reads[1:]) == [
        (5 * MiB, 10 * MiB - 1, etag),
        (10 * MiB, 12 * MiB - 1, etag),
    ]


def test_a_first_range_covering_several_recorded_parts_checks_each_of_them(
    driver, tmp_path
) -> None:
    _put(driver, tmp_path, 12 * MiB)  # parts of 5 MiB
    meta = dict(_head(driver, "k").metadata)
    record = read_record(meta, size=12 * MiB).record
    assert record is not None and record.part_crcs is not None
    wrong = Record(
        record.crc,
        record.size,
        record.part_size,
        [record.part_crcs[0], record.part_crcs[1] ^ 1, record.part_crcs[2]],
    )
    meta[KEY_PARTS] = wrong.to_metadata()[KEY_PARTS]
    driver.replace_metadata("k", meta, if_match=_head(driver, "k").etag)
    with pytest.raises(IntegrityError, match="part 2 checksum mismatch"):
        download.download_file(driver, "k", tmp_path / "out", settings=_settings(10))
    assert driver.reads[0] == (0, 10 * MiB - 1, None)  # one range held parts 1 and 2
    assert not (tmp_path / "out").exists()


def test_recorded_parts_that_do_not_tile_the_first_range_restart_the_plan_aligned(
    driver, tmp_path
) -> None:
    data = _put(driver, tmp_path, 14 * MiB, part_mib=6)
    result = download.download_file(driver, "k", tmp_path / "out", settings=_settings(10))
    assert result.verified and (tmp_path / "out").read_bytes() == data
    etag = _head(driver, "k").etag
    assert driver.reads[0] == (0, 10 * MiB - 1, None)
    assert sorted(driver.reads[1:]) == [
        (0, 6 * MiB - 1, etag),
        (6 * MiB, 12 * MiB - 1, etag),
        (12 * MiB, 14 * MiB - 1, etag),
    ]


def test_an_object_smaller_than_the_first_range_takes_one_read(driver, tmp_path) -> None:
    data = _put(driver, tmp_path, 3000)
    result = download.download_file(driver, "k", tmp_path / "out", settings=_settings(5))
    assert result.verified and (tmp_path / "out").read_bytes() == data
    assert driver.reads == [(0, 5 * MiB - 1, None)] and driver.stats == 0


def test_an_empty_object_is_described_by_a_stat_when_it_has_no_first_byte(driver, tmp_path) -> None:
    (tmp_path / "src").write_bytes(b"")
    upload.upload_file(driver, "k", tmp_path / "src", settings=_settings(5))
    result = download.download_file(driver, "k", tmp_path / "out", settings=_settings(5))
    assert result.verified and (tmp_path / "out").read_bytes() == b""
    assert driver.stats == 1


def test_a_broken_first_range_resumes_pinned_to_the_etag_it_answered(driver, tmp_path) -> None:
    data = _put(driver, tmp_path, 7 * MiB)
    driver.break_after = [1_000_000]
    result = download.download_file(driver, "k", tmp_path / "out", settings=_settings(5))
    assert result.verified and (tmp_path / "out").read_bytes() == data
    assert (1_000_000, 5 * MiB - 1, _head(driver, "k").etag) in driver.reads


def test_the_progress_total_is_known_before_the_first_byte_is_counted(driver, tmp_path) -> None:
    _put(driver, tmp_path, 6 * MiB)
    events: list[str] = []
    download.download_file(
        driver,
        "k",
        tmp_path / "out",
        settings=_settings(5),
        on_info=lambda info: events.append(f"size {info.size}"),
        progress=lambda n: events.append("bytes"),
    )
    assert events[0] == f"size {6 * MiB}" and events[1:] and set(events[1:]) == {"bytes"}


def test_a_tree_with_a_manifest_downloads_small_files_without_a_stat_each(tmp_path) -> None:
    driver = DescribingDriver(tmp_path / "repo", "b")
    driver.create_bucket()
    plain = CountingStats(tmp_path / "repo", "b")  # the same bucket, no described reads
    src = tmp_path / "tree"
    (src / "d").mkdir(parents=True)
    for i in range(5):
        (src / "d" / f"{i}.txt").write_text(f"file {i}" * (i + 1))
    tree.upload_tree(driver, "run", src, settings=_settings(5), manifest=True)
    back = tree.download_tree(plain, "run", tmp_path / "back", settings=_settings(5))
    assert back.files == 5 and back.verified == 5
    assert plain.stats == 1  # the manifest's own, none per file
    for i in range(5):
        assert (tmp_path / "back" / "d" / f"{i}.txt").read_text() == f"file {i}" * (i + 1)


def test_a_tree_file_whose_bytes_differ_from_the_manifest_fails_without_a_stat(tmp_path) -> None:
    driver = CountingStats(tmp_path / "repo", "b")
    driver.create_bucket()
    src = tmp_path / "tree"
    src.mkdir()
    (src / "a.txt").write_text("original")
    tree.upload_tree(driver, "run", src, settings=_settings(5), manifest=True)
    driver.put("run/a.txt", b"ORIGINAL", size=8, metadata={})  # same size, other bytes
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        tree.download_tree(driver, "run", tmp_path / "back", settings=_settings(5))
    assert not (tmp_path / "back").exists()


class CountingStats(MisbehavingDriver):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = 0

    def stat(self, key):
        self.stats += 1
        return super().stat(key)


def _head(driver, key: str):
    """The object's description, not counted as the download's stat."""
    from argosy.artifacts.drivers.local import LocalDriver

    return LocalDriver.stat(driver, key)
