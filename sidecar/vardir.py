"""The var dir the emissary and the wait side share, laid out like Argo's emissary:

    D/ctr/<container>/exitcode   the command's exit code, decimal text, written last
    D/ctr/<container>/combined   its stdout and stderr, interleaved as they came

The two sides run in different containers of one pod and meet only through these files,
so the exit code is the handshake: it is written atomically (a temporary file renamed
into place) and only after the log is complete, and its appearance means "done".
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from argosy.artifacts.errors import InvalidSpec, LocalIOError

DEFAULT_VAR_DIR = Path("/var/run/argosy")
DEFAULT_CONTAINER = "main"


def container_dir(var_dir: Path, container: str = DEFAULT_CONTAINER) -> Path:
    # The name becomes one path component: a "/" or ".." would escape D/ctr/.
    if not container or "/" in container or container in (".", ".."):
        raise InvalidSpec(f"bad container name {container!r}")
    return var_dir / "ctr" / container


def exit_code_path(var_dir: Path, container: str = DEFAULT_CONTAINER) -> Path:
    return container_dir(var_dir, container) / "exitcode"


def combined_log_path(var_dir: Path, container: str = DEFAULT_CONTAINER) -> Path:
    return container_dir(var_dir, container) / "combined"


def ensure_container_dir(var_dir: Path, container: str = DEFAULT_CONTAINER) -> Path:
    folder = container_dir(var_dir, container)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LocalIOError(f"cannot create {folder}: {error.strerror or error}") from None
    return folder


def write_exit_code(var_dir: Path, code: int, container: str = DEFAULT_CONTAINER) -> None:
    """Write the exit code so that a reader sees either no file or the whole number."""
    path = exit_code_path(var_dir, container)
    ensure_container_dir(var_dir, container)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "w", encoding="ascii") as file:
            file.write(str(code))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise LocalIOError(f"cannot write {path}: {error.strerror or error}") from None


def read_exit_code(var_dir: Path, container: str = DEFAULT_CONTAINER) -> int | None:
    """The exit code, or None while the command has not finished."""
    path = exit_code_path(var_dir, container)
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LocalIOError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        # strip(): a shell's `echo 3 > exitcode` adds a newline; ours never does.
        return int(text.strip())
    except ValueError:
        raise LocalIOError(f"{path} does not hold an exit code: {text[:20]!r}") from None


def clear_exit_code(var_dir: Path, container: str = DEFAULT_CONTAINER) -> None:
    path = exit_code_path(var_dir, container)
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise LocalIOError(f"cannot remove {path}: {error.strerror or error}") from None
