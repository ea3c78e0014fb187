"""Bytes from storage to the client, verified as they go, in memory the budget bounds.

A full GET with room in the budget runs the engine's `iter_object` (parts fetched ahead
in parallel, each checked against its recorded CRC32C when the ranges line up, the whole
object's CRC checked at the end); with one part, the object is read sequentially in one
ranged GET. A Range is read sequentially too, each recorded part it fully covers checked
(`X-Argosy-Verified: partial` says when some bytes sent are covered by no check).

Once headers are sent, a failure can no longer be told with a status: a checksum
mismatch or a broken upstream aborts the connection, so the client sees a short body,
never a 200 with an error appended. A client that leaves stops the upstream read: the
blocking reader runs in a worker thread one chunk at a time, and is closed as soon as
the write fails.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from argosy.artifacts.checksum import ALGORITHM, crc32c, to_hex
from argosy.artifacts.download import iter_object
from argosy.artifacts.errors import IntegrityError, TransientError
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.artifacts.record import Record, read_record
from argosy.artifacts.settings import TransferSettings
from argosy.server.settings import CHUNK

T = TypeVar("T")
Write = Callable[[bytes], Awaitable[None]]


class Budget:
    """Part buffers shared by every stream; a lease never waits and never gets less than
    one part (see the formula in `settings.py`)."""

    def __init__(self, total_parts: int) -> None:
        self.total = total_parts
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    def lease(self, want: int) -> Lease:
        with self._lock:
            parts = max(1, min(want, self.total - self.used))
            self.used += parts
            self.peak = max(self.peak, self.used)
        return Lease(self, parts)

    def _give(self, parts: int) -> None:
        with self._lock:
            self.used -= parts


@dataclass
class Lease:
    budget: Budget
    parts: int
    _returned: bool = False

    def release(self) -> None:
        if not self._returned:
            self._returned = True
            self.budget._give(self.parts)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def record_of(info: ObjectInfo) -> Record | None:
    return read_record(info.metadata, size=info.size).record


def checksum_header(record: Record | None) -> str | None:
    return record.checksum if record is not None else None


def covered(record: Record | None, start: int, end: int, size: int) -> bool:
    """Whether every byte of start..end falls in a check: the whole object's, or the
    recorded parts the range fully covers."""
    if record is None:
        return False
    if start == 0 and end == size - 1:
        return True
    if not record.part_crcs or not record.part_size:
        return False
    step = record.part_size
    return start % step == 0 and (end + 1 == size or (end + 1) % step == 0)


def read_span(driver: Driver, info: ObjectInfo, start: int, end: int) -> Iterator[bytes]:
    """Bytes start..end (inclusive) in one ranged GET pinned to the ETag, in chunks of at
    most CHUNK; every recorded part fully inside is checked, and the whole object's CRC
    when the span is the whole object. Each chunk is its own bytes."""
    record = record_of(info)
    url = driver.url(info.key)
    whole = start == 0 and end == info.size - 1 and record is not None
    step = record.part_size if record and record.part_crcs and record.part_size else 0
    stream = driver.read(info.key, start=start, end=end, if_match=info.etag)
    try:
        if (stream.start, stream.end, stream.total) != (start, end, info.size):
            raise IntegrityError(
                f"{url}: asked for bytes {start}-{end}/{info.size}, "
                f"got {stream.start}-{stream.end}/{stream.total}"
            )
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        position, part_crc, whole_crc = start, 0, 0
        while position <= end:
            boundary = (position // step + 1) * step if step else end + 1
            room = min(CHUNK, end + 1 - position, boundary - position)
            n = stream.readinto(view[:room])
            if n == 0:
                raise TransientError(f"{url}: stream ended at byte {position} of {end + 1}")
            data = bytes(view[:n])
            if step:
                part_crc = crc32c(data, part_crc)
            if whole:
                whole_crc = crc32c(data, whole_crc)
            position += n
            if step and (position == boundary or position == info.size):
                index = (position - 1) // step
                began = index * step
                crcs = record.part_crcs if record is not None else None
                if began >= start and crcs and index < len(crcs):
                    if crcs[index] != part_crc:
                        raise IntegrityError(
                            f"{url}: part {index + 1} checksum mismatch: recorded "
                            f"{to_hex(crcs[index])}, got {to_hex(part_crc)}"
                        )
                part_crc = 0
            yield data
        if whole and record is not None and whole_crc != record.crc:
            raise IntegrityError(
                f"{url}: checksum mismatch: recorded {record.checksum}, "
                f"sent bytes have {ALGORITHM}:{to_hex(whole_crc)}"
            )
    finally:
        stream.close()


def read_whole(
    driver: Driver, info: ObjectInfo, *, lease: Lease, part_size: int, base: TransferSettings
) -> Iterator[bytes]:
    """The whole object, verified: parallel ranges when the lease allows, else one GET."""
    if info.size == 0 or lease.parts < 2:
        if info.size == 0:
            return iter(())
        return read_span(driver, info, 0, info.size - 1)
    ahead = lease.parts - 1
    settings = replace(
        base, stream_part_size=part_size, stream_concurrency=ahead, concurrency=max(ahead, 1)
    )
    return iter_object(driver, info.key, settings=settings, info=info)


class Pump:
    """A blocking iterator driven from the event loop one item at a time in a worker
    thread; `close()` waits for the item being fetched before closing the iterator, so
    a client that leaves stops the upstream at once, without racing the worker."""

    def __init__(self, source: Iterator[T]) -> None:
        self.source = source
        self._running: asyncio.Future[Any] | None = None

    async def next(self) -> Any:
        loop = asyncio.get_running_loop()
        self._running = loop.run_in_executor(None, functools.partial(next, self.source, None))
        try:
            return await asyncio.shield(self._running)
        finally:
            if self._running.done():
                self._running = None

    async def close(self) -> None:
        running = self._running
        if running is not None:
            try:
                await asyncio.shield(running)
            except BaseException:  # noqa: BLE001 - the failure is the one being unwound
                pass
        close = getattr(self.source, "close", None)
        if close is not None:
            await asyncio.get_running_loop().run_in_executor(None, close)


async def pump(source: Iterator[Any], write: Write, *, sent: Callable[[int], None]) -> None:
    """Every chunk of `source` to `write`, 1 MiB copies at a time (a chunk's buffer may
    be reused once the next is asked for, and the transport may keep what it is given).
    The last piece is held back until the source ends: a whole-object check fails only
    after the last byte was read, and the client must not have all of it by then."""
    feed = Pump(source)
    held: bytes | None = None
    try:
        while True:
            chunk = await feed.next()
            if chunk is None:
                break
            view = memoryview(chunk)
            for at in range(0, len(view), CHUNK):
                if held is not None:
                    await write(held)
                    sent(len(held))
                held = bytes(view[at : at + CHUNK])
        if held is not None:
            await write(held)
            sent(len(held))
    finally:
        await feed.close()
