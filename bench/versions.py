"""What a benchmark ran: package versions, tools' version lines and the commit measured."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_line(cmd: list[str]) -> str:
    """The first line a command prints (on stdout, else stderr); "?" when it cannot run."""
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, cwd=ROOT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return ((done.stdout or done.stderr).strip().splitlines() or [""])[0]


def collect(
    packages: Iterable[str], tools: Mapping[str, list[str]] | None = None
) -> dict[str, str]:
    """Each package's installed version ("-" when absent), each tool's version line, the
    commit measured and whether the working tree differed from it."""
    found: dict[str, str] = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    for name, cmd in (tools or {}).items():
        found[name] = first_line(cmd)
    found["radosgw"] = first_line(["radosgw", "--version"])
    return found | git()


def git() -> dict[str, str]:
    """The commit a run measures, and whether the working tree differed from it."""
    dirty = first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "argosy_git": first_line(["git", "rev-parse", "--short", "HEAD"]),
        "argosy_git_dirty": "yes" if dirty else "no",
    }
