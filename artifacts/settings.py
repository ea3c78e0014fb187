"""Transfer settings, built once at the entry point and passed down.

Peak memory is bounded by construction, independent of the object's size (the
interpreter and SDK add about 60 MiB of their own):

    upload from a file      concurrency x 1 MiB         parts are sent as 1 MiB reads
    upload from a stream    concurrency x part_size     a part is whole before it is sent
    download to a file      concurrency x 1 MiB         written at offsets as it arrives
    download to a stream    concurrency x part_size     parts wait for their turn

Child processes: none; the data path is threads in this process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.retry import RetryPolicy

MiB = 1 << 20
MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000


@dataclass(frozen=True)
class TransferSettings:
    """part_size: bytes per multipart part and per ranged GET (64 MiB: the best of 16-128
        MiB against Ceph RGW on 2 cores in bench/; larger parts raise only stream memory).
    concurrency: parts in flight at once (8: saturates loopback RGW on 2 cores).
    multipart_threshold: objects of at most this many bytes go in one PUT.
    stream_part_size: part size when reading from or writing to a stream; it bounds
        memory as concurrency x stream_part_size (16 MiB: 128 MiB at concurrency 8).
    fsync: flush a downloaded file to disk before renaming it into place (off: the
        rename is atomic; durability across power loss costs ~1 s/GB here).
    direct_io: write downloads with O_DIRECT where the filesystem allows (see
        `filewriter.py`): less CPU, and no page cache charged to the pod.
    file_concurrency: files moved at once by `cp -r` (small files are latency-bound).
    """

    part_size: int = 64 * MiB
    concurrency: int = 8
    multipart_threshold: int = 64 * MiB
    stream_part_size: int = 16 * MiB
    fsync: bool = False
    direct_io: bool = True
    file_concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART or self.stream_part_size < MIN_PART:
            raise InvalidSpec(f"part size must be at least {MIN_PART // MiB} MiB")
        if self.concurrency < 1 or self.file_concurrency < 1:
            raise InvalidSpec("concurrency must be at least 1")

    def part_size_for(self, size: int) -> int:
        """The configured part size, grown if needed to stay within 10,000 parts."""
        part = self.part_size
        while -(-size // part) > MAX_PARTS:
            part *= 2
        return part
