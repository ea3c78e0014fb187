"""Stream a directory as a zip archive (Argo's `archive: zip`), never seeking back.

`zipfile` can write to a pipe, but compresses with zlib (~26 MiB/s at level 6 here)
and stamps local times; this writer deflates with ISA-L and is reproducible like the
tar writer (same walk, same order; DOS times fixed at 1980-01-01 unless `keep_mtime`).

Files under 1 MiB are read whole, so their local header carries the CRC and sizes
(and a member that does not shrink is stored rather than deflated). Larger files
stream through the deflater with a data descriptor after them; from 4080 MiB they
get zip64 sizes. Symlinks are stored members whose data is the target, with
S_IFLNK in the external attributes (Info-ZIP's convention); folders end with '/'.
The central directory (~60 bytes a member) is the only thing kept until the end.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterable, Iterator
from typing import Literal

from isal import isal_zlib

from argosy.artifacts.archive import zipformat as zf
from argosy.artifacts.archive.codecs import isal_level
from argosy.artifacts.archive.walk import CHUNK, open_file, read_file, read_link, walk
from argosy.artifacts.errors import IntegrityError, InvalidSpec

ZIP64_FROM = 0xFF000000  # deflate can grow data by ~0.01%: stay clear of 4 GiB


def write_zip(
    root: str | os.PathLike[str],
    *,
    keep_mtime: bool = False,
    skip_special: bool = False,
    root_name: str | None = None,
    level: int | None = None,
    compression: Literal["deflate", "stored"] = "deflate",
    chunk_size: int = CHUNK,
) -> Iterator[bytes]:
    """Yield the zip archive of `root` in chunks of about `chunk_size` bytes; `level`
    is zlib's 0-9 scale (default 1), see `codecs.py`."""
    if compression not in ("deflate", "stored"):
        raise InvalidSpec(f"zip compression must be deflate or stored, not {compression!r}")
    out = _Zip(isal_level(level), compression == "deflate", keep_mtime, chunk_size)
    for found in walk(root, root_name=root_name, skip_special=skip_special):
        try:
            found.name.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSpec(
                f"{os.fsdecode(found.path)}: zip stores names as UTF-8 and"
                " this name is not; use a tar format"
            ) from None
        if found.st is not None:
            yield from out.add(found.name, found.path, found.st)
            continue
        fd, st = open_file(found.path)  # a regular file: described by what is opened
        try:
            yield from out.add(found.name, found.path, st, fd)
        finally:
            os.close(fd)
    yield from out.finish()


