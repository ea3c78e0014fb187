"""Waiting for the exit code, with real files written by other threads and processes:
the wait wakes when the file lands (not on the next poll), returns at once when it is
already there, and gives up with WaitTimeout when told to."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from argosy.artifacts.errors import InvalidSpec, LocalIOError, PermanentError
from argosy.sidecar import exitwait
from argosy.sidecar.exitwait import WaitTimeout, wait_for_exit_code
from argosy.sidecar.vardir import exit_code_path, read_exit_code, write_exit_code


@contextmanager
def written_later(var_dir: Path, code: int, *, after: float) -> Iterator[list[float]]:
    """Writes the exit code from a thread `after` seconds in; yields when it was written."""
    when: list[float] = []

    def write() -> None:
        time.sleep(after)
        write_exit_code(var_dir, code)
        when.append(time.monotonic())

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield when
    finally:
        thread.join(timeout=5)


def test_wait_returns_at_once_when_the_exit_code_is_already_there(tmp_path: Path) -> None:
    write_exit_code(tmp_path, 5)
    assert wait_for_exit_code(tmp_path, timeout=0) == 5


def test_wait_returns_when_another_process_writes_the_exit_code_later(tmp_path: Path) -> None:
    var_dir = tmp_path / "not" / "yet" / "there"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from argosy.sidecar.vardir import write_exit_code\n"
            "time.sleep(0.3); write_exit_code(Path(sys.argv[1]), 4)",
            str(var_dir),
        ]
    )
    started = time.monotonic()
    try:
        assert wait_for_exit_code(var_dir, timeout=5) == 4
        assert time.monotonic() - started >= 0.3
    finally:
        writer.wait(timeout=5)


def test_wait_sleeps_in_the_kernel_until_the_file_lands_instead_of_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float | None] = []
    real_wait = exitwait._Inotify.wait

    def recorded(self: exitwait._Inotify, timeout: float | None) -> None:
        sleeps.append(timeout)
        real_wait(self, timeout)

    monkeypatch.setattr(exitwait._Inotify, "wait", recorded)
    with written_later(tmp_path, 0, after=0.35):
        assert wait_for_exit_code(tmp_path, timeout=30) == 0
    # Each sleep is given all the time left, and only the writes in the folder (the
    # temporary file, then its rename) end one: polls backing off from 10 ms would have
    # looked five or more times in 0.35 s, each with a short timeout.
    assert 1 <= len(sleeps) <= 3
    assert all(t is not None and t > 25 for t in sleeps)


def test_wait_times_out_with_wait_timeout_naming_the_file(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as raised:
        wait_for_exit_code(tmp_path, timeout=0.2)
    assert time.monotonic() - started >= 0.2
    path = exit_code_path(tmp_path)
    assert str(raised.value) == f"main did not finish within 0.2 s (no {path})"
    assert isinstance(raised.value, PermanentError)


def test_wait_falls_back_to_polling_where_inotify_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exitwait, "_watch", lambda folder: None)
    with written_later(tmp_path, 6, after=0.2):
        assert wait_for_exit_code(tmp_path, timeout=5) == 6
    with pytest.raises(WaitTimeout):
        wait_for_exit_code(tmp_path, timeout=0.1, container="other")


def test_wait_under_a_regular_file_raises_local_io_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LocalIOError, match=str(tmp_path / "file")):
        wait_for_exit_code(tmp_path / "file", timeout=0)


def test_an_unparseable_exit_code_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = exit_code_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("oops")
    with pytest.raises(LocalIOError, match=str(path)):
        read_exit_code(tmp_path)


def test_an_exit_code_a_shell_wrote_with_a_newline_is_read(tmp_path: Path) -> None:
    path = exit_code_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("3\n")
    assert read_exit_code(tmp_path) == 3


def test_a_container_name_cannot_lead_out_of_the_var_dir(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec):
        wait_for_exit_code(tmp_path, timeout=0, container="../../etc")
