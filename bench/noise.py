"""How much of the machine something else used during a run.

Why it exists: the client and RGW share 2 cores, and other work on the machine (other
benchmarks, test suites) takes CPU from both; a run's speed means little without knowing
that. Foreign CPU = all CPU time spent on the machine during the run, minus the tool's
own (from wait4) and the RGW daemons' (mon, osd, radosgw, from their pid files). It
also holds kernel threads working for the run (writeback, some network softirqs) and the
benchmark's own RSS sampler, so it is a few percent even on an idle machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil


def _busy() -> float:
    t = psutil.cpu_times()
    idle = float(t.idle) + float(getattr(t, "iowait", 0.0))
    guest = float(getattr(t, "guest", 0.0)) + float(getattr(t, "guest_nice", 0.0))
    return float(sum(t)) - idle - guest  # guest time is already counted in user


def daemon_pids(state_dir: Path | None) -> list[int]:
    """The pids rgw.sh recorded for this cluster (empty if unknown)."""
    if state_dir is None:
        return []
    pids = []
    for f in (state_dir / "run").glob("*.pid"):
        try:
            pids.append(int(f.read_text().strip()))
        except (OSError, ValueError):
            pass
    return pids


def _daemons_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


@dataclass
class CpuWatch:
    """Started before a run, read after it."""

    pids: list[int]
    busy0: float = 0.0
    daemons0: float = 0.0

    def start(self) -> None:
        self.busy0, self.daemons0 = _busy(), _daemons_cpu(self.pids)

    def stop(self, tool_cpu: float) -> tuple[float, float]:
        """(server CPU seconds, foreign CPU seconds) since start()."""
        server = _daemons_cpu(self.pids) - self.daemons0
        foreign = _busy() - self.busy0 - server - tool_cpu
        return server, max(foreign, 0.0)
