"""Summaries of the runs, the printed table and the JSON file.

Why it exists: the printed table is how a run is read, so it puts each result beside
the peer's reference range measured on this machine (docs/benchmarks.md), flags a peer
that fell well below its range (a sign the set-up or the machine is off, not that the
peer is slow), and states Argosy's ratio to the best peer.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MiB = 1 << 20
CPUS = os.cpu_count() or 1
LOW_MARGIN = 0.15  # a peer median more than 15% below its reference range is flagged LOW


@dataclass
class Run:
    """One measured transfer (one process)."""

    tool: str
    direction: str  # "up" or "down"
    round: int
    size: int
    seconds: float
    inner_seconds: float | None  # the transfer alone, reported by Python peers
    peak_rss: int
    tree_rss: int
    hwm_self: int
    cpu_seconds: float
    server_cpu: float  # CPU seconds of the RGW daemons during the run
    foreign_cpu: float  # CPU seconds of everything else on the machine during the run
    verified: str  # "size", "bytes" (full compare) or "" for uploads
    pair: str = ""  # paired mode: "PEER#i", shared by Argosy's run and the peer's in pair i

    @property
    def mib_s(self) -> float:
        return self.size / MiB / self.seconds

    @property
    def foreign_share(self) -> float:
        """Share of the machine's CPUs taken by other work during the run."""
        return self.foreign_cpu / (self.seconds * CPUS)


@dataclass
class Summary:
    tool: str
    up: list[float]  # MiB/s per run
    down: list[float]
    up_inner: list[float]
    down_inner: list[float]
    rss_up: float  # MiB, max over runs
    rss_down: float
    cpu_up: float  # CPU seconds per GiB, median
    cpu_down: float
    others: float  # median share of the CPUs used by other work during this tool's runs
    peers_up: tuple[float, float] | None
    peers_down: tuple[float, float] | None

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def low(self, direction: str) -> bool:
        rng = self.peers_up if direction == "up" else self.peers_down
        values = self.up if direction == "up" else self.down
        return rng is not None and bool(values) and self.median(values) < rng[0] * (1 - LOW_MARGIN)


def summarize(
    tool: str,
    runs: list[Run],
    peers_up: tuple[float, float] | None,
    peers_down: tuple[float, float] | None,
) -> Summary:
    def pick(direction: str) -> list[Run]:
        return [r for r in runs if r.tool == tool and r.direction == direction]

    ups, downs = pick("up"), pick("down")

    def inner(rs: list[Run]) -> list[float]:
        return [r.size / MiB / r.inner_seconds for r in rs if r.inner_seconds]

    def cpu_per_gib(rs: list[Run]) -> float:
        return (
            statistics.median([r.cpu_seconds / (r.size / (1 << 30)) for r in rs])
            if rs
            else float("nan")
        )

    return Summary(
        tool,
        [r.mib_s for r in ups],
        [r.mib_s for r in downs],
        inner(ups),
        inner(downs),
        max((r.peak_rss for r in ups), default=0) / MiB,
        max((r.peak_rss for r in downs), default=0) / MiB,
        cpu_per_gib(ups),
        cpu_per_gib(downs),
        statistics.median([r.foreign_share for r in ups + downs]) if ups or downs else float("nan"),
        peers_up,
        peers_down,
    )


