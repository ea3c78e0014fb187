"""Paired runs: Argosy and one peer back to back, the speed ratio taken pair by pair.

Why it exists: on a shared machine the load drifts over minutes, and a harness that runs
the tools in a fixed order favours or penalises whoever comes last (page cache, RGW's
background work after the previous tool's deletes). A ratio of two runs made seconds apart
sees the same machine; the median of many such ratios, with their range, is the figure a
comparison can be read from. Within each pair the order is drawn at random (the seed is
recorded), so neither tool is always second.

    --pairs N      N pairs for every (Argosy, peer) comparison the bench defines
    --seed S       the random order of tools in each round and each pair (default: drawn,
                   recorded in the results file)

A ratio > 1 means Argosy was faster in that pair.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def new_seed(seed: int | None) -> int:
    return seed if seed is not None else random.SystemRandom().randrange(1 << 31)


def shuffled(rng: random.Random, items: Sequence[T]) -> list[T]:
    out = list(items)
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class PairStats:
    """The ratios of one comparison (e.g. 'upload vs s5cmd'), one per complete pair."""

    label: str
    ratios: list[float]
    target: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    def line(self) -> str:
        if not self.ratios:
            return f"  {self.label:<44} n/a (no complete pair)"
        verdict = ""
        if self.target is not None:
            met = "PASS" if self.median >= self.target else "MISS"
            verdict = f"  (target >= {self.target:g}x)  {met}"
        return (
            f"  {self.label:<44}{self.median:6.2f}x  range {min(self.ratios):.2f}-"
            f"{max(self.ratios):.2f}  n={len(self.ratios)}{verdict}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "ratios": self.ratios,
            "median": self.median if self.ratios else None,
            "min": min(self.ratios) if self.ratios else None,
            "max": max(self.ratios) if self.ratios else None,
            "target": self.target,
        }


def ratios(mine: dict[str, float], theirs: dict[str, float]) -> list[float]:
    """Speed ratios mine/theirs over the pair ids both completed, in pair order."""
    return [mine[p] / theirs[p] for p in sorted(set(mine) & set(theirs)) if theirs[p] > 0]
