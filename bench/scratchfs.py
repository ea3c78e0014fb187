"""A filesystem of the benchmark's own for what the tools write: a fresh ext4 with its
journal, in a sparse image file, mounted through a loop device (needs root).

Why it exists: this machine's root is ext4 without a journal, shared by the tools'
downloads and RGW's store. There the inode allocator checks every inode freed in the last
minutes before it reuses one (`recently_deleted()`, fsstate.py), and in a whole bench.dirs
sitting, after the `archive: none` cases, both tools' extractions took 1.5-1.8 s of
mostly system time instead of 0.8-1.0 s, with the file creation probe reading normal.
A pod writes to its node's filesystem: ext4 with its journal or XFS, holding no object
store. On a filesystem of their own, made fresh for the run, the tools meet that: the
kernel path that file creation takes is the one a node takes, and nothing the server or
the previous tool did is left in its allocator.
"""

from __future__ import annotations

import shutil
import subprocess
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
    for tool in ("mkfs.ext4", "losetup", "mount", "umount"):
        if not shutil.which(tool):
            raise SystemExit(f"scratch filesystem: {tool} not found (apt-get install e2fsprogs)")
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
        if mounted:
            _out("umount", mounted)
        if device:
            _out("losetup", "--detach", device)
        image.unlink(missing_ok=True)
        mount.rmdir()
