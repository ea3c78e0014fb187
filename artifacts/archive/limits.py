"""The caps that keep a hostile archive from filling the disk or the memory.

One frozen dataclass, built at the entry point and passed to the readers and the
extractor. Exceeding a cap raises InvalidSpec naming the member and the cap.

The expansion cap is checked with two counters the readers keep anyway (bytes read,
bytes decompressed) and one comparison per decompressed chunk: no extra pass, no
buffering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from argosy.artifacts.errors import InvalidSpec

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class ExtractLimits:
    """max_total_bytes: file bytes one extraction may write (256 GiB: above Argo's
        largest reported artifacts; a member declaring more is refused before any
        byte of it is written).
    max_members: members one archive may hold, skipped ones included (1,000,000).
    max_header_bytes: the largest pax header or GNU long name accepted (1 MiB); it
        bounds the memory a header can take.
    max_expansion: the most bytes decompressed per compressed byte read (1000): a
        64 KiB tar.zst of zeros or a 2 MiB zip would otherwise unpack to gigabytes
        before the total cap stops it. Ordinary data compresses 2-20:1, repetitive
        logs up to ~100:1; deflate itself cannot exceed ~1032:1. Checked over a
        whole compressed tar stream and over a whole zip, and for each zip member on
        its own; a plain tar cannot expand. 0 turns the check off (archives of
        zero-filled files, disk images); the total cap still holds.
    expansion_grace: decompressed bytes before the ratio is first checked (64 MiB):
        small archives of repetitive text may well exceed any ratio, and cost nothing.
    """

    max_total_bytes: int = 256 * GiB
    max_members: int = 1_000_000
    max_header_bytes: int = 1 << 20
    max_expansion: float = 1000.0
    expansion_grace: int = 64 * MiB

    def __post_init__(self) -> None:
        if (
            min(self.max_total_bytes, self.max_members, self.max_header_bytes) < 0
            or self.expansion_grace < 0
        ):
            raise InvalidSpec("extraction limits cannot be negative")
        if not valid_expansion(self.max_expansion):
            raise InvalidSpec(
                "the expansion limit must be a ratio of at least 1 (0: no limit),"
                f" not {self.max_expansion!r}"
            )

    def check_expansion(self, *, made: int, read: int, what: str) -> None:
        """Refuse `what` when it has decompressed `made` bytes, past the grace, from
        `read` compressed bytes at a ratio above max_expansion."""
        if (
            made > self.expansion_grace
            and self.max_expansion
            and made > self.max_expansion * max(read, 1)
        ):
            raise ExpansionRefused(what, made=made, read=read, limit=self.max_expansion)


def valid_expansion(ratio: float) -> bool:
    """0 (no limit) or a finite ratio of at least 1 (below 1, even a plain copy fails)."""
    return ratio == 0 or (math.isfinite(ratio) and ratio >= 1)


class ExpansionRefused(InvalidSpec):
    """An archive (or one zip member) expanding past `ExtractLimits.max_expansion`.

    Entry points know what the archive is called and which setting raises the limit
    (`--max-expansion`, `maxExpansion`): they say so with `explain`."""

    def __init__(self, what: str, *, made: int, read: int, limit: float) -> None:
        self.what, self.made, self.read, self.limit = what, made, read, limit
        super().__init__(self.explain("ExtractLimits.max_expansion"))

    def explain(self, setting: str) -> str:
        return (
            f"{self.what} expands past {self.limit:g}:1 ({self.made} bytes from"
            f" {self.read} compressed, {self.made / max(self.read, 1):.0f}:1): refused as"
            f" a likely decompression bomb; {setting} raises the limit (0 turns it off)"
        )


DEFAULT_LIMITS = ExtractLimits()  # frozen: one shared default for every reader and extractor
