"""What one archive member is, as every format and the listing see it.

Tar and zip describe members differently; the writers, readers, the safe extractor
and `argosy ls --archive-contents` all speak this one shape instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import NamedTuple


class EntryType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"
    FIFO = "fifo"


class Entry(NamedTuple):
    """One member. `path` is the name stored in the archive, '/'-separated, never
    normalised here (the extractor decides what is safe); `size` is the data size of
    a file (0 otherwise); `mode` holds permission bits only; `mtime` is in seconds
    since the epoch; `linkname` is a symlink's target or a hardlink's member name."""

    path: str
    type: EntryType
    size: int
    mode: int
    mtime: int
    linkname: str = ""


class Member(NamedTuple):
    """An entry with its data, as a reader hands it to the extractor. `data` yields
    the file's bytes and must be read to the end (or dropped) before the reader moves
    on; it is empty for everything but files."""

    entry: Entry
    data: Iterator[bytes]
