"""bench/rss.py measures a command's peak memory over its whole process tree."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import rss

MiB = 1 << 20
HOLD = "b = bytes(range(256)) * ({n} << 12); import time; time.sleep(0.6)"  # n MiB, written


def test_a_pipelines_peak_is_the_sum_of_its_processes_held_at_once() -> None:
    one = f"{sys.executable} -c '{HOLD.format(n=80)}'"
    measured = rss.run(["bash", "-c", f"{one} | {one}"], env={}, cwd=Path("."), timeout=30)
    assert measured.returncode == 0
    assert measured.tree_rss >= 160 * MiB and measured.peak_rss >= 160 * MiB
    assert measured.hwm_self < 20 * MiB  # bash itself holds little: the tree is what counts


def test_a_single_process_peak_is_its_own_high_water_mark() -> None:
    measured = rss.run(
        [sys.executable, "-c", HOLD.format(n=120)], env={}, cwd=Path("."), timeout=30
    )
    assert 120 * MiB <= measured.peak_rss < 200 * MiB
    assert measured.cpu_seconds > 0 and 0.6 <= measured.seconds < 30
