"""Retries, in exactly one place.

Transient errors (see `errors.TransientError`) are retried with capped full-jitter
backoff: the n-th wait is uniform in [0, min(cap, base * 2**n)], or the server's own
delay when it gave one. The clock and the random source are injected so tests never
sleep.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from argosy.artifacts.errors import TransientError

T = TypeVar("T")
log = logging.getLogger("argosy.retry")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


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
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return self.rng.uniform(0.0, min(self.policy.cap, self.policy.base * (2**attempt)))

    def call(self, fn: Callable[[], T], *, what: str = "request") -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except TransientError as error:
                attempt += 1
                if attempt >= self.policy.attempts:
                    raise
                delay = error.delay if error.delay is not None else self.backoff(attempt - 1)
                delay = min(delay, self.policy.cap)
                log.info(
                    "retrying %s after %.2fs (%d/%d): %s",
                    what,
                    delay,
                    attempt,
                    self.policy.attempts - 1,
                    error,
                )
                self.clock.sleep(delay)
