"""The directory benchmark's test tree: real text files copied from the machine, and the
checks that a downloaded tree is the same tree.

Why it exists: Argo's artifacts are mostly outputs like logs, sources and reports, so the
benchmark needs many small real text files (real compression ratios, real size spread),
chosen the same way on every run: sources in a fixed order, each walked sorted, only
regular files that look like text (no NUL byte and valid UTF-8 in the first 8 KiB),
stopping at the file or byte limit.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
MAX_FILE = 8 * MiB  # one huge file would not be "a tree of small files"
SNIFF = 8192
CHUNK = 1 << 20

# (label, path): a label is the top folder in the corpus; missing paths are skipped
SOURCES: tuple[tuple[str, str], ...] = (
    ("doc", "/usr/share/doc"),
    ("include", "/usr/include"),
    ("python3.11", f"{sys.base_prefix}/lib/python3.11"),  # the stdlib, not site-packages
    ("python3", "/usr/lib/python3"),
    ("perl", "/usr/share/perl"),
    ("vim", "/usr/share/vim"),
    ("gcloud", "/usr/lib/google-cloud-sdk/lib"),
    ("cmake", "/usr/share/cmake-3.25"),
)
SKIP_DIRS = frozenset({"__pycache__", "site-packages"})


@dataclass(frozen=True)
class TreeStats:
    files: int  # regular files
    bytes: int  # their total size
    other: int  # symlinks, empty dirs are not counted; anything else (fifo, socket) is


def _texty(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF)
    except OSError:
        return False
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # a multi-byte character cut at the end of the sniffed block is fine
        if len(head) < SNIFF or e.start < len(head) - 4:
            return False
    return True


def _candidates(source: str) -> list[tuple[str, str]]:
    """(path, relative path) of the text files under source, sorted walk."""
    found = []
    for d, dirs, names in os.walk(source):
        dirs.sort()
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
        for name in sorted(names):
            path = os.path.join(d, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not (st.st_mode & 0o170000 == 0o100000) or not 0 < st.st_size <= MAX_FILE:
                continue
            if os.access(path, os.R_OK):
                found.append((path, os.path.relpath(path, source)))
    return found


def build(dest: Path, max_files: int, max_bytes: int) -> TreeStats:
    """Copy text files into dest (which must not exist) until either limit is reached."""
    dest.mkdir(parents=True)
    files = size = 0
    for label, source in SOURCES:
        if not os.path.isdir(source):
            continue
        for path, rel in _candidates(source):
            if files >= max_files or size >= max_bytes:
                return TreeStats(files, size, 0)
            if not _texty(path):
                continue
            target = dest / label / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(path, target)
            except OSError:
                continue
            files += 1
            size += target.stat().st_size
    return TreeStats(files, size, 0)


def stats(root: Path) -> TreeStats:
    files = size = other = 0
    for d, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(d, name))
            if st.st_mode & 0o170000 == 0o100000:
                files += 1
                size += st.st_size
            elif st.st_mode & 0o170000 != 0o120000:
                other += 1
    return TreeStats(files, size, other)


def warm(root: Path) -> None:
    """Read every regular file once, so the page cache holds the tree before the first
    round: otherwise whichever tool runs first reads it from disk (measured: 2.1-2.5 s
    instead of 1.1 s for the first tar.zst upload after other work evicted the tree)."""
    for d, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(d, name)
            if not os.path.islink(path):
                with open(path, "rb") as f:
                    while f.read(1 << 20):
                        pass


def listing(root: Path) -> dict[str, int]:
    """Relative path -> size of every regular file under root."""
    out = {}
    for d, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(d, name)
            st = os.lstat(path)
            if st.st_mode & 0o170000 == 0o100000:
                out[os.path.relpath(path, root)] = st.st_size
    return out


def compare(want: Path, got: Path, *, full: bool) -> str | None:
    """None if got holds the same regular files as want (same sizes; same bytes if full),
    else the first differences found."""
    a, b = listing(want), listing(got)
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    if missing or extra:
        return f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra (e.g. {extra[:3]})"
    sizes = [p for p in sorted(a) if a[p] != b[p]]
    if sizes:
        return f"{len(sizes)} files differ in size (e.g. {sizes[:3]})"
    if full:
        for rel in sorted(a):
            if not _same(want / rel, got / rel):
                return f"bytes differ: {rel}"
    return None


def _same(x: Path, y: Path) -> bool:
    with open(x, "rb") as fx, open(y, "rb") as fy:
        while True:
            cx, cy = fx.read(CHUNK), fy.read(CHUNK)
            if cx != cy:
                return False
            if not cx:
                return True


def subset(source: Path, dest: Path, count: int) -> TreeStats:
    """`count` regular files of source spread evenly over its sorted walk (every k-th),
    hard-linked (or copied) into dest with their relative paths."""
    names = sorted(listing(source))
    step = max(len(names) / count, 1.0)
    picked = [names[int(i * step)] for i in range(min(count, len(names)))]
    dest.mkdir(parents=True)
    size = 0
    for rel in picked:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / rel, target)
        except OSError:
            shutil.copyfile(source / rel, target)
        size += target.stat().st_size
    return TreeStats(len(picked), size, 0)
