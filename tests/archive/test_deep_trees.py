"""Trees thousands of folders deep: Python 3.11's `os.walk` and `shutil.rmtree` recurse
once per level (about a thousand at most), and Linux takes paths of at most 4095 bytes.

A member whose path the system cannot take is refused in one line naming it, before any
folder of it is made; a deep tree the system can take is extracted; whatever fails, the
staging folder goes, however deep it got.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from argosy.artifacts.archive import extract_tar, extract_zip
from argosy.artifacts.archive.layout import move_into, remove_staging
from argosy.artifacts.errors import InvalidSpec
from tests.archive.helpers import file, info, listing, tar_bytes

SHALLOW_ENOUGH = 1100  # "a/" * 1100: 2,200 bytes, within PATH_MAX; past the recursion limit
TOO_DEEP = 5000  # 10,000 bytes: no system call takes the path


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "a" / "b").mkdir(parents=True)
    return tmp_path


def _deep(depth: int) -> str:
    return "a/" * depth + "f"


def _chain(root: Path, depth: int) -> Path:
    """root/a/a/.../a, each folder made relative to the one above (os.makedirs recurses,
    and full paths would walk the whole chain for every level)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("a", dir_fd=fd)
            inner = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    return Path(str(root) + "/a" * depth)


def test_a_member_5000_folders_deep_is_refused_naming_it_and_nothing_is_left(
    world: Path,
) -> None:
    data = tar_bytes(file("ok.txt"), file(_deep(TOO_DEEP)))
    before = listing(world)
    with pytest.raises(InvalidSpec) as refused:
        extract_tar([data], world / "a" / "b" / "dest")
    message = str(refused.value)
    assert "5000 folders deep" in message and "PATH_MAX" in message
    assert "'a/a/a/a/" in message and "/a/f'" in message
    assert len(message) < 500 and "\n" not in message
    assert listing(world) == before  # no destination, no staging folder


def test_a_zip_member_5000_folders_deep_is_refused_and_nothing_is_left(world: Path) -> None:
    path = world / "deep.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(_deep(TOO_DEEP), b"x")
    data = path.read_bytes()
    path.unlink()
    before = listing(world)
    with pytest.raises(InvalidSpec, match="5000 folders deep"):
        extract_zip(lambda s, e: data[s:e], len(data), world / "a" / "b" / "dest")
    assert listing(world) == before


def test_a_deep_tree_that_fails_later_leaves_no_staging_folder(world: Path) -> None:
    deep_dir = info("a/" * SHALLOW_ENOUGH, tarfile.DIRTYPE, mode=0o555)  # read-only, too
    data = tar_bytes(file(_deep(SHALLOW_ENOUGH)), (deep_dir, None), file("../escape"))
    before = listing(world)
    with pytest.raises(InvalidSpec, match="'../escape' has a '..' segment"):
        extract_tar([data], world / "a" / "b" / "dest")
    assert listing(world) == before


def test_a_member_1100_folders_deep_is_extracted(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    try:
        extract_tar([tar_bytes(file(_deep(SHALLOW_ENOUGH), b"deep"))], dest)
        assert Path(str(dest) + "/" + _deep(SHALLOW_ENOUGH)).read_bytes() == b"deep"
    finally:
        remove_staging(str(dest))  # pytest's own cleanup would recurse too deep


def test_a_deep_tree_joins_an_existing_folder_without_recursing(tmp_path: Path) -> None:
    staged, final = tmp_path / "staged", tmp_path / "final"
    (_chain(staged, SHALLOW_ENOUGH) / "new.txt").write_text("new")
    (_chain(final, SHALLOW_ENOUGH) / "old.txt").write_text("old")
    try:
        move_into(str(staged), str(final))
        deepest = Path(str(final) + "/a" * SHALLOW_ENOUGH)
        assert sorted(os.listdir(deepest)) == ["new.txt", "old.txt"]
        assert not staged.exists()
    finally:
        remove_staging(str(final))


def test_a_name_longer_than_the_file_system_takes_is_refused_as_bad_input(world: Path) -> None:
    data = tar_bytes(file("ok.txt"), file("n" * 300))  # NAME_MAX is 255 bytes
    before = listing(world)
    with pytest.raises(InvalidSpec, match="too long for the file system"):
        extract_tar([data], world / "a" / "b" / "dest")
    assert listing(world) == before
