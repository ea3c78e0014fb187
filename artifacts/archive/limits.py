"""The caps that keep a hostile archive from filling the disk or the memory.

One frozen dataclass, built at the entry point and passed to the readers and the
extractor. Exceeding a cap raises InvalidSpec naming the member and the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from argosy.artifacts.errors import InvalidSpec

GiB = 1 << 30


@dataclass(frozen=True)
class ExtractLimits:
    """max_total_bytes: file bytes one extraction may write (256 GiB: above Argo's
        largest reported artifacts; a member declaring more is refused before any
        byte of it is written).
    max_members: members one archive may hold, skipped ones included (1,000,000).
    max_header_bytes: the largest pax header or GNU long name accepted (1 MiB); it
        bounds the memory a header can take.
    """

    max_total_bytes: int = 256 * GiB
    max_members: int = 1_000_000
    max_header_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if min(self.max_total_bytes, self.max_members, self.max_header_bytes) < 0:
            raise InvalidSpec("extraction limits cannot be negative")


DEFAULT_LIMITS = ExtractLimits()  # frozen: one shared default for every reader and extractor
