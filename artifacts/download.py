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

A file download killed outright (SIGKILL, the OOM killer) resumes: its temporary file
is named after the destination and the object's URL and ETag
(`.NAME.argosy-XXXXXXXX.part`), so the same download finds it again, and every range
whose bytes there have their recorded part's CRC32C is kept instead of fetched (one
read of the temporary, only when there is one, in the workers alongside the ranges
being fetched). An object without part checksums, or another version of it, is fetched
afresh; the run first removes any temporary a killed download to the same destination
left that no live process holds (`leftovers.py`). A clean failure or an interrupt
removes the temporary, as it always did: no temporary outlives a run that could clean up.

A download needs the object's size, ETag and record before it can plan its ranges. It
takes them from the caller (`info`, e.g. a listing, and `expect`, e.g. a tree manifest),
else from the first ranged read of a driver that describes the object in its answer
(S3's GET carries Content-Range, ETag and metadata), else from a stat. On S3 a file
download is therefore GETs only: the first range starts at once, unpinned, and every
later range is pinned to the ETag it answered with.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import random
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from argosy.artifacts import leftovers
from argosy.artifacts.buffers import BufferPool, PartBuffer
from argosy.artifacts.checksum import ALGORITHM, crc32c, crc32c_combine, to_hex
from argosy.artifacts.errors import (
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    LocalIOError,
    TransientError,
)
from argosy.artifacts.filewriter import BLOCK, FileWriter, InUse, thread_buffer
from argosy.artifacts.protocol import DescribingDriver, Driver, ObjectInfo, ReadStream
from argosy.artifacts.record import Record, read_record
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.stall import Watchdog

log = logging.getLogger("argosy.download")
Progress = Callable[[int], None]
_CHUNK = 1 << 20
_JITTER = random.Random()  # shared: seeding one from the OS costs ~15 us, every file


def _no_progress(_: int) -> None:
    pass


def _ignore(offset: int, buffer: Any, length: int) -> None:
    pass


@dataclass(frozen=True)
class DownloadResult:
    url: str
    size: int
    etag: str
    checksum: str  # what was computed from the bytes, "crc32c:xxxxxxxx"
    verified: bool
    note: str  # why it is unverified, when it is
    resumed_parts: int = 0  # parts an interrupted download had already written
    parts: int = 0  # the ranges the object was fetched (or kept) in


def _ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]


def chosen_record(info: ObjectInfo, expect: Record | None) -> tuple[Record | None, str]:
    """The record a download of `info` is verified against, and why there is none: the
    one `expect`ed (e.g. a tree manifest's), which must be of the object's size, or
    else the object's own."""
    if expect is None:
        verdict = read_record(info.metadata, size=info.size)
        return verdict.record, verdict.reason
    if expect.size != info.size:
        raise IntegrityError(f"{info.key}: {info.size} bytes, expected {expect.size}")
    return expect, ""


def _plan(
    info: ObjectInfo, settings: TransferSettings, expect: Record | None = None
) -> tuple[Record | None, str, int]:
    record, reason = chosen_record(info, expect)
    part_size = settings.part_size_for(info.size)
    if record and record.part_crcs and record.part_size >= _CHUNK:
        part_size = record.part_size  # aligned ranges: each is checked on arrival
    return record, reason, part_size


Sink = Callable[[int, Any, int], None]  # (offset, buffer, length)


@dataclass(frozen=True)
class _Span:
    """One ranged read: bytes start..end, checksummed in pieces of `every` bytes (0: one
    piece) so a range spanning several recorded parts still checks each of them."""

    start: int
    end: int
    every: int = 0

    def pieces(self) -> list[tuple[int, int]]:
        """(offset, length) of each piece, in order."""
        step = self.every or self.end - self.start + 1
        return [(at, min(step, self.end + 1 - at)) for at in range(self.start, self.end + 1, step)]


