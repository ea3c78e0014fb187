"""Stream a directory as a tar archive, as fast as GNU tar, in bounded memory.

`tarfile` spends most of its time per member in Python (TarInfo objects, pwd/grp
lookups, header re-encoding) and managed ~5.5k files/s here; this writer takes a file's
type from its folder listing and does one `open`, one `fstat`, one large read and one
more `fstat` per small file (see walk.py), and builds headers from precomputed pieces.
Files are read straight into the chunk being filled (`os.readv`), so no byte is copied
in Python between the page cache and the compressor; a tar.zst's chunks are its 4 MiB
frames.

The bytes are a pure function of the tree (see `walk.py` for the order): uid/gid 0,
empty owner names, mtimes 0 unless `keep_mtime`, no atime/ctime/pid anywhere.
Hardlinked files are stored as separate copies. Files that change while they are
read fail the archive with SourceChanged (see `walk.py` for why).

`on_member` is told where each member's header and data start in the tar, as the
seekable tar.zst's member index records them (seekwriter.py).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Protocol, cast

from argosy.artifacts.archive import tarformat as tf
from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.archive.walk import (
    CHUNK,
    Found,
    changed,
    check_unchanged,
    io_error,
    open_file,
    read_link,
    walk,
)
from argosy.artifacts.buffers import Recycler


class MemberSink(Protocol):
    """Told of each member as it is written: `header`, the tar offset of its first header
    block; `data`, of its data."""

    def __call__(
        self,
        path: bytes,
        kind: EntryType,
        *,
        size: int,
        mode: int,
        mtime: int,
        linkname: bytes,
        header: int,
        data: int,
    ) -> None: ...


def write_tar(
    root: str | os.PathLike[str],
    *,
    keep_mtime: bool = False,
    skip_special: bool = False,
    root_name: str | None = None,
    chunk_size: int = CHUNK,
    on_member: MemberSink | None = None,
    recycler: Recycler | None = None,
) -> Iterator[bytes]:
    """Yield the tar archive of `root` in chunks of exactly `chunk_size` bytes (the last
    one shorter), each a buffer of its own that is never written again, unless its
    reader hands it back to `recycler` (of `chunk_size` buffers) to be filled anew. Members are
    named relative to `root` ('a/b.txt'), or under the one top-level folder `root_name`
    ('out/a/b.txt', the layout Argo writes). A `root` that is a regular file gives a
    one-member archive."""
    out = _Chunks(chunk_size, recycler)
    for found in walk(root, root_name=root_name, skip_special=skip_special):
        if found.st is None:  # a regular file: described by what is opened
            fd, st = open_file(found.path)
            try:
                yield from _member(out, found, st, keep_mtime, on_member, fd)
            finally:
                os.close(fd)
        else:
            yield from _member(out, found, found.st, keep_mtime, on_member)
    out.put(tf.end_of_archive(out.offset))
    yield from out.filled()
    yield out.last()


def _member(
    out: _Chunks,
    found: Found,
    st: os.stat_result,
    keep_mtime: bool,
    on_member: MemberSink | None,
    fd: int = -1,
) -> Iterator[bytes]:
    """One member's header, and its data from `fd` for a regular file."""
    mtime = st.st_mtime_ns // 1_000_000_000 if keep_mtime else 0
    kind = stat.S_IFMT(st.st_mode)
    mode, size, linkname = stat.S_IMODE(st.st_mode), 0, b""
    if kind == stat.S_IFREG:
        size, entry, typeflag, name = st.st_size, EntryType.FILE, tf.REGULAR, found.name
    elif kind == stat.S_IFDIR:
        entry, typeflag, name = EntryType.DIR, tf.DIRECTORY, found.name + b"/"
    else:
        linkname = read_link(found.path)
        mode, entry, typeflag, name = 0o777, EntryType.SYMLINK, tf.SYMLINK, found.name
    header = out.offset
    out.put(
        tf.encode_header(
            name, mode=mode, size=size, mtime=mtime, typeflag=typeflag, linkname=linkname
        )
    )
    if on_member is not None:
        on_member(
            found.name,
            entry,
            size=size,
            mode=mode,
            mtime=mtime,
            linkname=linkname,
            header=header,
            data=out.offset,
        )
    if entry is EntryType.FILE:
        yield from out.read_file(fd, found.path, st)
        if size % tf.BLOCK:
            out.put(tf.padding(size))
    yield from out.filled()


class _Chunks:
    """The stream written in place into chunks of `size` bytes: headers are copied in,
    file data is read straight into them (no bytes object per read, no joining)."""

    def __init__(self, size: int, recycler: Recycler | None = None) -> None:
        if size < 1:
            raise ValueError("chunks need at least one byte")
        if recycler is not None and recycler.size != size:
            raise ValueError("the recycler's buffers must be the chunks' size")
        self.size = size
        self._recycler = recycler
        self.offset = 0  # bytes of the stream written so far
        self._ready: list[bytearray] = []
        self._start()

    def _start(self) -> None:
        # every byte of a chunk is written before it is handed out: a reused one is fine
        self._buffer = bytearray(self.size) if self._recycler is None else self._recycler.take()
        self._view = memoryview(self._buffer)
        self._pos = 0

    def _advance(self, n: int) -> None:
        self._pos += n
        self.offset += n
        if self._pos == self.size:
            self._view.release()
            self._ready.append(self._buffer)
            self._start()

    def filled(self) -> list[bytes]:
        """The chunks completed since the last call."""
        ready, self._ready = self._ready, []
        return cast(list[bytes], ready)

    def last(self) -> bytes:
        """What is left: the last, shorter chunk."""
        return bytes(self._view[: self._pos])

    def put(self, data: bytes) -> None:
        if len(data) <= self.size - self._pos:  # the usual case: it fits
            self._view[self._pos : self._pos + len(data)] = data
            self._advance(len(data))
            return
        rest = memoryview(data)
        while rest:
            n = min(len(rest), self.size - self._pos)
            self._view[self._pos : self._pos + n] = rest[:n]
            rest = rest[n:]
            self._advance(n)

    def read_file(self, fd: int, path: bytes, st: os.stat_result) -> Iterator[bytes]:
        """Read exactly st.st_size bytes of the file open at `fd` in, or raise
        SourceChanged (see walk.py); yields each chunk as it is filled."""
        size = st.st_size
        try:
            left = size
            while True:
                # one byte past the size: a file that grew shows it in the same read
                want = min(self.size - self._pos, left + 1)
                got = os.readv(fd, [self._view[self._pos : self._pos + want]])
                if got > left:
                    raise changed(path, f"grew past its {size} bytes")
                left -= got
                self._advance(got)
                if self._ready:
                    yield from self.filled()
                if not left and got < want:
                    break
                if not got:
                    raise changed(path, f"shrank to {size - left} of its {size} bytes")
            after = os.fstat(fd)
        except OSError as e:
            raise io_error(path, e) from None
        check_unchanged(path, st, after)
