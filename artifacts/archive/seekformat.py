"""The bytes of a seekable tar.zst's two trailing frames: the zstd seek table and
Argosy's member index (docs/format.md draws both, byte by byte).

A seekable tar.zst is a tar stream cut into independent zstd frames of `FRAME_SIZE`
bytes of tar each, then two skippable frames, which every zstd decoder skips:

    [frame 0] ... [frame n-1] [member index] [seek table]

The seek table is exactly zstd's "Seekable Format" (contrib/seekable_format): one
entry per frame before it, the member index included (a skippable frame: it holds 0
bytes of tar), then a 9-byte footer ending in 0x8F92EAB1, the last bytes of the
object. The member index says, for each member, where its header and its data start
in the tar; with the seek table that is the byte range of the object to fetch.

Encoding and decoding live together, as tarformat.py does for tar headers; the writer
(seekwriter.py) and the reader (seekable.py) both use this module, and nothing here
reads or writes anything. Decoders take what a hostile object can say and turn every
inconsistency into IntegrityError before allocating anything it sizes.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.errors import IntegrityError

FRAME_SIZE = 4 << 20
"""Tar bytes per frame: a member read fetches and decompresses at most two frames more
than its own bytes. On bench.dirs' ~20k text files (276 MiB), 4 MiB frames come out 1.7%
larger than the one-frame stream zstd's own threads made (8 MiB frames: 1.1% smaller, at
twice the cost of reading a small member); the member index adds ~16 bytes a member."""

SKIPPABLE_HEAD = struct.Struct("<II")  # magic, size of what follows
SEEK_TABLE_MAGIC = 0x184D2A5E  # the skippable magic the Seekable Format uses
SEEKABLE_MAGIC = 0x8F92EAB1
FOOTER = struct.Struct("<IBI")  # frames, descriptor, SEEKABLE_MAGIC
CHECKSUM_FLAG = 0x80
RESERVED_BITS = 0x7C
ENTRY = struct.Struct("<II")  # compressed size, decompressed size
ENTRY_CHECKED = struct.Struct("<III")  # ... and the low 32 bits of XXH64 of its data
EMPTY_XXH64_LOW = 0x51D8E999  # XXH64(b"", seed 0) & 0xFFFFFFFF: a skippable frame's entry

MAX_FRAMES = 0x8000000  # the reference implementation's cap (ZSTD_SEEKABLE_MAXFRAMES)
MAX_FRAME_DATA = 64 << 20
"""The most tar bytes one frame may claim: Argosy writes FRAME_SIZE; a reader holds one
frame's output at a time, so a hostile table must not size it."""

INDEX_MAGIC = 0x184D2A5A  # skippable magic of the member index frame ('A' for Argosy)
INDEX_SIGNATURE = b"ARGOSYMI"
INDEX_VERSION = 1
INDEX_HEADER = struct.Struct("<8sHHIQ")  # signature, version, flags, members, body size
RECORD = struct.Struct("<QQQqIBII")
"""header offset, data offset, size, mtime, mode, type, path length, link length"""
TYPE_CODES: dict[EntryType, int] = {EntryType.FILE: 0, EntryType.DIR: 1, EntryType.SYMLINK: 2}
TYPES: tuple[EntryType, ...] = (EntryType.FILE, EntryType.DIR, EntryType.SYMLINK)
MAX_INDEX_FRAME = 256 << 20
"""The largest member index written or read (compressed): ~15 bytes a member with
typical paths, so some 15 million members; past it the writer leaves the index out."""
MAX_INDEX_BODY = 256 << 20
"""The largest index body (decompressed) written or read: it is held in memory to be
parsed; ~2.5 million members with 60-byte paths."""
INDEX_LEVEL = 3


def compress_bound(size: int) -> int:
    """The most bytes zstd turns `size` bytes into (ZSTD_COMPRESSBOUND), plus a frame
    header and checksum."""
    small = ((128 << 10) - size) >> 11 if size < (128 << 10) else 0
    return size + (size >> 8) + small + 32


def skippable(magic: int, payload: bytes) -> bytes:
    return SKIPPABLE_HEAD.pack(magic, len(payload)) + payload


def encode_seek_table(
    compressed: Sequence[int], decompressed: Sequence[int], checksums: Sequence[int]
) -> bytes:
    """The seek table frame for these frames, with the checksum of every one."""
    body = bytearray()
    for entry in zip(compressed, decompressed, checksums, strict=True):
        body += ENTRY_CHECKED.pack(*entry)
    body += FOOTER.pack(len(compressed), CHECKSUM_FLAG, SEEKABLE_MAGIC)
    return skippable(SEEK_TABLE_MAGIC, bytes(body))


