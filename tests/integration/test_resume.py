"""A file upload killed midway resumes from its completed parts: only the missing parts
are sent again, counted at the server."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from argosy.artifacts.checksum import crc32c
from tests.conftest import s3_driver, unique_bucket

MiB = 1 << 20
PARTS = 30


class _PartCounter(logging.Handler):
    """Counts UploadPart requests in the in-process moto server's access log."""

    def __init__(self, bucket: str) -> None:
        super().__init__()
        # either order of the query: botocore sends uploadId first, the direct path sorts
        self.pattern = re.compile(rf"PUT /{bucket}/big\?[^ ]*partNumber=\d+[^ ]* [^ ]+\" 200")
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.pattern.search(record.getMessage()):
            self.count += 1


@pytest.fixture
def part_counter(moto_endpoint: str):
    bucket = unique_bucket()
    counter = _PartCounter(bucket)
    log = logging.getLogger("werkzeug")
    old = log.level
    log.setLevel(logging.INFO)
    log.addHandler(counter)
    yield bucket, counter
    log.removeHandler(counter)
    log.setLevel(old)


def _cp(endpoint: str, bucket: str, source: Path, checkpoints: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
        "ARGOSY_CHECKPOINT_DIR": str(checkpoints),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy",
            "cp",
            "--part-size",
            "5",
            "--concurrency",
            "2",
            str(source),
            f"s3://{bucket}/big",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )


def _checkpointed(folder: Path) -> set[int]:
    files = list(folder.glob("*.json"))
    if not files:
        return set()
    return {int(n) for n in json.loads(files[0].read_text())["parts"]}


def test_a_killed_upload_resumes_sending_only_the_missing_parts(
    moto_endpoint: str, part_counter, tmp_path: Path
) -> None:
    bucket, counter = part_counter
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    source = tmp_path / "big"
    data = os.urandom(PARTS * 5 * MiB)
    source.write_bytes(data)
    checkpoints = tmp_path / "checkpoints"

    first = _cp(moto_endpoint, bucket, source, checkpoints)
    deadline = time.monotonic() + 60
    while len(_checkpointed(checkpoints)) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    kept = _checkpointed(checkpoints)
    assert 8 <= len(kept) < PARTS
    upload_id = driver.list_uploads("big")[0].upload_id
    on_server = {p.number for p in driver.list_parts("big", upload_id)}
    assert kept <= on_server

    time.sleep(0.5)  # let the server log requests the killed client had in flight
    counter.count = 0
    second = _cp(moto_endpoint, bucket, source, checkpoints)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert counter.count == PARTS - len(kept)
    assert f"resumed: {len(kept)} of {PARTS} parts".encode() in err
    assert driver.list_uploads("") == []
    assert list(checkpoints.glob("*.json")) == []
    stored = driver.stat("big")
    assert stored.size == len(data)
    assert stored.metadata["argosy-checksum"] == f"crc32c:{crc32c(data):08x}"


