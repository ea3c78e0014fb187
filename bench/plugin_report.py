"""The plugin benchmark's runs, its table and its JSON file (see bench/plugin.py).

Why it exists: the table is what the lead reads: one row per call of Argo's artifact
plugin, the plugin's median beside its peer's (what Argo or a user would run instead),
the ratio of the medians, the target it is held to, whether it is met, and the plugin's
peak RSS while it served that call.
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
RSS_TARGET_MIB = 200


@dataclass
class Run:
    """One timed call of the plugin, or one run of a peer."""

    case: str  # a key of CASES
    round: int
    amount: int  # bytes (MiB/s cases), files or objects
    seconds: float  # wall time: the call, or the peer's process from spawn to exit
    peak_rss: int  # plugin calls: the plugin's peak during the call; peers: their process tree
    rss_before: int  # plugin calls: the plugin's RSS as the call began (0 for peers)
    cpu_seconds: float  # plugin calls: the plugin's and the client's; peers: their own
    client_cpu: float  # plugin calls: the benchmark process's (the gRPC client's) part
    server_cpu: float  # RGW's daemons (and the delay proxy behind it)
    foreign_cpu: float  # everything else on the machine
    verified: str
    command: str

    @property
    def rate(self) -> float:
        """MiB/s, files/s or objects/s, as CASES says."""
        amount = self.amount / MiB if CASES[self.case][1] == "MiB/s" else self.amount
        return amount / self.seconds

    @property
    def foreign_share(self) -> float:
        return self.foreign_cpu / (self.seconds * CPUS)


# case -> (what runs, unit of its rate)
CASES: dict[str, tuple[str, str]] = {
    "save:plugin": ("Save(FILE)", "MiB/s"),
    "save:cp": ("argosy cp FILE s3://B/K", "MiB/s"),
    "load:plugin": ("Load(FILE)", "MiB/s"),
    "load:cp": ("argosy cp s3://B/K FILE", "MiB/s"),
    "stream:plugin": ("OpenStream, bytes dropped", "MiB/s"),
    "stream:cat": ("argosy cat s3://B/K > /dev/null", "MiB/s"),
    "stream:raw": ("grpcio alone: 2 MiB frames from memory, RGW idle", "MiB/s"),
    "savestream:plugin": ("SaveStream, 2 MiB chunks", "MiB/s"),
    "savestream:cp": ("argosy cp - s3://B/K < FILE", "MiB/s"),
    "folder:plugin": ("Save(FOLDER)", "files/s"),
    "folder:s5cmd": ("s5cmd cp 'FOLDER/*' s3://B/K/", "files/s"),
    "delete:plugin": ("Delete(FOLDER)", "objects/s"),
    "delete:argo": ("Argo's GC: list, then DeleteObject 1 by 1 (boto3)", "objects/s"),
}


@dataclass(frozen=True)
class Row:
    label: str
    plugin: str  # its case
    peer: str  # its peer's case
    target: float  # the plugin's median rate over the peer's, at least


def stream_peer(runs: list[Run], factor: float) -> str:
    """OpenStream's peer: argosy cat, unless grpcio's raw rate is under `factor` times
    argosy cat's (then grpcio itself would bound the comparison: the raw rate is the
    peer). argosy cat when either was not measured."""
    raw, cat = of(runs, "stream:raw"), of(runs, "stream:cat")
    if raw and cat and median([r.rate for r in raw]) < factor * median([r.rate for r in cat]):
        return "stream:raw"
    return "stream:cat"


def rows(meta: dict[str, Any]) -> list[Row]:
    size = (
        f"{meta['size_mib'] / 1024:g} GiB"
        if meta["size_mib"] >= 1024
        else f"{meta['size_mib']} MiB"
    )
    folder = f"{meta['corpus_files']:,} files, {meta['corpus_bytes'] / MiB:.0f} MiB"
    return [
        Row(f"Save, {size} file", "save:plugin", "save:cp", 0.95),
        Row(f"Load, {size} file", "load:plugin", "load:cp", 0.95),
        Row(f"OpenStream, {size}", "stream:plugin", meta["open_stream_peer"], 0.8),
        Row(f"SaveStream, {size}", "savestream:plugin", "savestream:cp", 0.8),
        Row(f"Save, folder of {folder}", "folder:plugin", "folder:s5cmd", 0.8),
        Row(
            f"Delete, that folder, +{meta['delay_ms']:g} ms a request "
            f"(Argo: {meta['sample_files']:,}-object sample)",
            "delete:plugin",
            "delete:argo",
            10.0,
        ),
    ]


def of(runs: list[Run], case: str) -> list[Run]:
    return [r for r in runs if r.case == case]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def speed(runs: list[Run]) -> str:
    """median (min-max) unit."""
    if not runs:
        return "no successful run"
    rates, unit = [r.rate for r in runs], CASES[runs[0].case][1]
    if len(rates) == 1:
        return f"{_num(rates[0])} {unit}"
    return f"{_num(median(rates))} ({_num(min(rates))}-{_num(max(rates))}) {unit}"


@dataclass(frozen=True)
class Verdict:
    row: Row
    plugin: float  # median rate
    peer: float
    ratio: float  # NaN when either side has no run
    met: bool
    rss_mib: float  # the plugin's peak over the row's calls


def verdicts(runs: list[Run], meta: dict[str, Any]) -> list[Verdict]:
    out = []
    for row in rows(meta):
        mine, theirs = of(runs, row.plugin), of(runs, row.peer)
        a, b = median([r.rate for r in mine]), median([r.rate for r in theirs])
        ratio = a / b if mine and theirs else float("nan")
        rss = max((r.peak_rss for r in mine), default=0) / MiB
        out.append(Verdict(row, a, b, ratio, ratio >= row.target, rss))
    return out


def table(runs: list[Run], meta: dict[str, Any]) -> str:
    found = verdicts(runs, meta)
    lines = [
        f"Argo's artifact plugin (`argosy plugin SOCKET`, a gRPC client in the benchmark "
        f"process over a unix socket) against Ceph RGW on 127.0.0.1; {meta['rounds']} "
        f"interleaved round(s), order shuffled per round (seed {meta['seed']})",
        "rates: median (min-max) over the rounds; plugin calls timed from request to answer "
        "(the plugin runs for the whole benchmark), peers from spawn to exit; ratio: plugin "
        "median / peer median; RSS: the plugin's peak while it served the row's calls (max "
        "over the rounds)",
        "",
        "| case | Argosy's plugin | peer | ratio | target | met/missed | plugin peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in found:
        mine, theirs = of(runs, v.row.plugin), of(runs, v.row.peer)
        ratio = _ratio(v) if v.ratio == v.ratio else "n/a"
        verdict = ("met" if v.met else "MISSED") if v.ratio == v.ratio else "n/a"
        lines.append(
            f"| {v.row.label} | {CASES[v.row.plugin][0]}: {speed(mine)} | "
            f"{CASES[v.row.peer][0]}: {speed(theirs)} | {ratio} | >= {v.row.target:g}x | "
            f"{verdict} | {v.rss_mib:.0f} MiB |"
        )
    plugin_runs = [r for r in runs if r.case.endswith(":plugin")]
    if plugin_runs:
        worst = max(plugin_runs, key=lambda r: r.peak_rss)
        ok = all(v.rss_mib < RSS_TARGET_MIB for v in found) and worst.peak_rss > 0
        lines.append(
            f"| plugin peak RSS, every case | {worst.peak_rss / MiB:.0f} MiB at most "
            f"({worst.case}, round {worst.round + 1}); at rest "
            f"{meta.get('plugin_idle_rss_mib', 0):.0f} MiB before the first call, "
            f"{meta.get('plugin_end_rss_mib', 0):.0f} MiB after the last | - | - | "
            f"< {RSS_TARGET_MIB} MiB | {'met' if ok else 'MISSED'} | - |"
        )
    lines += ["", *_stream_lines(runs, meta), "", *_detail_lines(runs)]
    load0, load1 = meta.get("loadavg_start"), meta.get("loadavg_end")
    lines += [
        "",
        f"load average 1/5/15 min: start {_load(load0)}, end {_load(load1)} ({CPUS} CPUs; "
        f"RGW, the plugin, the client, the peers and any other work share them); took "
        f"{meta.get('seconds', 0):,.0f} s, {meta.get('between_runs_seconds', 0):,.0f} s of "
        "it emptying the bucket between runs",
    ]
    if not meta.get("rss_exact", True):
        lines.append(
            "the plugin's VmHWM could not be reset per call: its peaks are 20 ms samples only"
        )
    if meta.get("proxy"):
        p = meta["proxy"]
        lines.append(
            f"delay proxy: {p.get('connections')} connections, {p.get('chunks')} client "
            f"write bursts delayed, {p.get('bytes_up', 0) / MiB:.1f} MiB up, "
            f"{p.get('bytes_down', 0) / MiB:.1f} MiB down"
        )
    versions = meta.get("versions", {})
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return "\n".join(lines)


def _ratio(v: Verdict) -> str:
    """Two decimals, three where two would round a miss up to its target (0.949x, not
    0.95x, beside ">= 0.95x ... MISSED")."""
    digits = 3 if not v.met and round(v.ratio, 2) >= v.row.target else 2
    return f"{v.ratio:.{digits}f}x"


def _stream_lines(runs: list[Run], meta: dict[str, Any]) -> list[str]:
    raw, cat = of(runs, "stream:raw"), of(runs, "stream:cat")
    if not raw:
        return ["grpcio's raw rate: not measured (no successful run)"]
    lines = [f"grpcio's raw rate (bench/plugin_raw.py, measured first): {speed(raw)}"]
    if cat:
        lines[0] += (
            f" = {median([r.rate for r in raw]) / median([r.rate for r in cat]):.2f}x "
            f"argosy cat's {_num(median([r.rate for r in cat]))} MiB/s"
        )
    if meta["open_stream_peer"] == "stream:raw":
        lines.append(
            "OpenStream is compared with grpcio's raw rate, NOT with argosy cat: the raw "
            f"rate is under {meta['raw_factor']:g}x argosy cat's on this machine, so grpcio "
            "itself would bound the comparison"
        )
    else:
        lines.append(
            f"OpenStream is compared with argosy cat: the raw rate is at least "
            f"{meta['raw_factor']:g}x argosy cat's"
        )
    return lines


def _detail_lines(runs: list[Run]) -> list[str]:
    lines = [
        "Per case, medians: wall s; CPU s of the tool (plugin calls: plugin + client, the "
        "client's part in brackets); CPU s of RGW (+ the proxy); other work's share of the "
        "machine; RSS MiB (plugin calls: the plugin's as the call began -> its peak, max)",
    ]
    for case, (what, _) in CASES.items():
        mine = of(runs, case)
        if not mine:
            continue
        plugin = case.endswith(":plugin")
        client = f"[{median([r.client_cpu for r in mine]):.1f}]" if plugin else ""
        rss = f"{max(r.peak_rss for r in mine) / MiB:.0f}"
        if plugin:
            rss = f"{median([r.rss_before / MiB for r in mine]):.0f} -> {rss}"
        elif case == "stream:raw" or case == "delete:argo":
            rss = "-"
        lines.append(
            f"  {case:<18}{what:<51}{median([r.seconds for r in mine]):7.2f} s"
            f"{median([r.cpu_seconds for r in mine]):6.1f}{client:<6}"
            f"{median([r.server_cpu for r in mine]):6.1f}"
            f"{median([r.foreign_share for r in mine]):5.0%}   {rss}"
        )
    return lines


def _load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def write_json(path: Path, meta: dict[str, Any], runs: list[Run], text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": meta,
        "summary": [
            {
                "case": v.row.label,
                "plugin_case": v.row.plugin,
                "peer_case": v.row.peer,
                "unit": CASES[v.row.plugin][1],
                "plugin_median": v.plugin,
                "peer_median": v.peer,
                "ratio": v.ratio,
                "target": v.row.target,
                "met": v.met,
                "plugin_peak_rss_mib": v.rss_mib,
                "rss_met": 0 < v.rss_mib < RSS_TARGET_MIB,
            }
            for v in verdicts(runs, meta)
        ],
        "runs": [
            {
                **asdict(r),
                "rate": r.rate,
                "unit": CASES[r.case][1],
                "foreign_share": r.foreign_share,
            }
            for r in runs
        ],
        "table": text.splitlines(),
    }
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
