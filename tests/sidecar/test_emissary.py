"""The emissary's process contract, with real processes: it runs the command, passes
its output and our signals through, and leaves the combined log and then the exit code
in the var dir, the way a shell would report the command's end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from argosy.artifacts.errors import InvalidSpec, LocalIOError
from argosy.sidecar.emissary import run_emissary
from argosy.sidecar.exitwait import wait_for_exit_code
from argosy.sidecar.vardir import (
    combined_log_path,
    container_dir,
    exit_code_path,
    read_exit_code,
    write_exit_code,
)

EMISSARY = (
    "import sys; from pathlib import Path; "
    "from argosy.sidecar.emissary import run_emissary; "
    "sys.exit(run_emissary(sys.argv[2:], var_dir=Path(sys.argv[1])))"
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def start_emissary(var_dir: Path, command: list[str]) -> subprocess.Popen[bytes]:
    """The emissary in its own process, as it runs in a pod, so signals can be sent to it."""
    return subprocess.Popen(
        [sys.executable, "-c", EMISSARY, str(var_dir), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_emissary_writes_and_returns_the_exit_code_of_a_successful_command(tmp_path: Path) -> None:
    assert run_emissary(python("pass"), var_dir=tmp_path) == 0
    assert exit_code_path(tmp_path).read_text() == "0"
    assert sorted(os.listdir(container_dir(tmp_path))) == ["combined", "exitcode"]


def test_emissary_writes_the_exit_code_of_a_failing_command(tmp_path: Path) -> None:
    assert run_emissary(python("raise SystemExit(3)"), var_dir=tmp_path) == 3
    assert read_exit_code(tmp_path) == 3


def test_the_combined_log_holds_both_stdout_and_stderr(tmp_path: Path) -> None:
    # One write per line: how two streams interleave inside a line is up to the command.
    command = python(
        "import os\n"
        "os.write(1, b'to stdout\\n')\n"
        "os.write(2, b'to stderr\\n')\n"
        "os.write(1, b'stdout again\\n')"
    )
    run_emissary(command, var_dir=tmp_path, container="step")
    lines = combined_log_path(tmp_path, "step").read_bytes().splitlines()
    assert sorted(lines) == [b"stdout again", b"to stderr", b"to stdout"]
    assert lines.index(b"to stdout") < lines.index(b"stdout again")


def test_stdout_and_stderr_still_pass_through_each_to_its_own_stream(tmp_path: Path) -> None:
    command = python("import sys; print('out'); print('err', file=sys.stderr)")
    out, err = start_emissary(tmp_path, command).communicate(timeout=5)
    assert (out, err) == (b"out\n", b"err\n")


def test_a_stale_exit_code_is_cleared_before_the_command_runs(tmp_path: Path) -> None:
    write_exit_code(tmp_path, 42)
    stale = str(exit_code_path(tmp_path))
    command = python(f"import os, sys; sys.exit(9 if os.path.exists({stale!r}) else 0)")
    assert run_emissary(command, var_dir=tmp_path) == 0


def test_sigterm_sent_to_the_emissary_reaches_the_command(tmp_path: Path) -> None:
    command = python(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "time.sleep(10)"
    )
    emissary = start_emissary(tmp_path, command)
    assert emissary.stdout is not None
    assert emissary.stdout.readline() == b"ready\n"  # the command's handler is in place
    emissary.send_signal(signal.SIGTERM)
    assert emissary.wait(timeout=5) == 7
    assert read_exit_code(tmp_path) == 7


def test_a_command_killed_by_sigkill_yields_137(tmp_path: Path) -> None:
    command = python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert run_emissary(command, var_dir=tmp_path) == 128 + signal.SIGKILL == 137
    assert read_exit_code(tmp_path) == 137


def test_a_command_that_does_not_exist_yields_127_and_says_why(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no-such-program")
    assert run_emissary([missing, "--flag"], var_dir=tmp_path) == 127
    line = f"argosy emissary: cannot run {missing}: No such file or directory\n"
    assert capfd.readouterr().err == line
    assert combined_log_path(tmp_path).read_text() == line
    assert read_exit_code(tmp_path) == 127


def test_a_command_that_is_not_executable_yields_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    assert run_emissary([str(script)], var_dir=tmp_path) == 126
    assert read_exit_code(tmp_path) == 126


def test_an_empty_command_is_invalid_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec):
        run_emissary([], var_dir=tmp_path)
    assert not (tmp_path / "ctr").exists()


def test_a_var_dir_under_a_regular_file_raises_local_io_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LocalIOError, match=str(tmp_path / "file")):
        run_emissary(python("pass"), var_dir=tmp_path / "file" / "var")


def test_the_exit_code_waits_for_the_last_of_the_output(tmp_path: Path) -> None:
    # Nobody reads the emissary's own stdout for 0.3 s, so its pumps still hold output
    # (up to a pipe and a chunk) after the command has exited; the log must get it all
    # before the exit code appears.
    size = 160 * 1024
    command = python(f"import sys; sys.stdout.buffer.write(b'x' * {size})")
    emissary = start_emissary(tmp_path, command)
    assert emissary.stdout is not None
    stdout = emissary.stdout

    def read_later() -> None:
        time.sleep(0.3)
        stdout.read()

    reader = threading.Thread(target=read_later, daemon=True)
    reader.start()
    try:
        assert wait_for_exit_code(tmp_path, timeout=5) == 0
        assert combined_log_path(tmp_path).stat().st_size == size
    finally:
        reader.join(timeout=5)
        emissary.wait(timeout=5)


def test_a_background_process_holding_the_pipes_does_not_hold_up_the_exit_code(
    tmp_path: Path,
) -> None:
    command = python(
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import time; time.sleep(30)'])\n"
        "print(child.pid, flush=True)"
    )
    try:
        assert run_emissary(command, var_dir=tmp_path, drain_grace=0.2) == 0
        # it returned while the grandchild (30 s of sleep) still runs: it did not wait for it
        os.kill(int(combined_log_path(tmp_path).read_text()), 0)
    finally:
        os.kill(int(combined_log_path(tmp_path).read_text()), signal.SIGKILL)


def test_the_signal_handlers_are_put_back_afterwards(tmp_path: Path) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    run_emissary(python("pass"), var_dir=tmp_path)
    assert {s: signal.getsignal(s) for s in before} == before
