"""Stream a directory as a tar archive, as fast as GNU tar, in bounded memory.

`tarfile` spends most of its time per member in Python (TarInfo objects, pwd/grp
lookups, header re-encoding) and managed ~5.5k files/s here; this writer does one
`lstat` (from `scandir`), one `open`, one large `read` and one `fstat` per small file
and builds headers from precomputed pieces.

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
from typing import Protocol

from argosy.artifacts.archive import tarformat as tf
from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.archive.walk import CHUNK, read_file, read_link, walk


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
) -> Iterator[bytes]:
    """Yield the tar archive of `root` in chunks of about `chunk_size` bytes (at most
    `chunk_size` plus one 1 MiB read). Members are named relative to `root`
    ('a/b.txt'), or under the one top-level folder `root_name` ('out/a/b.txt', the
    layout Argo writes). A `root` that is a regular file gives a one-member archive."""
    pieces: list[bytes] = []
    buffered = 0
    written = 0
    for found in walk(root, root_name=root_name, skip_special=skip_special):
        st = found.st
        mtime = st.st_mtime_ns // 1_000_000_000 if keep_mtime else 0
        kind = stat.S_IFMT(st.st_mode)
        at = written + buffered
        if kind == stat.S_IFREG:
            size = st.st_size
            pieces.append(
                tf.encode_header(
                    found.name,
                    mode=stat.S_IMODE(st.st_mode),
                    size=size,
                    mtime=mtime,
                    typeflag=tf.REGULAR,
                )
            )
            buffered += len(pieces[-1])
            if on_member is not None:
                on_member(
                    found.name,
                    EntryType.FILE,
                    size=size,
                    mode=stat.S_IMODE(st.st_mode),
                    mtime=mtime,
                    linkname=b"",
                    header=at,
                    data=written + buffered,
                )
            for data in read_file(found.path, st):
                pieces.append(data)
                buffered += len(data)
                if buffered >= chunk_size:
                    yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    pieces, written, buffered = [], written + buffered, 0
            if size % tf.BLOCK:
                pieces.append(tf.padding(size))
                buffered += len(pieces[-1])
        elif kind == stat.S_IFDIR:
            pieces.append(
                tf.encode_header(
                    found.name + b"/",
                    mode=stat.S_IMODE(st.st_mode),
                    size=0,
                    mtime=mtime,
                    typeflag=tf.DIRECTORY,
                )
            )
            buffered += len(pieces[-1])
            if on_member is not None:
                on_member(
                    found.name,
                    EntryType.DIR,
                    size=0,
                    mode=stat.S_IMODE(st.st_mode),
                    mtime=mtime,
                    linkname=b"",
                    header=at,
                    data=written + buffered,
                )
        else:
            target = read_link(found.path)
            pieces.append(
                tf.encode_header(
                    found.name,
                    mode=0o777,
                    size=0,
                    mtime=mtime,
                    typeflag=tf.SYMLINK,
                    linkname=target,
                )
            )
            buffered += len(pieces[-1])
            if on_member is not None:
                on_member(
                    found.name,
                    EntryType.SYMLINK,
                    size=0,
                    mode=0o777,
                    mtime=mtime,
                    linkname=target,
                    header=at,
                    data=written + buffered,
                )
        if buffered >= chunk_size:
            yield b"".join(pieces)
            pieces, written, buffered = [], written + buffered, 0
    pieces.append(tf.end_of_archive(written + buffered))
    yield b"".join(pieces)
