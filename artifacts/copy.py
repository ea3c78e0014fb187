"""Remote to remote: one object copied between buckets (of one service or of two), moved
through memory part by part, never staged on disk.

Why not a download stream piped into a streamed upload: each side held a pool of its own
(the download's read-ahead and the upload's part buffers, each `stream_parts + 1` parts)
and every byte was copied from one into the other, so a 400 MB copy from Ceph RGW to OSS
peaked at 226 MiB of RSS where the stream formula promises 80 MiB of buffers. Here each
of `stream_parts` workers downloads one part into its buffer and uploads that part from
the same buffer: `stream_parts x part size` of data, and no copy.

Every range is pinned to the source's ETag. Each part's CRC32C is computed as it arrives
(and checked against the source's record when the source was written with the same part
size); it is also the destination part's, so the destination's record costs no second
pass. The parts' CRCs combine into the whole object's, which must match the source's
record before Complete: a source that does not match its record leaves nothing under the
destination key.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from argosy.artifacts.buffers import BufferPool
from argosy.artifacts.checksum import crc32c_combine
from argosy.artifacts.download import (
    DownloadResult,
    _check_piece,
    _fetch,
    _ignore,
    _plan,
    _Span,
    _verify,
)
from argosy.artifacts.protocol import Driver, ObjectInfo, Part
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.stall import Watchdog
from argosy.artifacts.upload import UploadResult, _MultipartSession, _put_recorded, _run_parts

Progress = Callable[[int], None]
_JITTER = random.Random()  # shared: seeding one from the OS costs ~15 us


def _no_progress(_: int) -> None:
    pass


@dataclass(frozen=True)
class CopyResult:
    upload: UploadResult  # the destination object, with its record
    source: DownloadResult  # what the source's bytes were checked against


def copy_object(
    source: Driver,
    key: str,
    target: Driver,
    target_key: str,
    *,
    settings: TransferSettings,
    metadata: Mapping[str, str] | None = None,
    progress: Progress = _no_progress,
    info: ObjectInfo | None = None,
    on_info: Callable[[ObjectInfo], None] | None = None,
    watch: Watchdog | None = None,
) -> CopyResult:
    """Copy `source`'s `key` to `target`'s `target_key`, verified on the way. `info`
    (e.g. from a listing) spares the stat of the source; `on_info` is told what the
    source is as soon as that is known (a progress bar's total). `watch`: the transfer
    this copy is part of; by default its own, shared by both sides."""
    retrier = Retrier(settings.retry, rng=_JITTER, watch=watch or settings.watchdog())
    if info is None:
        info = retrier.call(lambda: source.stat(key), what=f"stat {source.url(key)}")
    if on_info is not None:
        on_info(info)
    record, reason, _ = _plan(info, settings)
    part = settings.stream_part_size_for(info.size)
    metadata = dict(metadata or {})
    url = source.url(key)

    def fetch(number: int, view: memoryview) -> int:
        """Part `number` of the source into `view`; its CRC32C, checked where it can be."""
        start = (number - 1) * part
        crc = _fetch(source, info, _Span(start, start + len(view) - 1), retrier, _ignore, view)[0]
        _check_piece(url, record, part, start, len(view), crc)
        return crc

    if info.size < part:  # one request each way, as a streamed upload of one part
        data = bytearray(info.size)
        crc = fetch(1, memoryview(data)) if info.size else 0
        checked = _verify(source, info, record, reason, crc)
        put = _put_recorded(
            target,
            target_key,
            lambda: data,
            crc=crc,
            size=info.size,
            metadata=metadata,
            retrier=retrier,
        )
        progress(info.size)
        return CopyResult(put, checked)

    count = -(-info.size // part)
    pool = BufferPool(settings.stream_parts, part, mapped=True)  # one buffer per worker
    crcs: dict[int, int] = {}
    with _MultipartSession(
        target,
        target_key,
        retrier=retrier,
        metadata=metadata,
        part_size=part,
        progress=progress,
    ) as session:

        def one(number: int) -> Part:
            length = min(part, info.size - (number - 1) * part)
            buffer = pool.take()
            try:
                view = memoryview(buffer)[:length]
                crc = crcs[number] = fetch(number, view)
                return session.send(number, lambda: view, size=length, crc=lambda _: crc)
            finally:
                pool.give(buffer)

        parts = _run_parts(
            settings.stream_parts, [functools.partial(one, n) for n in range(1, count + 1)]
        )
        whole = 0
        for number in range(1, count + 1):
            whole = crc32c_combine(whole, crcs[number], min(part, info.size - (number - 1) * part))
        checked = _verify(source, info, record, reason, whole)  # before Complete: or nothing
        return CopyResult(session.finish(parts, concurrency=settings.concurrency), checked)
