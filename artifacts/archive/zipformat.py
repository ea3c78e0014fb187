"""The zip wire format (PKWARE APPNOTE 6.3): the records the writer emits and the
reader parses, in one place so both agree on every field.

Only what Argosy needs: stored and deflated members, data descriptors, zip64
sizes and offsets, Unix modes in the external attributes, the extended timestamp
extra field (0x5455) for exact mtimes, UTF-8 names (flag bit 11).
"""

from __future__ import annotations

import struct
import time

LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
LOCAL_SIG = 0x04034B50
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
CENTRAL_SIG = 0x02014B50
DESCRIPTOR32 = struct.Struct("<IIII")
DESCRIPTOR64 = struct.Struct("<IIQQ")
DESCRIPTOR_SIG = 0x08074B50
EOCD = struct.Struct("<IHHHHIIH")  # 22 bytes
EOCD_SIG = 0x06054B50
EOCD64 = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
EOCD64_SIG = 0x06064B50
LOCATOR64 = struct.Struct("<IIQI")  # 20 bytes
LOCATOR64_SIG = 0x07064B50

STORED = 0
DEFLATED = 8
FLAG_ENCRYPTED = 0x1
FLAG_DESCRIPTOR = 0x8
FLAG_UTF8 = 0x800
EXTRA_ZIP64 = 0x0001
EXTRA_TIMESTAMP = 0x5455
UNIX = 3  # "version made by" high byte: external attributes hold st_mode << 16
MADE_BY = (UNIX << 8) | 45
NEEDED = 20  # deflate
NEEDED64 = 45  # zip64
MAX32 = 0xFFFFFFFF
MAX16 = 0xFFFF
DOS_EPOCH = (0x21, 0)  # 1980-01-01 00:00:00 as (date, time)


def dos_datetime(mtime: int) -> tuple[int, int]:
    """(date, time) fields for a Unix mtime, in UTC, clamped to DOS's 1980-2107."""
    t = time.gmtime(min(max(mtime, 315532800), 4354819198))
    date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return date, (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)


def from_dos(date: int, clock: int) -> int:
    """A Unix mtime from DOS fields, read as local time (as unzip and zipfile do)."""
    fields = (
        (date >> 9) + 1980,
        (date >> 5) & 0xF,
        date & 0x1F,
        clock >> 11,
        (clock >> 5) & 0x3F,
        (clock & 0x1F) * 2,
        0,
        0,
        -1,
    )
    try:
        return int(time.mktime(fields))
    except (OverflowError, ValueError):
        return 0


def extras(data: bytes) -> dict[int, bytes]:
    """Extra-field blocks by header id (malformed tails are ignored, as unzip does)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        tag, size = struct.unpack_from("<HH", data, pos)
        out.setdefault(tag, data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out
