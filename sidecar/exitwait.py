"""Waiting for the main container's command to finish, from another container.

The only sign is the exit code file the emissary writes last (see `vardir`). The wait
may last hours, so it sleeps in the kernel: inotify on the container's folder wakes it
when a file lands there, and every wake-up just looks for the file again. Where inotify
is missing (not Linux, or the per-user limit is spent) it falls back to polls whose
interval grows to a second.
"""

from __future__ import annotations

import ctypes
import functools
import os
import select
import sys
import time
from pathlib import Path
from typing import Protocol

from argosy.artifacts.errors import PermanentError
from argosy.sidecar.vardir import (
    DEFAULT_CONTAINER,
    ensure_container_dir,
    exit_code_path,
    read_exit_code,
)

# From <sys/inotify.h>: a file written and closed, renamed in (our atomic write), created.
IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x008, 0x080, 0x100
POLL_FIRST, POLL_MAX = 0.01, 1.0  # seconds, for the fallback only


class WaitTimeout(PermanentError):
    """The command did not finish in the time we were given to wait; waiting again with
    the same deadline would not help, so this is permanent."""


def wait_for_exit_code(
    var_dir: Path, *, timeout: float | None, container: str = DEFAULT_CONTAINER
) -> int:
    """Block until the emissary has written `container`'s exit code, and return it.

    `timeout` is in seconds; None waits for as long as it takes. The container's folder
    is created if it is not there yet, so it can be watched before the emissary starts.
    """
    folder = ensure_container_dir(var_dir, container)
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    waiter: _Waiter = _watch(folder) or _Backoff()
    try:
        while True:
            # Looked for only once the watch is in place: a file written before that is
            # found here, one written after wakes the watch. None slips between.
            code = read_exit_code(var_dir, container)
            if code is not None:
                return code
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(
                    f"{container} did not finish within {timeout:g} s "
                    f"(no {exit_code_path(var_dir, container)})"
                )
            waiter.wait(remaining)
    finally:
        waiter.close()


class _Waiter(Protocol):
    def wait(self, timeout: float | None) -> None:
        """Return when something may have changed, or after `timeout` seconds."""

    def close(self) -> None: ...


class _Inotify:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def wait(self, timeout: float | None) -> None:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        if readable:
            # The events themselves do not matter (the file is looked for again); reading
            # them clears the descriptor. Any left over wake the next select at once.
            try:
                os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                pass

    def close(self) -> None:
        os.close(self._fd)


class _Backoff:
    def __init__(self) -> None:
        self._delay = POLL_FIRST

    def wait(self, timeout: float | None) -> None:
        time.sleep(self._delay if timeout is None else min(self._delay, timeout))
        self._delay = min(self._delay * 2, POLL_MAX)

    def close(self) -> None:
        pass


def _watch(folder: Path) -> _Inotify | None:
    """An inotify descriptor watching `folder`, or None where inotify cannot be had."""
    libc = _libc()
    if libc is None:
        return None
    fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        return None  # EMFILE: this user's inotify instances are spent
    mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
    if libc.inotify_add_watch(fd, os.fsencode(folder), mask) < 0:
        os.close(fd)  # ENOSPC: the watch limit; polling still works
        return None
    return _Inotify(fd)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library this process runs on
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_init1.restype = ctypes.c_int
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_add_watch.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None  # a libc without inotify (old, or not glibc/musl)
    return libc
