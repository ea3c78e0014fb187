"""Stream a directory as a tar archive, as fast as GNU tar, in bounded memory.

`tarfile` spends most of its time per member in Python (TarInfo objects, pwd/grp
lookups, header re-encoding) and managed ~5.5k files/s here; this writer does one
`lstat` (from `scandir`), one `open`, one large `read` and one `fstat` per small file
and builds headers from precomputed pieces.

The bytes are a pure function of the tree: entries in sorted order (a folder before
its contents, names compared as bytes), uid/gid 0, empty owner names, mtimes 0 unless
asked for, no atime/ctime/pid in any header. Resumable uploads rely on that: the
same tree always gives the same archive.

A file that changes while it is archived (Argo's "write too long", #14062) fails
the archive with SourceChanged naming the file, rather than padding or truncating
it the way GNU tar does: its header already promised a size, and snapshotting would
need a temporary copy. Re-run once the file is stable.

Regular files, folders (empty ones too) and symlinks (stored as links, never
followed) are archived; hardlinked files are stored as separate copies. Sockets,
FIFOs and device files raise InvalidSpec naming the path unless `skip_special=True`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from operator import attrgetter

from argosy.artifacts.archive import tarformat as tf
from argosy.artifacts.errors import InvalidSpec, LocalIOError, SourceChanged

CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_by_name = attrgetter("name")


def write_tar(root: str | os.PathLike[str], *, keep_mtime: bool = False,
              skip_special: bool = False, root_name: str | None = None,
              chunk_size: int = CHUNK) -> Iterator[bytes]:
    """Yield the tar archive of `root` in chunks of about `chunk_size` bytes (never
    more than twice that).

    Members are named relative to `root` ('a/b.txt'); with `root_name` they sit under
    that one top-level folder ('out/a/b.txt', the layout Argo writes), which then
    carries the root's own mode. A `root` that is a regular file gives a one-member
    archive named `root_name` or the file's own name.
    """
    path = os.fsencode(root)
    try:
        st = os.stat(path)
    except OSError as e:
        raise _io_error(path, e) from None
    top = os.fsencode(root_name) if root_name is not None else None
    if top is not None and (not top or b"/" in top or top in (b".", b"..")):
        raise InvalidSpec(f"archive root name must be one plain name, not {root_name!r}")
    writer = _Writer(keep_mtime, skip_special, chunk_size)
    if stat.S_ISREG(st.st_mode):
        yield from writer.file(path, top or os.path.basename(path.rstrip(b"/")), st)
    elif stat.S_ISDIR(st.st_mode):
        if top is not None:
            yield from writer.emit(writer.dir_header(top + b"/", st))
        yield from writer.tree(path, top + b"/" if top is not None else b"")
    else:
        raise InvalidSpec(f"{os.fsdecode(path)}: not a folder or a regular file")
    yield from writer.finish()


def _io_error(path: bytes, error: OSError) -> LocalIOError | SourceChanged:
    name = os.fsdecode(path)
    if isinstance(error, FileNotFoundError):
        return SourceChanged(f"{name} vanished while it was being archived")
    return LocalIOError(f"cannot archive {name}: {error.strerror or error}")


class _Writer:
    """Collects header and data pieces; hands them out joined in ~chunk_size chunks."""

    def __init__(self, keep_mtime: bool, skip_special: bool, chunk_size: int) -> None:
        self.keep_mtime = keep_mtime
        self.skip_special = skip_special
        self.chunk_size = chunk_size
        self.pieces: list[bytes] = []
        self.buffered = 0
        self.written = 0

    def _mtime(self, st: os.stat_result) -> int:
        return st.st_mtime_ns // 1_000_000_000 if self.keep_mtime else 0

    def dir_header(self, name: bytes, st: os.stat_result) -> bytes:
        return tf.encode_header(name, mode=stat.S_IMODE(st.st_mode), size=0,
                                mtime=self._mtime(st), typeflag=tf.DIRECTORY)

    def emit(self, piece: bytes) -> Iterator[bytes]:
        self.pieces.append(piece)
        self.buffered += len(piece)
        if self.buffered >= self.chunk_size:
            yield self._take()

    def _take(self) -> bytes:
        out = self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)
        self.pieces = []
        self.written += self.buffered
        self.buffered = 0
        return out

    def tree(self, top: bytes, prefix: bytes) -> Iterator[bytes]:
        # Depth-first with an explicit stack: a folder's header, then its sorted contents.
        stack = [(iter(self._scan(top)), prefix)]
        while stack:
            entries, base = stack[-1]
            for entry in entries:
                name = base + entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as e:
                    raise _io_error(entry.path, e) from None
                kind = stat.S_IFMT(st.st_mode)
                if kind == stat.S_IFREG:
                    yield from self.file(entry.path, name, st)
                elif kind == stat.S_IFDIR:
                    yield from self.emit(self.dir_header(name + b"/", st))
                    stack.append((iter(self._scan(entry.path)), name + b"/"))
                    break
                elif kind == stat.S_IFLNK:
                    yield from self.symlink(entry.path, name, st)
                elif not self.skip_special:
                    raise InvalidSpec(
                        f"{os.fsdecode(entry.path)} is a {_kind_name(kind)}: tar archives"
                        " here hold files, folders and symlinks only (skip_special=True"
                        " leaves such entries out)")
            else:
                stack.pop()

    @staticmethod
    def _scan(path: bytes) -> list[os.DirEntry[bytes]]:
        try:
            with os.scandir(path) as it:
                return sorted(it, key=_by_name)
        except OSError as e:
            raise _io_error(path, e) from None

    def symlink(self, path: bytes, name: bytes, st: os.stat_result) -> Iterator[bytes]:
        try:
            target = os.readlink(path)
        except OSError as e:
            raise _io_error(path, e) from None
        yield from self.emit(tf.encode_header(name, mode=0o777, size=0,
                                              mtime=self._mtime(st), typeflag=tf.SYMLINK,
                                              linkname=target))

    def file(self, path: bytes, name: bytes, st: os.stat_result) -> Iterator[bytes]:
        size = st.st_size
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as e:
            raise _io_error(path, e) from None
        try:
            # Ask for one byte past the size: a file that grew shows it in the same read.
            want = size + 1 if size < CHUNK else CHUNK
            data = os.read(fd, want)
            yield from self.emit(tf.encode_header(name, mode=stat.S_IMODE(st.st_mode),
                                                  size=size, mtime=self._mtime(st),
                                                  typeflag=tf.REGULAR))
            done = 0
            while True:
                done += len(data)
                if done > size:
                    raise _changed(path, f"grew past its {size} bytes")
                if data:
                    yield from self.emit(data)
                if done == size and len(data) < want:
                    break
                if not data:
                    raise _changed(path, f"shrank to {done} of its {size} bytes")
                remaining = size - done
                want = remaining + 1 if remaining < CHUNK else CHUNK
                data = os.read(fd, want)
            after = os.fstat(fd)
        except OSError as e:
            raise _io_error(path, e) from None
        finally:
            os.close(fd)
        if (after.st_ino, after.st_dev, after.st_mtime_ns) != (st.st_ino, st.st_dev,
                                                               st.st_mtime_ns):
            raise _changed(path, "was modified or replaced")
        if size % tf.BLOCK:
            yield from self.emit(tf.padding(size))

    def finish(self) -> Iterator[bytes]:
        self.pieces.append(tf.end_of_archive(self.written + self.buffered))
        self.buffered += len(self.pieces[-1])
        yield self._take()


def _changed(path: bytes, what: str) -> SourceChanged:
    return SourceChanged(f"{os.fsdecode(path)} {what} while it was being archived; the"
                         " archive is unusable: archive it again once the file is stable")


def _kind_name(kind: int) -> str:
    return {stat.S_IFSOCK: "socket", stat.S_IFIFO: "FIFO", stat.S_IFCHR: "character device",
            stat.S_IFBLK: "block device"}.get(kind, "special file")
