"""The emissary: the main container's entry point wrapper.

It runs the user's command and leaves behind, in the var dir, what the wait side needs
once the command is over: the combined log and the exit code (see `vardir`). In between
it stays out of the way: the command's stdout and stderr still reach the container's
stdout and stderr, and the signals Kubernetes and people send (SIGTERM on deletion,
SIGINT, ...) are passed on to the command, which decides how to end.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, BinaryIO

from argosy.artifacts.errors import InvalidSpec, LocalIOError
from argosy.sidecar.vardir import (
    DEFAULT_CONTAINER,
    clear_exit_code,
    combined_log_path,
    ensure_container_dir,
    write_exit_code,
)

FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
CHUNK = 64 * 1024  # per pump: the emissary's memory for output is 2 x CHUNK
DRAIN_GRACE = 5.0  # seconds to collect trailing output once the command has exited


def run_emissary(
    command: list[str],
    *,
    var_dir: Path,
    container: str = DEFAULT_CONTAINER,
    drain_grace: float = DRAIN_GRACE,
) -> int:
    """Run `command`, tee its output into the combined log, write its exit code, return it.

    The exit code is the command's, 128+N when signal N killed it, and 127 (not found)
    or 126 (cannot execute) when it could not be started, as a shell reports them.
    A background process the command leaves holding its stdout or stderr does not keep
    us waiting: `drain_grace` seconds after the command exits, the log is closed.
    Call from the main thread: Python delivers signals only there.
    """
    if not command:
        raise InvalidSpec("the emissary needs a command to run")
    ensure_container_dir(var_dir, container)
    # A code left from an earlier run would tell the wait side we are already done.
    clear_exit_code(var_dir, container)
    log_path = combined_log_path(var_dir, container)
    try:
        log = open(log_path, "wb")
    except OSError as error:
        raise LocalIOError(f"cannot write {log_path}: {error.strerror or error}") from None
    tee = _Tee(log)
    with _forwarding_signals() as forward:
        try:
            code = _run(command, tee, forward, drain_grace)
        finally:
            tee.close()
        if tee.error is not None:
            # The command's result matters more than its log: report, and carry on.
            _say(f"argosy emissary: {log_path} is incomplete: {tee.error.strerror or tee.error}")
        # Last, and only once the log is closed: the wait side reads the log as soon as
        # this file appears. Still under our handlers, so a late SIGTERM cannot lose it.
        write_exit_code(var_dir, code, container)
    return code


def _run(command: list[str], tee: _Tee, forward: _Forwarder, drain_grace: float) -> int:
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    except OSError as error:
        # A shell's codes: 127 for a command that is not there, 126 for one that is
        # there but cannot be executed (no permission, not a program, a folder).
        line = f"argosy emissary: cannot run {command[0]}: {error.strerror or error}"
        _say(line)
        tee.write(line.encode(errors="replace") + b"\n")
        return 127 if isinstance(error, FileNotFoundError) else 126
    forward.to(child)
    assert child.stdout is not None and child.stderr is not None
    pumps = [
        _start_pump(child.stdout, _binary(sys.stdout), tee, "stdout"),
        _start_pump(child.stderr, _binary(sys.stderr), tee, "stderr"),
    ]
    returncode = child.wait()
    deadline = time.monotonic() + drain_grace
    for pump in pumps:
        pump.join(max(deadline - time.monotonic(), 0.0))
    return 128 - returncode if returncode < 0 else returncode


class _Tee:
    """The combined log, written by both pumps; a write failure is kept, not raised, so
    the pumps go on draining the command's pipes (a full pipe would block it)."""

    def __init__(self, log: BinaryIO) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._closed = False
        self.error: OSError | None = None

    def write(self, chunk: bytes) -> None:
        with self._lock:
            if self._closed or self.error is not None:
                return
            try:
                self._log.write(chunk)
                # Flushed per chunk so the log can be followed live (kubectl exec tail).
                self._log.flush()
            except OSError as error:
                self.error = error

    def close(self) -> None:
        # A pump still blocked on a pipe a background process holds finds the log
        # closed when it wakes, and drops what it read.
        with self._lock:
            self._closed = True
            try:
                self._log.close()
            except OSError as error:
                self.error = self.error or error


def _start_pump(source: IO[bytes], echo: BinaryIO | None, tee: _Tee, name: str) -> threading.Thread:
    def pump() -> None:
        echoing = echo is not None
        try:
            while chunk := source.read(CHUNK):
                tee.write(chunk)
                if echoing and echo is not None:
                    try:
                        echo.write(chunk)
                        echo.flush()
                    except (OSError, ValueError):
                        # Our own stdout is gone (closed, broken pipe): the log still
                        # gets everything, and the command must not block on a full pipe.
                        echoing = False
        finally:
            source.close()

    # Daemon: a pump left waiting on a pipe held open by a background process must not
    # keep the emissary alive after it has written the exit code.
    thread = threading.Thread(target=pump, name=f"argosy-emissary-{name}", daemon=True)
    thread.start()
    return thread


def _binary(stream: IO[str] | None) -> BinaryIO | None:
    # The bytes under the text stream: the command's output is not ours to decode.
    buffer: BinaryIO | None = getattr(stream, "buffer", None)
    return buffer


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Forwarder:
    """Passes signals on to the command; signals that come before it has started are
    held and delivered the moment it starts, so none is lost in that window."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None
        self._held: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._child is None:
            self._held.append(signum)
        else:
            # send_signal does nothing once the child is reaped: no stray kill of a
            # recycled pid.
            self._child.send_signal(signum)

    def to(self, child: subprocess.Popen[bytes]) -> None:
        self._child = child
        held, self._held = self._held, []
        for signum in held:
            child.send_signal(signum)


@contextmanager
def _forwarding_signals() -> Iterator[_Forwarder]:
    forward = _Forwarder()
    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        yield forward
    finally:
        for signum, handler in previous.items():
            # None: a handler installed outside Python, which cannot be put back.
            if handler is not None:
                signal.signal(signum, handler)
