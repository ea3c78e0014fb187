"""Putting inputs in place copes with trees as deep as the system allows: Python 3.11's
`os.walk` and `shutil.rmtree` recurse once per level, about a thousand at most."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from argosy.artifacts.archive.layout import remove_staging
from argosy.sidecar import placing

DEEP = 1100  # past the recursion limit, within PATH_MAX ("/a" * 1100: 2,200 bytes)


def _chain(root: Path, depth: int) -> Path:
    """root/a/a/.../a/f, each folder made relative to the one above."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("a", dir_fd=fd)
            inner = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    return Path(str(root) + "/a" * depth + "/f")


def test_a_stage_thousands_of_folders_deep_with_a_read_only_folder_is_discarded(
    tmp_path: Path,
) -> None:
    deepest = _chain(tmp_path / "stage", DEEP)
    deepest.parent.chmod(0o555)
    placing.discard(tmp_path / "stage")
    assert os.listdir(tmp_path) == []


def test_a_recursive_mode_reaches_the_bottom_of_a_deep_tree(tmp_path: Path) -> None:
    deepest = _chain(tmp_path / "input", DEEP)
    try:
        placing.set_mode(tmp_path / "input", 0o640, recurse=True)
        assert stat.S_IMODE(os.stat(deepest).st_mode) == 0o640
        assert stat.S_IMODE(os.stat(deepest.parent).st_mode) == 0o751
        assert stat.S_IMODE(os.stat(tmp_path / "input").st_mode) == 0o751
    finally:
        remove_staging(str(tmp_path / "input"))