def _fetch(
    driver: Driver,
    info: ObjectInfo,
    span: _Span,
    retrier: Retrier,
    sink: Sink,
    buffer: Any,
    *,
    opened: ReadStream | None = None,
) -> list[int]:
    """Read the span's bytes, handing `sink` full buffers (the last one may be short),
    resuming a broken stream at the byte it reached; returns each piece's CRC32C.
    `opened` is a stream already answering for the span's first byte onwards."""
    view = memoryview(buffer)
    end = span.end
    crcs: list[int] = []
    crc = 0
    position = span.start  # the next byte to receive
    cut = min(span.start + span.every, end + 1) if span.every else end + 1
    block = position  # the offset of view[0]
    filled = 0
    attempts = 0
    stream = opened
    url = driver.url(info.key)
    watch = retrier.watch
    while position <= end:
        what = f"read {url} at {position}"
        if stream is None:
            stream = retrier.call(
                functools.partial(
                    driver.read, info.key, start=position, end=end, if_match=info.etag
                ),
                what=what,
                fresh=attempts == 0 and position == span.start,
            )
        try:
            if (stream.start, stream.end, stream.total) != (position, end, info.size):
                raise IntegrityError(
                    f"{url}: asked for bytes {position}-{end}/{info.size}, "
                    f"got {stream.start}-{stream.end}/{stream.total}"
                )
            with retrier.waiting(fresh=False, what=what):
                while position <= end:
                    room = min(len(view) - filled, cut - position)
                    n = stream.readinto(view[filled : filled + room])
                    if n == 0:
                        raise TransientError(f"{url}: stream ended at byte {position} of {end + 1}")
                    if watch is not None:
                        watch.moved()
                    crc = crc32c(view[filled : filled + n], crc)
                    filled += n
                    position += n
                    if position == cut:
                        crcs.append(crc)
                        crc = 0
                        cut = min(cut + span.every, end + 1) if span.every else end + 1
                    if filled == len(view) or position > end:
                        sink(block, buffer, filled)
                        block, filled = position, 0
                        if watch is not None:  # the deadline, on drivers that cannot clamp
                            watch.check(None, what=f"read {url} at {position}")
        except TransientError as error:
            attempts += 1
            retrier.pause(error, attempts, what=what)
        finally:
            stream.close()
            stream = None
    return crcs


class _Fold:
    """The CRC of pieces appended in order, given as (crc, length), folded in as they
    arrive (a combination costs microseconds; into nothing it is the identity)."""

    def __init__(self) -> None:
        self.crc = 0

    def add(self, crc: int, length: int) -> None:
        self.crc = crc32c_combine(self.crc, crc, length)


def _verify(
    driver: Driver, info: ObjectInfo, record: Record | None, reason: str, whole: int
) -> DownloadResult:
    checksum = f"{ALGORITHM}:{to_hex(whole)}"
    url = driver.url(info.key)
    if record is None:
        return DownloadResult(url, info.size, info.etag, checksum, False, reason)
    if whole != record.crc:
        raise IntegrityError(
            f"{url}: checksum mismatch: recorded {record.checksum}, "
            f"downloaded bytes have {checksum}"
        )
    return DownloadResult(url, info.size, info.etag, checksum, True, "")


def _check_piece(
    url: str, record: Record | None, part_size: int, start: int, length: int, crc: int
) -> None:
    """Compare a piece with its recorded part, when ranges follow the recorded parts."""
    if not (record and record.part_crcs and record.part_size == part_size):
        return
    index, offset = divmod(start, part_size)
    if offset or index >= len(record.part_crcs) or length != min(part_size, record.size - start):
        return
    if record.part_crcs[index] != crc:
        raise IntegrityError(
            f"{url}: part {index + 1} checksum mismatch: recorded "
            f"{to_hex(record.part_crcs[index])}, got {to_hex(crc)}"
        )


_TEMP_NAMES = itertools.count()
_TEMP_PREFIX = os.urandom(4).hex()  # this process's; created with O_EXCL all the same


def _temp_path(dest: Path) -> Path:
    """A private temporary beside `dest`, for a download that does not resume."""
    return dest.with_name(f".{dest.name}.argosy-{_TEMP_PREFIX}{next(_TEMP_NAMES)}.part")


def _resume_path(dest: Path, url: str, etag: str) -> Path:
    """The temporary a download of this version of the object into `dest` resumes
    from. Only a name: what it holds is checked part by part against the record."""
    tag = to_hex(crc32c(f"{url}\0{etag}".encode()))
    return dest.with_name(f".{dest.name}.argosy-{tag}.part")


def _open_temp(
    target: Path, url: str, info: ObjectInfo, *, resumable: bool, resume: bool, **options: Any
) -> FileWriter:
    """The temporary file to write `info` into: with `resume`, stale ones a killed run
    left beside `target` are swept first, and a `resumable` download (the object has part
    checksums) opens the one named for this version of the object, which may hold parts
    already; otherwise, or when that one is another live process's, a private new one."""
    if not resume:
        return FileWriter(_temp_path(target), info.size, target=target, **options)
    path = _resume_path(target, url, info.etag) if resumable else _temp_path(target)
    leftovers.sweep(
        target.parent,
        leftovers.temp_file_pattern(target.name),
        folders=False,
        remove=os.unlink,
        keep=path.name,
    )
    if resumable:
        try:
            return FileWriter(path, info.size, target=target, resume=True, **options)
        except InUse as busy:
            log.info("%s: downloading into a private temporary file instead", busy)
            path = _temp_path(target)
    return FileWriter(path, info.size, target=target, **options)