class _Zip:
    def __init__(self, level: int, deflate: bool, keep_mtime: bool, chunk_size: int) -> None:
        self.level = level
        self.deflate = deflate
        self.keep_mtime = keep_mtime
        self.chunk_size = chunk_size
        self.pieces: list[bytes] = []
        self.buffered = 0
        self.offset = 0  # bytes of archive produced so far
        self.central: list[bytes] = []

    def _put(self, piece: bytes) -> Iterator[bytes]:
        self.pieces.append(piece)
        self.buffered += len(piece)
        self.offset += len(piece)
        if self.buffered >= self.chunk_size:
            yield self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)
            self.pieces, self.buffered = [], 0

    def _times(self, st: os.stat_result) -> tuple[int, int, bytes, bytes]:
        if not self.keep_mtime:
            return (*zf.DOS_EPOCH, b"", b"")
        mtime = st.st_mtime_ns // 1_000_000_000
        date, clock = zf.dos_datetime(mtime)
        if not 0 <= mtime <= zf.MAX32:
            return date, clock, b"", b""
        stamp = struct.pack("<HHBI", zf.EXTRA_TIMESTAMP, 5, 1, mtime)
        return date, clock, stamp, stamp  # local, central: both carry only the mtime

    def add(self, name: bytes, path: bytes, st: os.stat_result, fd: int = -1) -> Iterator[bytes]:
        """One member; a regular file's data is read from `fd`."""
        kind = stat.S_IFMT(st.st_mode)
        date, clock, extra, central_extra = self._times(st)
        flags = 0 if name.isascii() else zf.FLAG_UTF8
        offset = self.offset
        if kind == stat.S_IFREG and st.st_size >= CHUNK:
            yield from self._stream(
                name,
                read_file(fd, path, st),
                st.st_size,
                st.st_mode,
                flags,
                date,
                clock,
                extra,
                central_extra,
            )
            return
        if kind == stat.S_IFREG:
            data = b"".join(read_file(fd, path, st))
        elif kind == stat.S_IFDIR:
            name, data = name + b"/", b""
        else:
            data = read_link(path)
        crc = isal_zlib.crc32(data)
        method, body = zf.STORED, data
        if kind == stat.S_IFREG and self.deflate and data:
            packed = isal_zlib.compress(data, self.level, wbits=-15)
            if len(packed) < len(data):
                method, body = zf.DEFLATED, packed
        yield from self._put(
            zf.LOCAL.pack(
                zf.LOCAL_SIG,
                zf.NEEDED,
                flags,
                method,
                clock,
                date,
                crc,
                len(body),
                len(data),
                len(name),
                len(extra),
            )
            + name
            + extra
        )
        if body:
            yield from self._put(body)
        self._central(
            name,
            st.st_mode,
            flags,
            method,
            date,
            clock,
            crc,
            len(body),
            len(data),
            offset,
            central_extra,
        )

    def add_stream(
        self, name: bytes, chunks: Iterable[bytes], *, size: int, mode: int = 0o100644
    ) -> Iterator[bytes]:
        """A file member whose bytes come from `chunks` (`size` of them), e.g. an
        object being read from storage: streamed with a data descriptor."""
        date, clock = zf.DOS_EPOCH
        flags = 0 if name.isascii() else zf.FLAG_UTF8
        yield from self._stream(name, chunks, size, mode, flags, date, clock, b"", b"")

    def _stream(
        self,
        name: bytes,
        chunks: Iterable[bytes],
        size: int,
        mode: int,
        flags: int,
        date: int,
        clock: int,
        extra: bytes,
        central_extra: bytes,
    ) -> Iterator[bytes]:
        offset = self.offset
        big = size >= ZIP64_FROM
        flags |= zf.FLAG_DESCRIPTOR
        method = zf.DEFLATED if self.deflate else zf.STORED
        local_extra = extra + (struct.pack("<HHQQ", zf.EXTRA_ZIP64, 16, 0, 0) if big else b"")
        sizes = zf.MAX32 if big else 0
        yield from self._put(
            zf.LOCAL.pack(
                zf.LOCAL_SIG,
                zf.NEEDED64 if big else zf.NEEDED,
                flags,
                method,
                clock,
                date,
                0,
                sizes,
                sizes,
                len(name),
                len(local_extra),
            )
            + name
            + local_extra
        )
        crc = packed_size = 0
        engine = isal_zlib.compressobj(self.level, isal_zlib.DEFLATED, -15)
        made = 0
        for data in chunks:
            made += len(data)
            crc = isal_zlib.crc32(data, crc)
            body = engine.compress(data) if self.deflate else data
            if body:
                packed_size += len(body)
                yield from self._put(body)
        if self.deflate:
            tail = engine.flush()
            packed_size += len(tail)
            yield from self._put(tail)
        if made != size:
            raise IntegrityError(f"zip member {name!r}: {made} bytes, expected {size}")
        descriptor = zf.DESCRIPTOR64 if big else zf.DESCRIPTOR32
        yield from self._put(descriptor.pack(zf.DESCRIPTOR_SIG, crc, packed_size, size))
        self._central(
            name,
            mode,
            flags,
            method,
            date,
            clock,
            crc,
            packed_size,
            size,
            offset,
            central_extra,
            zip64=big,
        )

    def _central(
        self,
        name: bytes,
        mode: int,
        flags: int,
        method: int,
        date: int,
        clock: int,
        crc: int,
        packed: int,
        size: int,
        offset: int,
        extra: bytes,
        zip64: bool = False,
    ) -> None:
        wide = [v for v in (size, packed, offset) if v >= zf.MAX32]
        if wide:
            extra = struct.pack(f"<HH{len(wide)}Q", zf.EXTRA_ZIP64, 8 * len(wide), *wide) + extra
        attrs = (mode & 0xFFFF) << 16 | (0x10 if stat.S_ISDIR(mode) else 0)
        self.central.append(
            zf.CENTRAL.pack(
                zf.CENTRAL_SIG,
                zf.MADE_BY,
                zf.NEEDED64 if wide or zip64 else zf.NEEDED,
                flags,
                method,
                clock,
                date,
                crc,
                min(packed, zf.MAX32),
                min(size, zf.MAX32),
                len(name),
                len(extra),
                0,
                0,
                0,
                attrs,
                min(offset, zf.MAX32),
            )
            + name
            + extra
        )

    def finish(self) -> Iterator[bytes]:
        start = self.offset
        for record in self.central:
            yield from self._put(record)
        count, length = len(self.central), self.offset - start
        self.central = []
        if count >= zf.MAX16 or start >= zf.MAX32 or length >= zf.MAX32:
            at = self.offset
            yield from self._put(
                zf.EOCD64.pack(
                    zf.EOCD64_SIG, 44, zf.MADE_BY, zf.NEEDED64, 0, 0, count, count, length, start
                )
            )
            yield from self._put(zf.LOCATOR64.pack(zf.LOCATOR64_SIG, 0, at, 1))
        yield from self._put(
            zf.EOCD.pack(
                zf.EOCD_SIG,
                0,
                0,
                min(count, zf.MAX16),
                min(count, zf.MAX16),
                min(length, zf.MAX32),
                min(start, zf.MAX32),
                0,
            )
        )
        if self.pieces:
            yield b"".join(self.pieces)
            self.pieces, self.buffered = [], 0


class ZipStream:
    """A zip written member by member from streams of bytes (not a local tree): the
    server's whole-folder download. `add` yields the member's pieces, `finish` the
    central directory."""

    def __init__(self, *, level: int | None = None, chunk_size: int = CHUNK) -> None:
        self._zip = _Zip(isal_level(level), True, False, chunk_size)

    def add(self, name: str, chunks: Iterable[bytes], *, size: int) -> Iterator[bytes]:
        return self._zip.add_stream(name.encode(), chunks, size=size)

    def finish(self) -> Iterator[bytes]:
        return self._zip.finish()
