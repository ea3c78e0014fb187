"""Bytes from storage to the client, verified as they go, in memory the budget bounds.

A full GET with room in the budget fetches parts ahead in parallel, as many as its
window of the budget holds (each part checked against its recorded CRC32C when the
ranges line up, the whole object's CRC checked before the last piece goes out); with one
part, the object is read sequentially in one ranged GET. A Range is read sequentially
too, each recorded part it fully covers checked (`X-Argosy-Verified: partial` says when
some bytes sent are covered by no check).

Once headers are sent, a failure can no longer be told with a status: a checksum
mismatch or a broken upstream aborts the connection, so the client sees a short body,
never a 200 with an error appended. A client that leaves stops the upstream reads: the
blocking readers run in worker threads and check a stop flag between pieces of 256 KiB,
which is set as soon as a write fails; a GET left unfinished drops its connection.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from argosy.artifacts.checksum import ALGORITHM, crc32c, to_hex
from argosy.artifacts.errors import IntegrityError, TransientError
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.artifacts.record import Record, read_record
from argosy.server.settings import CHUNK

T = TypeVar("T")
Write = Callable[[bytes], Awaitable[None]]


class Budget:
    """Part buffers shared by every stream, in `Window`s: each stream always gets one
    part at once (it never waits), and takes extra parts for read-ahead only from free
    ones. A stream that arrives when every part is taken revokes one extra part from the
    window holding the most, which drops that part's fetch at its next part boundary. So
    the parts held never exceed max(total, streams in flight), and each stream holds at
    least one (the formula in `settings.py`)."""

    def __init__(self, total_parts: int) -> None:
        self.total = total_parts
        self.used = 0
        self.peak = 0  # the most parts ever held at once
        self.peak_streams = 0  # the most windows ever open at once
        self.revoked = 0  # extra parts taken back for arriving streams
        self._windows: set[Window] = set()
        self._lock = threading.Lock()

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
        with self._lock:
            if not window.closed:
                window.closed = True
                self.used -= 1 + window.extras
                window.extras = 0
                self._windows.discard(window)


class Window:
    """One stream's parts: one always, `extras` more for read-ahead (at most `limit`)."""

    def __init__(self, budget: Budget, limit: int) -> None:
        self.budget = budget
        self.limit = limit
        self.extras = 0
        self.closed = False

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
) -> Iterator[bytes]:
    """Bytes start..end (inclusive) in one ranged GET pinned to the ETag, in chunks of at
    most `chunk`; every recorded part fully inside is checked, and the whole object's CRC
    when the span is the whole object. Each chunk is its own bytes. Once `stop` is set,
    the next chunk raises Stopped and the GET's connection is dropped."""
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
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        position, part_crc, whole_crc = start, 0, 0
        while position <= end:
            if stop is not None and stop.is_set():
                raise Stopped(url)
            boundary = (position // step + 1) * step if step else end + 1
            room = min(chunk, end + 1 - position, boundary - position)
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
    """Bytes start..end in one verified, stoppable ranged GET."""
    stop = threading.Event()
    return Source(read_span(driver, info, start, end, stop=stop), stop)


PIECE = 256 << 10  # a part's fetch checks for a stop between pieces this size
ATTEMPTS = 3  # a part's fetch is tried this often before the stream aborts


def read_whole(driver: Driver, info: ObjectInfo, *, window: Window, part_size: int) -> Source:
    """The whole object, verified: with extra parts in its window, parts of `part_size`
    (the recorded parts' size when it is no larger, so each is checked as it arrives)
    are fetched ahead in parallel, as many as the window holds; else one sequential GET.
    The whole object's CRC is checked before the last piece is handed over."""
    stop = threading.Event()
    if info.size == 0:
        return Source(iter(()), stop)
    if window.extras == 0:
        return Source(read_span(driver, info, 0, info.size - 1, stop=stop), stop)
    record = record_of(info)
    if record is not None and record.part_crcs and 0 < record.part_size <= part_size:
        part_size = record.part_size
    return Source(_ahead(driver, info, window, part_size, record, stop), stop)


def _fetch(
    driver: Driver, info: ObjectInfo, start: int, end: int, stops: tuple[threading.Event, ...]
) -> list[bytes]:
    """One part, retried on a transient failure (nothing of it was sent yet)."""
    own, whole = stops
    for attempt in range(1, ATTEMPTS + 1):
        try:
            pieces = []
            for piece in read_span(driver, info, start, end, stop=own, chunk=PIECE):
                if whole.is_set():
                    raise Stopped(driver.url(info.key))
                pieces.append(piece)
            return pieces
        except (TransientError, OSError):
            if attempt == ATTEMPTS or own.is_set() or whole.is_set():
                raise
            whole.wait(0.1 * attempt)
    raise AssertionError("unreachable")


def _ahead(
    driver: Driver,
    info: ObjectInfo,
    window: Window,
    part_size: int,
    record: Record | None,
    stop: threading.Event,
) -> Iterator[bytes]:
    budget = window.budget
    spans = [(s, min(s + part_size, info.size) - 1) for s in range(0, info.size, part_size)]
    pending: deque[tuple[Future[list[bytes]], threading.Event, int]] = deque()
    workers = ThreadPoolExecutor(window.limit + 1, thread_name_prefix="argosy-part")
    following, whole_crc = 0, 0
    try:
        while following < len(spans) or pending:
            # a part revoked for another stream: drop the furthest fetch, fetch it later
            while len(pending) > window.parts:
                _, dropped, following = pending.pop()
                dropped.set()
            while following < len(spans) and (
                len(pending) < window.parts
                or (len(pending) < 1 + window.limit and budget.grow(window))
            ):
                own = threading.Event()
                start, end = spans[following]
                future = workers.submit(_fetch, driver, info, start, end, (own, stop))
                pending.append((future, own, following))
                following += 1
            future, _, _ = pending.popleft()
            pieces = future.result()
            if following == len(spans):
                budget.shrink(window, len(pending) + 1)
            for piece in pieces:
                whole_crc = crc32c(piece, whole_crc)
                yield piece
            del pieces
        if record is not None and whole_crc != record.crc:
            raise IntegrityError(
                f"{driver.url(info.key)}: checksum mismatch: recorded {record.checksum}, "
                f"sent bytes have {ALGORITHM}:{to_hex(whole_crc)}"
            )
    finally:
        stop.set()
        for _, own, _ in pending:
            own.set()
        workers.shutdown(wait=False, cancel_futures=True)


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
) -> None:
    """Every chunk of `source` to `write`, at most CHUNK at a time: a `bytes` chunk that
    small is its own (the readers here make one per piece) and goes as it is; anything
    else is copied (a buffer may be reused once the next chunk is asked for, and the
    transport may keep what it is given). The last piece is held back until the source
    ends: a whole-object check fails only after the last byte was read, and the client
    must not have all of it by then."""
    feed = Pump(source)
    held: bytes | None = None
    try:
        while True:
            chunk = await feed.next(alive)
            if chunk is None:
                break
            if type(chunk) is bytes and len(chunk) <= CHUNK:
                pieces: Iterable[bytes] = (chunk,)
            else:
                view = memoryview(chunk)
                pieces = (bytes(view[at : at + CHUNK]) for at in range(0, len(view), CHUNK))
            for piece in pieces:
                if held is not None:
                    await write(held)
                    sent(len(held))
                held = piece
        if held is not None:
            await write(held)
            sent(len(held))
    finally:
        await feed.close()
