"""The tar wire format: POSIX ustar headers, pax extended records, GNU long names.

Encoding and decoding live together so the writer and the reader agree on every
field. The writer emits POSIX.1-2001 (ustar, plus a pax 'x' header only for what
ustar cannot hold: long or non-ASCII names and link names, sizes of 8 GiB and more,
mtimes outside ustar's range). The reader also accepts what GNU tar, Go's
archive/tar and Python's tarfile write by default (GNU 'L'/'K' long names, base-256
numbers, old GNU and v7 magic). Malformed headers raise IntegrityError; nothing in
here touches the filesystem.
"""

from __future__ import annotations

import struct
from typing import NamedTuple
from zlib import adler32

from argosy.artifacts.errors import IntegrityError

BLOCK = 512
RECORD = 20 * BLOCK  # GNU tar and tarfile pad archives to whole 10 KiB records
ZERO_BLOCK = bytes(BLOCK)
MAX_OCTAL_11 = 8**11  # the largest size or mtime an 11-digit octal field holds, plus one
PAX_NAME = b"././@PaxHeader"  # what tarfile writes: fixed, so archives stay reproducible

REGULAR = b"0"
HARDLINK = b"1"
SYMLINK = b"2"
CHARDEV = b"3"
BLOCKDEV = b"4"
DIRECTORY = b"5"
FIFO = b"6"
CONTIGUOUS = b"7"
PAX_LOCAL = b"x"
PAX_GLOBAL = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"

_OWNER_IDS = b"0000000\x000000000\x00"  # uid and gid 0
_MAGIC = b"ustar\x0000"
_DEVICE = b"0000000\x000000000\x00"
# Sum of the bytes that never vary: uid/gid, the checksum field read as spaces,
# magic+version, the empty uname/gname and the device numbers.
_CONSTANT_SUM = sum(_OWNER_IDS) + 8 * 0x20 + sum(_MAGIC) + sum(_DEVICE)


# name, mode, uid+gid, size, mtime, checksum, typeflag, linkname, magic+version,
# uname+gname, devmajor+devminor, prefix, padding: struct pads each field with NULs
_USTAR = struct.Struct("100s8s16s12s12s8sc100s8s64s16s155s12x")


def _ustar(
    name: bytes, prefix: bytes, mode: int, size: int, mtime: int, typeflag: bytes, linkname: bytes
) -> bytes:
    """One ustar block; name <= 100, prefix <= 155, linkname <= 100 bytes (the callers')."""
    mode_f = b"%07o\x00" % mode
    size_f = b"%011o\x00" % size
    mtime_f = b"%011o\x00" % mtime
    # byte sums as adler32's low half, 1 + the sum mod 65521: exact up to 256 bytes
    checksum = (
        _CONSTANT_SUM
        + typeflag[0]
        + (adler32(name + linkname) & 0xFFFF)
        + (adler32(b"%s%s%s%s" % (prefix, mode_f, size_f, mtime_f)) & 0xFFFF)
        - 2
    )
    return _USTAR.pack(
        name,
        mode_f,
        _OWNER_IDS,
        size_f,
        mtime_f,
        b"%06o\x00 " % checksum,
        typeflag,
        linkname,
        _MAGIC,
        b"",
        _DEVICE,
        prefix,
    )


def _split_name(name: bytes) -> tuple[bytes, bytes] | None:
    """ustar's (prefix, name) split for names up to 256 bytes, or None."""
    if len(name) <= 100:
        return b"", name
    if len(name) > 256:
        return None
    cut = name.rfind(b"/", len(name) - 101, 156)
    if cut <= 0:
        return None
    return name[:cut], name[cut + 1 :]


def pax_record(key: bytes, value: bytes) -> bytes:
    body = b" %s=%s\n" % (key, value)
    digits = len(str(len(body)))
    length = len(body) + digits
    if len(str(length)) != digits:  # adding the length itself carried a digit over
        length = len(body) + len(str(length))
    return b"%d%s" % (length, body)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encode_header(
    name: bytes, *, mode: int, size: int, mtime: int, typeflag: bytes, linkname: bytes = b""
) -> bytes:
    """The header block(s) of one member: a ustar block, preceded by a pax header when
    a value does not fit ustar. Owner ids are 0 and owner names empty, always."""
    split = _split_name(name) if name.isascii() else None
    link_fits = len(linkname) <= 100 and linkname.isascii()
    if split is not None and link_fits and size < MAX_OCTAL_11 and 0 <= mtime < MAX_OCTAL_11:
        return _ustar(split[1], split[0], mode, size, mtime, typeflag, linkname)
    records = []
    if not (_is_utf8(name) and _is_utf8(linkname)):
        records.append(pax_record(b"hdrcharset", b"BINARY"))
    if split is None:
        records.append(pax_record(b"path", name))
        split = (b"", name[:100])
    if not link_fits:
        records.append(pax_record(b"linkpath", linkname))
        linkname = linkname[:100]
    if size >= MAX_OCTAL_11:
        records.append(pax_record(b"size", b"%d" % size))
        size = 0
    if not 0 <= mtime < MAX_OCTAL_11:
        records.append(pax_record(b"mtime", b"%d" % mtime))
        mtime = 0
    pax = b"".join(records)
    return b"".join(
        (
            _ustar(PAX_NAME, b"", 0o644, len(pax), 0, PAX_LOCAL, b""),
            pax,
            padding(len(pax)),
            _ustar(split[1], split[0], mode, size, mtime, typeflag, linkname),
        )
    )


