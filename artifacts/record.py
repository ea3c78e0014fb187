"""The checksum record Argosy keeps with every object it writes (on-bucket format v1).

The record is the object's own user metadata, so it travels with the object and
disappears with it:

| key (user metadata)  | value                                                    |
|----------------------|----------------------------------------------------------|
| `argosy-format`      | `1`: the version of this table                           |
| `argosy-checksum`    | `crc32c:<8 hex>`, CRC32C of the whole object             |
| `argosy-size`        | the object's size in bytes, decimal                      |
| `argosy-part-size`   | the part size the object was written with, decimal       |
| `argosy-parts`       | base64 of each part's CRC32C, 4 bytes big-endian each    |
|                      | (left out past 1,400 characters; the whole-object check  |
|                      | still applies)                                           |

A multipart upload cannot carry its checksum at creation (it is not known yet), so the
object is completed first and the record added after by an in-place metadata replace
pinned to the completed ETag (past the service's limit for one copy, S3's 5 GiB or OSS's
1 GB, a multipart copy of the object's own ranges, each pinned the same way: no data
crosses the network). Until then the object reads as unverified.

Design rule: a reader can always tell a verified object from an unverified one. A record
is only trusted when its format is known and its size equals the object's; the
checksum itself is recomputed from the bytes on every download and compared, so a stale
record can never pass as verified: it fails as a mismatch.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from argosy.artifacts.checksum import ALGORITHM, to_hex

FORMAT_VERSION = "1"
KEY_FORMAT = "argosy-format"
KEY_CHECKSUM = "argosy-checksum"
KEY_SIZE = "argosy-size"
KEY_PART_SIZE = "argosy-part-size"
KEY_PARTS = "argosy-parts"
_MAX_PARTS_CHARS = 1400


@dataclass(frozen=True)
class Record:
    crc: int
    size: int
    part_size: int
    part_crcs: Sequence[int] | None = None

    @classmethod
    def whole(cls, crc: int, size: int) -> Record:
        """The record of an object sent in one piece (one PUT): one part, itself."""
        return cls(crc, size, max(size, 1), [crc])

    @property
    def checksum(self) -> str:
        return f"{ALGORITHM}:{to_hex(self.crc)}"

    def to_metadata(self) -> dict[str, str]:
        meta = {
            KEY_FORMAT: FORMAT_VERSION,
            KEY_CHECKSUM: self.checksum,
            KEY_SIZE: str(self.size),
            KEY_PART_SIZE: str(self.part_size),
        }
        if self.part_crcs:
            packed = base64.b64encode(struct.pack(f">{len(self.part_crcs)}I", *self.part_crcs))
            if len(packed) <= _MAX_PARTS_CHARS:
                meta[KEY_PARTS] = packed.decode()
        return meta


@dataclass(frozen=True)
class Verdict:
    """What a reader may rely on before reading the bytes."""

    record: Record | None
    reason: str  # why there is no usable record, or "" when there is one

    @property
    def verifiable(self) -> bool:
        return self.record is not None


def without_record(metadata: Mapping[str, str]) -> dict[str, str]:
    """User metadata with any Argosy record removed (for copies and rewrites)."""
    return {k: v for k, v in metadata.items() if not k.startswith("argosy-")}


def read_record(metadata: Mapping[str, str], *, size: int) -> Verdict:
    """Parse an object's record; anything missing, unknown or inconsistent is unverified."""
    if KEY_CHECKSUM not in metadata:
        return Verdict(None, "no Argosy checksum record (not written by Argosy)")
    if metadata.get(KEY_FORMAT) != FORMAT_VERSION:
        return Verdict(None, f"unknown record format {metadata.get(KEY_FORMAT)!r}")
    try:
        algorithm, _, value = metadata[KEY_CHECKSUM].partition(":")
        if algorithm != ALGORITHM or len(value) != 8:
            return Verdict(None, f"unsupported checksum {metadata[KEY_CHECKSUM]!r}")
        crc = int(value, 16)
        recorded_size = int(metadata.get(KEY_SIZE, "-1"))
        part_size = int(metadata.get(KEY_PART_SIZE, "0"))
        part_crcs: list[int] | None = None
        if KEY_PARTS in metadata:
            raw = base64.b64decode(metadata[KEY_PARTS], validate=True)
            part_crcs = list(struct.unpack(f">{len(raw) // 4}I", raw))
    except (ValueError, struct.error):
        return Verdict(None, "malformed checksum record")
    if recorded_size != size:
        return Verdict(
            None, f"stale checksum record (records {recorded_size} bytes, object has {size})"
        )
    if part_crcs is not None and part_size > 0:
        expected_parts = max(1, -(-size // part_size))
        if len(part_crcs) != expected_parts:
            part_crcs = None
    return Verdict(Record(crc, size, part_size, part_crcs), "")
