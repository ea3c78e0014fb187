"""The directory benchmark's runs, printed table and JSON file (see bench/dirs.py).

Why it exists: the printed table is how a run is read; it puts each case beside the
peer's reference figure measured on this machine (docs/benchmarks.md) and states every
ratio the targets (TARGETS below) ask for, with its target, from medians of the same run.
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


@dataclass
class DirRun:
    """One measured process."""

    case: str  # "up:argosy", "down:argo", "none:s5cmd", "proxy:argosy", ...
    round: int
    files: int  # regular files in the source tree
    size: int  # source bytes
    stored_bytes: int  # the object's (or the objects') size
    seconds: float  # wall time of the process (start-up included)
    inner_seconds: float | None  # the transfer alone, reported by Python peers
    peak_rss: int
    tree_rss: int
    hwm_self: int
    cpu_seconds: float
    server_cpu: float  # RGW daemons (and the delay proxy, for proxied cases)
    foreign_cpu: float
    verified: str
    command: str
    fs_create_us: float | None = None  # extractions: the filesystem's state just before
    pair: str = ""  # paired mode: "COMPARISON#i", shared by both tools' runs in pair i

    @property
    def mib_s(self) -> float:
        return self.size / MiB / self.seconds

    @property
    def files_s(self) -> float:
        return self.files / self.seconds

    @property
    def foreign_share(self) -> float:
        return self.foreign_cpu / (self.seconds * CPUS)


# case -> (label, reference figure, its unit); order = table order
ROWS: tuple[tuple[str, str, tuple[float, float] | None, str], ...] = (
    ("up:argosy", "argosy cp --archive tar.zst", None, ""),
    ("up:argo", "Argo: tar czf + boto3 upload_file", (31, 31), "MiB/s"),
    ("up:s5cmd-pipe", "tar | zstd -3 -T0 | s5cmd pipe", (203, 210), "MiB/s"),
    ("down:argosy", "argosy cp --archive auto", None, ""),
    ("down:argo", "Argo: boto3 get_object + tar xzf", None, ""),
    ("down:s5cmd-cat", "s5cmd cat | zstd -d | tar -x", None, ""),
    ("none:argosy", "argosy cp --archive none", None, ""),
    ("none:s5cmd", "s5cmd cp 'DIR/*'", (750, 771), "files/s"),
    ("none:boto3-16", "boto3 put_object, 16 threads", (418, 495), "files/s"),
    ("none:boto3-seq", "boto3 put_object, sequential", (191, 191), "files/s"),
    ("none-down:argosy", "argosy cp --archive none (verified)", None, ""),
    ("none-down:s5cmd", "s5cmd cp 's3://B/K/*' DIR/", None, ""),
    ("proxy:argosy", "argosy cp --archive none", None, ""),
    ("proxy:s5cmd", "s5cmd cp 'DIR/*'", None, ""),
    ("proxy:boto3-seq", "boto3 put_object, sequential", None, ""),
    ("proxy-down:argosy", "argosy cp --archive none (verified)", None, ""),
    ("proxy-down:s5cmd", "s5cmd cp 's3://B/K/*' DIR/", None, ""),
)
SECTIONS = {
    "up": "archive upload (tree -> one object)",
    "down": "download + extract (one object -> tree)",
    "none": "archive: none upload (one object per file)",
    "none-down": "archive: none download (one object per file, read back by the same tool)",
    "proxy": "archive: none upload behind the delay proxy",
    "proxy-down": "archive: none download behind the delay proxy",
}

# (label, numerator case, denominator case, metric, target, stretch)
TARGETS: tuple[tuple[str, str, str, str, float, float | None], ...] = (
    ("tar.zst upload / Argo's method", "up:argosy", "up:argo", "mib_s", 5.0, None),
    ("tar.zst upload / tar|zstd|s5cmd pipe", "up:argosy", "up:s5cmd-pipe", "mib_s", 1.1, None),
    ("download+extract / Argo's method", "down:argosy", "down:argo", "mib_s", 1.5, None),
    ("download+extract / s5cmd cat|zstd|tar", "down:argosy", "down:s5cmd-cat", "mib_s", 1.1, None),
    ("none upload / s5cmd cp (files/s)", "none:argosy", "none:s5cmd", "files_s", 1.1, None),
    (
        "none download / s5cmd (files/s)",
        "none-down:argosy",
        "none-down:s5cmd",
        "files_s",
        1.1,
        None,
    ),
    ("+delay: none upload / s5cmd", "proxy:argosy", "proxy:s5cmd", "files_s", 1.1, None),
    (
        "+delay: none download / s5cmd",
        "proxy-down:argosy",
        "proxy-down:s5cmd",
        "files_s",
        1.1,
        None,
    ),
    (
        "none behind proxy / boto3 sequential",
        "proxy:argosy",
        "proxy:boto3-seq",
        "files_s",
        10.0,
        None,
    ),
)
RSS_TARGET_MIB = 200


def _of(runs: list[DirRun], case: str) -> list[DirRun]:
    return [r for r in runs if r.case == case]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _speed(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{_num(values[0]):>6}"
    return f"{_num(median(values)):>6} ({_num(min(values))}-{_num(max(values))})"


def _peers(rng: tuple[float, float] | None, unit: str) -> str:
    if rng is None:
        return ""
    span = f"{rng[0]:.0f}" if rng[0] == rng[1] else f"{rng[0]:.0f}-{rng[1]:.0f}"
    return f"{span} {'MiB/s' if unit == 'MiB/s' else 'f/s'}"


def table(runs: list[DirRun], meta: dict[str, Any]) -> str:
    files, size = meta["corpus_files"], meta["corpus_bytes"]
    where = "built from the machine" if meta["corpus"] == "built" else meta["corpus"]
    lines = [
        f"Directory artifacts on Ceph RGW (127.0.0.1): {files} real text files, "
        f"{size / MiB:.0f} MiB ({where}); "
        f"{meta['runs']} interleaved round(s), boto3 per-file cases in the first "
        f"{meta['slow_runs']}",
        "MiB/s of SOURCE bytes and files/s = median (min-max) of wall time per process "
        "(start-up included); ref = the peer's reference figure (MiB/s or files/s, 22.6k "
        "files, 300 MiB; docs/benchmarks.md); stored = object bytes; RSS = peak of the "
        "process tree, max over runs; CPU = median CPU s of the tool's process tree; "
        "server = RGW daemons (+ the delay proxy); others = median share of the CPUs used "
        "by other work",
        "",
        f"{'case':<36}{'MiB/s':<20}{'files/s':<22}{'ref':<15}{'stored MiB':>10}"
        f"{'RSS MiB':>9}{'CPU s':>7}{'server':>8}{'others':>7}{'n':>3}",
    ]
    section = ""
    for case, label, rng, unit in ROWS:
        mine = _of(runs, case)
        kind = case.split(":")[0]
        if kind != section:
            section = kind
            title = SECTIONS[kind]
            if kind in ("proxy", "proxy-down"):
                title += (
                    f" (+{meta['delay_ms']:g} ms a request; {meta['subset_files']} "
                    f"files, {meta['subset_bytes'] / MiB:.1f} MiB)"
                )
            lines.append(title)
        if not mine:
            lines.append(f"  {label:<34}{'no successful run':<42}{_peers(rng, unit)}")
            continue
        stored = median([r.stored_bytes / MiB for r in mine if r.stored_bytes])
        lines.append(
            f"  {label:<34}{_speed([r.mib_s for r in mine]):<20}"
            f"{_speed([r.files_s for r in mine]):<22}{_peers(rng, unit):<15}"
            f"{stored:>10.1f}{max(r.peak_rss for r in mine) / MiB:>9.0f}"
            f"{median([r.cpu_seconds for r in mine]):>7.1f}"
            f"{median([r.server_cpu for r in mine]):>8.1f}"
            f"{median([r.foreign_share for r in mine]):>7.0%}{len(mine):>3}"
        )
    lines += ["", "Targets, medians of this run:"]
    for label, num, den, metric, target, stretch in TARGETS:
        a = [getattr(r, metric) for r in _of(runs, num)]
        b = [getattr(r, metric) for r in _of(runs, den)]
        if not a or not b:
            lines.append(f"  {label:<40} n/a (no successful runs)")
            continue
        ratio = median(a) / median(b)
        verdict = "PASS" if ratio >= target else "MISS"
        extra = (
            f", stretch {stretch:g}x {'met' if ratio >= stretch else 'not met'}" if stretch else ""
        )
        unit = "MiB/s" if metric == "mib_s" else "files/s"
        lines.append(
            f"  {label:<40}{ratio:6.2f}x  (target >= {target:g}x{extra})  {verdict}  "
            f"[{median(a):.1f} vs {median(b):.1f} {unit}]"
        )
    argosy = [r for r in runs if r.case.endswith(":argosy")]
    if argosy:
        worst = max(argosy, key=lambda r: r.peak_rss)
        ok = worst.peak_rss / MiB < RSS_TARGET_MIB
        lines.append(
            f"  {'argosy peak RSS, max over all its runs':<40}{worst.peak_rss / MiB:6.0f} "
            f"MiB (target < {RSS_TARGET_MIB} MiB)  {'PASS' if ok else 'MISS'}  "
            f"[{worst.case}, round {worst.round + 1}]"
        )
    inner = [
        (case, label) for case, label, _, _ in ROWS if any(r.inner_seconds for r in _of(runs, case))
    ]
    if inner:
        lines += [
            "",
            "Python peers timed inside the process (no interpreter start-up or imports), median:",
        ]
        for case, label in inner:
            mine = [r for r in _of(runs, case) if r.inner_seconds]
            wall = median([r.seconds for r in mine])
            ins = median([r.inner_seconds or 0.0 for r in mine])
            what = {
                "up:argo": "of which boto3 upload_file",
                "down:argo": "of which boto3 get_object",
            }.get(case, "in-process")
            rate = (
                f"{median([r.files / (r.inner_seconds or 1) for r in mine]):.0f} files/s"
                if case.startswith(("none", "proxy"))
                else f"{median([r.stored_bytes / MiB / (r.inner_seconds or 1) for r in mine]):.0f} "
                "MiB/s of .tgz"
            )
            lines.append(
                f"  {case:<18}{label:<36} wall {wall:6.1f} s, {what} {ins:6.1f} s ({rate})"
            )
    load0, load1 = meta.get("loadavg_start"), meta.get("loadavg_end")
    lines += [
        "",
        f"load average 1/5/15 min: start {_load(load0)}, end {_load(load1)} "
        f"({CPUS} CPUs; RGW, the tools and any other work share them); took "
        f"{meta.get('seconds', 0):.0f} s, of which {meta.get('between_runs_seconds', 0):.0f}"
        " s emptying the bucket between runs",
    ]
    probed = [r.fs_create_us for r in runs if r.fs_create_us is not None]
    if probed:
        lines.append(
            f"file creation probed before each extraction: {min(probed):.0f}-"
            f"{max(probed):.0f} us a file (normal <= 150; see bench/fsstate.py), "
            f"{meta.get('waited_for_fs_seconds', 0):.0f} s spent waiting for it"
        )
    if meta.get("proxy"):
        p = meta["proxy"]
        proxied = sum(r.files for r in runs if r.case.startswith("proxy:"))
        per_file = f" = {p.get('chunks', 0) / proxied:.2f} per file uploaded" if proxied else ""
        lines.append(
            f"delay proxy: {p.get('connections')} connections, {p.get('chunks')} "
            f"client write bursts delayed{per_file} (a PUT sent with `Expect: "
            "100-continue` waits out the delay twice, headers then body, as it would "
            "pay two round trips on a real network: boto3 asks for it on every file "
            "body, Argosy only on bodies of 1 MiB or more), "
            f"{p.get('bytes_up', 0) / MiB:.1f} MiB up, "
            f"{p.get('bytes_down', 0) / MiB:.1f} MiB down"
        )
    versions = meta.get("versions", {})
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return "\n".join(lines)


def _load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def write_json(path: Path, meta: dict[str, Any], runs: list[DirRun], text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {}
    for case, _, rng, unit in ROWS:
        mine = _of(runs, case)
        summary[case] = {
            "mib_s_median": median([r.mib_s for r in mine]),
            "files_s_median": median([r.files_s for r in mine]),
            "peak_rss_mib_max": max((r.peak_rss for r in mine), default=0) / MiB,
            "runs": len(mine),
            "peers_md": rng,
            "peers_md_unit": unit or None,
        }
    doc = {
        "meta": meta,
        "summary": summary,
        "runs": [
            {**asdict(r), "mib_s": r.mib_s, "files_s": r.files_s, "foreign_share": r.foreign_share}
            for r in runs
        ],
        "table": text.splitlines(),
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