def _describe(
    driver: Driver, key: str, settings: TransferSettings, retrier: Retrier, size: int = 0
) -> tuple[ObjectInfo, ReadStream | None]:
    """What the object is, from the first ranged read when the driver's answer says
    (the stream is returned to be read on), else from a stat. `size`: what the caller
    expects the object's size to be (0: unknown); the first range then asks for no more
    (a small range may take a lighter path: `drivers/s3/direct.py`), and a larger object
    is still described whole by the answer."""
    first = min(settings.part_size, size) if size > 0 else settings.part_size
    if isinstance(driver, DescribingDriver):
        try:
            return retrier.call(
                lambda: driver.read_described(key, start=0, end=first - 1),
                what=f"read {driver.url(key)}",
            )
        except IntegrityError as error:
            if error.code not in ("InvalidRange", "416"):
                raise  # an empty object has no byte 0 to read: the stat says so
    return retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}"), None


def _spans(
    info: ObjectInfo, record: Record | None, part_size: int, first: ReadStream | None
) -> tuple[list[_Span], ReadStream | None]:
    """The ranges to read. An already opened first stream covers bytes 0..first.end;
    the ranges after it follow the recorded part size, and it is checksummed in parts
    when they tile it. When they cannot, it is dropped and the plan starts afresh."""
    if first is None:
        return [_Span(s, e) for s, e in _ranges(info.size, part_size)], None
    head = first.end + 1
    aligned = bool(record and record.part_crcs and part_size == record.part_size)
    if aligned and head < info.size and head % part_size:
        first.close()  # the recorded parts do not tile the first range: start afresh
        return [_Span(s, e) for s, e in _ranges(info.size, part_size)], None
    every = part_size if aligned and head > part_size else 0
    rest = [_Span(s, min(s + part_size, info.size) - 1) for s in range(head, info.size, part_size)]
    return [_Span(0, first.end, every)] + rest, first


def download_file(
    driver: Driver,
    key: str,
    dest: str | os.PathLike[str],
    *,
    settings: TransferSettings,
    progress: Progress = _no_progress,
    info: ObjectInfo | None = None,
    expect: Record | None = None,
    on_info: Callable[[ObjectInfo], None] | None = None,
    mode: int = 0o644,
    resume: bool = True,
    staged: bool = False,
    watch: Watchdog | None = None,
) -> DownloadResult:
    """Download one object into `dest`, verified. `info` (e.g. from a listing) spares
    describing the object and pins every range to its ETag; `expect` is the record to
    verify against instead of the object's own (e.g. from a tree manifest); `on_info` is
    told what the object is as soon as that is known (a progress bar's total); the file
    is created with `mode` (less the umask). With `resume` (the default), what a killed
    download of the same object into `dest` left is resumed from or removed (see the
    module's docstring); without it (a destination in a new folder, where nothing can
    be left) the folder is not even listed. `staged`: `dest` is a new name in a folder
    this process made and holds for a restore (a staging folder, moved into place only
    once complete): the file is written under that name directly, with no temporary, no
    lock and no rename (three system calls and a directory update less for each small
    file of a tree), and removed if the download fails. `watch`: the transfer this
    download is part of (a tree's, a command's); by default its own."""
    retrier = Retrier(settings.retry, rng=_JITTER, watch=watch or settings.watchdog())
    target = Path(dest)
    if not staged and os.path.isdir(target):  # a missing folder: found creating the file
        raise InvalidSpec(f"destination {target} is a folder")
    first: ReadStream | None = None
    if info is None:
        info, first = _describe(driver, key, settings, retrier, expect.size if expect else 0)
    handoff = [first] if first is not None else []  # the opened stream, until read
    try:
        if on_info is not None:
            on_info(info)
        return _download(
            driver,
            info,
            target,
            settings=settings,
            progress=progress,
            expect=expect,
            retrier=retrier,
            handoff=handoff,
            mode=mode,
            resume=resume and not staged,
            staged=staged,
        )
    finally:
        for stream in handoff:
            stream.close()


