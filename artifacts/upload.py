"""Uploads: one PUT for small objects, parallel multipart for large ones and streams.

A file and a stream differ only in how they make each part's body; both go through one
multipart session (`_MultipartSession`), which creates the upload or resumes the one a
checkpoint names (`resume.py`), sends and keeps parts, completes, records the checksum
and clears the checkpoint. Its abort is registered the instant the upload is created:
any failure or interrupt after that aborts it, so no half-written object ever appears
under its final key. Each part's CRC32C is computed as its bytes are sent (a file's) or
just before (a stream's, to compare with a resumed upload's), combined into the whole
object's, and recorded with the object (see `record.py`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO, TypeVar, cast

from argosy.artifacts.bodies import BufferBody, FileRange, watched
from argosy.artifacts.buffers import BufferPool
from argosy.artifacts.checksum import combine_all, crc32c
from argosy.artifacts.errors import (
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    LocalIOError,
    NotFound,
    PermanentError,
    PreconditionFailed,
    SourceChanged,
)
from argosy.artifacts.protocol import Body, ConfirmingDriver, Driver, Part
from argosy.artifacts.record import Record
from argosy.artifacts.resume import Checkpoint, CheckpointStore, file_identity
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import MAX_PARTS, MiB, TransferSettings
from argosy.artifacts.stall import Sent, Watchdog
from argosy.artifacts.streams import ChunkParts, PartSource, ReadParts

log = logging.getLogger("argosy.upload")
Progress = Callable[[int], None]
B = TypeVar("B", bound=Body)
_JITTER = random.Random()  # shared: seeding one from the OS costs ~15 us, every file


def _no_progress(_: int) -> None:
    pass


@dataclass(frozen=True)
class UploadResult:
    url: str
    size: int
    etag: str
    record: Record | None  # None when the record could not be written
    parts: int
    note: str = ""
    resumed_parts: int = 0  # parts a checkpoint showed were already on the server


@dataclass(frozen=True)
class Source:
    """What an upload's checkpoint is kept for: the source's name (a file's absolute path,
    `tree:PATH` for a folder's archive) and what must not change for the upload to resume
    (`resume.file_identity` for a file; the inputs of a reproducible stream's bytes)."""

    name: str
    identity: dict[str, object]


class NotReproducible(ArtifactError):
    """A resumed upload's source (a file's range, a stream's part) differs from what its
    checkpoint recorded: the interrupted upload is aborted, start afresh."""


class _MultipartSession:
    """One multipart upload, from its creation (or the resumption of the one a checkpoint
    names) to its checksum record; the file and stream uploads only make part bodies.

    The abort is armed from the moment the upload exists, or is taken over: leaving the
    `with` block before Complete, by any error or interrupt, removes the checkpoint and
    aborts the upload. With `checkpoints` and a `source`, a checkpoint of the same source,
    URL and part size names the upload to resume, and the parts the server lists with the
    checkpoint's ETag and size can be kept (`on_server`, `keep`) instead of sent, once
    the caller has checked that its source still has the part's recorded CRC32C (a
    failed check raises NotReproducible, which aborts); every part sent goes into the
    checkpoint. An upload the server no longer knows (aborted,
    swept, or completed) is started afresh."""

    def __init__(
        self,
        driver: Driver,
        key: str,
        *,
        retrier: Retrier,
        metadata: Mapping[str, str],
        part_size: int = 0,
        progress: Progress = _no_progress,
        checkpoints: CheckpointStore | None = None,
        source: Source | None = None,
    ) -> None:
        self.driver, self.key, self.retrier = driver, key, retrier
        self.url = driver.url(key)
        self.metadata, self.part_size, self.progress = metadata, part_size, progress
        self._crcs: dict[int, tuple[int, int]] = {}  # part number -> (CRC32C, size)
        self._completed = False
        self.checkpoint: Checkpoint | None = None
        if checkpoints is not None and source is not None:
            self.checkpoint = checkpoints.load(
                self.url, source.name, dict(source.identity), part_size
            )
        try:
            self._resumable = _resumable(driver, key, self.checkpoint, retrier)
        except NotFound:  # the upload is gone (aborted, swept, or completed): start again
            assert self.checkpoint is not None
            self.checkpoint.remove()
            self.checkpoint, self._resumable = None, {}
        self.upload_id = (
            self.checkpoint.upload_id
            if self.checkpoint
            else retrier.call(
                lambda: driver.create_upload(key, metadata=metadata),
                what=f"create upload {self.url}",
            )
        )
        if checkpoints is not None and source is not None and self.checkpoint is None:
            try:
                self.checkpoint = checkpoints.start(
                    self.url, source.name, dict(source.identity), part_size, self.upload_id
                )
            except BaseException:
                self._abort()
                raise

    def __enter__(self) -> _MultipartSession:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if not self._completed:
            self._abort()

    def _abort(self) -> None:
        if self.checkpoint:
            self.checkpoint.remove()
        try:
            self.retrier.for_cleanup().call(
                lambda: self.driver.abort_upload(self.key, self.upload_id), what="abort upload"
            )
        except ArtifactError as abort_error:
            log.warning(
                "could not abort upload %s of %s: %s", self.upload_id, self.url, abort_error
            )

    @property
    def resumed_parts(self) -> int:
        """Parts the checkpoint showed were already on the server."""
        return len(self._resumable)

    def on_server(self, number: int) -> tuple[Part, int] | None:
        """Part `number` and its CRC32C, when the resumed upload already has it."""
        return self._resumable.get(number)

    def keep(self, number: int) -> Part:
        """Take part `number` as the resumed upload has it, instead of sending it."""
        part, crc = self._resumable[number]
        self._crcs[number] = (crc, part.size)
        self.progress(part.size)
        return part

    def send(
        self, number: int, body: Callable[[], B], *, size: int, crc: Callable[[B], int]
    ) -> Part:
        """Upload part `number`, retried, from a fresh `body` for each attempt; `crc` gives
        the CRC32C of the bytes the successful attempt's body sent. The part goes into the
        checkpoint and its size to `progress`."""

        sent_so_far = _sent(self.retrier)

        def once() -> Part:
            sent = body()
            part = self.driver.upload_part(
                self.key, self.upload_id, number, watched(sent, sent_so_far), size=size
            )
            self._crcs[number] = (crc(sent), size)
            return part

        part = self.retrier.call(once, what=f"part {number} of {self.url}")
        if self.checkpoint:
            self.checkpoint.add_part(part, self._crcs[number][0])
        self.progress(size)
        return part

    def complete(self, parts: list[Part]) -> str:
        """Complete the upload and clear its checkpoint; returns the object's ETag.

        A Complete whose answer was lost on the way may have succeeded: its retry then
        finds the upload gone (S3: NoSuchUpload) or its parts no longer there (OSS:
        InvalidPart). Such a refusal of a retry is taken as success only if the object
        now stored is the one these parts make (`_check_stored`)."""
        attempts = 0

        def attempt() -> str:
            nonlocal attempts
            attempts += 1
            try:
                return self.driver.complete_upload(self.key, self.upload_id, parts)
            except PermanentError as error:
                if attempts > 1 and _as_if_completed(error):
                    return self._check_stored(parts, error)
                raise

        etag = self.retrier.call(attempt, what=f"complete {self.url}")
        self._completed = True
        if self.checkpoint:
            self.checkpoint.remove()
        return etag

    def _check_stored(self, parts: list[Part], refusal: PermanentError) -> str:
        """The stored object's ETag if it is the one `parts` make, by the driver's own
        checksum where it has one (`ConfirmingDriver`), else by size and S3's multipart
        ETag; with nothing stored the refusal stands."""
        try:
            info = self.driver.stat(self.key)
        except NotFound:
            raise refusal from None
        ours = (
            self.driver.made_of(self.key, parts)
            if isinstance(self.driver, ConfirmingDriver)
            else None
        )
        if ours is None:
            expected = multipart_etag(parts)
            ours = info.size == sum(p.size for p in parts) and (
                expected is None or info.etag.lower() == expected.lower()
            )
        if ours:
            return info.etag
        raise IntegrityError(
            f"{self.url}: a retried Complete was answered {refusal.code or 'refused'} and "
            "the object stored there is not the one uploaded"
        )

    def finish(self, parts: list[Part], *, concurrency: int) -> UploadResult:
        """Complete the upload, sent and kept `parts` in order, then write its checksum
        record (`_record_after`: up to `concurrency` copies at once past the copy limit)."""
        etag = self.complete(parts)
        crcs = [self._crcs[p.number] for p in parts]
        size = sum(length for _, length in crcs)
        record = Record(combine_all(crcs), size, self.part_size, [crc for crc, _ in crcs])
        etag, kept, note = _record_after(
            self.driver, self.key, etag, record, self.metadata, self.retrier, concurrency
        )
        return UploadResult(
            self.url, size, etag, kept, len(parts), note, resumed_parts=self.resumed_parts
        )


_GONE_ONCE_COMPLETED = ("NoSuchUpload", "InvalidPart")


def _as_if_completed(error: PermanentError) -> bool:
    """A refusal that a Complete earns when an earlier one of the same upload succeeded."""
    return isinstance(error, NotFound) or error.code in _GONE_ONCE_COMPLETED


def _sent(retrier: Retrier) -> Callable[[int], None] | None:
    """What a request body reports its bytes sent to, over all its attempts (`stall.Sent`)."""
    return Sent(retrier.watch) if retrier.watch is not None else None


def _resumable(
    driver: Driver, key: str, checkpoint: Checkpoint | None, retrier: Retrier
) -> dict[int, tuple[Part, int]]:
    """Parts of a checkpointed upload that the server really has, with their CRCs."""
    if checkpoint is None:
        return {}
    listed = retrier.call(
        lambda: driver.list_parts(key, checkpoint.upload_id),
        what=f"list parts of {driver.url(key)}",
    )
    done = {}
    for part in listed:
        known = checkpoint.parts.get(part.number)
        if known and known[0] == part.etag and known[1] == part.size:
            done[part.number] = (part, known[2])
    return done


def multipart_etag(parts: list[Part]) -> str | None:
    """S3's ETag of a multipart object (MD5 of the parts' MD5s), when parts carry MD5s."""
    try:
        digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts)).hexdigest()
    except ValueError:
        return None
    return f"{digest}-{len(parts)}"


