"""Run one command as a separate process and measure it: wall time, peak RSS, CPU time.

Why a separate process per transfer: peak memory of a tool is only meaningful for a
process that does nothing else. Two measures of peak RSS are taken, every 20 ms:
- the process tree (the process and all its children), RSS summed over the tree, maximum
  kept. The tree's members are found by a scan of /proc every 100 ms and their RSS read
  every 20 ms (one small read each): psutil's recursive `children()` scanned every
  process on each sample and cost 16% of a core, taken from the tools being measured on
  this 2-core machine; this costs ~2%;
- the kernel's high-water mark of the direct child (VmHWM in /proc/PID/status), which
  catches spikes between samples (all but the last 20 ms of the run).
The reported peak is the larger of the two. `ru_maxrss` from wait4 is not used: on Linux
it keeps the high-water mark of the forked copy of this (large) process from before exec.
The main thread blocks in wait4 so the end of the run is seen at once, not at the next
sample.

`Watch` takes the same two measures of a process that outlives the measurements (a
server serving one call after another), one window at a time: the kernel's high-water
mark is reset at the start of each window, so a window's peak is its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_S = 0.02
MiB = 1 << 20


@dataclass(frozen=True)
class Measured:
    seconds: float  # wall time from spawn to exit
    peak_rss: int  # bytes: max(tree sampled, VmHWM of the direct child)
    tree_rss: int  # bytes: max over samples of the summed RSS of the tree
    hwm_self: int  # bytes: the kernel's high-water mark of the direct child (last sample)
    cpu_seconds: float  # user + system of the child and the children it waited for
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


PAGE = os.sysconf("SC_PAGE_SIZE")
RESCAN_EVERY = 5  # samples between scans of /proc for the tree's members


def _tree(pid: int) -> list[int]:
    """pid and its descendants, from each process's parent in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            parent = int(stat[stat.rindex(b")") + 2 :].split(maxsplit=2)[1])
            children.setdefault(parent, []).append(int(entry.name))
    members, todo = [], [pid]
    while todo:
        member = todo.pop()
        members.append(member)
        todo.extend(children.get(member, ()))
    return members


def _tree_rss(members: list[int]) -> int:
    total = 0
    for member in members:
        try:
            with open(f"/proc/{member}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            pass
    return total


def _hwm(pid: int) -> int:
    """VmHWM of pid in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _sample(
    pid: int, stop: threading.Event, deadline: float, peak: list[int], killed: list[bool]
) -> None:
    """Sample the tree until stop is set; kill the process group past the deadline.
    peak[0]: max summed tree RSS; peak[1]: max VmHWM of pid."""
    samples = 0
    members = [pid]
    while not stop.is_set():
        if samples % RESCAN_EVERY == 0:
            members = _tree(pid)
        samples += 1
        peak[0] = max(peak[0], _tree_rss(members))
        peak[1] = max(peak[1], _hwm(pid))
        if time.monotonic() > deadline and not killed[0]:
            killed[0] = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stop.wait(SAMPLE_S)


def run(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> Measured:
    """Run cmd to completion (killed after timeout seconds) and measure it. stdin: a file
    it reads as standard input (default: none); stdout: a file its standard output goes
    to, e.g. /dev/null for a stream of data (default: captured into `Measured.stdout`)."""
    with (
        tempfile.TemporaryFile() as captured,
        tempfile.TemporaryFile() as err,
        open(stdin or os.devnull, "rb") as source,
        open(stdout, "wb") if stdout else contextlib.nullcontext(captured) as out,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=source,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        stop = threading.Event()
        peak, killed = [0, 0], [False]
        sampler = threading.Thread(
            target=_sample,
            daemon=True,
            args=(proc.pid, stop, time.monotonic() + timeout, peak, killed),
        )
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            seconds = time.perf_counter() - t0
            stop.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        try:  # a child left behind in the group must not outlive its measurement
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        captured.seek(0)
        err.seek(0)
        return Measured(
            seconds,
            max(peak),
            peak[0],
            peak[1],
            usage.ru_utime + usage.ru_stime,
            proc.returncode,
            captured.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            killed[0],
        )


def _reset_hwm(pid: int) -> bool:
    """Set pid's VmHWM back to its current RSS (Linux >= 4.0, writing 5 to clear_refs);
    False if the kernel or the permissions do not allow it."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Watch:
    """The peak RSS of a process that outlives its measurements (a server serving one call
    after another), window by window.

    A thread samples the process tree's RSS every 20 ms for as long as the watch runs;
    `window()` starts a new window: the sampled peak restarts from zero and the kernel's
    high-water mark (VmHWM) is reset to the current RSS, so `close()` returns the larger
    of the two for that window alone, spikes between samples included. Where VmHWM cannot
    be reset, the window's peak is the sampled one (`exact` says which)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exact = True
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="rss-watch")

    def start(self) -> Watch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        samples, members = 0, [self.pid]
        while not self._stop.is_set():
            if samples % RESCAN_EVERY == 0:
                members = _tree(self.pid)
            samples += 1
            rss = _tree_rss(members)
            with self._lock:
                self._peak = max(self._peak, rss)
            self._stop.wait(SAMPLE_S)

    def window(self) -> int:
        """Start a new window now; the RSS in bytes it starts from."""
        self.exact = _reset_hwm(self.pid) and self.exact
        now = _tree_rss(_tree(self.pid))
        with self._lock:
            self._peak = now
        return now

    def close(self) -> int:
        """The peak RSS in bytes since `window()`."""
        hwm = _hwm(self.pid) if self.exact else 0
        with self._lock:
            return max(self._peak, hwm, _tree_rss(_tree(self.pid)))

    def current(self) -> int:
        return _tree_rss(_tree(self.pid))
