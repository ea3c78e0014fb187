"""The transfer engine over every driver: parallel parts, streams, records, integrity."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from argosy.artifacts import download, tree, upload
from argosy.artifacts.checksum import crc32c, to_hex
from argosy.artifacts.copy import copy_object
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import IntegrityError, NotFound, SourceChanged
from argosy.artifacts.protocol import Driver
from argosy.artifacts.record import read_record
from argosy.artifacts.settings import TransferSettings

MiB = 1 << 20
SMALL_PARTS = TransferSettings(
    part_size=5 * MiB, multipart_threshold=5 * MiB, stream_part_size=5 * MiB, concurrency=4
)


def _write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_a_multipart_file_upload_downloads_verified_and_identical(
    driver: Driver, tmp_path: Path
) -> None:
    data = _write(tmp_path / "src", 12 * MiB + 7)
    result = upload.upload_file(driver, "big/file", tmp_path / "src", settings=SMALL_PARTS)
    assert result.parts == 3
    assert result.record is not None
    assert result.record.checksum == f"crc32c:{to_hex(crc32c(data))}"
    got = download.download_file(driver, "big/file", tmp_path / "dst", settings=SMALL_PARTS)
    assert got.verified and got.checksum == result.record.checksum
    assert (tmp_path / "dst").read_bytes() == data


def test_the_record_is_stored_with_the_object(driver: Driver, tmp_path: Path) -> None:
    data = _write(tmp_path / "src", 11 * MiB)
    upload.upload_file(driver, "rec", tmp_path / "src", settings=SMALL_PARTS)
    verdict = read_record(driver.stat("rec").metadata, size=len(data))
    assert verdict.record is not None
    assert verdict.record.crc == crc32c(data)
    assert verdict.record.part_crcs == [
        crc32c(data[i : i + 5 * MiB]) for i in range(0, len(data), 5 * MiB)
    ]


def test_a_stream_uploads_in_parts_and_streams_back_in_order(driver: Driver) -> None:
    data = os.urandom(11 * MiB + 3)
    result = upload.upload_stream(
        driver, "s/stream", io.BufferedReader(io.BytesIO(data)), settings=SMALL_PARTS
    )
    assert result.parts == 3 and result.record is not None
    out = io.BytesIO()
    got = download.download_stream(driver, "s/stream", out, settings=SMALL_PARTS)
    assert out.getvalue() == data and got.verified


def test_an_empty_file_round_trips(driver: Driver, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    upload.upload_file(driver, "e", tmp_path / "empty", settings=SMALL_PARTS)
    got = download.download_file(driver, "e", tmp_path / "back", settings=SMALL_PARTS)
    assert got.verified and (tmp_path / "back").read_bytes() == b""


def test_an_object_whose_bytes_no_longer_match_its_record_leaves_no_file(
    driver: Driver, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    data = _write(tmp_path / "src", 1000)
    upload.upload_file(driver, "c", tmp_path / "src", settings=SMALL_PARTS)
    record_meta = driver.stat("c").metadata
    tampered = bytes([data[0] ^ 1]) + data[1:]
    driver.put("c", tampered, size=len(tampered), metadata=record_meta)
    with pytest.raises(IntegrityError, match="mismatch"):
        download.download_file(driver, "c", tmp_path / "out" / "dst", settings=SMALL_PARTS)
    assert os.listdir(tmp_path / "out") == []


def test_a_mismatch_on_a_stream_is_raised_after_the_bytes(driver: Driver, tmp_path: Path) -> None:
    upload.upload_stream(driver, "cs", io.BytesIO(b"abc" * 100), settings=SMALL_PARTS)
    meta = driver.stat("cs").metadata
    driver.put("cs", b"abd" * 100, size=300, metadata=meta)
    out = io.BytesIO()
    with pytest.raises(IntegrityError):
        download.download_stream(driver, "cs", out, settings=SMALL_PARTS)
    assert len(out.getvalue()) == 300


def test_an_object_not_written_by_argosy_downloads_unverified_with_a_note(
    driver: Driver, tmp_path: Path
) -> None:
    driver.put("foreign", b"theirs", size=6, metadata={})
    got = download.download_file(driver, "foreign", tmp_path / "f", settings=SMALL_PARTS)
    assert not got.verified
    assert "not written by Argosy" in got.note
    assert (tmp_path / "f").read_bytes() == b"theirs"


def test_a_record_for_a_different_size_is_stale_and_never_verified(
    driver: Driver, tmp_path: Path
) -> None:
    upload.upload_stream(driver, "st", io.BytesIO(b"12345"), settings=SMALL_PARTS)
    meta = driver.stat("st").metadata
    driver.put("st", b"123456", size=6, metadata=meta)
    got = download.download_file(driver, "st", tmp_path / "x", settings=SMALL_PARTS)
    assert not got.verified and "stale" in got.note


def _local_source(tmp_path: Path) -> LocalDriver:
    source = LocalDriver(tmp_path / "source-repo", "source")
    source.create_bucket()
    return source


@pytest.mark.parametrize("size", [0, 3 * MiB, 11 * MiB + 3])
def test_a_copy_from_another_bucket_arrives_identical_with_its_own_record(
    driver: Driver, tmp_path: Path, size: int
) -> None:
    source = _local_source(tmp_path)
    data = os.urandom(size)
    upload.upload_stream(source, "src", io.BytesIO(data), settings=SMALL_PARTS)
    copied = copy_object(source, "src", driver, "copied", settings=SMALL_PARTS)
    assert copied.source.verified and copied.upload.size == size
    assert copied.upload.parts == max(1, -(-size // (5 * MiB)))
    got = download.download_file(driver, "copied", tmp_path / "back", settings=SMALL_PARTS)
    assert got.verified and (tmp_path / "back").read_bytes() == data


def test_a_copy_whose_source_no_longer_matches_its_record_leaves_nothing_behind(
    driver: Driver, tmp_path: Path
) -> None:
    # written in 6 MiB parts, copied in 5: only the whole object's CRC can catch it, and
    # it is compared before Complete
    source = _local_source(tmp_path)
    data = _write(tmp_path / "src", 12 * MiB)
    six = TransferSettings(part_size=6 * MiB, multipart_threshold=6 * MiB)
    upload.upload_file(source, "src", tmp_path / "src", settings=six)
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    source.put("src", tampered, size=len(tampered), metadata=source.stat("src").metadata)
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        copy_object(source, "src", driver, "copied", settings=SMALL_PARTS)
    with pytest.raises(NotFound):
        driver.stat("copied")
    assert driver.list_uploads("copied") == []


def test_a_failed_part_aborts_the_upload_and_leaves_no_object(
    driver: Driver, tmp_path: Path
) -> None:
    _write(tmp_path / "src", 12 * MiB)
    real = driver.upload_part
    calls = []

    def failing(key, upload_id, number, body, *, size):
        calls.append(number)
        if number == 2:
            raise NotFound("simulated permanent failure")
        return real(key, upload_id, number, body, size=size)

    driver.upload_part = failing  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        upload.upload_file(driver, "abort/me", tmp_path / "src", settings=SMALL_PARTS)
    assert driver.list_uploads("abort/") == []
    with pytest.raises(NotFound):
        driver.stat("abort/me")


def test_a_source_that_grows_during_upload_is_refused(driver: Driver, tmp_path: Path) -> None:
    src = tmp_path / "grow"
    _write(src, 12 * MiB)
    real = driver.upload_part

    def appending(key, upload_id, number, body, *, size):
        if number == 1:
            with open(src, "ab") as handle:
                handle.write(b"more")
        return real(key, upload_id, number, body, size=size)

    driver.upload_part = appending  # type: ignore[method-assign]
    with pytest.raises(SourceChanged):
        upload.upload_file(driver, "grow/me", src, settings=SMALL_PARTS)
    with pytest.raises(NotFound):
        driver.stat("grow/me")


def test_a_folder_round_trips_as_one_object_per_file(driver: Driver, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "a" / "mid.txt").write_text("mid")
    (src / "a" / "b" / "deep.bin").write_bytes(os.urandom(6 * MiB))
    up = tree.upload_tree(driver, "dir/run1", src, settings=SMALL_PARTS)
    assert up.files == 3
    keys = sorted(o.key for o in tree.list_all(driver, "dir/run1/"))
    assert keys == ["dir/run1/a/b/deep.bin", "dir/run1/a/mid.txt", "dir/run1/top.txt"]
    back = tree.download_tree(driver, "dir/run1/", tmp_path / "back", settings=SMALL_PARTS)
    assert back.files == 3 and back.verified == 3
    for rel in ["top.txt", "a/mid.txt", "a/b/deep.bin"]:
        assert (tmp_path / "back" / rel).read_bytes() == (src / rel).read_bytes()


def test_a_tree_manifest_is_written_beside_its_folder_with_nothing_extra_under_it(
    driver: Driver, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    (src / "a").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "a" / "mid.txt").write_text("mid")
    up = tree.upload_tree(driver, "dir/run1", src, settings=SMALL_PARTS, manifest=True)
    assert up.manifest
    assert [o.key for o in tree.list_all(driver, "dir/run1/")] == [
        "dir/run1/a/mid.txt",
        "dir/run1/top.txt",
    ]
    assert [o.key for o in tree.list_all(driver, "dir/")] == [
        "dir/run1.argosy-manifest.json",
        "dir/run1/a/mid.txt",
        "dir/run1/top.txt",
    ]


@pytest.mark.parametrize("layout", ["beside", "under"])
def test_a_tree_is_verified_against_its_manifest_in_either_layout(
    driver: Driver, tmp_path: Path, layout: str
) -> None:
    src = tmp_path / "tree"
    (src / "empty").mkdir(parents=True)
    (src / "f.txt").write_text("f")
    (src / "link").symlink_to("f.txt")
    tree.upload_tree(driver, "run", src, settings=SMALL_PARTS, manifest=True)
    if layout == "under":  # where versions before wrote it
        body = download.iter_object(driver, "run.argosy-manifest.json", settings=SMALL_PARTS)
        data = b"".join(bytes(c) for c in body)
        driver.put("run/.argosy-manifest.json", data, size=len(data), metadata={})
        assert driver.delete(["run.argosy-manifest.json"]) == []

    back = tree.download_tree(driver, "run", tmp_path / "back", settings=SMALL_PARTS)

    assert back.manifest and back.verdict == "every file verified against the tree manifest"
    assert sorted(os.listdir(tmp_path / "back")) == ["empty", "f.txt", "link"]
    assert os.readlink(tmp_path / "back" / "link") == "f.txt"


def test_deleting_a_folder_takes_its_manifests_and_spares_its_lookalikes(driver: Driver) -> None:
    for key in [
        "run1/a",
        "run1/b/c",
        "run1.argosy-manifest.json",
        "run1/.argosy-manifest.json",
        "run10/x",
        "run10.argosy-manifest.json",
        "run1x",
    ]:
        driver.put(key, b"xy", size=2, metadata={})

    gone = tree.delete_folder(driver, "run1")

    assert (gone.objects, gone.bytes, gone.failures, gone.error) == (4, 8, [], None)
    assert [o.key for o in tree.list_all(driver, "")] == [
        "run10.argosy-manifest.json",
        "run10/x",
        "run1x",
    ]


def test_deleting_an_artifact_takes_the_object_of_its_exact_key_only_when_asked(
    driver: Driver,
) -> None:
    for key in ["out.tgz", "out.tgz.bak", "out.tgzx/y"]:
        driver.put(key, b"xy", size=2, metadata={})

    assert tree.delete_folder(driver, "out.tgz").objects == 0
    assert tree.delete_folder(driver, "out.tgz/", with_object=True).objects == 0
    assert tree.delete_folder(driver, "out.tgz", with_object=True).objects == 1

    assert [o.key for o in tree.list_all(driver, "")] == ["out.tgz.bak", "out.tgzx/y"]


def test_an_object_past_the_copy_limit_gets_its_record_by_a_multipart_copy(
    driver: Driver, tmp_path: Path
) -> None:
    # S3 copies at most 5 GiB in one request and OSS 1 GB; a lowered limit takes the same
    # road with 21 MiB
    data = _write(tmp_path / "src", 21 * MiB)
    driver.copy_limit = 8 * MiB
    result = upload.upload_file(driver, "past/limit", tmp_path / "src", settings=SMALL_PARTS)
    assert result.record is not None and not result.note
    assert read_record(driver.stat("past/limit").metadata, size=len(data)).record == result.record
    assert result.etag == driver.stat("past/limit").etag
    got = download.download_file(driver, "past/limit", tmp_path / "dst", settings=SMALL_PARTS)
    assert got.verified and (tmp_path / "dst").read_bytes() == data
    assert driver.list_uploads("past/") == []


def _uploads_and_keeps_the_other_writers_object(driver: Driver, key: str, src: Path) -> None:
    """Upload `src` while another writer replaces the object (patched in by the caller):
    the upload ends unverified, the other writer's object stays, no upload is left."""
    result = upload.upload_file(driver, key, src, settings=SMALL_PARTS)
    assert result.record is None and "unverified" in result.note
    out = io.BytesIO()
    download.download_stream(driver, key, out, settings=SMALL_PARTS)
    assert out.getvalue() == b"someone else's"
    assert driver.list_uploads(key) == []


def test_an_object_replaced_before_its_record_is_copied_stays_unverified_and_intact(
    driver: Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "src", 12 * MiB)
    monkeypatch.setattr(driver, "copy_limit", 8 * MiB)
    real = driver.complete_upload

    def complete_then_overwrite(key, upload_id, parts):
        etag = real(key, upload_id, parts)
        driver.put(key, b"someone else's", size=14, metadata={})
        return etag

    monkeypatch.setattr(driver, "complete_upload", complete_then_overwrite)
    _uploads_and_keeps_the_other_writers_object(driver, "raced", tmp_path / "src")


def test_an_object_replaced_while_its_record_is_copied_stays_the_new_one_unverified(
    driver: Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "src", 21 * MiB)
    monkeypatch.setattr(driver, "copy_limit", 8 * MiB)
    real = driver.copy_part

    def copy_then_overwrite(key, upload_id, number, **kwargs):
        part = real(key, upload_id, number, **kwargs)
        if number == 1:
            driver.put(key, b"someone else's", size=14, metadata={})
        return part

    monkeypatch.setattr(driver, "copy_part", copy_then_overwrite)
    _uploads_and_keeps_the_other_writers_object(driver, "raced2", tmp_path / "src")
