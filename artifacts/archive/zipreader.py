"""Read a zip through ranged reads: the central directory from the tail first, then
only the byte ranges of the members wanted.

A zip's index sits at its end, so a stream cannot be unpacked in order; an object
store serves ranges instead. The caller passes `read_range(start, end) -> bytes`
(bytes [start, end), e.g. one S3 ranged GET) and the total size. Reads are
coalesced: consecutive wanted members are fetched in windows of up to 8 MiB, and
unwanted members' bytes are never requested, which is what makes `--include` cheap.

Corrupt input raises IntegrityError: a missing or inconsistent end record, members
that overlap (the trick behind "overlapping" zip bombs), a local header that does
not match, data that inflates past its declared size or fails its CRC-32. Encrypted
members and methods other than stored and deflate raise InvalidSpec, and so does
(as ExpansionRefused) a member, or the zip as a whole, inflating past
`ExtractLimits.max_expansion`: a 2 MiB member can declare and truly hold 2 GiB.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple

from isal import isal_zlib

from argosy.artifacts.archive import zipformat as zf
from argosy.artifacts.archive.codecs import ISAL_ERROR
from argosy.artifacts.archive.entry import Entry, EntryType, Member
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.archive.paths import member_path
from argosy.artifacts.errors import IntegrityError, InvalidSpec

ReadRange = Callable[[int, int], bytes]
CHUNK = 1 << 20
WINDOW = 8 << 20
_TAIL = zf.EOCD.size + zf.MAX16 + zf.LOCATOR64.size  # EOCD, the longest comment, locator
_MAX_LINK = 64 * 1024
_MAX_DIRECTORY = 512 << 20  # ~3 million members with typical names
_KINDS = {
    stat.S_IFREG: EntryType.FILE,
    stat.S_IFDIR: EntryType.DIR,
    stat.S_IFLNK: EntryType.SYMLINK,
    stat.S_IFCHR: EntryType.CHARDEV,
    stat.S_IFBLK: EntryType.BLOCKDEV,
    stat.S_IFIFO: EntryType.FIFO,
}


class ZipMember(NamedTuple):
    entry: Entry  # linkname is empty here: a symlink's target is its data
    method: int
    crc: int
    packed: int
    offset: int  # of the local header
    end: int  # where the next member (or the central directory) starts


class _Ranges:
    """Exact reads through one cached window, never past `limit`."""

    def __init__(self, read_range: ReadRange, size: int) -> None:
        self._read = read_range
        self.size = size
        self._start = self._end = 0
        self._buf = b""
        self.limit = size
        self.requests = 0

    def read(self, start: int, end: int) -> bytes:
        if end > self.size or start < 0:
            raise IntegrityError(f"zip archive truncated: needs bytes up to {end} of {self.size}")
        if not (self._start <= start and end <= self._end):
            fetch_end = max(end, min(start + WINDOW, self.limit))
            data = self._read(start, fetch_end)
            self.requests += 1
            if len(data) != fetch_end - start:
                raise IntegrityError(
                    f"zip read of bytes {start}-{fetch_end} returned {len(data)} bytes"
                )
            self._buf, self._start, self._end = data, start, fetch_end
        return self._buf[start - self._start : end - self._start]


def _find_end(ranges: _Ranges) -> tuple[int, int, int]:
    """(entries, central directory offset, its size) from the end records."""
    size = ranges.size
    tail_start = max(0, size - _TAIL)
    ranges.limit = size
    tail = ranges.read(tail_start, size)
    signature = struct.pack("<I", zf.EOCD_SIG)
    at = tail.rfind(signature)
    while at >= 0:  # the record whose comment ends exactly at the end of the archive
        if at + zf.EOCD.size <= len(tail) and at + zf.EOCD.size + struct.unpack_from(
            "<H", tail, at + 20
        )[0] == len(tail):
            break
        at = tail.rfind(signature, 0, at)
    if at < 0:
        raise IntegrityError("not a zip archive: no end-of-central-directory record")
    _, disk, _, _, count, cd_size, cd_offset, _ = zf.EOCD.unpack_from(tail, at)
    if disk:
        raise InvalidSpec("multi-disk zip archives are not supported")
    eocd_at = tail_start + at
    locator_at = at - zf.LOCATOR64.size
    if locator_at >= 0 and struct.unpack_from("<I", tail, locator_at)[0] == zf.LOCATOR64_SIG:
        _, _, eocd64_at, _ = zf.LOCATOR64.unpack_from(tail, locator_at)
        record = ranges.read(eocd64_at, eocd64_at + zf.EOCD64.size)
        fields = zf.EOCD64.unpack(record)
        if fields[0] != zf.EOCD64_SIG:
            raise IntegrityError("zip64 end record missing where its locator points")
        count, cd_size, cd_offset = fields[7], fields[8], fields[9]
        eocd_at = eocd64_at
    if cd_offset + cd_size > eocd_at:
        raise IntegrityError(
            "zip central directory runs past the end records: corrupt or truncated archive"
        )
    return count, cd_offset, cd_size


def read_index(
    read_range: ReadRange, size: int, *, limits: ExtractLimits = DEFAULT_LIMITS
) -> list[ZipMember]:
    """Every member, from the central directory, in archive order."""
    ranges = _Ranges(read_range, size)
    return _index(ranges, limits)


def _index(ranges: _Ranges, limits: ExtractLimits) -> list[ZipMember]:
    count, cd_offset, cd_size = _find_end(ranges)
    if count > limits.max_members:
        raise InvalidSpec(
            f"zip archive has {count} members, above the cap of"
            f" {limits.max_members} (ExtractLimits.max_members)"
        )
    if cd_size > _MAX_DIRECTORY:
        raise InvalidSpec(
            f"zip central directory of {cd_size} bytes is above the cap of {_MAX_DIRECTORY}"
        )
    ranges.limit = cd_offset + cd_size
    directory = ranges.read(cd_offset, cd_offset + cd_size)
    raw: list[tuple[Entry, int, int, int, int]] = []
    pos = 0
    for _ in range(count):
        if pos + zf.CENTRAL.size > len(directory):
            raise IntegrityError("zip central directory is shorter than its entry count")
        (
            sig,
            made_by,
            _,
            flags,
            method,
            clock,
            date,
            crc,
            packed,
            size,
            name_len,
            extra_len,
            comment_len,
            _,
            _,
            attrs,
            offset,
        ) = zf.CENTRAL.unpack_from(directory, pos)
        if sig != zf.CENTRAL_SIG:
            raise IntegrityError(f"zip central directory corrupt at byte {cd_offset + pos}")
        pos += zf.CENTRAL.size
        name_raw = directory[pos : pos + name_len]
        extra = zf.extras(directory[pos + name_len : pos + name_len + extra_len])
        pos += name_len + extra_len + comment_len
        name = (
            name_raw.decode("utf-8", "surrogateescape")
            if flags & zf.FLAG_UTF8
            else name_raw.decode("cp437")
        )
        if zf.EXTRA_ZIP64 in extra:
            size, packed, offset = _zip64(extra[zf.EXTRA_ZIP64], size, packed, offset, name)
        if flags & zf.FLAG_ENCRYPTED:
            raise InvalidSpec(f"zip member {name!r} is encrypted: not supported")
        if method not in (zf.STORED, zf.DEFLATED):
            raise InvalidSpec(
                f"zip member {name!r} uses compression method {method}: only"
                " stored and deflate are supported"
            )
        kind, mode = _kind_and_mode(name, made_by, attrs)
        data_size = size if kind in (EntryType.FILE, EntryType.SYMLINK) else 0
        entry = Entry(name, kind, data_size, mode, _mtime(extra, date, clock))
        raw.append((entry, method, crc, packed, offset))
    return _with_extents(raw, cd_offset)


def _zip64(data: bytes, size: int, packed: int, offset: int, name: str) -> tuple[int, int, int]:
    values = list(struct.unpack_from(f"<{len(data) // 8}Q", data))
    try:
        if size == zf.MAX32:
            size = values.pop(0)
        if packed == zf.MAX32:
            packed = values.pop(0)
        if offset == zf.MAX32:
            offset = values.pop(0)
    except IndexError:
        raise IntegrityError(f"zip member {name!r} has a short zip64 extra field") from None
    return size, packed, offset


def _kind_and_mode(name: str, made_by: int, attrs: int) -> tuple[EntryType, int]:
    mode = attrs >> 16
    if made_by >> 8 == zf.UNIX and mode:
        kind = _KINDS.get(stat.S_IFMT(mode))
        if kind is None and stat.S_IFMT(mode) == 0:
            kind = EntryType.DIR if name.endswith("/") else EntryType.FILE
        if kind is None:
            raise InvalidSpec(
                f"zip member {name!r} has an unsupported file type {oct(stat.S_IFMT(mode))}"
            )
        return kind, stat.S_IMODE(mode)
    if name.endswith("/") or attrs & 0x10:
        return EntryType.DIR, 0o755
    return EntryType.FILE, 0o644


def _mtime(extra: dict[int, bytes], date: int, clock: int) -> int:
    stamp = extra.get(zf.EXTRA_TIMESTAMP, b"")
    if len(stamp) >= 5 and stamp[0] & 1:
        return int(struct.unpack_from("<I", stamp, 1)[0])
    return zf.from_dos(date, clock)


def _with_extents(
    raw: list[tuple[Entry, int, int, int, int]],
    cd_offset: int,
) -> list[ZipMember]:
    order = sorted(range(len(raw)), key=lambda i: raw[i][4])
    ends = [0] * len(raw)
    for rank, i in enumerate(order):
        ends[i] = raw[order[rank + 1]][4] if rank + 1 < len(order) else cd_offset
        entry, _, _, packed, offset = raw[i]
        minimum = offset + zf.LOCAL.size + packed
        if minimum > ends[i]:
            raise IntegrityError(
                f"zip member {entry.path!r} overlaps the next member or the"
                " central directory: malformed archive (or a zip bomb)"
            )
    return [
        ZipMember(entry, method, crc, packed, offset, ends[i])
        for i, (entry, method, crc, packed, offset) in enumerate(raw)
    ]


def read_zip(
    read_range: ReadRange,
    size: int,
    *,
    select: Callable[[str], bool] | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> Iterator[Member]:
    """Yield the members in archive order. Data is read only when iterated; members
    that `select` (given normalised paths) turns down are yielded without data and
    without any read, so an extractor can still count and skip them."""
    ranges = _Ranges(read_range, size)
    index = _index(ranges, limits)
    wanted = [m for m in index if select is None or _selected(select, m.entry.path)]
    runs = _run_ends(wanted)
    chosen = {id(m) for m in wanted}
    totals = _Totals(limits)
    for member in index:
        if id(member) not in chosen:
            yield Member(member.entry, iter(()))
            continue
        ranges.limit = runs[member.offset]
        entry = member.entry
        if entry.type is EntryType.SYMLINK:
            yield Member(_with_target(ranges, member), iter(()))
        elif entry.type is EntryType.FILE:
            yield Member(entry, _data(ranges, member, totals))
        else:
            yield Member(entry, iter(()))


def _selected(select: Callable[[str], bool], name: str) -> bool:
    try:
        path = member_path(name)
    except InvalidSpec:
        return True  # let the extractor refuse it, naming it
    return not path or select(path)


def _run_ends(wanted: list[ZipMember]) -> dict[int, int]:
    """For each wanted member's offset, where its run of adjacent wanted members ends:
    reads may be coalesced up to there and no further."""
    ends: dict[int, int] = {}
    run: list[ZipMember] = []
    for member in sorted(wanted, key=lambda m: m.offset):
        if run and member.offset != run[-1].end:
            ends.update((m.offset, run[-1].end) for m in run)
            run = []
        run.append(member)
    ends.update((m.offset, run[-1].end) for m in run)
    return ends


class _Totals:
    """Deflated bytes read and inflated bytes made over a whole zip, for the expansion
    limit (stored members cannot expand and are not counted)."""

    __slots__ = ("limits", "read", "made")

    def __init__(self, limits: ExtractLimits) -> None:
        self.limits = limits
        self.read = self.made = 0

    def check(self, name: str, *, made: int, read: int) -> None:
        """After a piece of member `name`: `made` of its bytes inflated from `read`."""
        self.limits.check_expansion(made=made, read=read, what=f"zip member {name!r}")
        self.limits.check_expansion(made=self.made, read=self.read, what="zip archive")


def _data(ranges: _Ranges, member: ZipMember, totals: _Totals | None = None) -> Iterator[bytes]:
    """A member's bytes, inflated and checked; with `totals`, each inflated piece is
    held to the expansion limit, for the member and for the whole archive."""
    entry = member.entry
    header = ranges.read(member.offset, member.offset + zf.LOCAL.size)
    fields = zf.LOCAL.unpack(header)
    if fields[0] != zf.LOCAL_SIG:
        raise IntegrityError(f"zip member {entry.path!r}: no local header at byte {member.offset}")
    start = member.offset + zf.LOCAL.size + fields[9] + fields[10]
    end = start + member.packed
    if end > member.end:
        raise IntegrityError(f"zip member {entry.path!r} runs into the next member")
    crc = produced = taken = 0
    inflater = isal_zlib.decompressobj(-15) if member.method == zf.DEFLATED else None
    watch = totals if inflater is not None and totals and totals.limits.max_expansion else None
    before = watch.read if watch is not None else 0  # the archive's, before this member

    def made(out: bytes, consumed: int) -> None:
        nonlocal produced, crc
        produced += len(out)
        if produced > entry.size:
            raise IntegrityError(
                f"zip member {entry.path!r} expands past the {entry.size} bytes it declares"
            )
        if watch is not None:
            watch.made += len(out)
            watch.read = before + consumed
            watch.check(entry.path, made=produced, read=consumed)
        crc = isal_zlib.crc32(out, crc)

    try:
        for pos in range(start, end, CHUNK):
            piece = ranges.read(pos, min(pos + CHUNK, end))
            taken += len(piece)
            while piece:
                if inflater is None:
                    out, piece = piece, b""
                else:
                    out = inflater.decompress(piece, CHUNK)
                    piece = inflater.unconsumed_tail
                made(out, taken - len(piece))
                if out:
                    yield out
                elif inflater is not None and inflater.eof:
                    break
        while inflater is not None and not inflater.eof:
            out = inflater.decompress(b"", CHUNK)
            if not out:
                raise IntegrityError(f"zip member {entry.path!r}: deflate data truncated")
            made(out, taken)
            yield out
    except ISAL_ERROR as e:
        raise IntegrityError(f"zip member {entry.path!r}: corrupt deflate data: {e}") from None
    if produced != entry.size or crc != member.crc:
        raise IntegrityError(
            f"zip member {entry.path!r} fails its check: {produced} of"
            f" {entry.size} bytes, CRC-32 {crc:08x} where {member.crc:08x}"
            " was recorded"
        )


def list_zip(
    read_range: ReadRange, size: int, *, limits: ExtractLimits = DEFAULT_LIMITS
) -> Iterator[Entry]:
    """Every member's entry; symlink targets are read (one small range each), nothing
    else beyond the central directory."""
    ranges = _Ranges(read_range, size)
    for member in _index(ranges, limits):
        if member.entry.type is not EntryType.SYMLINK:
            yield member.entry
            continue
        ranges.limit = member.end
        yield _with_target(ranges, member)


def _with_target(ranges: _Ranges, member: ZipMember) -> Entry:
    """A symlink's entry with its target, which zip keeps as the member's data."""
    if member.entry.size > _MAX_LINK:
        raise IntegrityError(
            f"zip symlink {member.entry.path!r} has a {member.entry.size}-byte target"
        )
    target = b"".join(_data(ranges, member)).decode("utf-8", "surrogateescape")
    return member.entry._replace(size=0, linkname=target)
