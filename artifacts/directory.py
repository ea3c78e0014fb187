"""Directory artifacts: a local folder to one archived object or to one object per file,
and back.

Archives stream: the tar (+ zstd or gzip) or zip bytes flow from the tree walker straight
into the multipart upload, and from the ranged download straight into the safe extractor;
no archive is ever staged on disk. The downloaded stream is verified against its record
before the extracted tree is moved into place: a mismatch leaves no destination folder.
`none` is the `cp -r` layout, one object per file under `KEY/`, with its tree manifest
beside it (`KEY.argosy-manifest.json`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argosy.artifacts import archive, tree
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.download import DownloadResult, iter_object
from argosy.artifacts.errors import IntegrityError, InvalidSpec, NotFound
from argosy.artifacts.manifest import manifest_key
from argosy.artifacts.protocol import Driver
from argosy.artifacts.resume import CheckpointStore
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.stall import Watchdog
from argosy.artifacts.upload import NotReproducible, Source, upload_chunks

ArchiveFormat = Literal["tar", "tar.zst", "tar.gz", "zip", "none"]
ARCHIVE_FORMATS: tuple[str, ...] = ("tar.zst", "tar.gz", "tar", "zip", "none")


@dataclass(frozen=True)
class DirectoryResult:
    url: str
    files: int
    bytes: int  # bytes moved over the wire (the archive's size, or the files' sum)
    checksum: str | None
    verified: bool
    note: str = ""
    verdict: str = ""  # a folder of objects: what was verified, and against what


def upload_directory(
    driver: Driver,
    key: str,
    root: str | os.PathLike[str],
    *,
    fmt: ArchiveFormat,
    settings: TransferSettings,
    level: int | None = None,
    keep_mtime: bool = False,
    checkpoints: CheckpointStore | None = None,
    metadata: Mapping[str, str] | None = None,
    root_name: str | None = None,
    progress: Callable[[int], None] = lambda n: None,
    watch: Watchdog | None = None,
) -> DirectoryResult:
    """Upload a folder (or, archived under `root_name`, a single file: Argo's `.tgz` of
    a file holds that one file under its own name). `metadata` goes on every object.

    An archive upload killed midway resumes when the same command runs again with
    `checkpoints`: the archive's bytes are reproducible (sorted entries, fixed owners,
    mtimes only on request), so each part already on the server is kept only if the
    regenerated stream's part has its CRC32C and length, and only the rest is sent; the
    first regenerated part that differs (the tree changed there) starts the upload
    afresh. A change past the kept parts simply goes into the rest: the object is the
    archive of the tree as it is now. (No separate walk of the tree first: it cost a
    tenth of a second per 20,000 files on every upload, resumed or not.) `watch`: the
    transfer this is part of; by default its own."""
    watch = watch or settings.watchdog()
    base = Path(root)
    if not base.is_dir() and not (root_name is not None and fmt != "none" and base.is_file()):
        raise InvalidSpec(f"{base} is not a folder")
    if fmt == "none":
        result = tree.upload_tree(
            driver,
            key,
            base,
            settings=settings,
            manifest=True,
            metadata=metadata,
            progress=progress,
            watch=watch,
        )
        return DirectoryResult(
            driver.url(tree.as_folder(key)),
            result.files,
            result.bytes,
            None,
            result.verified == result.files,
            "; ".join(result.notes),
            f"crc32c recorded for {result.verified} of {result.files} files, tree manifest "
            f"at {driver.url(manifest_key(key))}",
        )
    if fmt not in ARCHIVE_FORMATS:
        raise InvalidSpec(f"unknown archive format {fmt!r} (use {', '.join(ARCHIVE_FORMATS)})")
    source = None
    if checkpoints is not None:
        source = Source(
            f"tree:{base.resolve()}",
            {"format": fmt, "level": level, "keep_mtime": keep_mtime, "root_name": root_name},
        )
    for attempt in (1, 2):
        try:
            up = upload_chunks(
                driver,
                key,
                archive.write_archive(
                    base, fmt, level=level, keep_mtime=keep_mtime, root_name=root_name
                ),
                settings=settings,
                metadata=metadata,
                progress=progress,
                checkpoints=checkpoints,
                source=source,
                watch=watch,
            )
            break
        except NotReproducible:
            if attempt == 2:
                raise
    return DirectoryResult(
        up.url,
        -1,
        up.size,
        up.record.checksum if up.record else None,
        up.record is not None,
        up.note,
    )


def download_directory(
    driver: Driver,
    key: str,
    dest: str | os.PathLike[str],
    *,
    fmt: ArchiveFormat | Literal["auto"],
    settings: TransferSettings,
    include: Sequence[str] = (),
    keep_mtime: bool = False,
    limits: ExtractLimits = DEFAULT_LIMITS,
    progress: Callable[[int], None] = lambda n: None,
    watch: Watchdog | None = None,
) -> DirectoryResult:
    """Restore a folder from one archived object (or from a folder of objects: `none`).
    With `auto`, an object is read as the archive its first bytes say it is, and a key
    that is no object but a folder (its tree manifest beside it, or objects under `key/`)
    comes down as a folder of objects, as Argo's `archive: none` wrote it. An archive is
    held to `limits`; one expanding past `limits.max_expansion` raises
    archive.ExpansionRefused, for the caller to name the setting that raises it. `watch`
    as for `upload_directory`."""
    watch = watch or settings.watchdog()
    retrier = Retrier(settings.retry, watch=watch)
    info = None
    if fmt == "auto" and key and not key.endswith("/"):
        try:
            info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
        except NotFound as missing:
            try:
                folder = tree.is_folder(driver, key)
            except NotFound:  # no bucket either: the object's 404 is what to report
                raise missing from None
            if not folder:
                raise
    if fmt == "none" or (fmt == "auto" and info is None):
        if include:
            raise InvalidSpec(
                "--include works on archives; for a folder of objects copy the keys you need"
            )
        result = tree.download_tree(
            driver, key, dest, settings=settings, progress=progress, watch=watch
        )
        return DirectoryResult(
            driver.url(tree.as_folder(key)),
            result.files,
            result.bytes,
            None,
            result.verified == result.files,
            "; ".join(result.notes),
            result.verdict,
        )
    if info is None:
        info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
    if fmt == "auto":
        head = range_reader(driver, key, info.etag, retrier)(0, min(info.size, 512))
        found = archive.detect(head)
        if found is None:
            raise InvalidSpec(
                f"{driver.url(key)} is not an archive Argosy can read (tar, tar.zst, tar.gz, zip)"
            )
        fmt = "zip" if found == "zip" else "auto"
    if fmt == "zip":
        extracted = archive.extract_zip(
            range_reader(driver, key, info.etag, retrier),
            info.size,
            dest,
            include=include,
            keep_mtime=keep_mtime,
            limits=limits,
        )
        progress(info.size)
        return DirectoryResult(
            driver.url(key),
            extracted.files,
            info.size,
            None,
            False,
            "zip members are checked by their own CRC32s",
        )
    outcome: list[DownloadResult] = []

    def counted() -> Iterator[bytes]:
        for chunk in iter_object(
            driver, key, settings=settings, info=info, on_done=outcome.append, watch=watch
        ):
            progress(len(chunk))
            yield chunk

    compression: archive.Codec | Literal["auto"] = {
        "tar": "none",
        "tar.zst": "zstd",
        "tar.gz": "gzip",
    }.get(fmt, "auto")  # type: ignore[assignment]
    extracted = archive.extract_tar(
        counted(),
        dest,
        compression=compression,
        include=include,
        keep_mtime=keep_mtime,
        limits=limits,
    )
    if not outcome:  # the reader always drains the stream; this is a bug if it did not
        raise IntegrityError(f"{driver.url(key)}: the archive was not read to its end")
    done = outcome[0]
    return DirectoryResult(
        driver.url(key), extracted.files, info.size, done.checksum, done.verified, done.note
    )


def range_reader(
    driver: Driver, key: str, etag: str, retrier: Retrier
) -> Callable[[int, int], bytes]:
    """Bytes [start, end) of one version of the object, for readers that seek (zip) and
    for sniffing an object's format from its first bytes."""

    def read(start: int, end: int) -> bytes:
        if end <= start:
            return b""

        def once() -> bytes:
            stream = driver.read(key, start=start, end=end - 1, if_match=etag)
            try:
                buffer = bytearray(end - start)
                view = memoryview(buffer)
                got = 0
                while got < len(buffer):
                    n = stream.readinto(view[got:])
                    if not n:
                        break
                    got += n
                return bytes(buffer[:got])
            finally:
                stream.close()

        return retrier.call(once, what=f"read {driver.url(key)} {start}-{end}")

    return read


def list_archive(
    driver: Driver,
    key: str,
    *,
    settings: TransferSettings,
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> list[archive.Entry]:
    """The entries of an archived object. A tar stream is decompressed to its end, so
    it is held to `limits.max_expansion` too (archive.ExpansionRefused)."""
    watch = settings.watchdog()
    retrier = Retrier(settings.retry, watch=watch)
    info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
    read = range_reader(driver, key, info.etag, retrier)
    if archive.detect(read(0, min(info.size, 512))) == "zip":
        return list(archive.list_zip(read, info.size, limits=limits))
    stream = iter_object(driver, key, settings=settings, info=info, watch=watch)
    return list(archive.list_entries(stream, limits=limits))
