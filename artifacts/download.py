"""Downloads: parallel ranged GETs, pinned to one version of the object, verified.

Ranges follow the part size the object was written with, so each range can be checked
against its part's recorded CRC32C as soon as it arrives; the parts' CRCs are combined
into the whole object's and compared with the record at the end. Every range's
Content-Range and byte count are checked (a short or shifted answer never leaves a
hole). A stream that breaks half-way is re-requested from the exact byte it reached,
still pinned by If-Match, never restarted blindly.

To a file: bytes are written at their offsets into a temporary file beside the
destination, renamed into place only once everything checked out. To a stream: ranges
are fetched ahead in parallel and written in order.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from argosy.artifacts.checksum import ALGORITHM, combine_all, crc32c, to_hex
from argosy.artifacts.errors import (
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    LocalIOError,
    TransientError,
)
from argosy.artifacts.filewriter import FileWriter, aligned_buffer
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.artifacts.record import Record, read_record
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings

log = logging.getLogger("argosy.download")
Progress = Callable[[int], None]
_CHUNK = 1 << 20


def _no_progress(_: int) -> None:
    pass


@dataclass(frozen=True)
class DownloadResult:
    url: str
    size: int
    etag: str
    checksum: str  # what was computed from the bytes, "crc32c:xxxxxxxx"
    verified: bool
    note: str  # why it is unverified, when it is


def _ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]


def _plan(info: ObjectInfo, settings: TransferSettings) -> tuple[Record | None, str, int]:
    verdict = read_record(info.metadata, size=info.size)
    part_size = settings.part_size_for(info.size)
    if verdict.record and verdict.record.part_crcs and verdict.record.part_size >= _CHUNK:
        part_size = verdict.record.part_size  # aligned ranges: each is checked on arrival
    return verdict.record, verdict.reason, part_size


Sink = Callable[[int, Any, int], None]  # (offset, buffer, length)


def _fetch(driver: Driver, info: ObjectInfo, start: int, end: int, retrier: Retrier,
           sink: Sink, buffer: Any) -> int:
    """Read bytes start..end, handing `sink` full buffers (the last one may be short),
    resuming a broken stream at the byte it reached; returns the range's CRC32C."""
    view = memoryview(buffer)
    crc = 0
    position = start  # the next byte to receive
    block = start  # the offset of view[0]
    filled = 0
    attempts = 0
    while position <= end:
        stream = retrier.call(lambda: driver.read(info.key, start=position, end=end,
                                                  if_match=info.etag),
                              what=f"read {driver.url(info.key)} at {position}")
        try:
            if (stream.start, stream.end, stream.total) != (position, end, info.size):
                raise IntegrityError(
                    f"{driver.url(info.key)}: asked for bytes {position}-{end}/{info.size}, "
                    f"got {stream.start}-{stream.end}/{stream.total}")
            while position <= end:
                room = min(len(view) - filled, end - position + 1)
                n = stream.readinto(view[filled: filled + room])
                if n == 0:
                    raise TransientError(f"{driver.url(info.key)}: stream ended at byte "
                                         f"{position} of {end + 1}")
                crc = crc32c(view[filled: filled + n], crc)
                filled += n
                position += n
                if filled == len(view) or position > end:
                    sink(block, buffer, filled)
                    block, filled = position, 0
        except TransientError:
            attempts += 1
            if attempts >= retrier.policy.attempts:
                raise
            retrier.clock.sleep(retrier.backoff(attempts - 1))
        finally:
            stream.close()
    return crc


def _verify(driver: Driver, info: ObjectInfo, record: Record | None, reason: str,
            crcs: list[tuple[int, int]]) -> DownloadResult:
    whole = combine_all(crcs)
    checksum = f"{ALGORITHM}:{to_hex(whole)}"
    url = driver.url(info.key)
    if record is None:
        return DownloadResult(url, info.size, info.etag, checksum, False, reason)
    if whole != record.crc:
        raise IntegrityError(f"{url}: checksum mismatch: recorded {record.checksum}, "
                             f"downloaded bytes have {checksum}")
    return DownloadResult(url, info.size, info.etag, checksum, True, "")


def _check_part(url: str, record: Record | None, part_size: int, start: int, crc: int) -> None:
    if record and record.part_crcs and record.part_size == part_size:
        index = start // part_size
        if record.part_crcs[index] != crc:
            raise IntegrityError(f"{url}: part {index + 1} checksum mismatch: recorded "
                                 f"{to_hex(record.part_crcs[index])}, got {to_hex(crc)}")


