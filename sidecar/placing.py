"""Putting fetched inputs into place: staging beside the destination, Argo's unwrapping
of a single top-level entry, `subPath`, and modes.

Everything lands in a staging folder next to the artifact's path and is renamed into
place only when complete, so a failed or killed `init` leaves nothing under the final
name. An existing path is never overwritten: the main container would otherwise run on
a mix of old and new files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from argosy.artifacts.archive.layout import remove_staging
from argosy.artifacts.errors import InvalidSpec, LocalIOError


def destination(path: str, root: Path | None) -> Path:
    """An artifact's path, under `root` when the main container's filesystem is mounted
    elsewhere (Argo's `/mainctrfs`, the demo's per-step sandbox)."""
    if root is None:
        return Path(path)
    return root / path.lstrip("/")


def check_free(dest: Path, name: str) -> None:
    if dest.exists() or dest.is_symlink():
        raise InvalidSpec(
            f"input {name}: {dest} already exists; an input is never written over existing files"
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LocalIOError(f"input {name}: cannot create {dest.parent}: {error.strerror}") from None


def staging(dest: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.argosy-in-", dir=dest.parent))


def place(stage: Path, dest: Path, *, name: str, sub_path: str | None, unwrap: bool) -> None:
    """Move what was extracted into `stage` to `dest`. With `unwrap`, a stage holding one
    entry is that entry (Argo's archives hold the path under its own base name)."""
    source = stage
    if unwrap:
        entries = list(stage.iterdir())
        if len(entries) == 1:
            source = entries[0]
    if sub_path:
        parts = [p for p in sub_path.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise InvalidSpec(f"input {name}: subPath {sub_path!r} leaves the artifact")
        source = source.joinpath(*parts)
        if not (source.exists() or source.is_symlink()):
            raise InvalidSpec(f"input {name}: subPath {sub_path!r} is not in the artifact")
    os.rename(source, dest)


def set_mode(dest: Path, mode: int | None, *, recurse: bool) -> None:
    if mode is None:
        return
    if not recurse or not dest.is_dir():
        os.chmod(dest, mode)
        return
    folders = [os.fspath(dest)]
    for folder in folders:  # grows as it goes: no recursion, however deep the tree is
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            entries = []  # as os.walk: a folder that cannot be listed keeps its contents
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif not entry.is_symlink():
                os.chmod(entry.path, mode)
        os.chmod(folder, mode | 0o111)  # after its listing; folders stay searchable


def discard(stage: Path) -> None:
    """Remove a staging folder, read-only folders and trees thousands deep included."""
    remove_staging(os.fspath(stage))
