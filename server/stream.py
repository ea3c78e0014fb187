"""Bytes from storage to the client, verified as they go, in memory the budget bounds.

A full GET with room in the budget is read by the storage core's streamed download
(`iter_object`): parts fetched ahead in parallel, each straight into a part buffer of
the shared budget with its CRC32C computed by the thread that reads it (checked against
the recorded part when the ranges line up), the whole object's CRC combined from the
parts and checked before the last piece goes out. With one part, the object is read
sequentially in one ranged GET, 1 MiB at a time into one buffer. A Range is read that
way too, each recorded part it fully covers checked (`X-Argosy-Verified: partial` says
when some bytes sent are covered by no check).

Buffers are reused, never copied for the socket: `pump` hands the response views of
them in pieces of 1 MiB and asks for the next chunk only once the transport holds none
of the last one (its write buffer is drained to empty), and only the held-back tail of a
stream is copied.

Once headers are sent, a failure can no longer be told with a status: a checksum
mismatch or a broken upstream aborts the connection, so the client sees a short body,
never a 200 with an error appended. A client that leaves stops the upstream reads: the
blocking readers run in worker threads and check a stop flag between pieces of 256 KiB,
which is set as soon as a write fails; a GET left unfinished drops its connection.
"""

from __future__ import annotations

import asyncio
import functools
import mmap
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from argosy.artifacts.buffers import PartBuffer
from argosy.artifacts.checksum import ALGORITHM, crc32c, to_hex
from argosy.artifacts.download import iter_object
from argosy.artifacts.errors import IntegrityError, TransientError
from argosy.artifacts.protocol import Driver, ObjectInfo, ReadStream
from argosy.artifacts.record import Record, read_record
from argosy.artifacts.settings import TransferSettings
from argosy.server.settings import CHUNK, READ

T = TypeVar("T")
Write = Callable[[bytes | memoryview], Awaitable[None]]


class Budget:
    """Part buffers shared by every stream, in `Window`s: each stream always gets one
    part at once (it never waits), and takes extra parts for read-ahead only from free
    ones. A stream that arrives when every part is taken revokes one extra part from the
    window holding the most, which drops that part's fetch at its next part boundary. So
    the parts held never exceed max(total, streams in flight), and each stream holds at
    least one (the formula in `settings.py`)."""

    def __init__(self, total_parts: int, part_size: int = 8 << 20) -> None:
        self.total = total_parts
        self.part_size = part_size
        self.used = 0
        self.peak = 0  # the most parts ever held at once
        self.peak_streams = 0  # the most windows ever open at once
        self.revoked = 0  # extra parts taken back for arriving streams
        self._windows: set[Window] = set()
        self._lock = threading.Lock()
        # part buffers no stream holds, reused by the next (anonymous maps: glibc never
        # sees them, so no arena keeps freed parts), at most `total`, dropped when idle
        self._free: list[PartBuffer] = []
        self.buffers_made = 0  # maps ever made (a flat figure: buffers are reused)

    def take(self) -> PartBuffer:
        """A part buffer of `part_size` bytes: a free one, else a new one."""
        with self._lock:
            if self._free:
                return self._free.pop()
            self.buffers_made += 1
        return mmap.mmap(-1, self.part_size)

    def give(self, buffer: PartBuffer) -> None:
        """A buffer back, once no view of it is written anywhere: kept for the next
        fetch while the budget has parts no stream holds (so a part taken back from a
        stream is unmapped, not kept), else unmapped at once."""
        with self._lock:
            if len(self._free) < self.total - self.used:
                self._free.append(buffer)
                return
        _unmap(buffer)

    @property
    def buffers_free(self) -> int:
        return len(self._free)

    def lease(self, want: int) -> Window:
        """A window of one part, and up to `want - 1` extra parts if they are free."""
        with self._lock:
            if self.used >= self.total:
                victim = max(self._windows, key=lambda w: w.extras, default=None)
                if victim is not None and victim.extras > 0:
                    victim.extras -= 1
                    self.used -= 1
                    self.revoked += 1
            window = Window(self, max(0, want - 1))
            window.extras = max(0, min(window.limit, self.total - self.used - 1))
            self.used += 1 + window.extras
            self._windows.add(window)
            self.peak = max(self.peak, self.used)
            self.peak_streams = max(self.peak_streams, len(self._windows))
        return window

    def grow(self, window: Window) -> bool:
        """One more extra part for `window`, if one is free."""
        with self._lock:
            if window.closed or window.extras >= window.limit or self.used >= self.total:
                return False
            window.extras += 1
            self.used += 1
            self.peak = max(self.peak, self.used)
            return True

    def shrink(self, window: Window, keep: int) -> None:
        """Give back the extras of `window` beyond `keep` parts in all."""
        with self._lock:
            give = max(0, min(window.extras, 1 + window.extras - max(1, keep)))
            window.extras -= give
            self.used -= give

    def _close(self, window: Window) -> None:
        idle: list[PartBuffer] = []
        with self._lock:
            if not window.closed:
                window.closed = True
                self.used -= 1 + window.extras
                window.extras = 0
                self._windows.discard(window)
            if not self._windows:  # nothing in flight: the memory goes back
                idle, self._free = self._free, []
        for buffer in idle:
            _unmap(buffer)


