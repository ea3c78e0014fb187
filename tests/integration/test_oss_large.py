"""Large OSS uploads at full size: a 2 GiB file goes to the OSS test server through the
CLI as a user runs it, in parallel parts (the server records several UploadPart requests in
flight at once), survives a SIGKILL midway by sending only the parts it is missing, and
comes back byte for byte.

The other OSS tests use ~200 MiB; this one keeps the full 2 GiB. Its files are written
where a disk has room for them (pytest's tmp_path when it can), never held in memory:
bytes are generated, hashed and compared in fixed-size blocks. It prints how its wall time
splits between phases (see it with ``pytest -rP`` or ``-s``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import crc32c
import pytest

from argosy.artifacts.drivers.oss import OssDriver
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.upload import COPY_PART
from argosy.testing.oss.crc import crc64
from argosy.testing.oss.server import OssTestServer
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, unique_bucket

MiB, GiB = 1 << 20, 1 << 30
SIZE = 2 * GiB  # the full size: do not shrink
PART_SIZE = TransferSettings().part_size_for(SIZE)  # what `argosy cp` uses unless told
PARTS = -(-SIZE // PART_SIZE)
CONCURRENCY = TransferSettings().concurrency
KILL_AFTER = PARTS // 4  # checkpointed parts before the SIGKILL: some, far from all
BLOCK = 8 * MiB  # generation and hashing move this much at a time
BLOCKS_AHEAD = 4  # os.urandom blocks generated ahead of the writer (it releases the GIL)
# Peak disk: the source, the server's copy of the parts while it assembles the object (or
# the object while the download lands), the object itself, plus slack.
DISK_NEEDED = 3 * SIZE + GiB


@dataclass(frozen=True)
class Digests:
    crc64: int  # OSS's x-oss-hash-crc64ecma
    crc32c: int  # what Argosy records
    sha256: str  # the independent comparison of the download


def _cpu_seconds() -> float:
    """CPU time of this process (the test and the in-process server) and its waited-for
    children (the CLI runs): beside the wall time, it tells a busy machine from slow code."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Stopwatch:
    """Wall and CPU time per phase, printed at teardown so a slow run says where the time
    went."""

    def __init__(self) -> None:
        self.phases: dict[str, tuple[float, float]] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        wall, cpu = time.monotonic(), _cpu_seconds()
        try:
            yield
        finally:
            self.phases[name] = (time.monotonic() - wall, _cpu_seconds() - cpu)

    def summary(self) -> str:
        parts = ", ".join(
            f"{name} {wall:.1f} s (cpu {cpu:.1f} s)" for name, (wall, cpu) in self.phases.items()
        )
        total = sum(wall for wall, _ in self.phases.values())
        return f"{SIZE // GiB} GiB over OSS: {parts}; total {total:.1f} s"


def _roomy_folder(tmp_path: Path) -> Path:
    """The first candidate with room for the test's files; a clear failure if none has."""
    candidates = [tmp_path, Path("/var/tmp"), Path.home()]
    free: list[str] = []
    for candidate in candidates:
        try:
            available = shutil.disk_usage(candidate).free
        except OSError as error:
            free.append(f"{candidate}: {error}")
            continue
        if available >= DISK_NEEDED:
            return candidate
        free.append(f"{candidate}: {available / GiB:.1f} GiB free")
    pytest.fail(
        f"the {SIZE // GiB} GiB OSS test needs {DISK_NEEDED / GiB:.0f} GiB free on one "
        f"disk and none has it ({'; '.join(free)}); run pytest with --basetemp on a "
        "disk with room",
        pytrace=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder with room for 2 GiB several times over, removed afterwards (pytest keeps
    its last tmp_paths, and gigabytes there would outlive the test)."""
    folder = Path(tempfile.mkdtemp(prefix="argosy-oss-large-", dir=_roomy_folder(tmp_path)))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    yield watch
    print(watch.summary())


def _write_random_file(path: Path, size: int) -> Digests:
    """Write `size` random bytes, hashing them on the way; at most BLOCKS_AHEAD + 1 blocks
    are in memory at once."""
    sizes = (min(BLOCK, size - offset) for offset in range(0, size, BLOCK))
    crc, castagnoli, sha = 0, 0, hashlib.sha256()
    with ThreadPoolExecutor(max_workers=1) as pool, open(path, "wb") as out:
        pending: deque[Future[bytes]] = deque(
            pool.submit(os.urandom, n) for n in itertools.islice(sizes, BLOCKS_AHEAD)
        )
        while pending:
            block = pending.popleft().result()
            pending.extend(pool.submit(os.urandom, n) for n in itertools.islice(sizes, 1))
            out.write(block)
            crc = crc64(block, crc)
            castagnoli = crc32c.crc32c(block, castagnoli)
            sha.update(block)
    return Digests(crc, castagnoli, sha.hexdigest())


def _sha256_of(path: Path) -> str:
    sha, buffer = hashlib.sha256(), bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as source:
        while n := source.readinto(buffer):
            sha.update(view[:n])
    return sha.hexdigest()


def _checkpointed(folder: Path) -> set[int]:
    """Part numbers the upload's on-disk checkpoint holds (none before it exists)."""
    files = list(folder.glob("*.json"))
    return {int(n) for n in json.loads(files[0].read_text())["parts"]} if files else set()


def _user_env(server: OssTestServer, home: Path) -> dict[str, str]:
    """The environment of a user with OSS credentials and nothing else of Argosy's set:
    checkpoints go to the default place under HOME."""
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "ARGOSY_", "XDG_"))
    }
    return {
        **keep,
        "HOME": str(home),
        "OSS_ENDPOINT": server.endpoint,
        "OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY,
        "OSS_ACCESS_KEY_SECRET": OSS_SECRET,
    }


