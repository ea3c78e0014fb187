"""Prometheus metrics of the GC, in the text exposition format, without a client library.

A handful of counters, gauges and one histogram are all the controller exports; writing
the format (https://prometheus.io/docs/instrumenting/exposition_formats/) takes fewer
lines than configuring a library, and keeps the dependency list short.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)
_HELP = {
    "argosy_gc_objects_deleted_total": ("counter", "Objects deleted from storage."),
    "argosy_gc_bytes_deleted_total": ("counter", "Bytes deleted from storage."),
    "argosy_gc_artifacts_deleted_total": ("counter", "Artifacts fully deleted."),
    "argosy_gc_failures_total": ("counter", "Artifacts whose deletion failed, by cause."),
    "argosy_gc_finalizers_forced_total": (
        "counter",
        "Finalizers removed after the deadline or attempts ran out.",
    ),
    "argosy_gc_reconciles_total": ("counter", "Workflows reconciled."),
    "argosy_gc_watch_restarts_total": ("counter", "Watches restarted, by reason."),
    "argosy_gc_queue_depth": ("gauge", "Workflows waiting in the work queue."),
    "argosy_gc_leader": ("gauge", "1 while this replica holds the Lease."),
    "argosy_gc_lag_seconds": (
        "histogram",
        "From the moment artifacts became due (completion, deletion, expiry) to their deletion.",
    ),
}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return "{" + inner + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._lag_counts = [0] * (len(LAG_BUCKETS) + 1)
        self._lag_sum = 0.0
        self.gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values.setdefault(name, {})
            series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def observe_lag(self, seconds: float) -> None:
        with self._lock:
            self._lag_counts[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
            self._lag_sum += max(0.0, seconds)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            values = {n: dict(s) for n, s in self._values.items()}
            counts, total = list(self._lag_counts), self._lag_sum
        gauges = {name: fn() for name, fn in self.gauges.items()}
        for name, (kind, text) in _HELP.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            if kind == "histogram":
                running = 0
                for bound, count in zip(LAG_BUCKETS, counts, strict=False):
                    running += count
                    lines.append(f'{name}_bucket{{le="{bound:g}"}} {running}')
                running += counts[-1]
                lines += [
                    f'{name}_bucket{{le="+Inf"}} {running}',
                    f"{name}_sum {_num(total)}",
                    f"{name}_count {running}",
                ]
            elif kind == "gauge" and name in gauges:
                lines.append(f"{name} {_num(gauges[name])}")
            else:
                for labels, value in sorted(values.get(name, {}).items()):
                    lines.append(f"{name}{_labels(labels)} {_num(value)}")
        return "\n".join(lines) + "\n"
