"""Durations as users write them in an ArtifactGCPolicy (`expireAfter: 720h`).

Kubernetes APIs carry durations as Go `time.ParseDuration` strings ("1h30m", "90s"); we
accept exactly that grammar plus `d` for days, because "30d" is what people mean and type.
A negative duration is an error here, never "now": a policy that deletes everything at
once because of a stray minus sign is the failure this module exists to refuse.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
PATTERN = r"^(0|([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h|d))+)$"  # the CRD's validation


class DurationError(ValueError):
    """Not a duration, or a negative one."""


def parse_duration(text: object) -> timedelta:
    """`"1h30m"` -> 1.5 hours; raises DurationError for anything else, negatives included."""
    if not isinstance(text, str):
        raise DurationError(f'a duration must be a string such as "720h", not {text!r}')
    value = text.strip()
    if value.startswith("-"):
        raise DurationError(f"a duration cannot be negative: {text!r}")
    if value.startswith("+"):
        value = value[1:]
    if value == "0":
        return timedelta(0)
    seconds, pos = 0.0, 0
    for match in _TERM.finditer(value):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise DurationError(f'not a duration: {text!r} (write e.g. "720h", "30d", "1h30m")')
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest Go-style spelling of a whole number of seconds: 5400s -> "1h30m"."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
