"""A restore onto a mount point, as an input artifact lands on a pod's volume: nothing can
be renamed onto a mount point, and its parent is another file system. Needs root (to mount
a tmpfs), as the suite's Ceph RGW does."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "volume"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the suite runs as root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    os.symlink("a.txt", root / "link")


def _restored(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_text()
        for p in sorted(root.rglob("*"))
        if not p.is_dir() or p.is_symlink()
    }


@pytest.mark.parametrize("fmt", ["tar.zst", "tar.gz", "zip", "none"])
def test_a_folder_restores_onto_a_mount_point_with_nothing_left_beside_it(
    argosy_local, tmp_path, mount_point, fmt
) -> None:
    _tree(tmp_path / "src")
    url = "local://bkt/run/out" + ("/" if fmt == "none" else f".{fmt}")
    assert argosy_local("cp", "-q", "--archive", fmt, "src", url).code == 0

    run = argosy_local("cp", "-q", "--archive", "auto", url.rstrip("/"), str(mount_point))

    assert run.code == 0, run.err
    assert _restored(mount_point) == {"a.txt": "a", "link": "a.txt", "sub/b.txt": "b"}
    assert not [p for p in tmp_path.iterdir() if ".argosy-" in p.name]


def test_a_failed_restore_onto_a_mount_point_leaves_it_empty(
    argosy_local, tmp_path, mount_point
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big").write_bytes(os.urandom(32 << 20))  # the tmpfs holds 16 MiB
    assert argosy_local("cp", "-q", "--archive", "tar", "src", "local://bkt/big.tar").code == 0

    run = argosy_local("cp", "-q", "--archive", "auto", "local://bkt/big.tar", str(mount_point))

    assert run.code != 0
    assert len(run.err.strip().splitlines()) == 1, run.err
    assert list(mount_point.iterdir()) == []
