"""Peak disk space a process used in the folders it was given, sampled while it runs.

Why it exists: Argo's executor stages every archived output as a .tgz on disk before it
uploads it, and loads an input .tgz to disk before it extracts it; Argosy streams both.
The difference is disk a pod must have, so the benchmark measures it instead of
asserting it: the blocks allocated under the watched folders (the pod's root, var dir
and TMPDIR), summed every 50 ms, maximum kept. Free space of the filesystem would not
do: the RGW under test writes its objects to the same disk.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

SAMPLE_S = 0.05


def allocated(folders: list[Path]) -> int:
    """Bytes allocated on disk (st_blocks) by the files under folders, links not followed."""
    total = 0
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:  # renamed or removed between listing and stat
                    pass
    return total


class DiskPeak:
    """`with DiskPeak([dirs]) as disk: ...` then `disk.peak`: bytes above the start."""

    def __init__(self, folders: list[Path], *, interval: float = SAMPLE_S) -> None:
        self._folders = folders
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-disk", daemon=True)
        self.baseline = 0
        self._max = 0

    @property
    def peak(self) -> int:
        return max(0, self._max - self.baseline)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, allocated(self._folders))
            self._stop.wait(self._interval)

    def __enter__(self) -> DiskPeak:
        self.baseline = allocated(self._folders)
        self._max = self.baseline
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._max = max(self._max, allocated(self._folders))  # what is left at the end