@dataclass(frozen=True)
class Footer:
    frames: int
    checksums: bool

    @property
    def table_size(self) -> int:
        """The whole seek table frame, its skippable header included."""
        entry = ENTRY_CHECKED.size if self.checksums else ENTRY.size
        return SKIPPABLE_HEAD.size + self.frames * entry + FOOTER.size


def decode_footer(tail: bytes, object_size: int) -> Footer | None:
    """The footer in the last 9 bytes of an object, or None when there is no seek table
    (no Seekable magic there: an ordinary zstd stream)."""
    if len(tail) < FOOTER.size:
        return None
    frames, descriptor, magic = FOOTER.unpack_from(tail, len(tail) - FOOTER.size)
    if magic != SEEKABLE_MAGIC:
        return None
    if descriptor & RESERVED_BITS:
        raise IntegrityError(f"seek table descriptor {descriptor:#04x} sets reserved bits")
    if frames > MAX_FRAMES:
        raise IntegrityError(f"seek table claims {frames} frames, above the cap of {MAX_FRAMES}")
    footer = Footer(frames, bool(descriptor & CHECKSUM_FLAG))
    if footer.table_size > object_size:
        raise IntegrityError(
            f"seek table of {frames} frames needs {footer.table_size} bytes;"
            f" the object has {object_size}"
        )
    return footer


@dataclass(frozen=True)
class FrameTable:
    """Where each frame lies: frame i is bytes `packed[i]:packed[i+1]` of the object and
    holds tar bytes `data[i]:data[i+1]`. Arrays, not objects: a 4 TiB archive has a
    million frames."""

    packed: array[int]  # n + 1 offsets into the object
    data: array[int]  # n + 1 offsets into the tar
    checksums: array[int] | None  # n

    @property
    def count(self) -> int:
        return len(self.packed) - 1

    @property
    def tar_size(self) -> int:
        return self.data[-1]


def decode_seek_table(table: bytes, footer: Footer, object_size: int) -> FrameTable:
    """The frames of a seek table frame (`table`: all of it, `footer.table_size` bytes).
    The frames must tile the object exactly up to the table, each no larger than its
    data could compress to and holding at most MAX_FRAME_DATA bytes."""
    magic, size = SKIPPABLE_HEAD.unpack_from(table)
    if magic != SEEK_TABLE_MAGIC or size != len(table) - SKIPPABLE_HEAD.size:
        raise IntegrityError(
            f"seek table frame header ({magic:#010x}, {size} bytes) does not match its"
            f" footer's {footer.frames} frames"
        )
    shape = ENTRY_CHECKED if footer.checksums else ENTRY
    packed, data = array("Q", [0]), array("Q", [0])
    checksums = array("I") if footer.checksums else None
    at, here, made = SKIPPABLE_HEAD.size, 0, 0
    for number, entry in enumerate(shape.iter_unpack(table[at : len(table) - FOOTER.size])):
        csize, dsize = entry[0], entry[1]
        if dsize > MAX_FRAME_DATA:
            raise IntegrityError(
                f"seek table frame {number} claims {dsize} bytes of data, above the cap of"
                f" {MAX_FRAME_DATA}"
            )
        if csize < SKIPPABLE_HEAD.size or (dsize and csize > compress_bound(dsize)):
            raise IntegrityError(
                f"seek table frame {number}: {csize} bytes cannot hold {dsize} bytes of data"
            )
        here, made = here + csize, made + dsize
        packed.append(here)
        data.append(made)
        if checksums is not None:
            checksums.append(entry[2])
    if here != object_size - footer.table_size:
        raise IntegrityError(
            f"seek table frames cover {here} bytes, but {object_size - footer.table_size}"
            " precede the table"
        )
    return FrameTable(packed, data, checksums)


@dataclass(frozen=True, slots=True)
class IndexedMember:
    """One member as the index records it: `path` as stored in the tar (a folder
    without its trailing '/'), where its first header block (`header`, a pax header's
    when it has one) and its data (`data`) start in the tar."""

    path: str
    type: EntryType
    size: int
    mode: int
    mtime: int
    linkname: str
    header: int
    data: int


