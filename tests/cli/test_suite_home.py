"""The suite never writes in the home of the user running it: a killed upload's
checkpoint and a local repository land in the suite's own temporary home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import USER_CACHE, USER_DATA, unique_bucket

MiB = 1 << 20

# `argosy cp` killed (SIGKILL) once its first part is in its checkpoint: the one case
# that leaves a checkpoint behind.
_KILLED_AFTER_ONE_PART = """
import os, signal, sys
from argosy.artifacts import resume
from argosy.main import main
add_part = resume.Checkpoint.add_part
def add_then_die(self, part, crc):
    add_part(self, part, crc)
    os.kill(os.getpid(), signal.SIGKILL)
resume.Checkpoint.add_part = add_then_die
main(sys.argv[1:])
"""


def _mentioning(folder: Path, text: str) -> list[Path]:
    """Files under `folder` whose name or content holds `text`."""
    found = []
    for path in folder.rglob("*") if folder.is_dir() else []:
        if text in str(path) or path.is_file() and text.encode() in path.read_bytes():
            found.append(path)
    return found


def test_a_killed_upload_run_by_the_suite_leaves_nothing_in_the_users_home(
    tmp_path: Path,
) -> None:
    bucket = unique_bucket("home")
    source = tmp_path / "big"
    source.write_bytes(os.urandom(12 * MiB))
    # where a command run by a test puts them, as it finds them in the environment
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    (data / "argosy" / bucket).mkdir(parents=True)
    run = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_ONE_PART]
        + ["cp", "-q", "--part-size", "5", str(source), f"local://{bucket}/big"],
        capture_output=True,
        env=os.environ.copy(),  # exactly what every test's commands inherit
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == -9, run.stderr.decode()
    assert _mentioning(cache / "argosy" / "uploads", str(source)), "no checkpoint was left"
    assert _mentioning(USER_CACHE, str(source)) == []
    assert _mentioning(USER_DATA, bucket) == []
