"""What bench/sidecar.py measured: one record per process, the printed tables (each figure
beside its target) and the JSON file.

Targets: peak RSS of the sidecar's process tree under 200 MiB for every
transfer, whatever its size; an init with 8 inputs about as fast as the slowest of them
alone (much nearer the slowest than the sum). Times are medians over the rounds; peak
RSS and disk are the maximum over the rounds (a bound must hold every time).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MiB = 1 << 20
CPUS = os.cpu_count() or 1
RSS_TARGET_MIB = 200.0

# The steps of part 1, in print order; "argo ..." are bench/peer_argo.py.
WAIT, INIT, ARGO_UP, ARGO_DOWN = "argosy wait", "argosy init", "argo up", "argo down"
# The runs of part 2.
MANY, SINGLE, SEQUENTIAL = "init all inputs", "init 1 input", "init one by one"
BULK = "init all bytes as 1"  # one input as big as all of them: the bandwidth floor


@dataclass
class Step:
    """One measured process."""

    part: str  # "transfer" (part 1) or "inputs" (part 2)
    case: str  # e.g. "file 1024 MiB" or "folder 1024 MiB tar.gz"
    tool: str  # one of the names above
    round: int
    size: int  # payload bytes (the file's or the folder's, not the archive's)
    seconds: float  # wall time of the process, start-up included
    inner_seconds: float | None  # the transfer alone, when the process reports it
    peak_rss: int  # bytes: max(tree sampled every 20 ms, VmHWM), see bench/rss.py
    cpu_seconds: float
    server_cpu: float  # RGW's daemons (and the delay proxy) during the run
    foreign_cpu: float  # everything else on the machine during the run
    disk_peak: int  # bytes allocated under the pod's folders above the start
    stored: int = 0  # bytes of the object(s) in the bucket, for uploads
    verified: str = ""
    command: str = ""

    @property
    def mib_s(self) -> float:
        return self.size / MiB / self.seconds if self.seconds else 0.0

    @property
    def foreign_share(self) -> float:
        return self.foreign_cpu / (self.seconds * CPUS) if self.seconds else 0.0


@dataclass
class Summary:
    case: str
    tool: str
    runs: int
    seconds: float  # median
    mib_s: float  # median
    peak_rss_mib: float  # max
    disk_peak_mib: float  # max
    cpu_seconds: float  # median
    foreign_share: float  # median


def summarize(steps: Iterable[Step]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Step]] = {}
    for s in steps:
        if s.part == "transfer":
            groups.setdefault((s.case, s.tool), []).append(s)
    return [
        Summary(
            case,
            tool,
            len(g),
            statistics.median(s.seconds for s in g),
            statistics.median(s.mib_s for s in g),
            max(s.peak_rss for s in g) / MiB,
            max(s.disk_peak for s in g) / MiB,
            statistics.median(s.cpu_seconds for s in g),
            statistics.median(s.foreign_share for s in g),
        )
        for (case, tool), g in groups.items()
    ]


def _rss_mark(mib: float) -> str:
    return "ok" if mib < RSS_TARGET_MIB else "OVER"


def transfer_table(summaries: list[Summary]) -> str:
    if not summaries:
        return ""
    lines = [
        f"Part 1: peak RSS of the whole process tree (target: under {RSS_TARGET_MIB:.0f} "
        "MiB each) and speed, against Ceph RGW;",
        "MiB/s of payload per process, start-up included; seconds and MiB/s are "
        "medians, RSS and disk the max over the rounds.",
        f"{'case':<26}{'step':<12}{'MiB/s':>7}{'seconds':>9}{'RSS MiB':>9}"
        f"{'target':>11}{'disk MiB':>10}{'CPU s':>7}{'others':>8}",
    ]
    last = ""
    for s in summaries:
        argosy = s.tool in (WAIT, INIT)
        target = f"<200 {_rss_mark(s.peak_rss_mib)}" if argosy else "-"
        lines.append(
            f"{s.case if s.case != last else '':<26}{s.tool:<12}{s.mib_s:7.0f}"
            f"{s.seconds:9.2f}{s.peak_rss_mib:9.0f}{target:>11}{s.disk_peak_mib:10.0f}"
            f"{s.cpu_seconds:7.1f}{s.foreign_share:8.0%}"
        )
        last = s.case
    return "\n".join(lines)


def argo_lines(summaries: list[Summary]) -> list[str]:
    """Argosy against Argo's method, per case where both ran: time ratio and disk."""
    by = {(s.case, s.tool): s for s in summaries}
    lines: list[str] = []
    for case in dict.fromkeys(s.case for s in summaries):
        for label, ours, theirs in (("upload  ", WAIT, ARGO_UP), ("download", INIT, ARGO_DOWN)):
            a, b = by.get((case, ours)), by.get((case, theirs))
            if a is None or b is None:
                continue
            lines.append(
                f"  {case:<24}{label} time {a.seconds:6.2f} vs {b.seconds:6.2f} s = "
                f"{a.seconds / b.seconds:4.2f} (target < 1)   CPU {a.cpu_seconds:5.1f} "
                f"vs {b.cpu_seconds:5.1f} s = {a.cpu_seconds / b.cpu_seconds:4.2f}   "
                f"disk {a.disk_peak_mib:4.0f} vs {b.disk_peak_mib:4.0f} MiB"
            )
    if lines:
        lines.insert(
            0,
            "Argosy vs Argo's method (bench/peer_argo.py: tar w:gz level 6 staged "
            "on disk, boto3 upload_file 4 threads x 16 MiB; single-stream GET to "
            "disk, then extract), medians; ratios are argosy/argo:",
        )
    return lines