def _record_after(
    driver: Driver,
    key: str,
    etag: str,
    record: Record,
    metadata: Mapping[str, str],
    retrier: Retrier,
    concurrency: int,
) -> tuple[str, Record | None, str]:
    full = {**metadata, **record.to_metadata()}
    try:
        if record.size > driver.copy_limit:
            new_etag = _replace_by_parts(driver, key, etag, record.size, full, retrier, concurrency)
        else:
            new_etag = retrier.call(
                lambda: driver.replace_metadata(key, full, if_match=etag), what="record checksum"
            )
        return new_etag or driver.stat(key).etag, record, ""
    except ArtifactError as error:
        note = f"uploaded, but the checksum record was not written ({error}): unverified"
        log.warning("%s", note)
        return etag, None, note


COPY_PART = 1 << 30  # bytes per server-side copied part (S3 takes up to 5 GiB)


def _replace_by_parts(
    driver: Driver,
    key: str,
    etag: str,
    size: int,
    metadata: Mapping[str, str],
    retrier: Retrier,
    concurrency: int,
) -> str:
    """Set the metadata of an object too large for one copy request (S3 refuses to copy
    more than 5 GiB at once, OSS more than 1 GB): a multipart upload of the same key,
    created with the metadata, whose parts are server-side copies of the object's own
    ranges, each pinned to `etag`. No data crosses the network. If the object changes
    meanwhile, PreconditionFailed aborts the upload (the object stays as it was,
    unverified); where the server ignores the pin, only a change in the instant between
    the last ETag check and Complete could slip through."""
    step = max(min(driver.copy_limit, COPY_PART), -(-size // MAX_PARTS))

    def unchanged(when: str) -> None:
        # each part copy is pinned to `etag`, but Ceph RGW 16 and moto ignore that
        # condition (AWS and OSS honour it): the ETag is checked before and after too
        if retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}").etag != etag:
            raise PreconditionFailed(f"{driver.url(key)} changed {when} its record was copied")

    unchanged("before")
    with _MultipartSession(driver, key, retrier=retrier, metadata=metadata) as upload:

        def copy(number: int) -> Part:
            start = (number - 1) * step
            end = min(start + step, size) - 1
            return retrier.call(
                lambda: driver.copy_part(
                    key, upload.upload_id, number, start=start, end=end, if_match=etag
                ),
                what=f"copy part {number} of {driver.url(key)}",
            )

        count = -(-size // step)
        parts = _run_parts(concurrency, [functools.partial(copy, n) for n in range(1, count + 1)])
        unchanged("while")
        return upload.complete(parts)


def _run_parts(pool_size: int, tasks: list[Callable[[], Part]]) -> list[Part]:
    """Run part uploads; on the first failure (or an interrupt) cancel the rest at once
    rather than letting queued parts run to completion."""
    pool = ThreadPoolExecutor(pool_size, thread_name_prefix="argosy-part")
    try:
        futures: list[Future[Part]] = [pool.submit(t) for t in tasks]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def upload_file(
    driver: Driver,
    key: str,
    path: str | os.PathLike[str],
    *,
    settings: TransferSettings,
    metadata: Mapping[str, str] | None = None,
    progress: Progress = _no_progress,
    checkpoints: CheckpointStore | None = None,
    watch: Watchdog | None = None,
) -> UploadResult:
    """Upload a file. With `checkpoints`, a multipart upload left behind by a killed
    process for the same file and URL is resumed instead of started again. `watch`: the
    transfer this upload is part of (a tree's, a command's); by default its own."""
    retrier = Retrier(settings.retry, rng=_JITTER, watch=watch or settings.watchdog())
    metadata = dict(metadata or {})
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFound(f"no such file: {name}", code="NoSuchFile") from None
    except IsADirectoryError:
        raise LocalIOError(f"{name} is a folder (use -r)") from None
    except OSError as error:
        raise LocalIOError(f"cannot read {name}: {error.strerror}") from None
    try:
        before = os.fstat(fd)
        size = before.st_size

        def check_unchanged() -> None:
            after = os.fstat(fd)
            if after.st_nlink == 0:
                raise SourceChanged(
                    f"{name} was deleted while it was being uploaded; "
                    f"nothing was written to {driver.url(key)}"
                )
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise SourceChanged(
                    f"{name} changed while it was being uploaded; "
                    f"nothing was written to {driver.url(key)}"
                )

        if size <= settings.multipart_threshold:
            result = _put_whole(driver, key, fd, size, name, metadata, retrier, check_unchanged)
            progress(size)
            return result
        parts = functools.partial(
            _put_parts,
            driver,
            key,
            fd,
            before,
            name,
            metadata,
            retrier,
            settings,
            progress,
            check_unchanged,
        )
        try:
            return parts(checkpoints)
        except NotReproducible as stale:
            # the session aborted the interrupted upload and removed its checkpoint
            log.warning("%s", stale)
            return parts(None)
    finally:
        os.close(fd)


SMALL_FILE = 1 << 20  # bytes: a file below this is read once and sent from memory


def _put_whole(
    driver: Driver,
    key: str,
    fd: int,
    size: int,
    name: str,
    metadata: Mapping[str, str],
    retrier: Retrier,
    check_unchanged: Callable[[], None],
) -> UploadResult:
    """One PUT. Its record travels in the request's headers, so the CRC must be known
    before the body is sent: a quick first pass over the file (CRC32C at ~13 GB/s) finds
    it, the body then streams from the file in 1 MiB reads (memory stays bounded), and the
    CRC of the bytes actually sent must equal the first pass's or the object is removed.
    A small file is read once instead: the bytes checksummed are the bytes sent, and they
    leave in the same write as the request's headers."""
    if size < SMALL_FILE:
        data = os.pread(fd, size, 0)
        if len(data) != size:
            raise SourceChanged(f"{name}: file shrank while it was being read")
        check_unchanged()
        return _put_recorded(
            driver,
            key,
            lambda: data,
            crc=crc32c(data),
            size=size,
            metadata=metadata,
            retrier=retrier,
        )
    crc = _scan(fd, 0, size, name)
    check_unchanged()
    sent: list[FileRange] = []  # the body of each attempt: the last one was stored

    def body() -> FileRange:
        sent.append(FileRange(fd, 0, size, name=name))
        return sent[-1]

    result = _put_recorded(
        driver, key, body, crc=crc, size=size, metadata=metadata, retrier=retrier
    )
    if sent[-1].crc != crc:
        retrier.call(lambda: driver.delete([key]), what=f"remove {driver.url(key)}")
        raise SourceChanged(
            f"{name} changed while it was being uploaded; {driver.url(key)} was removed"
        )
    return result


def _scan(fd: int, offset: int, length: int, name: str) -> int:
    """CRC32C of a range of the file, read in 1 MiB pieces (memory stays bounded)."""
    scan = FileRange(fd, offset, length, name=name)
    while scan.read(1 << 20):
        pass
    return scan.crc


def _put_recorded(
    driver: Driver,
    key: str,
    body: Callable[[], Body],
    *,
    crc: int,
    size: int,
    metadata: Mapping[str, str],
    retrier: Retrier,
) -> UploadResult:
    """The object in one PUT, its checksum record (one part: the whole object) in the
    request's own headers, which is why the CRC32C must be known before the body is sent.
    `body` makes the request's body, afresh for each attempt."""
    record = Record.whole(crc, size)
    meta = {**metadata, **record.to_metadata()}
    sent_so_far = _sent(retrier)
    etag = retrier.call(
        lambda: driver.put(key, watched(body(), sent_so_far), size=size, metadata=meta),
        what=f"put {driver.url(key)}",
    )
    return UploadResult(driver.url(key), size, etag, record, 1)


def _put_parts(
    driver: Driver,
    key: str,
    fd: int,
    st: os.stat_result,
    name: str,
    metadata: Mapping[str, str],
    retrier: Retrier,
    settings: TransferSettings,
    progress: Progress,
    check_unchanged: Callable[[], None],
    checkpoints: CheckpointStore | None,
) -> UploadResult:
    """A file in parts, `concurrency` at once, each read from the file as it is sent.

    A part a resumed upload already has is kept only if the file's bytes in its range
    still have the CRC32C the checkpoint recorded for it: path, size, mtime and inode
    say nothing of a file rewritten in place with its size and mtime put back. That
    reads each kept part once (in the workers, alongside the parts being sent), where
    sending it would read it and upload it; a part that differs raises NotReproducible,
    which aborts the interrupted upload and removes its checkpoint."""
    size = st.st_size
    part_size = settings.part_size_for(size)
    source = Source(os.path.abspath(name), file_identity(name, st))
    with _MultipartSession(
        driver,
        key,
        retrier=retrier,
        metadata=metadata,
        part_size=part_size,
        progress=progress,
        checkpoints=checkpoints,
        source=source,
    ) as session:

        def part(number: int) -> Part:
            offset = (number - 1) * part_size
            length = min(part_size, size - offset)
            kept = session.on_server(number)
            if kept is not None:
                if kept[0].size != length or _scan(fd, offset, length, name) != kept[1]:
                    raise NotReproducible(
                        f"{name}: part {number} changed since the interrupted upload to "
                        f"{session.url}; starting afresh"
                    )
                return session.keep(number)
            return session.send(
                number,
                lambda: FileRange(fd, offset, length, name=name),
                size=length,
                crc=lambda body: body.crc,
            )

        parts = _run_parts(
            settings.concurrency,
            [functools.partial(part, n) for n in range(1, -(-size // part_size) + 1)],
        )
        check_unchanged()
        return session.finish(parts, concurrency=settings.concurrency)


def upload_stream(
    driver: Driver,
    key: str,
    stream: BinaryIO,
    *,
    settings: TransferSettings,
    metadata: Mapping[str, str] | None = None,
    progress: Progress = _no_progress,
    checkpoints: CheckpointStore | None = None,
    source: Source | None = None,
    watch: Watchdog | None = None,
) -> UploadResult:
    """Upload from a non-seekable stream in order, holding `stream_parts + 1` parts at most
    (a pool of part buffers reused throughout: see `buffers.py`). `watch` as for
    `upload_file`.

    With `checkpoints` and a `source` whose bytes are reproducible, a killed upload
    resumes: each regenerated part whose CRC32C matches the checkpoint's is taken from the
    server instead of being sent again; the first part that differs raises
    NotReproducible (after aborting the old upload), and the caller starts afresh."""
    # parts being sent and one being filled: the whole of the memory
    pool = BufferPool(settings.stream_parts + 1, settings.stream_part_size, mapped=True)
    return _upload_parts(
        driver,
        key,
        ReadParts(stream, pool),
        settings=settings,
        metadata=metadata,
        progress=progress,
        checkpoints=checkpoints,
        source=source,
        watch=watch,
    )


def upload_chunks(
    driver: Driver,
    key: str,
    chunks: Iterable[bytes],
    *,
    settings: TransferSettings,
    metadata: Mapping[str, str] | None = None,
    progress: Progress = _no_progress,
    checkpoints: CheckpointStore | None = None,
    source: Source | None = None,
    watch: Watchdog | None = None,
) -> UploadResult:
    """`upload_stream` for a stream made as chunks (an archive being written), each a
    buffer never written again: parts are sent as views of the chunks, so no byte is
    copied and no part buffer is allocated. At most `stream_parts + 1` parts' worth of
    chunks is held, as for a stream. The iterator is closed when the upload ends."""
    with closing(ChunkParts(chunks)) as parts:
        return _upload_parts(
            driver,
            key,
            parts,
            settings=settings,
            metadata=metadata,
            progress=progress,
            checkpoints=checkpoints,
            source=source,
            watch=watch,
        )


def _upload_parts(
    driver: Driver,
    key: str,
    parts: PartSource,
    *,
    settings: TransferSettings,
    metadata: Mapping[str, str] | None,
    progress: Progress,
    checkpoints: CheckpointStore | None,
    source: Source | None,
    watch: Watchdog | None,
) -> UploadResult:
    """The stream `parts` gives, in parts of `stream_part_size`: one PUT if it is shorter
    than a part, else a multipart upload, `stream_parts` parts in flight at most and one
    more being taken (a semaphore bounds the parts held, whatever their source)."""
    retrier = Retrier(settings.retry, rng=_JITTER, watch=watch or settings.watchdog())
    metadata = dict(metadata or {})
    part_size = settings.stream_part_size
    held = threading.Semaphore(settings.stream_parts + 1)

    def take() -> list[memoryview]:
        held.acquire()  # waits while every part held is being sent
        try:
            return parts.take(part_size)
        except BaseException:
            held.release()
            raise

    def give(part: list[memoryview]) -> None:
        parts.give(part)
        held.release()

    first = take()
    filled = sum(len(view) for view in first)
    if filled < part_size:
        data = b"".join(first)
        give(first)
        result = _put_recorded(
            driver,
            key,
            lambda: data,
            crc=crc32c(data),
            size=filled,
            metadata=metadata,
            retrier=retrier,
        )
        progress(filled)
        return result

    url = driver.url(key)
    with (
        _MultipartSession(
            driver,
            key,
            retrier=retrier,
            metadata=metadata,
            part_size=part_size,
            progress=progress,
            checkpoints=checkpoints,
            source=source,
        ) as session,
        ThreadPoolExecutor(settings.stream_parts, thread_name_prefix="argosy-part") as workers,
    ):
        futures: list[Future[Part]] = []

        def send(number: int, part: list[memoryview], length: int, crc: int) -> Part:
            def body() -> Body:  # afresh for each attempt
                if len(part) == 1:
                    return part[0]
                return cast(Body, BufferBody(*part))  # views, as every driver's HTTP layer takes

            try:
                return session.send(number, body, size=length, crc=lambda _: crc)
            finally:
                give(part)

        part, length, number = first, filled, 1
        while length:
            crc = 0
            for view in part:
                crc = crc32c(view, crc)
            kept = session.on_server(number)
            if kept is not None:
                if kept[1] != crc or kept[0].size != length:
                    give(part)
                    raise NotReproducible(
                        f"{url}: part {number} differs from the "
                        "interrupted upload's; starting afresh"
                    )
                ready: Future[Part] = Future()
                ready.set_result(session.keep(number))
                futures.append(ready)
                give(part)
            else:
                failed = [f for f in futures if f.done() and f.exception()]
                if failed:
                    give(part)
                    raise failed[0].exception()  # type: ignore[misc]
                futures.append(workers.submit(send, number, part, length, crc))
            if length < part_size:
                break
            part = take()
            length = sum(len(view) for view in part)
            number += 1
            if length and number > MAX_PARTS:
                give(part)
                raise InvalidSpec(
                    f"{url}: the stream is longer than {MAX_PARTS} parts of "
                    f"{part_size // MiB} MiB ({MAX_PARTS * part_size // MiB} MiB); nothing "
                    "was kept: raise the stream part size"
                )
        parts_sent = [f.result() for f in futures]
        return session.finish(parts_sent, concurrency=settings.concurrency)
