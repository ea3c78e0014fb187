"""Bad input and rough edges met on a first try, through `argosy` as a user runs it:
each is one line naming the thing, with its exit code, and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_copying_a_folder_without_r_says_how_to_copy_a_folder(argosy_local, tmp_path) -> None:
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "f").write_text("x")
    for dst in ("local://bkt/dir", "local://bkt/"):
        run = argosy_local("cp", "dir", dst)
        assert run.code == 2
        assert _one_line(run.err) == (
            "argosy: error: dir is a folder: use -r (one object per file) or --archive FORMAT"
        )
    assert list((tmp_path / "local-root" / "bkt").iterdir()) == []