@dataclass
class InputsRound:
    round: int
    many: float  # seconds of the 8-input init
    singles: list[float]  # seconds of each single-input init
    sequential: float | None  # seconds of the one-by-one init in one process
    bulk: float | None  # seconds of one init of one input holding all the bytes
    many_rss: int

    @property
    def slowest(self) -> float:
        return max(self.singles)

    @property
    def total(self) -> float:
        return sum(self.singles)

    @property
    def ratio(self) -> float:
        return self.many / self.slowest

    @property
    def position(self) -> float:
        """0 at the slowest single, 1 at the sum of the singles."""
        span = self.total - self.slowest
        return (self.many - self.slowest) / span if span > 0 else 0.0


def inputs_rounds(steps: Iterable[Step], case: str | None = None) -> list[InputsRound]:
    """The rounds of part 2, of one case (one input size) when `case` is given."""
    rounds: dict[int, list[Step]] = {}
    for s in steps:
        if s.part == "inputs" and case in (None, s.case):
            rounds.setdefault(s.round, []).append(s)
    found = []
    for r, group in sorted(rounds.items()):
        many = [s for s in group if s.tool == MANY]
        singles = [s.seconds for s in group if s.tool == SINGLE]
        seq = [s.seconds for s in group if s.tool == SEQUENTIAL]
        bulk = [s.seconds for s in group if s.tool == BULK]
        if many and singles:
            found.append(
                InputsRound(
                    r,
                    many[0].seconds,
                    singles,
                    seq[0] if seq else None,
                    bulk[0] if bulk else None,
                    many[0].peak_rss,
                )
            )
    return found


def inputs_lines(
    rounds: list[InputsRound], *, inputs: int, input_mib: int, delay_ms: float
) -> list[str]:
    if not rounds:
        return ["Part 2: no complete round (see the failures)."]

    def med(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    def spread(values: list[float]) -> str:
        return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else ""

    many = [r.many for r in rounds]
    seqs = [r.sequential for r in rounds if r.sequential is not None]
    bulks = [r.bulk for r in rounds if r.bulk is not None]
    rss = max(r.many_rss for r in rounds) / MiB

    def row(label: str, values: list[float], note: str = "") -> str:
        return f"  {label:<34}{med(values):7.2f}  {spread(values):<12}{note}"

    lines = [
        f"Part 2: `argosy init` with {inputs} inputs x {input_mib} MiB through the "
        f"{delay_ms:g} ms delay proxy, {len(rounds)} round(s); medians (ranges):",
        row(
            f"{inputs}-input init, s",
            many,
            f"peak RSS {rss:.0f} MiB (target <200 {_rss_mark(rss)})",
        ),
        row("slowest single-input init, s", [r.slowest for r in rounds]),
        row(
            f"sum of {inputs} single-input inits, s",
            [r.total for r in rounds],
            "each pays its own start-up",
        ),
    ]
    if seqs:
        lines.append(row("one by one in one process, s", seqs, "Argo's order, start-up paid once"))
    if bulks:
        lines.append(
            row("the same bytes as 1 input, s", bulks, "the floor set by bandwidth, not latency")
        )
    lines.append(
        row(f"ratio {inputs}-input/slowest", [r.ratio for r in rounds], "target: close to 1")
    )
    lines.append(
        row("position, slowest=0 .. sum=1", [r.position for r in rounds], "target: near 0")
    )
    if bulks:
        lines.append(
            row(
                f"ratio {inputs}-input/same bytes as 1",
                [r.many / r.bulk for r in rounds if r.bulk],
                "near 1: the inputs overlap as well as one transfer's parts do",
            )
        )
    if seqs:
        lines.append(f"  {'speed-up over one by one':<34}{med(seqs) / med(many):6.2f}x")
    return lines


def write_json(
    path: Path,
    meta: dict[str, Any],
    steps: list[Step],
    summaries: list[Summary],
    rounds: list[InputsRound],
    text: str,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": meta,
        "steps": [{**asdict(s), "mib_s": round(s.mib_s, 1)} for s in steps],
        "summaries": [asdict(s) for s in summaries],
        "inputs_rounds": [
            {
                **asdict(r),
                "slowest": r.slowest,
                "sum": r.total,
                "ratio": r.ratio,
                "position": r.position,
            }
            for r in rounds
        ],
        "table": text,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