def _temp_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.argosy-{uuid.uuid4().hex[:12]}.part")


def download_file(driver: Driver, key: str, dest: str | os.PathLike[str], *,
                  settings: TransferSettings, progress: Progress = _no_progress,
                  info: ObjectInfo | None = None) -> DownloadResult:
    retrier = Retrier(settings.retry)
    if info is None:
        info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
    record, reason, part_size = _plan(info, settings)
    target = Path(dest)
    if not target.parent.is_dir():
        raise InvalidSpec(f"destination folder {target.parent} does not exist")
    if target.is_dir():
        raise InvalidSpec(f"destination {target} is a folder")
    writer = FileWriter(_temp_path(target), info.size, target=target,
                        direct=settings.direct_io)
    buffers = threading.local()
    try:
        def sink(offset: int, buffer: Any, length: int) -> None:
            writer.write(offset, buffer, length)
            progress(length)

        def one(span: tuple[int, int]) -> int:
            if not hasattr(buffers, "block"):
                buffers.block = aligned_buffer()
            crc = _fetch(driver, info, span[0], span[1], retrier, sink, buffers.block)
            _check_part(driver.url(key), record, part_size, span[0], crc)
            return crc

        spans = _ranges(info.size, part_size)
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="argosy-get") as pool:
            futures = [pool.submit(one, span) for span in spans]
            try:
                crcs = [(f.result(), end - start + 1) for f, (start, end) in zip(futures, spans)]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        result = _verify(driver, info, record, reason, crcs)
        writer.finish(fsync=settings.fsync)
        os.replace(writer.path, target)
        return result
    except BaseException:
        writer.abort()
        raise


def iter_object(driver: Driver, key: str, *, settings: TransferSettings,
                info: ObjectInfo | None = None,
                on_done: Callable[[DownloadResult], None] | None = None) -> Iterator[bytes]:
    """The object's bytes in order, fetched ahead in parallel: at most `concurrency`
    parts of `stream_part_size` are held. Verification happens at the end: a mismatch
    raises IntegrityError after the last byte has been yielded."""
    retrier = Retrier(settings.retry)
    if info is None:
        info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
    record, reason, part_size = _plan(info, settings)
    if not (record and record.part_crcs and record.part_size == part_size) or \
            part_size > settings.stream_part_size:
        part_size = min(part_size, settings.stream_part_size)
    spans = _ranges(info.size, part_size)
    slots = threading.Semaphore(settings.concurrency)

    def one(span: tuple[int, int]) -> tuple[bytes, int]:
        buffer = bytearray(span[1] - span[0] + 1)
        chunk = bytearray(min(_CHUNK, len(buffer)) or 1)

        def sink(offset: int, block: Any, length: int) -> None:
            buffer[offset - span[0]: offset - span[0] + length] = memoryview(block)[:length]

        crc = _fetch(driver, info, span[0], span[1], retrier, sink, chunk)
        _check_part(driver.url(key), record, part_size, span[0], crc)
        return bytes(buffer), crc

    crcs: list[tuple[int, int]] = []
    with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="argosy-get") as pool:
        pending: list[Future[tuple[bytes, int]]] = []
        queue = iter(spans)
        try:
            for span in queue:
                slots.acquire()
                pending.append(pool.submit(one, span))
                if len(pending) >= settings.concurrency:
                    data, crc = pending.pop(0).result()
                    slots.release()
                    crcs.append((crc, len(data)))
                    yield data
            while pending:
                data, crc = pending.pop(0).result()
                slots.release()
                crcs.append((crc, len(data)))
                yield data
        finally:
            for future in pending:
                future.cancel()
    result = _verify(driver, info, record, reason, crcs)
    if on_done:
        on_done(result)


def download_stream(driver: Driver, key: str, out: BinaryIO, *, settings: TransferSettings,
                    progress: Progress = _no_progress) -> DownloadResult:
    results: list[DownloadResult] = []
    for data in iter_object(driver, key, settings=settings, on_done=results.append):
        try:
            out.write(data)
        except BrokenPipeError:
            raise LocalIOError("output closed before the object was written") from None
        progress(len(data))
    out.flush()
    return results[0]


__all__ = ["DownloadResult", "download_file", "download_stream", "iter_object",
           "ArtifactError"]
