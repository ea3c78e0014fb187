"""`argosy ls --archive-contents`: the entries of an archive, without extracting it.

A tar stream is read through once (its data is skipped, not kept); a zip is listed
from its central directory alone (plus one small read per symlink for its target).
Nothing is judged here: hostile names are listed as stored, the extractor refuses
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from argosy.artifacts.archive.codecs import Codec
from argosy.artifacts.archive.entry import Entry
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.archive.tarreader import read_tar
from argosy.artifacts.archive.zipreader import list_zip

__all__ = ["list_entries", "list_zip"]


def list_entries(
    chunks: Iterable[bytes],
    *,
    compression: Codec | Literal["auto"] = "auto",
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> Iterator[Entry]:
    """(path, type, size, mode, mtime, linkname) of every member of a tar stream."""
    for member in read_tar(chunks, compression=compression, limits=limits):
        yield member.entry
