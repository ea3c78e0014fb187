"""A filesystem of the benchmark's own for what the tools write: a fresh ext4 with its
journal, in a sparse image file, mounted through a loop device (needs root).

Why it exists: this machine's root is ext4 without a journal, shared by the tools'
downloads and RGW's store. There the inode allocator checks every inode freed in the last
minutes before it reuses one (`recently_deleted()`, fsstate.py): deleting the ~40 trees a
whole bench.dirs sitting downloads (~300,000 files) left the machine creating files at a
tenth of its speed for minutes afterwards (extractions of 9-11 s instead of 0.8 s, a
Ceph monitor 43 s slow to start). A pod writes to its node's filesystem: ext4 with its
journal or XFS, holding no object store. On a filesystem of their own, made fresh for
the run, the tools meet that, and the run's trees go at the end as one image file.
(It does not keep a sitting's memory steady; fsstate.evict does that.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GiB = 1 << 30


def _out(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise SystemExit(f"scratch filesystem: {' '.join(cmd)}: {why[0]}")
    return done.stdout.strip()


@contextmanager
def ext4(folder: Path, size_gib: int) -> Iterator[Path]:
    """A new ext4 (with a journal) of `size_gib` GiB mounted at folder/'scratch', its
    sparse image at folder/'scratch.img'; unmounted and deleted on the way out (one
    file deleted, not the trees written into it). The loop device reads and writes the
    image directly, so the page cache holds the tools' files once, not twice."""
    for tool, package in (
        ("mkfs.ext4", "e2fsprogs"),
        ("losetup", "mount"),
        ("mount", "mount"),
        ("umount", "mount"),  # the way out needs it: checked before anything is made
    ):
        if not shutil.which(tool):
            raise SystemExit(f"scratch filesystem: {tool} not found (apt-get install {package})")
    image, mount = folder / "scratch.img", folder / "scratch"
    with open(image, "wb") as f:
        f.truncate(size_gib * GiB)
    mount.mkdir()
    device = mounted = ""
    try:
        _out("mkfs.ext4", "-q", "-F", str(image))
        device = _out("losetup", "--find", "--show", "--direct-io=on", str(image))
        _out("mount", device, str(mount))
        mounted = str(mount)
        yield mount
    finally:
        _undo(mounted, device, image, mount)


def _undo(mounted: str, device: str, image: Path, mount: Path) -> None:
    """Every step of the way out is tried, and what could not be undone is named; none
    raises over the error that may be on its way out already."""
    left = []
    if mounted and subprocess.run(["umount", mounted], capture_output=True).returncode:
        left.append(f"{mounted} is still mounted (umount {mounted})")
    if device and subprocess.run(["losetup", "--detach", device], capture_output=True).returncode:
        left.append(f"loop device {device} is still attached (losetup --detach {device})")
    if not left:
        image.unlink(missing_ok=True)
        mount.rmdir()
    for what in left:
        print(f"scratch filesystem: {what}", file=sys.stderr)
