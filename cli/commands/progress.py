"""A progress line on a terminal; nothing when piped or quiet."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, *, enabled: bool, out: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and out.isatty()
        self._out = out
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if self.enabled and now - self._last >= 0.2:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-6) / (1 << 20)
        if self.total:
            line = (
                f"\r{self.done / (1 << 20):9.1f} / {self.total / (1 << 20):.1f} MiB "
                f"{100 * self.done / self.total:5.1f}%  {rate:7.1f} MiB/s"
            )
        else:
            line = f"\r{self.done / (1 << 20):9.1f} MiB  {rate:7.1f} MiB/s"
        self._out.write(line)
        self._out.flush()

    def finish(self) -> None:
        if self.enabled:
            self._out.write("\r\033[K")
            self._out.flush()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start
