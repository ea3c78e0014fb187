"""A download killed midway (kill -9 of `argosy cp`, through a slow link) resumes from
its temporary file: the parts it holds that match the object's record are kept, only
the rest is fetched, counted at the server; another version of the object, or one
without part checksums, starts afresh; no temporary outlives a run that finished. Tree
restores and archive extractions leave staging folders that the next run removes."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from argosy.artifacts.protocol import Driver
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.upload import upload_file
from argosy.testing.faults import Delay, FaultProxy, Rule
from tests.conftest import s3_driver, unique_bucket

MiB = 1 << 20
PART = 5 * MiB
PARTS = 30
SLOW = 8 * MiB  # bytes per second per answer: 150 MiB over two connections take ~9 s
CHUNK = 64 << 10


def _slow_link(endpoint: str) -> FaultProxy:
    """The fault proxy in front of `endpoint`, every answer's body paced to SLOW."""
    return FaultProxy(endpoint, [Rule(Delay(between_chunks=CHUNK / SLOW, chunk=CHUNK), times=None)])


class _GetCounter(logging.Handler):
    """Counts GETs of one key in the in-process moto server's access log."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__()
        self.pattern = re.compile(rf"GET /{bucket}/{key}[ ?]")  # the line may be coloured
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.pattern.search(record.getMessage()):
            self.count += 1


@pytest.fixture
def bucket(moto_endpoint: str) -> Iterator[tuple[str, Driver, _GetCounter]]:
    name = unique_bucket()
    counter = _GetCounter(name, "big")
    log = logging.getLogger("werkzeug")
    old = log.level
    log.setLevel(logging.INFO)
    log.addHandler(counter)
    yield name, s3_driver(moto_endpoint, "k", "s", name), counter
    log.removeHandler(counter)
    log.setLevel(old)


def _argosy(endpoint: str, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "argosy", *args], env=env, stderr=subprocess.PIPE
    )


def _cp(endpoint: str, *args: str) -> subprocess.Popen[bytes]:
    return _argosy(endpoint, "cp", "--part-size", "5", "--concurrency", "2", *args)


def _put(driver: Driver, data: bytes, tmp_path: Path, *, record: bool = True) -> None:
    """`big`, in 5 MiB parts with its record, or in one PUT without any."""
    if not record:
        driver.put("big", data, size=len(data), metadata={})
        return
    source = tmp_path / "source"
    source.write_bytes(data)
    settings = TransferSettings(part_size=PART, multipart_threshold=PART)
    upload_file(driver, "big", source, settings=settings)
    source.unlink()


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.argosy-"))


def _held_parts(temp: Path, data: bytes) -> set[int]:
    """The parts of `data` that `temp` holds in full."""
    held = temp.read_bytes()
    return {
        n + 1
        for n in range(PARTS)
        if held[n * PART : (n + 1) * PART] == data[n * PART : (n + 1) * PART]
    }


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _killed_download(
    endpoint: str, bucket: str, counter: _GetCounter, dest: Path, data: bytes
) -> tuple[Path, set[int]]:
    """`argosy cp s3://BUCKET/big DEST` through a slow link, killed once about a third of
    the parts arrived: the temporary it left and the parts that temporary holds."""
    counter.count = 0
    with _slow_link(endpoint) as slow:
        first = _cp(slow.url, f"s3://{bucket}/big", str(dest))
        _kill_when(first, lambda: counter.count >= PARTS // 3)
    left = _leftovers(dest.parent, dest.name)
    assert len(left) == 1 and left[0].endswith(".part") and not dest.exists()
    temp = dest.parent / left[0]
    return temp, _held_parts(temp, data)


def _rerun(endpoint: str, bucket: str, counter: _GetCounter, dest: Path) -> tuple[int, str]:
    """The same download run again to its end: the GETs it made, and what it said."""
    time.sleep(0.5)  # let the server log requests the killed client had in flight
    counter.count = 0
    second = _cp(endpoint, f"s3://{bucket}/big", str(dest))
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    return counter.count, err.decode()


def test_a_killed_download_resumes_fetching_only_the_parts_it_lacks(
    moto_endpoint: str, bucket, tmp_path: Path
) -> None:
    name, driver, counter = bucket
    data = os.urandom(PARTS * PART)
    _put(driver, data, tmp_path)
    dest = tmp_path / "big"
    _, held = _killed_download(moto_endpoint, name, counter, dest, data)
    assert 3 <= len(held) < PARTS

    gets, err = _rerun(moto_endpoint, name, counter, dest)
    # the first GET describes the object; with parts to keep its answer is not read
    assert gets == 1 + PARTS - len(held), err
    assert f"resumed: {len(held)} of {PARTS} parts were already downloaded" in err
    assert "verified crc32c:" in err and "unverified" not in err
    assert dest.read_bytes() == data
    assert _leftovers(tmp_path, "big") == []


def test_a_killed_download_of_an_object_since_replaced_starts_afresh(
    moto_endpoint: str, bucket, tmp_path: Path
) -> None:
    name, driver, counter = bucket
    _put(driver, os.urandom(PARTS * PART), tmp_path)
    dest = tmp_path / "big"
    _killed_download(moto_endpoint, name, counter, dest, b"")
    new = os.urandom(PARTS * PART)
    _put(driver, new, tmp_path)

    gets, err = _rerun(moto_endpoint, name, counter, dest)
    assert gets == PARTS and "resumed" not in err, err
    assert dest.read_bytes() == new
    assert _leftovers(tmp_path, "big") == []


def test_a_killed_download_of_an_object_without_part_checksums_starts_afresh(
    moto_endpoint: str, bucket, tmp_path: Path
) -> None:
    name, driver, counter = bucket
    data = os.urandom(PARTS * PART)
    _put(driver, data, tmp_path, record=False)
    dest = tmp_path / "big"
    _, held = _killed_download(moto_endpoint, name, counter, dest, data)
    assert held  # parts it could have kept, had it known they were right

    gets, err = _rerun(moto_endpoint, name, counter, dest)
    assert gets == PARTS and "resumed" not in err and "unverified" in err, err
    assert dest.read_bytes() == data
    assert _leftovers(tmp_path, "big") == []


def _tree(driver: Driver, tmp_path: Path) -> bytes:
    """`run/`: 12 objects of 5 MiB (a folder of objects, `cp -r`), and `big`, their
    tar: what the two restores read. Returns one file's bytes."""
    folder = tmp_path / "tree"
    folder.mkdir()
    for i in range(12):
        (folder / f"f{i:02d}.bin").write_bytes(os.urandom(PART))
    settings = TransferSettings(part_size=PART, multipart_threshold=PART)
    for path in sorted(folder.iterdir()):
        upload_file(driver, f"run/{path.name}", path, settings=settings)
    with tarfile.open(tmp_path / "tree.tar", "w") as archive:
        archive.add(folder, arcname="tree")
    upload_file(driver, "big", tmp_path / "tree.tar", settings=settings)
    return (folder / "f00.bin").read_bytes()


