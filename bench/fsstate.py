"""How fast the filesystem creates files right now; waiting, bounded, until that is normal;
and dropping the trees a run wrote from the page cache (`evict`).

Why it exists: this machine's root is ext4 without a journal. There, after a tree of
many files is deleted, the inode allocator skips every inode freed in the last few
minutes and checks each one it skips (`recently_deleted()` in `find_inode_bit`): 20,000
creates took 12-15 s of system time instead of ~1 s, for up to ~5 minutes after the
delete. An extraction measured in that window measures the kernel's state, not the
tool, and it swung the download + extract ratio between 1.1x and 1.7x from run to run.
So before each extraction the benchmark creates a thousand small files in 40 new
folders (never deleted until the end: a delete is what starts the slow window) and, if
each took longer than NORMAL_US, waits and probes again, for at most `limit_s`. The
last probe's figure goes into the run's record either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

PROBE_FOLDERS = 40  # ext4 spreads new folders over block groups, as an extraction's
PROBE_FILES = 25  # files in each; one folder alone stays in one (possibly unaffected) group
NORMAL_US = 150.0  # ~30 us a 4 KiB file here normally; 600-750 us in the slow window
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def create_cost_us(folder: Path, folders: int = PROBE_FOLDERS, files: int = PROBE_FILES) -> float:
    """Microseconds per file to create, write 4 KiB into and close `files` new files in
    each of `folders` new folders under the new folder `folder`."""
    folder.mkdir(parents=True)
    block = b"x" * 4096
    began = time.perf_counter()
    for d in range(folders):
        sub = folder / f"d{d}"
        sub.mkdir()
        for i in range(files):
            fd = os.open(sub / f"p{i}", _FLAGS, 0o644)
            try:
                os.write(fd, block)
            finally:
                os.close(fd)
    return (time.perf_counter() - began) / (folders * files) * 1e6


class FsState:
    """Probes under `base` (a folder removed with the rest of the benchmark's work)."""

    def __init__(
        self,
        base: Path,
        log: Callable[[str], None],
        *,
        limit_s: float = 360.0,
        pause_s: float = 15.0,
    ) -> None:
        self._base = base
        self._log = log
        self._limit_s = limit_s
        self._pause_s = pause_s
        self._probes = 0
        self.waited_s = 0.0  # in total, over the whole run

    def ready(self) -> float:
        """Wait until creating a file costs NORMAL_US or less (or the limit passes);
        returns the last probe's microseconds per file."""
        began = time.monotonic()
        while True:
            self._probes += 1
            cost = create_cost_us(self._base / f"probe-{self._probes}")
            waited = time.monotonic() - began
            if cost <= NORMAL_US:
                break
            if waited >= self._limit_s:
                self._log(
                    f"file creation still slow after {waited:.0f} s ({cost:.0f} us a "
                    "file): measuring anyway, the figure is in the run's record"
                )
                break
            self._log(
                f"file creation is slow right now ({cost:.0f} us a file, normal <= "
                f"{NORMAL_US:.0f}): waiting {self._pause_s:.0f} s"
            )
            time.sleep(self._pause_s)
        self.waited_s += time.monotonic() - began
        return round(cost, 1)


def evict(folder: Path) -> None:
    """Drop the cached pages of every file under `folder` (nothing if it is not there).
    Call it after `os.sync()`: only pages written out can be dropped.

    Why: the benchmark keeps every downloaded tree until the end (deleting one starts the
    slow window above), and their pages filled this machine's memory within a sitting.
    From then on every page an extraction wrote had to be reclaimed first: both tools'
    extractions took 1.3-1.9 s of mostly system time instead of 0.8-1.0 s, in whichever
    pairs came after the memory ran out. Dropping a tree's pages once it is verified
    leaves each run the free memory the one before had."""
    for dirpath, _, names in os.walk(folder):
        for name in names:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:  # a symlink, or gone
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
