"""bench/rss.py measures a command's peak memory over its whole process tree."""

from __future__ import annotations

import subprocess
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
    assert measured.cpu_seconds > 0 and measured.seconds >= 0.6


def test_a_command_can_read_its_stdin_from_a_file_and_write_its_stdout_to_one(
    tmp_path: Path,
) -> None:
    source, sink = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    measured = rss.run(["cat"], env={}, cwd=tmp_path, timeout=30, stdin=source, stdout=sink)
    assert measured.returncode == 0
    assert sink.read_bytes() == source.read_bytes() and measured.stdout == ""


# a process that holds N MiB (written, so resident) on "N", lets it go on "0", says "ok"
HOLDER = """
import subprocess
import sys
held = None
for line in sys.stdin:
    held = None
    n = int(line)
    if n:
        held = bytearray(n << 20)
        for i in range(0, len(held), 4096):
            held[i] = 1
    print("ok", flush=True)
"""


def test_a_watch_window_reports_its_own_peak_not_an_earlier_windows() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    orders, answers = holder.stdin, holder.stdout

    def hold(mib: int) -> None:
        orders.write(f"{mib}\n")
        orders.flush()
        assert answers.readline() == "ok\n"

    watch = rss.Watch(holder.pid).start()
    try:
        watch.window()
        hold(160)
        hold(0)
        big = watch.close()
        watch.window()
        hold(20)
        small = watch.close()
    finally:
        watch.stop()
        orders.close()
        holder.wait(30)
    assert big >= 160 * MiB
    assert small < 100 * MiB and watch.exact
