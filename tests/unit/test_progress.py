"""The progress bar and the summary after it tell one rate: the bar's clock, stopped when
it finishes, and the bytes it counted."""

from __future__ import annotations

import io

from argosy.commands.progress import Progress

MiB = 1 << 20


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_summary_rate_is_the_last_rate_the_bar_showed() -> None:
    clock, out = Clock(), Terminal()
    bar = Progress(None, enabled=True, out=out, clock=clock)
    for _ in range(8):
        clock.now += 0.25
        bar(MiB)
    last_drawn = out.getvalue().rsplit("\r", 1)[-1]
    bar.finish()
    assert last_drawn.split()[-2:] == ["4.0", "MiB/s"]
    assert bar.rate() == "4.0 MiB/s"


def test_the_clock_stops_when_the_bar_finishes() -> None:
    clock = Clock()
    bar = Progress(None, enabled=False, clock=clock)
    clock.now += 2
    bar(6 * MiB)
    bar.finish()
    clock.now += 60  # writing the summary, a manifest, closing files...
    assert bar.elapsed == 2
    assert (bar.rate(), bar.files_rate(40)) == ("3.0 MiB/s", "20.0 files/s")
