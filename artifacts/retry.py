"""Retries, in exactly one place.

Transient errors (see `errors.TransientError`) are retried with capped full-jitter
backoff: the n-th wait is uniform in [0, min(cap, base * 2**n)], or the server's own
delay when it gave one. With a `stall.Watchdog`, a failure is retried only while the
transfer as a whole has neither stalled nor passed its deadline, and no wait outlasts
what the transfer has left: the retries of a stalled request never multiply its stall.
The clock and the random source are injected so tests never sleep.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TypeVar

from argosy.artifacts.errors import TransientError
from argosy.artifacts.stall import Clock, SystemClock, Watchdog

T = TypeVar("T")
log = logging.getLogger("argosy.retry")
__all__ = ["Clock", "RetryPolicy", "Retrier", "SystemClock"]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    attempts: total tries of one request, first included (5: rides out a server restart
        of a few seconds without hiding a dead endpoint for long).
    base: seconds; the first backoff window.
    cap: seconds; no single wait is longer than this.
    """

    attempts: int = 5
    base: float = 0.25
    cap: float = 8.0


@dataclass
class Retrier:
    """`watch`: the transfer these requests belong to (None: each request on its own,
    as for a listing outside any transfer)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    watch: Watchdog | None = None

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return self.rng.uniform(0.0, min(self.policy.cap, self.policy.base * (2**attempt)))

    def call(self, fn: Callable[[], T], *, what: str = "request", fresh: bool = True) -> T:
        """`fn()`, retried. `fresh=False` for a request that continues one already made
        (the rest of a broken download): it starts no idle transfer's clock afresh."""
        attempt = 0
        while True:
            try:
                with self.waiting(fresh=fresh and attempt == 0, what=what):
                    return fn()
            except TransientError as error:
                attempt += 1
                self.pause(error, attempt, what=what)

    def for_cleanup(self) -> Retrier:
        """A retrier for the cleanup of a failed transfer (aborting its upload), with a
        watch of its own: the transfer's may have stalled already."""
        watch = self.watch.renewed() if self.watch is not None else None
        return Retrier(self.policy, self.clock, self.rng, watch)

    def waiting(self, *, fresh: bool, what: str) -> AbstractContextManager[None]:
        """The current thread waits on the network for the transfer (see `Watchdog`)."""
        return nullcontext() if self.watch is None else self.watch.waiting(fresh=fresh, what=what)

    def pause(self, error: TransientError, attempt: int, *, what: str) -> None:
        """After the `attempt`-th failure of a request: raise `error` when no attempt is
        left, Stalled when the transfer has stalled or passed its deadline; else wait the
        backoff (or the server's delay), never longer than the transfer has left."""
        if self.watch is not None:
            self.watch.check(error, what=what)
        if attempt >= self.policy.attempts:
            raise error
        delay = error.delay if error.delay is not None else self.backoff(attempt - 1)
        delay = min(delay, self.policy.cap)
        left = self.watch.left() if self.watch is not None else None
        if left is not None:
            delay = max(0.0, min(delay, left))
        log.info(
            "retrying %s after %.2fs (%d/%d): %s",
            what,
            delay,
            attempt,
            self.policy.attempts - 1,
            error,
        )
        self.clock.sleep(delay)
        if self.watch is not None:  # the wait may have taken what was left
            self.watch.check(error, what=what)