def _unmap(buffer: PartBuffer) -> None:
    if isinstance(buffer, mmap.mmap):
        try:
            buffer.close()
        except BufferError:
            pass  # a view of it lives on somewhere: unmapped when the last one goes


class Window:
    """One stream's parts: one always, `extras` more for read-ahead (at most `limit`).
    It is the storage core's `PartWindow` for `iter_object`: part buffers come from the
    budget, and the parts fetched ahead are its extras, grown while parts are free and
    given back when the object has fewer parts left to fetch."""

    def __init__(self, budget: Budget, limit: int) -> None:
        self.budget = budget
        self.limit = limit
        self.extras = 0
        self.closed = False

    @property
    def size(self) -> int:
        return self.budget.part_size

    @property
    def most(self) -> int:
        return self.limit

    def take(self) -> PartBuffer:
        return self.budget.take()

    def give(self, buffer: PartBuffer) -> None:
        self.budget.give(buffer)

    def ahead(self, wanted: int) -> int:
        keep = min(wanted, self.limit)
        while self.extras < keep and self.budget.grow(self):
            pass
        if self.extras > keep:
            self.budget.shrink(self, keep + 1)
        return self.extras

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    @property
    def parts(self) -> int:
        return 1 + self.extras

    def release(self) -> None:
        self.budget._close(self)

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


Lease = Window


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


class Stopped(Exception):
    """The stream was stopped (its client left): not a storage failure."""