def test_a_checkpoint_is_ignored_when_the_source_changed(
    moto_endpoint: str, part_counter, tmp_path: Path
) -> None:
    bucket, counter = part_counter
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    source = tmp_path / "big"
    source.write_bytes(os.urandom(PARTS * 5 * MiB))
    checkpoints = tmp_path / "checkpoints"
    first = _cp(moto_endpoint, bucket, source, checkpoints)
    deadline = time.monotonic() + 60
    while len(_checkpointed(checkpoints)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    new_data = os.urandom(PARTS * 5 * MiB)
    source.write_bytes(new_data)
    counter.count = 0
    second = _cp(moto_endpoint, bucket, source, checkpoints)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert counter.count == PARTS and b"resumed" not in err
    assert driver.stat("big").metadata["argosy-checksum"] == f"crc32c:{crc32c(new_data):08x}"


def test_a_file_rewritten_in_place_with_its_size_and_mtime_kept_starts_afresh(
    moto_endpoint: str, part_counter, tmp_path: Path
) -> None:
    bucket, counter = part_counter
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    source = tmp_path / "big"
    source.write_bytes(os.urandom(PARTS * 5 * MiB))
    checkpoints = tmp_path / "checkpoints"
    first = _cp(moto_endpoint, bucket, source, checkpoints)
    deadline = time.monotonic() + 60
    while len(_checkpointed(checkpoints)) < PARTS // 2 + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    kept = _checkpointed(checkpoints)
    middle = min(kept, key=lambda n: abs(n - PARTS // 2))  # a kept part mid-file
    assert len(kept) < PARTS and abs(middle - PARTS // 2) <= 2
    before = source.stat()
    with open(source, "r+b") as f:  # the same inode, size and (below) mtime
        f.seek((middle - 1) * 5 * MiB + 2 * MiB)
        f.write(os.urandom(MiB))
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = source.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    old_upload = driver.list_uploads("big")[0].upload_id

    time.sleep(0.5)  # let the server log requests the killed client had in flight
    counter.count = 0
    second = _cp(moto_endpoint, bucket, source, checkpoints)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"part {middle} changed since the interrupted upload".encode() in err
    # every part of the new upload sent (and perhaps a missing one sent to the old
    # upload before the changed part was found)
    assert b"resumed" not in err and counter.count >= PARTS
    assert driver.list_uploads("") == []  # the interrupted upload was aborted
    assert old_upload not in {u.upload_id for u in driver.list_uploads("")}
    assert list(checkpoints.glob("*.json")) == []
    from argosy.artifacts import download
    from argosy.artifacts.settings import TransferSettings

    back = tmp_path / "back"
    got = download.download_file(driver, "big", back, settings=TransferSettings())
    assert got.verified and back.read_bytes() == source.read_bytes()
    assert driver.stat("big").metadata["argosy-checksum"] == (
        f"crc32c:{crc32c(source.read_bytes()):08x}"
    )


def _cp_archive(
    endpoint: str, bucket: str, folder: Path, checkpoints: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
        "ARGOSY_CHECKPOINT_DIR": str(checkpoints),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy",
            "cp",
            "--archive",
            "tar",
            "--part-size",
            "5",
            "--concurrency",
            "2",
            str(folder),
            f"s3://{bucket}/big",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )


def test_a_killed_archive_upload_resumes_from_its_reproducible_parts(
    moto_endpoint: str, part_counter, tmp_path: Path
) -> None:
    bucket, counter = part_counter
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    for i in range(24):
        (folder / ("sub" if i % 2 else "") / f"f{i:02d}.bin").write_bytes(os.urandom(5 * MiB))
    checkpoints = tmp_path / "checkpoints"
    first = _cp_archive(moto_endpoint, bucket, folder, checkpoints)
    deadline = time.monotonic() + 60
    while len(_checkpointed(checkpoints)) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    kept = _checkpointed(checkpoints)
    assert len(kept) >= 6
    sent = _rerun_counting_parts(moto_endpoint, bucket, folder, checkpoints, counter)
    total = -(-driver.stat("big").size // (5 * MiB))
    assert sent == total - len(kept)
    assert driver.list_uploads("") == []
    import tarfile

    out = tmp_path / "out.tar"
    from argosy.artifacts import download
    from argosy.artifacts.settings import TransferSettings

    got = download.download_file(driver, "big", out, settings=TransferSettings())
    assert got.verified
    with tarfile.open(out) as archive:
        names = sorted(m.name for m in archive.getmembers() if m.isfile())
        assert len(names) == 24
        member = archive.extractfile(
            [m for m in archive.getmembers() if m.name.endswith("f00.bin")][0]
        )
        assert member is not None
        assert member.read() == (folder / "f00.bin").read_bytes()


def _rerun_counting_parts(
    endpoint: str, bucket: str, folder: Path, checkpoints: Path, counter: _PartCounter
) -> int:
    """The same archive upload run again to its end: the parts it sent."""
    time.sleep(0.5)  # let the server log requests the killed client had in flight
    counter.count = 0
    second = _cp_archive(endpoint, bucket, folder, checkpoints)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    return counter.count


def _killed_archive_upload(endpoint: str, bucket: str, tmp_path: Path) -> tuple[Path, Path]:
    """A folder of 16 x 5 MiB archived to `big`, killed once 4 parts are checkpointed."""
    folder = tmp_path / "tree"
    folder.mkdir()
    for i in range(16):
        (folder / f"f{i:02d}.bin").write_bytes(os.urandom(5 * MiB))
    checkpoints = tmp_path / "checkpoints"
    first = _cp_archive(endpoint, bucket, folder, checkpoints)
    deadline = time.monotonic() + 60
    while len(_checkpointed(checkpoints)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    return folder, checkpoints


def test_an_archive_upload_starts_afresh_when_the_tree_changed(
    moto_endpoint: str, part_counter, tmp_path: Path
) -> None:
    bucket, counter = part_counter
    s3_driver(moto_endpoint, "k", "s", bucket)
    folder, checkpoints = _killed_archive_upload(moto_endpoint, bucket, tmp_path)
    (folder / "f03.bin").write_bytes(os.urandom(5 * MiB))
    sent = _rerun_counting_parts(moto_endpoint, bucket, folder, checkpoints, counter)
    assert sent >= 16


def test_a_change_past_the_kept_parts_resumes_into_the_archive_of_the_tree_as_it_is_now(
    moto_endpoint: str, part_counter, tmp_path: Path
) -> None:
    bucket, counter = part_counter
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    folder, checkpoints = _killed_archive_upload(moto_endpoint, bucket, tmp_path)
    kept = _checkpointed(checkpoints)
    assert len(kept) >= 4 and max(kept) < 12  # f15 lies in parts 13-16
    changed = os.urandom(5 * MiB)
    (folder / "f15.bin").write_bytes(changed)  # the last file: far past the kept parts
    sent = _rerun_counting_parts(moto_endpoint, bucket, folder, checkpoints, counter)
    total = -(-driver.stat("big").size // (5 * MiB))
    assert sent == total - len(kept)
    import tarfile

    from argosy.artifacts import download
    from argosy.artifacts.settings import TransferSettings

    out = tmp_path / "out.tar"
    assert download.download_file(driver, "big", out, settings=TransferSettings()).verified
    with tarfile.open(out) as archive:
        for i in (0, 15):
            member = archive.extractfile(f"f{i:02d}.bin")
            assert member is not None
            assert member.read() == (folder / f"f{i:02d}.bin").read_bytes()
