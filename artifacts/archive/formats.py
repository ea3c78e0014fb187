"""Argosy's archive formats by name, as the CLI and Argo's `archive:` field say them.

    tar       plain tar
    tar.zst   tar + zstd (Argosy's fast default for folders), seekable: independent
              frames, a member index and a seek table (seekwriter.py)
    tar.gz    tar + gzip (Argo's default `.tgz`), via ISA-L
    zip       zip, deflated via ISA-L

(`none`, one object per file, is not an archive and lives with the tree transfers.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal, get_args

from argosy.artifacts.archive import seekformat as sf
from argosy.artifacts.archive.codecs import compress
from argosy.artifacts.archive.pipeline import background
from argosy.artifacts.archive.seekwriter import MemberIndex, compress_seekable
from argosy.artifacts.archive.tarwriter import write_tar
from argosy.artifacts.archive.zipwriter import write_zip
from argosy.artifacts.buffers import Recycler
from argosy.artifacts.errors import InvalidSpec

Format = Literal["tar", "tar.zst", "tar.gz", "zip"]
FORMATS: tuple[str, ...] = get_args(Format)


def write_archive(
    root: str | os.PathLike[str],
    fmt: Format,
    *,
    level: int | None = None,
    keep_mtime: bool = False,
    skip_special: bool = False,
    root_name: str | None = None,
) -> Iterator[bytes]:
    """The archive of `root` in format `fmt`, as a stream of chunks."""
    if fmt == "zip":
        return write_zip(
            root, level=level, keep_mtime=keep_mtime, skip_special=skip_special, root_name=root_name
        )
    if fmt not in ("tar", "tar.zst", "tar.gz"):
        raise InvalidSpec(f"unknown archive format {fmt!r} ({', '.join(FORMATS)})")
    if fmt == "tar.zst":
        index = MemberIndex()
        chunks = Recycler(sf.FRAME_SIZE)  # handed back as each frame is compressed
        tar = write_tar(
            root,
            keep_mtime=keep_mtime,
            skip_special=skip_special,
            root_name=root_name,
            chunk_size=sf.FRAME_SIZE,  # a chunk per frame: compressed as it is, never joined
            on_member=index,
            recycler=chunks,
        )
        return compress_seekable(background(tar), level=level, index=index, recycle=chunks.give)
    tar = write_tar(root, keep_mtime=keep_mtime, skip_special=skip_special, root_name=root_name)
    if fmt == "tar":
        return tar
    # the tree is read and framed in a second thread while this one compresses
    return compress(background(tar), "gzip", level=level)