@pytest.mark.parametrize(
    "how",
    [["-r"], ["--archive", "tar"]],
    ids=["folder of objects", "archive"],
)
def test_a_killed_restore_leaves_a_staging_folder_that_the_next_run_removes(
    moto_endpoint: str, bucket, tmp_path: Path, how: list[str]
) -> None:
    name, driver, counter = bucket
    first_file = _tree(driver, tmp_path)
    source = f"s3://{name}/run/" if how == ["-r"] else f"s3://{name}/big"
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "restored"
    # what is not ours, or not this destination's, or in use, stays
    others = [
        out / ".restored.argosy-notours",
        out / ".other.argosy-abcd1234.tmp",
        out / ".restored.argosy-abcd1234.tmp.bak",
    ]
    for other in others:
        other.mkdir()
    live = out / ".restored.argosy-live0000.tmp"
    live.mkdir()
    (out / ".restored.argosy-file0000.tmp").write_bytes(b"a file, not a staging folder")
    held = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        with _slow_link(moto_endpoint) as slow:
            first = _cp(slow.url, *how, source, str(dest))
            staged = re.compile(r"\.restored\.argosy-[a-z0-9_]{8}\.tmp")

            def staging_has_bytes() -> bool:
                return any(
                    staged.fullmatch(p.name) and p.is_dir() and p != live and any(p.rglob("*.bin"))
                    for p in out.iterdir()
                )

            _kill_when(first, staging_has_bytes)
        stale = [p for p in out.iterdir() if staged.fullmatch(p.name) and p.is_dir() and p != live]
        assert len(stale) == 1 and not dest.exists()

        second = _cp(moto_endpoint, *how, source, str(dest))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        restored = dest / ("tree" if how != ["-r"] else "") / "f00.bin"
        assert restored.read_bytes() == first_file
        assert not stale[0].exists()
        assert all(other.is_dir() for other in others)
        assert live.is_dir() and (out / ".restored.argosy-file0000.tmp").is_file()
    finally:
        os.close(held)