def encode_record(
    path: bytes,
    kind: EntryType,
    *,
    size: int,
    mode: int,
    mtime: int,
    linkname: bytes,
    header: int,
    data: int,
) -> bytes:
    """One member's record in the index body: its fields, then its path and link target."""
    fields = RECORD.pack(
        header, data, size, mtime, mode, TYPE_CODES[kind], len(path), len(linkname)
    )
    return fields + path + linkname


def index_frame(members: int, body_size: int, packed_body: bytes) -> bytes:
    """The member index frame: its header, then the body as one zstd frame."""
    header = INDEX_HEADER.pack(INDEX_SIGNATURE, INDEX_VERSION, 0, members, body_size)
    return skippable(INDEX_MAGIC, header + packed_body)


@dataclass(frozen=True)
class IndexHeader:
    members: int
    body_size: int


def is_index_frame(head: bytes) -> bool:
    """Whether a skippable frame starting with `head` is Argosy's member index."""
    if len(head) < SKIPPABLE_HEAD.size + len(INDEX_SIGNATURE):
        return False
    magic, _ = SKIPPABLE_HEAD.unpack_from(head)
    at = SKIPPABLE_HEAD.size
    return magic == INDEX_MAGIC and head[at : at + len(INDEX_SIGNATURE)] == INDEX_SIGNATURE


def decode_index_header(frame: bytes, *, max_members: int) -> IndexHeader | None:
    """The index header at the start of a trailing skippable frame, or None when the frame
    is not Argosy's member index (another tool's skippable frame)."""
    if len(frame) < SKIPPABLE_HEAD.size + INDEX_HEADER.size:
        return None
    magic, size = SKIPPABLE_HEAD.unpack_from(frame)
    signature, version, flags, members, body_size = INDEX_HEADER.unpack_from(
        frame, SKIPPABLE_HEAD.size
    )
    if magic != INDEX_MAGIC or signature != INDEX_SIGNATURE:
        return None
    if size != len(frame) - SKIPPABLE_HEAD.size:
        raise IntegrityError(
            f"member index frame says it holds {size} bytes; the seek table gives it"
            f" {len(frame) - SKIPPABLE_HEAD.size}"
        )
    if version != INDEX_VERSION or flags:
        raise IntegrityError(
            f"member index version {version} (flags {flags:#x}) is not one this Argosy reads"
            f" (version {INDEX_VERSION})"
        )
    if members > max_members:
        raise IntegrityError(
            f"member index lists {members} members, above the cap of {max_members}"
        )
    if body_size > MAX_INDEX_BODY or body_size < members * (RECORD.size + 1):
        raise IntegrityError(
            f"member index body of {body_size} bytes cannot hold {members} members"
            f" (cap {MAX_INDEX_BODY})"
        )
    return IndexHeader(members, body_size)


def decode_index_body(
    body: bytes | bytearray, header: IndexHeader, *, tar_size: int, max_header_bytes: int
) -> list[IndexedMember]:
    """The members of an index body, checked against the tar they index: in increasing
    order, none overlapping the next, every header and data range inside the tar, every
    record and string inside the body."""
    members: list[IndexedMember] = []
    at = 0
    floor = 0  # where the next member's header may start at the earliest
    for number in range(header.members):
        where = f"member index entry {number}"
        if at + RECORD.size > len(body):
            raise IntegrityError(f"{where} runs past the index body")
        start, data, size, mtime, mode, code, path_len, link_len = RECORD.unpack_from(body, at)
        at += RECORD.size
        if code >= len(TYPES):
            raise IntegrityError(f"{where} has unknown type {code}")
        kind = TYPES[code]
        if kind is not EntryType.FILE and size:
            raise IntegrityError(f"{where}: a {kind} with {size} bytes of data")
        if (
            start < floor
            or start % 512
            or data < start + 512
            or data - start > max_header_bytes + 2048
        ):
            raise IntegrityError(
                f"{where}: header at {start}, data at {data} overlap the previous member or"
                " are not a tar header's span"
            )
        if data + size > tar_size:
            raise IntegrityError(
                f"{where}: {size} bytes at {data} lie outside the {tar_size}-byte tar"
            )
        if at + path_len + link_len > len(body) or not path_len:
            raise IntegrityError(f"{where}: its names run past the index body")
        path = bytes(body[at : at + path_len]).decode("utf-8", "surrogateescape")
        at += path_len
        link = bytes(body[at : at + link_len]).decode("utf-8", "surrogateescape")
        at += link_len
        members.append(IndexedMember(path, kind, size, mode, mtime, link, start, data))
        floor = data + size
    if at != len(body):
        raise IntegrityError(f"member index body has {len(body) - at} bytes past its last member")
    return members