def _download(
    driver: Driver,
    info: ObjectInfo,
    target: Path,
    *,
    settings: TransferSettings,
    progress: Progress,
    expect: Record | None,
    retrier: Retrier,
    handoff: list[ReadStream],
    mode: int = 0o644,
    resume: bool = True,
    staged: bool = False,
) -> DownloadResult:
    record, reason, part_size = _plan(info, settings, expect)
    url = driver.url(info.key)
    part_crcs = record.part_crcs if record and record.part_size == part_size else None
    # O_DIRECT pays off on large files; below a block it is only a second open
    direct = settings.direct_io and info.size > BLOCK
    writer = (
        FileWriter(target, info.size, target=target, direct=direct, mode=mode, lock=False)
        if staged
        else _open_temp(
            target,
            url,
            info,
            resumable=bool(part_crcs),
            resume=resume,
            direct=direct,
            mode=mode,
        )
    )
    kept: list[int] = []  # parts the temporary already held (appends are atomic)
    try:
        if writer.resumed:  # one range per recorded part, each checked in the temporary
            for stream in handoff:
                stream.close()
            handoff.clear()
            spans = [_Span(s, e) for s, e in _ranges(info.size, part_size)]
        else:
            spans, first = _spans(info, record, part_size, handoff[0] if handoff else None)
            if first is None:
                handoff.clear()  # _spans closed it

        def sink(offset: int, buffer: Any, length: int) -> None:
            writer.write(offset, buffer, length)
            progress(length)

        def held(span: _Span, buffer: Any) -> int | None:
            """The span's CRC when the temporary already holds its recorded part."""
            assert part_crcs is not None
            length = span.end - span.start + 1
            crc = writer.crc(span.start, length, buffer)
            if crc != part_crcs[span.start // part_size]:
                return None
            kept.append(span.start // part_size + 1)
            progress(length)
            return crc

        def one(span: _Span, buffer: Any) -> list[tuple[int, int]]:
            if writer.resumed:
                crc = held(span, buffer)
                if crc is not None:
                    return [(crc, span.end - span.start + 1)]
            opened = handoff.pop() if span.start == 0 and handoff else None
            crcs = _fetch(driver, info, span, retrier, sink, buffer, opened=opened)
            for crc, (start, length) in zip(crcs, span.pieces(), strict=False):
                _check_piece(url, record, part_size, start, length, crc)
            return [(crc, length) for crc, (_, length) in zip(crcs, span.pieces(), strict=False)]

        def pooled(span: _Span) -> list[tuple[int, int]]:
            return one(span, thread_buffer())

        whole = _Fold()
        if len(spans) <= 1:
            # one range (most small files): no pool, the thread's own block
            for piece in one(spans[0], thread_buffer()) if spans else []:
                whole.add(*piece)
        else:
            with ThreadPoolExecutor(
                min(settings.concurrency, len(spans)), thread_name_prefix="argosy-get"
            ) as pool:
                futures = [pool.submit(pooled, span) for span in spans]
                try:
                    for future in futures:
                        for piece in future.result():
                            whole.add(*piece)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        result = _verify(driver, info, record, reason, whole.crc)
        writer.finish(fsync=settings.fsync, into=None if staged else target)
        return dataclasses.replace(result, resumed_parts=len(kept), parts=len(spans))
    except BaseException:
        writer.abort()
        raise


class PartWindow(Protocol):
    """Where a streamed download's part buffers come from and go back to, and how many
    parts it may fetch ahead; a server shares one budget of buffers between its streams
    this way (`iter_object`'s `window`)."""

    @property
    def size(self) -> int:
        """Bytes of every buffer `take` gives: parts are at most this."""
        ...

    @property
    def most(self) -> int:
        """The most parts ever fetched ahead at once."""
        ...

    def take(self) -> PartBuffer:
        """A buffer of `size` bytes for the next part."""
        ...

    def give(self, buffer: PartBuffer) -> None:
        """A buffer taken here, no longer used (no view of it is held)."""
        ...

    def ahead(self, wanted: int) -> int:
        """How many parts may be fetched while the caller works on one, now that
        `wanted` more could be (0: one part at a time); asked before each part."""
        ...


def iter_object(
    driver: Driver,
    key: str,
    *,
    settings: TransferSettings,
    info: ObjectInfo | None = None,
    on_done: Callable[[DownloadResult], None] | None = None,
    watch: Watchdog | None = None,
    window: PartWindow | None = None,
) -> Iterator[bytes]:
    """The object's bytes in order, fetched ahead in parallel into a pool of
    `stream_parts + 1` buffers of `stream_part_size` (the one being read by the caller
    included): memory is that, whatever the object's size.

    Each chunk is valid until the caller asks for the next one, when its buffer goes
    back to the pool: copy what you keep (slicing a bytearray copies). Verification
    happens at the end: a mismatch raises IntegrityError after the last byte has been
    yielded. `watch` as for `download_file`.

    `window`: the buffers and the read-ahead come from there instead (parts of at most
    `window.size`, `window.ahead(...)` of them in flight while the caller works on one,
    so at most `1 + window.most` buffers taken at once); chunks are then memoryviews of
    its buffers, given back when the caller asks for the next chunk."""
    retrier = Retrier(settings.retry, rng=_JITTER, watch=watch or settings.watchdog())
    if info is None:
        info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
    record, reason, part_size = _plan(info, settings)
    cap = window.size if window is not None else settings.stream_part_size
    if not (record and record.part_crcs and record.part_size == part_size) or part_size > cap:
        part_size = min(part_size, cap)
    spans = _ranges(info.size, part_size)
    most = window.most if window is not None else settings.stream_parts
    pool: Any = (
        window if window is not None else BufferPool(most + 1, min(part_size, max(info.size, 1)))
    )

    def allowed(wanted: int) -> int:
        """Parts to have in flight while the caller works on one."""
        if window is None:
            return min(wanted, most)
        return max(0, min(wanted, most, window.ahead(wanted)))

    def one(span: tuple[int, int], buffer: PartBuffer) -> tuple[int, int]:
        length = span[1] - span[0] + 1
        # read straight into the part's buffer: one sink call, no copy
        crc = _fetch(
            driver, info, _Span(span[0], span[1]), retrier, _ignore, memoryview(buffer)[:length]
        )[0]
        _check_piece(driver.url(key), record, part_size, span[0], length, crc)
        return length, crc

    def handed(buffer: PartBuffer, length: int) -> bytes:
        if window is not None:
            return cast(bytes, memoryview(buffer)[:length])
        # every reader of these chunks (write, decompress, slicing, concatenation) takes
        # a bytearray; only a short last part is copied out, to give it its own length
        return cast(bytes, buffer if length == len(buffer) else buffer[:length])

    whole = _Fold()
    # fetches under way, oldest first, each with the buffer it fills
    pending: deque[tuple[Future[tuple[int, int]], PartBuffer]] = deque()
    following = 0  # the next span to fetch
    try:
        with ThreadPoolExecutor(max(1, most), thread_name_prefix="argosy-get") as workers:

            def submit(room: int) -> None:
                nonlocal following
                while following < len(spans) and len(pending) < room:
                    buffer = pool.take()
                    pending.append((workers.submit(one, spans[following], buffer), buffer))
                    following += 1

            try:
                for handed_count in range(len(spans)):
                    # `room` parts are fetched while the caller works on this one
                    room = allowed(len(spans) - handed_count - 1)
                    submit(max(1, room))
                    future, buffer = pending[0]
                    length, crc = future.result()
                    pending.popleft()
                    submit(room)
                    whole.add(crc, length)
                    yield handed(buffer, length)
                    pool.give(buffer)
            finally:
                for future, _ in pending:
                    future.cancel()
    finally:
        # every fetch has ended (the executor waited for them): their buffers are free;
        # a chunk handed over and not asked past stays the caller's
        for _, buffer in pending:
            pool.give(buffer)
    result = _verify(driver, info, record, reason, whole.crc)
    if on_done:
        on_done(result)


def download_stream(
    driver: Driver,
    key: str,
    out: BinaryIO,
    *,
    settings: TransferSettings,
    progress: Progress = _no_progress,
    watch: Watchdog | None = None,
) -> DownloadResult:
    results: list[DownloadResult] = []
    for data in iter_object(driver, key, settings=settings, on_done=results.append, watch=watch):
        _to_output(driver.url(key), out.write, data)
        progress(len(data))
    _to_output(driver.url(key), out.flush)
    return results[0]


def _to_output(url: str, write: Callable[..., object], *data: Any) -> None:
    """`write(*data)` to where a stream goes, its failures told as the output's."""
    try:
        write(*data)
    except BrokenPipeError:
        raise LocalIOError("output closed before the object was written") from None
    except OSError as error:  # a full disk, a quota, an I/O error where the output goes
        raise LocalIOError(f"cannot write {url} to the output: {error.strerror or error}") from None


__all__ = [
    "DownloadResult",
    "PartWindow",
    "download_file",
    "download_stream",
    "iter_object",
    "ArtifactError",
]