def _cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "argosy", *args]


def test_a_2_gib_upload_goes_in_parallel_parts_resumes_after_a_kill_and_downloads_intact(
    workdir: Path, stopwatch: Stopwatch
) -> None:
    bucket, key = unique_bucket(), "runs/large/2gib.bin"
    url = f"oss://{bucket}/{key}"
    source = workdir / "2gib.bin"
    checkpoints = workdir / ".cache" / "argosy" / "uploads"
    with stopwatch.phase("generate and hash"):
        digests = _write_random_file(source, SIZE)

    with OssTestServer(workdir / "oss", {OSS_ACCESS_KEY: OSS_SECRET}, buckets=[bucket]) as server:
        env = _user_env(server, workdir)
        upload = _cli_command("cp", str(source), url)

        with stopwatch.phase("upload until killed"), open(workdir / "first.err", "wb") as first_err:
            first = subprocess.Popen(upload, env=env, cwd=workdir, stderr=first_err)
            deadline = time.monotonic() + 240
            while (
                len(_checkpointed(checkpoints)) < KILL_AFTER
                and first.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            exited = first.poll()
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert exited is None, (
            f"the first upload exited ({exited}) before it could be killed: "
            f"{(workdir / 'first.err').read_text()}"
        )
        kept = _checkpointed(checkpoints)
        assert KILL_AFTER <= len(kept) < PARTS

        # parts the killed process had in flight end at the server only now
        assert server.stats.wait_for(lambda stats: stats.in_flight == 0, timeout=30)
        first_sent = server.stats.operations["UploadPart"]
        most_at_once = server.stats.max_concurrent_upload_parts
        (left,) = server.store.iter_uploads(bucket)
        on_server = set(left.parts)
        assert kept <= on_server and len(on_server) < PARTS
        assert 2 <= most_at_once <= CONCURRENCY

        with stopwatch.phase("resumed upload"):
            second = subprocess.run(
                upload, env=env, cwd=workdir, capture_output=True, text=True, timeout=600
            )
        assert second.returncode == 0, second.stderr
        second_sent = server.stats.operations["UploadPart"] - first_sent
        print(
            f"{PARTS} parts of {PART_SIZE // MiB} MiB; first run: {first_sent} UploadPart "
            f"sent, {len(kept)} checkpointed, {len(on_server)} on the server, at most "
            f"{most_at_once} at once; resumed run: {second_sent} sent"
        )
        assert second_sent == PARTS - len(kept)
        assert first_sent + second_sent < 2 * PARTS
        assert f"resumed: {len(kept)} of {PARTS} parts" in second.stderr
        assert list(server.store.iter_uploads(bucket)) == []
        assert list(checkpoints.glob("*.json")) == []

        stored = server.store.head(bucket, key)
        assert (stored.size, stored.crc64) == (SIZE, digests.crc64)
        # past OSS's 1 GB CopyObject limit the record was written by copying the object onto
        # itself part by part on the server: the ETag counts the copied parts, not the sent
        copied = -(-SIZE // min(OssDriver.copy_limit, COPY_PART))
        assert stored.etag.endswith(f"-{copied}")
        assert server.stats.operations["UploadPartCopy"] == copied
        assert server.stats.operations["CopyObject"] == 0
        record = oss_driver(server.endpoint, bucket, create=False).stat(key).metadata
        assert record["argosy-checksum"] == f"crc32c:{digests.crc32c:08x}"

        with stopwatch.phase("download"):
            back = subprocess.run(
                _cli_command("cp", url, "back.bin"),
                env=env,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=600,
            )
        assert back.returncode == 0, back.stderr
        assert f"verified crc32c:{digests.crc32c:08x}" in back.stderr
    with stopwatch.phase("hash the download"):
        assert (workdir / "back.bin").stat().st_size == SIZE
        assert _sha256_of(workdir / "back.bin") == digests.sha256
