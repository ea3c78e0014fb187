"""Giving freed memory back to the system between calls.

The plugin lives as long as the pod and serves calls from a pool of threads. glibc's
malloc gives each thread that allocates an arena of its own and keeps what a call freed
in it for later: after a few 1 GiB calls the process holds about twice its idle size
although nothing is in use. Two arenas bound that (the transfer engine's buffers are few
and large, so threads hardly contend for them), and trimming once no call is in flight
hands the freed pages back. Elsewhere than glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.malloc_trim  # noqa: B018 - glibc only
    _libc.mallopt  # noqa: B018
except (OSError, AttributeError):
    _libc = None


def limit_arenas() -> None:
    """Call before the server's threads start: arenas made earlier stay."""
    if _libc is not None:
        _libc.mallopt(M_ARENA_MAX, ARENAS)


def give_back() -> None:
    """Return the pages freed calls left in malloc's arenas (a walk of the heap: well
    under a millisecond at the plugin's size); called when no call is in flight."""
    if _libc is not None:
        _libc.malloc_trim(0)
