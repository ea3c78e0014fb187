"""How the workflow demo says what happened: one line per artifact moved (step, in or
out, name, where, how big, how fast, checksum), taken from the sidecar's own reports
(`inputs.json` from init, `outputs.json` from wait), so what is printed is what the
sidecar measured and recorded, not what the demo assumes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from argosy.demo.engine import PodResult

KiB, MiB, GiB = 1024, 1024**2, 1024**3


def size(n: float) -> str:
    if n < KiB:
        return f"{int(n)} B"
    for unit, scale in (("KiB", KiB), ("MiB", MiB), ("GiB", GiB)):
        if n < scale * 1024 or unit == "GiB":
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def rate(n: float, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    return size(n / seconds) + "/s"


def checksum(entry: Mapping[str, Any]) -> str:
    found = entry.get("checksum")
    if isinstance(found, Mapping) and found.get("value"):
        return f"{found.get('algorithm', 'crc32c')}:{found['value']}"
    if entry.get("archive") == "none":
        return "per-file (manifest)"
    return "-"


def transfers(result: PodResult) -> Iterator[tuple[str, ...]]:
    """Rows: step, direction, artifact, url, size, speed, checksum."""
    step = result.pod.display
    for direction, doc in (("in", result.inputs_report), ("out", result.outputs_report)):
        for entry in (doc or {}).get("artifacts") or []:
            name = str(entry.get("name"))
            status = str(entry.get("status"))
            if status not in ("uploaded", "downloaded"):
                reason = entry.get("reason") or ""
                yield step, direction, name, f"{status}: {reason}".rstrip(": "), "", "", ""
                continue
            n = float(entry.get("size") or 0)
            yield (
                step,
                direction,
                name,
                str(entry.get("url") or ""),
                size(n),
                rate(n, float(entry.get("seconds") or 0.0)),
                checksum(entry),
            )


def table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]


def pod_line(result: PodResult) -> str:
    pod = result.pod
    took = "  ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items())
    state = "FAILED: " + result.failure if result.failure else "ok"
    return f"  {pod.display} (pod {pod.pod_name}): {state}  [{took}]"
