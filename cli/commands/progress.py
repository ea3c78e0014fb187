"""A progress line on a terminal; nothing when piped or quiet.

The summary a command prints at the end takes its rate from here too (`rate`,
`files_rate`): the same clock (started with the bar, stopped by `finish`) and the same
bytes the bar counted, so the last rate the bar showed and the summary's agree.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

MiB = 1 << 20


class Progress:
    def __init__(
        self,
        total: int | None,
        *,
        enabled: bool,
        out: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and out.isatty()
        self._out = out
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._end: float | None = None
        self._last = 0.0

    def __call__(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = self._clock()
            if self.enabled and now - self._last >= 0.2:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        rate = _per_second(self.done / MiB, now - self._start)
        if self.total:
            line = (
                f"\r{self.done / MiB:9.1f} / {self.total / MiB:.1f} MiB "
                f"{100 * self.done / self.total:5.1f}%  {rate:7.1f} MiB/s"
            )
        else:
            line = f"\r{self.done / MiB:9.1f} MiB  {rate:7.1f} MiB/s"
        self._out.write(line)
        self._out.flush()

    def finish(self) -> None:
        """Stop the clock (the summary's rate is the bar's at this moment) and clear the
        line."""
        with self._lock:
            if self._end is None:
                self._end = self._clock()
        if self.enabled:
            self._out.write("\r\033[K")
            self._out.flush()

    @property
    def elapsed(self) -> float:
        """Seconds from the bar's start to its finish (or to now, before it)."""
        return (self._end if self._end is not None else self._clock()) - self._start

    def rate(self) -> str:
        """The bytes counted, per second, as the bar shows them."""
        return f"{_per_second(self.done / MiB, self.elapsed):.1f} MiB/s"

    def files_rate(self, files: int) -> str:
        return f"{_per_second(files, self.elapsed):.1f} files/s"


def _per_second(amount: float, seconds: float) -> float:
    return amount / max(seconds, 1e-6)
