"""Walk a local tree for the archive writers, in a reproducible order, and read its
files while checking that they hold still.

Order: depth first, a folder before its contents, names sorted as bytes; so the
same tree always gives the same archive bytes, which resumable uploads rely on.
Names are bytes end to end (no decode/encode per file, and names that are not
UTF-8 survive). Symlinks are reported, never followed. Sockets, FIFOs and device
files raise InvalidSpec naming the path, unless `skip_special`.

A regular file is known by its directory entry's type (no `lstat`) and described by
the file itself once opened (`open_file`: an `fstat` of what will be read). A file
that changes while it is read (Argo's "write too long", argoproj/argo-workflows#14062)
raises SourceChanged naming it: the archive already promised its size, and
snapshotting would need a temporary copy. Growth and shrinkage are seen by the reads
themselves; a same-size rewrite by an `fstat` after the last read (inode, device and
mtime must still match the first). Something other than a regular file found where
one was listed (a FIFO, a folder, a symlink) is SourceChanged too.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from operator import attrgetter
from typing import NamedTuple

from argosy.artifacts.errors import InvalidSpec, LocalIOError, SourceChanged

CHUNK = 1 << 20
# O_NONBLOCK: a FIFO swapped in for a listed file fails the type check, never blocks
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_by_name = attrgetter("name")


class Found(NamedTuple):
    name: bytes  # archive name, '/'-separated, folders without the trailing slash
    path: bytes  # where it is on disk
    st: os.stat_result | None  # from lstat; None for a regular file (see open_file)


def io_error(path: bytes, error: OSError) -> LocalIOError | SourceChanged:
    name = os.fsdecode(path)
    if isinstance(error, FileNotFoundError):
        return SourceChanged(f"{name} vanished while it was being archived")
    if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink where a file was listed
        return SourceChanged(f"{name} was replaced by a symlink while it was being archived")
    return LocalIOError(f"cannot archive {name}: {error.strerror or error}")


def walk(
    root: str | os.PathLike[str], *, root_name: str | None = None, skip_special: bool = False
) -> Iterator[Found]:
    """Everything under `root` (a folder or a regular file), named relative to it, or
    under the one top-level folder `root_name` (which then carries the root's mode).
    `root` itself is followed if it is a symlink, as tar follows its arguments."""
    path = os.fsencode(root)
    try:
        st = os.stat(path)
    except OSError as e:
        raise io_error(path, e) from None
    top = os.fsencode(root_name) if root_name is not None else None
    if top is not None and (not top or b"/" in top or top in (b".", b"..")):
        raise InvalidSpec(f"archive root name must be one plain name, not {root_name!r}")
    if stat.S_ISREG(st.st_mode):
        # opened by its real path: the root is followed, nothing below it is
        yield Found(top or os.path.basename(path.rstrip(b"/")), os.path.realpath(path), None)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidSpec(f"{os.fsdecode(path)}: not a folder or a regular file")
    if top is not None:
        yield Found(top, path, st)
    # An explicit stack of sorted listings: a folder, then everything inside it.
    stack = [(iter(_scan(path)), top + b"/" if top is not None else b"")]
    while stack:
        entries, base = stack[-1]
        for entry in entries:
            try:
                regular = entry.is_file(follow_symlinks=False)  # the entry's type: no lstat
                est = None if regular else entry.stat(follow_symlinks=False)
            except OSError as e:
                raise io_error(entry.path, e) from None
            if est is None:
                yield Found(base + entry.name, entry.path, None)
                continue
            kind = stat.S_IFMT(est.st_mode)
            if kind == stat.S_IFLNK:
                yield Found(base + entry.name, entry.path, est)
            elif kind == stat.S_IFDIR:
                yield Found(base + entry.name, entry.path, est)
                stack.append((iter(_scan(entry.path)), base + entry.name + b"/"))
                break
            elif not skip_special:
                raise InvalidSpec(
                    f"{os.fsdecode(entry.path)} is a {_kind_name(kind)}: archives hold"
                    " files, folders and symlinks only (skip_special=True leaves such"
                    " entries out)"
                )
        else:
            stack.pop()


def _scan(path: bytes) -> list[os.DirEntry[bytes]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=_by_name)
    except OSError as e:
        raise io_error(path, e) from None


def _kind_name(kind: int) -> str:
    return {
        stat.S_IFDIR: "folder",
        stat.S_IFLNK: "symlink",
        stat.S_IFSOCK: "socket",
        stat.S_IFIFO: "FIFO",
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
    }.get(kind, "special file")


def read_link(path: bytes) -> bytes:
    try:
        return os.readlink(path)
    except OSError as e:
        raise io_error(path, e) from None


def open_file(path: bytes) -> tuple[int, os.stat_result]:
    """A listed regular file, opened, with the stat of what was opened; the caller
    closes it. Anything else found there now is SourceChanged."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as e:
        raise io_error(path, e) from None
    try:
        st = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise io_error(path, e) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise changed(path, f"was replaced by a {_kind_name(stat.S_IFMT(st.st_mode))}")
    return fd, st


def read_file(fd: int, path: bytes, st: os.stat_result) -> Iterator[bytes]:
    """The bytes of the file open at `fd` (see open_file; left open) in reads of up
    to 1 MiB; exactly st.st_size of them, or SourceChanged. A file under 1 MiB takes
    one read."""
    size = st.st_size
    try:
        done = 0
        while True:
            remaining = size - done
            # one byte past the size: a file that grew shows it in the same read
            want = remaining + 1 if remaining < CHUNK else CHUNK
            data = os.read(fd, want)
            done += len(data)
            if done > size:
                raise changed(path, f"grew past its {size} bytes")
            if data:
                yield data
            if done == size and len(data) < want:
                break
            if not data:
                raise changed(path, f"shrank to {done} of its {size} bytes")
        after = os.fstat(fd)
    except OSError as e:
        raise io_error(path, e) from None
    check_unchanged(path, st, after)


def check_unchanged(path: bytes, st: os.stat_result, after: os.stat_result) -> None:
    """A file read to its end is still the one opened (inode, device, mtime)."""
    if (after.st_ino, after.st_dev, after.st_mtime_ns) != (st.st_ino, st.st_dev, st.st_mtime_ns):
        raise changed(path, "was modified or replaced")


def changed(path: bytes, what: str) -> SourceChanged:
    return SourceChanged(
        f"{os.fsdecode(path)} {what} while it was being archived; the"
        " archive is unusable: archive it again once the file is stable"
    )