def padding(size: int) -> bytes:
    return ZERO_BLOCK[: -size % BLOCK]


def end_of_archive(written: int) -> bytes:
    """Two zero blocks, then zeros up to the end of the 10 KiB record."""
    end = written + 2 * BLOCK
    return bytes(2 * BLOCK + (-end % RECORD))


# ---- decoding ----------------------------------------------------------------------


class RawHeader(NamedTuple):
    name: bytes  # with the ustar prefix already joined
    mode: int
    size: int
    mtime: int
    typeflag: bytes
    linkname: bytes


_FIELDS = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12s")


def _cstring(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def parse_number(field: bytes, what: str) -> int:
    """An octal field, or GNU's base-256 for values octal cannot hold."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            value -= 256 ** (len(field) - 1)
        return value
    digits = _cstring(field)
    try:
        return int(digits, 8) if digits.strip() else 0  # int() allows the padding spaces
    except ValueError:
        raise IntegrityError(f"tar header has a malformed {what} field {field!r}") from None


def decode_header(block: bytes) -> RawHeader:
    (
        name,
        mode_f,
        _,
        _,
        size_f,
        mtime_f,
        checksum_f,
        typeflag,
        linkname,
        magic,
        _,
        _,
        _,
        _,
        prefix,
        _,
    ) = _FIELDS.unpack(block)
    try:  # the usual case, plain octal, in one go; anything else field by field
        stored, mode, size, mtime = (
            int(checksum_f.partition(b"\x00")[0], 8),
            int(mode_f.partition(b"\x00")[0], 8),
            int(size_f.partition(b"\x00")[0], 8),
            int(mtime_f.partition(b"\x00")[0], 8),
        )
    except ValueError:
        stored, mode = parse_number(checksum_f, "checksum"), -1
    # adler32's low half is 1 + the byte sum mod 65521: exact for 256 bytes (<= 65280)
    byte_sum = (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) - 2
    if byte_sum - sum(checksum_f) + 256 != stored:
        rest = block[:148] + b"        " + block[156:]
        if sum(b - 256 if b > 127 else b for b in rest) != stored:  # old tars: signed chars
            raise IntegrityError("tar header checksum mismatch: not a tar archive, or corrupt")
    name = name.partition(b"\x00")[0]
    if magic == b"ustar\x0000" or magic[:6] == b"ustar\x00":  # POSIX: prefix joins the name
        if prefix[0]:
            name = prefix.partition(b"\x00")[0] + b"/" + name
    if mode < 0:  # checked only now: a header that is not one reports its checksum first
        mode, size, mtime = (
            parse_number(mode_f, "mode"),
            parse_number(size_f, "size"),
            parse_number(mtime_f, "mtime"),
        )
    if size < 0:
        raise IntegrityError(f"tar header for {name!r} declares a negative size")
    link = linkname.partition(b"\x00")[0] if linkname[0] else b""
    return RawHeader(name, mode & 0o7777, size, mtime, typeflag, link)


def parse_pax(data: bytes) -> dict[bytes, bytes]:
    """pax records: '<length> <key>=<value>\\n', length counting the whole record."""
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # some writers pad the last record with NULs
            break
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space]
        if space < 0 or not digits.isdigit():
            raise IntegrityError("malformed pax header: bad record length")
        end = pos + int(digits)
        if end > len(data) or end <= space + 1 or data[end - 1] != 0x0A:
            raise IntegrityError("malformed pax header: record runs past its length")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq or not key:
            raise IntegrityError("malformed pax header: record without key=value")
        records[key] = value
        pos = end
    return records


def pax_int(value: bytes, key: str) -> int:
    """A pax decimal (mtimes may carry a fraction, which we drop)."""
    whole = value.split(b".", 1)[0]
    body = whole[1:] if whole[:1] == b"-" else whole
    if not body.isdigit():
        raise IntegrityError(f"malformed pax {key} value {value[:40]!r}")
    return int(whole)