def _speed(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{Summary.median(values):6.0f} ({min(values):.0f}-{max(values):.0f})"


def _range(rng: tuple[float, float] | None) -> str:
    return f"{rng[0]:.0f}-{rng[1]:.0f}" if rng else "-"


def table(summaries: list[Summary], size_mib: int, runs: int) -> str:
    lines = [
        f"S3 round trip of one {size_mib} MiB random file, Ceph RGW on 127.0.0.1, "
        f"{runs} interleaved round{'s' if runs != 1 else ''}",
        "MiB/s = median (min-max) of wall time per process (start-up included); "
        "ref = the peer's reference range (docs/benchmarks.md); RSS = max over runs; "
        "CPU = median CPU s per GiB of the tool; others = median share of the 2 CPUs used "
        "by other work on the machine",
        "",
        f"{'tool':<14}{'upload MiB/s':<20}{'ref':<10}{'':<5}"
        f"{'download MiB/s':<20}{'ref':<10}{'':<5}"
        f"{'peak RSS MiB up/down':<22}{'CPU s/GiB up/down':<19}others",
    ]
    for s in summaries:
        lines.append(
            f"{s.tool:<14}{_speed(s.up):<20}{_range(s.peers_up):<10}"
            f"{'LOW' if s.low('up') else '':<5}"
            f"{_speed(s.down):<20}{_range(s.peers_down):<10}"
            f"{'LOW' if s.low('down') else '':<5}"
            f"{s.rss_up:>6.0f} / {s.rss_down:<12.0f}"
            f"{s.cpu_up:5.1f} / {s.cpu_down:<10.1f}{s.others:4.0%}"
        )
    inner = [s for s in summaries if s.up_inner or s.down_inner]
    if inner:
        lines += [
            "",
            "Python peers timed inside the process (transfer only, no interpreter "
            "start-up or imports), median MiB/s:",
        ]
        for s in inner:
            lines.append(
                f"  {s.tool:<14}up {Summary.median(s.up_inner):5.0f}   "
                f"down {Summary.median(s.down_inner):5.0f}"
            )
    lines += ["", *ratios(summaries)]
    return "\n".join(lines)


def ratios(summaries: list[Summary]) -> list[str]:
    """Argosy's median over the best peer's median, per direction."""
    mine = next((s for s in summaries if s.tool == "argosy"), None)
    peers = [s for s in summaries if s.tool != "argosy"]
    if mine is None or not peers:
        return []
    out = []
    for direction in ("up", "down"):

        def med(s: Summary, d: str = direction) -> float:
            return s.median(s.up if d == "up" else s.down)

        label = "upload" if direction == "up" else "download"
        ranked = [s for s in peers if med(s) == med(s)]  # drop NaN: a tool with no runs
        if not ranked or med(mine) != med(mine):
            out.append(f"argosy / best peer, {label}: n/a (no successful runs)")
            continue
        best = max(ranked, key=med)
        out.append(
            f"argosy / best peer, {label}: {med(mine) / med(best):.2f}x "
            f"(argosy {med(mine):.0f} vs {best.tool} {med(best):.0f} MiB/s)"
        )
    return out


def big_file_lines(small: Summary | None, big: list[Run], big_mib: int, main_mib: int) -> list[str]:
    if not big:
        return []
    up = next((r for r in big if r.direction == "up"), None)
    down = next((r for r in big if r.direction == "down"), None)

    def rss(r: Run | None) -> str:
        return f"{r.peak_rss / MiB:.0f}" if r else "-"

    def speed(r: Run | None) -> str:
        return f"{r.mib_s:.0f}" if r else "-"

    line = [f"argosy peak RSS MiB (up / down): {big_mib} MiB file {rss(up)} / {rss(down)}"]
    if small:
        line[0] += f"; {main_mib} MiB file {small.rss_up:.0f} / {small.rss_down:.0f} (max of runs)"
    line.append(
        f"argosy at {big_mib} MiB: upload {speed(up)} MiB/s, download {speed(down)} "
        "MiB/s (one run each)"
    )
    return line


def copy_lines(copies: list[Run], formula_mib: float) -> list[str]:
    """Remote-to-remote copies (bucket to bucket): speed and peak RSS per tool."""
    return [
        f"{r.tool} remote to remote, {r.size / MiB:.0f} MiB bucket to bucket: {r.mib_s:.0f} "
        f"MiB/s, peak RSS {r.peak_rss / MiB:.0f} MiB (buffers by the stream formula: "
        f"{formula_mib:.0f} MiB)"
        for r in copies
    ]


def write_json(
    path: Path,
    meta: dict[str, Any],
    runs: list[Run],
    summaries: list[Summary],
    big: list[Run],
    copies: list[Run] | None = None,
    paired: list[Run] | None = None,
    pair_stats: list[Any] | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": meta,
        "summary": [
            {
                **asdict(s),
                "up_median": s.median(s.up),
                "down_median": s.median(s.down),
                "low_up": s.low("up"),
                "low_down": s.low("down"),
            }
            for s in summaries
        ],
        "runs": [{**asdict(r), "mib_s": r.mib_s, "foreign_share": r.foreign_share} for r in runs],
        "big_file_runs": [
            {**asdict(r), "mib_s": r.mib_s, "foreign_share": r.foreign_share} for r in big
        ],
        "copy_runs": [
            {**asdict(r), "mib_s": r.mib_s, "foreign_share": r.foreign_share} for r in copies or []
        ],
        "paired_runs": [
            {**asdict(r), "mib_s": r.mib_s, "foreign_share": r.foreign_share} for r in paired or []
        ],
        "pairs": [s.as_dict() for s in pair_stats or []],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
