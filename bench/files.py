"""Test data on disk: random files (incompressible, no dedup shortcuts) and a byte compare.

Why it exists: every tool must read the same file from the page cache and every
download must be checked against it, outside the timed region.
"""

from __future__ import annotations

import os
from pathlib import Path

MiB = 1 << 20
CHUNK = 16 * MiB


def make_random_file(path: Path, size: int) -> None:
    """Write size random bytes to path (os.urandom, 16 MiB at a time)."""
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n
    if path.stat().st_size != size:
        raise RuntimeError(f"{path}: wrote {path.stat().st_size} bytes, wanted {size}")


def same_bytes(a: Path, b: Path) -> bool:
    """True if both files hold the same bytes (size first, then 16 MiB chunks)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(CHUNK), fb.read(CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
