"""Transfer settings, built once at the entry point and passed down.

Peak memory is bounded by construction, independent of the object's size (the
interpreter and SDK add about 60 MiB of their own):

    upload from a file      concurrency x 1 MiB         parts are sent as 1 MiB reads
    upload from a stream    (stream_parts + 1) x stream_part_size   a pool of part buffers
    download to a file      concurrency x 1 MiB         written at offsets as it arrives
    download to a stream    (stream_parts + 1) x stream_part_size   the same pool shape
    remote to remote        stream_parts x stream_part_size   each part downloaded into a
                                                             buffer, uploaded from it

where stream_parts = min(concurrency, stream_concurrency): 5 x 16 MiB = 80 MiB by default
(64 MiB for a remote-to-remote copy).

Child processes: none, the data path is threads in this process; but for one: an
extraction's small files are made by two file-making processes, each with an 8 MiB
ring of shared memory (`archive/makers.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.stall import Clock, Watchdog

MiB = 1 << 20
MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_PART = 5 << 30  # S3's maximum part (and single PUT)
MAX_PARTS = 10_000


@dataclass(frozen=True)
class TransferSettings:
    """part_size: bytes per multipart part and per ranged GET (64 MiB: the best of 16-128
        MiB against Ceph RGW on 2 cores in bench/; larger parts raise only stream memory).
    concurrency: parts in flight at once (8: saturates loopback RGW on 2 cores).
    multipart_threshold: objects of at most this many bytes go in one PUT.
    stream_part_size: part size when reading from or writing to a stream (16 MiB; a
        stream of unknown length can hold 10,000 of them: 156 GiB).
    stream_concurrency: parts in flight when streaming (4: streamed archives move at the
        pace of their compression, and 4 parts in flight were as fast as 8 for tar.zst and
        tar.gz against RGW here while holding 35 MiB less per 8 MiB part).
    fsync: flush a downloaded file to disk before renaming it into place (off: the
        rename is atomic; durability across power loss costs ~1 s/GB here).
    direct_io: write downloads with O_DIRECT where the filesystem allows, instead of
        through the page cache in 256 KiB writes (off: measured faster here at the same
        CPU; on, a pod's page cache does not fill with the download; see `filewriter.py`).
    file_concurrency: files moved at once by `cp -r` and `archive: none` in the pool of
        threads: every file where the driver does not batch, and the larger ones (1 MiB
        or more) where it does (32: small files are latency-bound; behind a +20 ms link a
        tree of 2,000 files went up in 3.1 s with 32 in flight against 6.4 s with 16, and
        64 gained nothing more while it raised the client's CPU on loopback; the S3
        driver keeps 32 connections).
    batch_concurrency: small files (below 1 MiB) in flight at once in a tree's batch lane,
        where the driver batches (S3 on a static route: one thread, non-blocking sockets;
        `lane.py`). 128: behind a +20 ms link 2,000 files came down in 1.3-1.4 s with
        128 against 1.9-2.0 s with 32 (timed by hand, docs/benchmarks.md, 2026-12-07);
        an exchange costs the lane no thread.
    batch_memory: bytes of small files' bodies the lane holds at once (64 MiB): with
        `batch_concurrency` this bounds it, whatever the files' sizes.
    files: at most this many files in flight at once in a tree, the pool and the lane
        together (None: the two defaults above, up to 160); for a server or proxy that
        serves only so many connections, as s5cmd's `--numworkers` and rclone's
        `--transfers`. Beside a lane the pool takes a quarter (at most
        `file_concurrency`, at least 1) and the lane the rest; 1 runs no lane.
    stall_timeout: seconds; a transfer (all its requests and their retries together: every
        part of an object, every file of a tree) with no byte acknowledged for this long
        fails, naming the endpoint and what it waited for (`stall.py`). 120: a server that
        answers nothing for two minutes is not slow but stuck, and a socket timeout alone
        was multiplied by the retries (a server that accepts requests and never answers
        held one object ~5 minutes, a tree far longer).
    deadline: seconds the whole transfer may take, progressing or not (None: no limit).
    """

    part_size: int = 64 * MiB
    concurrency: int = 8
    multipart_threshold: int = 64 * MiB
    stream_part_size: int = 16 * MiB
    stream_concurrency: int = 4
    fsync: bool = False
    direct_io: bool = False
    file_concurrency: int = 32
    batch_concurrency: int = 128
    batch_memory: int = 64 * MiB
    files: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stall_timeout: float = 120.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART or self.stream_part_size < MIN_PART:
            raise InvalidSpec(f"part size must be at least {MIN_PART // MiB} MiB")
        if max(self.part_size, self.stream_part_size, self.multipart_threshold) > MAX_PART:
            raise InvalidSpec(f"part size must be at most {MAX_PART // MiB} MiB (5 GiB)")
        counts = (
            self.concurrency,
            self.file_concurrency,
            self.stream_concurrency,
            self.batch_concurrency,
        )
        if min(counts) < 1:
            raise InvalidSpec("concurrency must be at least 1")
        if self.files is not None and self.files < 1:
            raise InvalidSpec(f"files in flight must be at least 1, not {self.files}")
        if self.batch_memory < 1:
            raise InvalidSpec(f"batch memory must be at least 1 byte, not {self.batch_memory}")
        if not self.stall_timeout > 0:
            raise InvalidSpec(
                f"the stall timeout must be a positive number of seconds, not {self.stall_timeout}"
            )
        if self.deadline is not None and not self.deadline > 0:
            raise InvalidSpec(
                f"the deadline must be a positive number of seconds, not {self.deadline}"
            )

    def watchdog(self, clock: Clock | None = None) -> Watchdog:
        """A new watch for one transfer with these settings (see `stall.py`)."""
        return Watchdog(stall_timeout=self.stall_timeout, deadline=self.deadline, clock=clock)

    @property
    def stream_parts(self) -> int:
        """Parts in flight when streaming."""
        return min(self.concurrency, self.stream_concurrency)

    def tree_pool(self, *, beside_lane: bool) -> int:
        """Threads in a tree's pool (see `files`)."""
        if self.files is None:
            return self.file_concurrency
        if not beside_lane:
            return self.files
        return max(1, min(self.file_concurrency, self.files // 4))

    @property
    def tree_lane(self) -> int:
        """Small files in flight in a tree's batch lane; 0: no lane (see `files`)."""
        if self.files is None:
            return self.batch_concurrency
        return self.files - self.tree_pool(beside_lane=True)

    def part_size_for(self, size: int) -> int:
        """The configured part size, grown if needed to stay within 10,000 parts."""
        return _within_max_parts(self.part_size, size)

    def stream_part_size_for(self, size: int) -> int:
        """The stream part size, grown if needed to stay within 10,000 parts."""
        return _within_max_parts(self.stream_part_size, size)


def _within_max_parts(part: int, size: int) -> int:
    while -(-size // part) > MAX_PARTS:
        part *= 2
    return part


def direct_io_asked(env: Mapping[str, str]) -> bool:
    """ARGOSY_DIRECT_IO=1 (or true/yes/on): write downloads with O_DIRECT, e.g. in a pod
    whose memory limit should not carry the download's page cache (CLI and sidecar)."""
    return env.get("ARGOSY_DIRECT_IO", "").strip().lower() in ("1", "true", "yes", "on")