def read_span(
    driver: Driver,
    info: ObjectInfo,
    start: int,
    end: int,
    *,
    stop: threading.Event | None = None,
    chunk: int = CHUNK,
    into: PartBuffer | None = None,
) -> Iterator[bytes]:
    """Bytes start..end (inclusive) in one ranged GET pinned to the ETag, in chunks of at
    most `chunk`; every recorded part fully inside is checked, and the whole object's CRC
    when the span is the whole object. Each chunk is its own bytes; with `into`, a view
    of that buffer instead (at most its size), valid until the next chunk is asked for.
    Once `stop` is set, the next chunk raises Stopped and the GET's connection is
    dropped."""
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
        if into is not None:
            chunk = min(chunk, len(into))
        view = memoryview(into if into is not None else bytearray(chunk))
        position, part_crc, whole_crc = start, 0, 0
        while position <= end:
            if stop is not None and stop.is_set():
                raise Stopped(url)
            boundary = (position // step + 1) * step if step else end + 1
            room = min(chunk, end + 1 - position, boundary - position)
            n = stream.readinto(view[:room])
            if n == 0:
                raise TransientError(f"{url}: stream ended at byte {position} of {end + 1}")
            data = view[:n] if into is not None else bytes(view[:n])
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
            yield cast(bytes, data)
        if whole and record is not None and whole_crc != record.crc:
            raise IntegrityError(
                f"{url}: checksum mismatch: recorded {record.checksum}, "
                f"sent bytes have {ALGORITHM}:{to_hex(whole_crc)}"
            )
    finally:
        stream.close()


class Source:
    """An iterator of chunks that another thread can stop (`stop()`): what `pump` sends."""

    def __init__(self, chunks: Iterator[bytes], stop: threading.Event) -> None:
        self._chunks = chunks
        self._stop = stop

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def span_source(driver: Driver, info: ObjectInfo, start: int, end: int) -> Source:
    """Bytes start..end in one verified, stoppable ranged GET, read `READ` bytes at a
    time into one buffer of the stream's own."""
    stop = threading.Event()
    return Source(_own_buffer(driver, info, start, end, stop), stop)


def _own_buffer(
    driver: Driver, info: ObjectInfo, start: int, end: int, stop: threading.Event
) -> Iterator[bytes]:
    buffer = mmap.mmap(-1, min(READ, max(1, end - start + 1)))
    try:
        yield from read_span(driver, info, start, end, stop=stop, chunk=READ, into=buffer)
    finally:
        _unmap(buffer)


PIECE = 256 << 10  # a part's fetch checks for a stop between pieces this size


class _StoppableStream:
    """A ranged read that gives up at its next piece once `stop` is set."""

    def __init__(self, stream: ReadStream, stop: threading.Event, url: str) -> None:
        self._stream, self._stop, self._url = stream, stop, url
        self.start, self.end, self.total = stream.start, stream.end, stream.total
        self.etag = stream.etag

    def readinto(self, buffer: memoryview) -> int:
        if self._stop.is_set():
            raise Stopped(self._url)
        return int(self._stream.readinto(buffer[:PIECE]))

    def close(self) -> None:
        self._stream.close()


class _Stoppable:
    """`driver`, whose reads stop at their next piece once `stop` is set (a read left
    unfinished drops its connection)."""

    def __init__(self, driver: Driver, stop: threading.Event) -> None:
        self._driver, self._stop = driver, stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        url = self._driver.url(key)
        if self._stop.is_set():
            raise Stopped(url)
        stream = self._driver.read(key, start=start, end=end, if_match=if_match)
        return _StoppableStream(stream, self._stop, url)


def read_whole(
    driver: Driver, info: ObjectInfo, *, window: Window, settings: TransferSettings
) -> Source:
    """The whole object, verified: with extra parts in its window, by the storage core's
    streamed download, parts of the budget's part size (the recorded parts' size when
    it is no larger, so each is checked as it arrives) fetched ahead in parallel into
    the budget's buffers, as many as the window holds; else one sequential GET. The
    whole object's CRC is checked before the stream's last piece is handed over."""
    stop = threading.Event()
    if info.size == 0:
        return Source(iter(()), stop)
    if window.extras == 0:
        return Source(_own_buffer(driver, info, 0, info.size - 1, stop), stop)
    stoppable = cast(Driver, _Stoppable(driver, stop))
    chunks = iter_object(stoppable, info.key, settings=settings, info=info, window=window)
    return Source(chunks, stop)


class Pump:
    """A blocking iterator driven from the event loop one item at a time in a worker
    thread; `close()` waits for the item being fetched before closing the iterator, so
    a client that leaves stops the upstream at once, without racing the worker."""

    def __init__(self, source: Iterator[T]) -> None:
        self.source = source
        self._running: asyncio.Future[Any] | None = None

    async def next(self, alive: Callable[[], bool] | None = None) -> Any:
        """The next item; ConnectionResetError as soon as `alive()` says the client
        left while the item was being fetched (checked ten times a second)."""
        loop = asyncio.get_running_loop()
        self._running = loop.run_in_executor(None, functools.partial(next, self.source, None))
        try:
            while alive is not None:
                done, _ = await asyncio.wait([self._running], timeout=0.1)
                if done:
                    break
                if not alive():
                    raise ConnectionResetError("the client left")
            return await asyncio.shield(self._running)
        finally:
            if self._running.done():
                self._running = None

    async def close(self) -> None:
        stop = getattr(self.source, "stop", None)
        if stop is not None:
            stop()  # a fetch under way gives up at its next piece
        running = self._running
        if running is not None:
            try:
                await asyncio.shield(running)
            except BaseException:  # noqa: BLE001 - the failure is the one being unwound
                pass
        close = getattr(self.source, "close", None)
        if close is not None:
            await asyncio.get_running_loop().run_in_executor(None, close)


async def pump(
    source: Iterator[Any],
    write: Write,
    *,
    sent: Callable[[int], None],
    alive: Callable[[], bool] | None = None,
    size: int | None = None,
) -> None:
    """Every chunk of `source` to `write`. A chunk may be a view of a buffer the source
    reuses once the next chunk is asked for: `write` must return only when nothing of
    what it was given is held any more (see `respond.Out`), and the next chunk is asked
    for only then. The end of the stream (its last CHUNK bytes) is held back, copied,
    until the source ends: a whole-object check fails only after the last byte was
    read, and the client must not have all of it by then. `size`: the bytes the source
    yields, when known, so only the final chunk is cut; otherwise every chunk's tail
    waits for the next one."""
    feed = Pump(source)
    held: bytes | None = None
    done = 0
    try:
        while True:
            chunk = await feed.next(alive)
            if chunk is None:
                break
            if held is not None:
                await write(held)
                sent(len(held))
                held = None
            length = len(chunk)
            done += length
            if size is not None and done < size:
                await write(chunk)
                sent(length)
                continue
            # possibly the last chunk: its tail waits, as its own bytes
            cut = max(0, length - CHUNK)
            view = memoryview(chunk)
            if cut:
                await write(view[:cut])
                sent(cut)
            held = chunk if type(chunk) is bytes and not cut else bytes(view[cut:])
            del view
        if held is not None:
            await write(held)
            sent(len(held))
    finally:
        await feed.close()
