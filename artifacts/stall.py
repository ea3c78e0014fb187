"""The stall rule of a transfer as a whole: no byte acknowledged for `stall_timeout`
seconds, or its deadline passed, and it fails (`errors.Stalled`, exit 1) naming what it
waited for.

Why a watchdog per transfer and not only socket timeouts: a socket timeout bounds one
wait, and the retrier multiplied it by its attempts (a single object against a server that
accepts requests and never answers gave up after five read timeouts, ~5 minutes; an
`archive: none` tree, one such wait per file in flight and per retry, held on far
longer). One `Watchdog` is shared by every request of a transfer (all the parts of an
object, all the files of a tree, both sides of a copy):

- Progress is any byte acknowledged: a download's bytes received, a request body's bytes
  taken by the kernel beyond the most any earlier attempt of that body sent (`Sent`: a
  retry resending a part is no progress), a request answered.
- The clock runs only while the transfer waits on the network: a request's first attempt
  that starts while nothing else is in flight starts it afresh (a slow source, such as an
  archive being compressed, or a slow consumer, such as an extractor, is not a stalled
  server); a retry never does.
- A driver asks `budget()` how long one socket operation of the current thread may wait
  (the direct S3 path and the OSS driver's HTTP adapter clamp their timeouts to it), so
  a stall is found `stall_timeout` seconds after the last progress, not that long after
  each retry began.
- The retrier asks `check` after each failure: once the transfer has stalled, or passed
  its deadline, it fails at once instead of trying again, and so does every later
  request of the transfer.

The clock is injected, as the retrier's is, so tests never sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from argosy.artifacts.errors import RequestStalled, Stalled, TransientError

_SLACK = 0.05  # seconds: a transfer this close to its limit has reached it
_MIN_WAIT = 0.01  # seconds: the least a socket operation is given (0 would not block)
_current = threading.local()  # .watch: the Watchdog of the transfer this thread waits for


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Watchdog:
    """One transfer's progress. `stall_timeout`: seconds without progress before it
    stalls; `deadline`: seconds from now the whole transfer may take (None: no limit)."""

    def __init__(
        self,
        *,
        stall_timeout: float | None,
        deadline: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.stall_timeout, self.deadline = stall_timeout, deadline
        now = self.clock.monotonic()
        self._deadline_at = None if deadline is None else now + deadline
        self._last = now  # the last progress, or the last start from idle
        self._in_flight = 0
        self._lock = threading.Lock()
        self._failed: Stalled | None = None

    def renewed(self) -> Watchdog:
        """A watch with the same stall timeout, starting now, and no deadline: for the
        cleanup of this transfer once it has failed."""
        return Watchdog(stall_timeout=self.stall_timeout, clock=self.clock)

    def moved(self) -> None:
        """The transfer made progress: a byte acknowledged, or a request answered."""
        self._last = self.clock.monotonic()

    def left(self) -> float | None:
        """Seconds before the transfer stalls or passes its deadline (None: never)."""
        now = self.clock.monotonic()
        left = None if self.stall_timeout is None else self.stall_timeout - (now - self._last)
        if self._deadline_at is not None:
            until = self._deadline_at - now
            left = until if left is None else min(left, until)
        return left

    @contextmanager
    def waiting(self, *, fresh: bool, what: str) -> Iterator[None]:
        """The current thread waits on the network for this transfer: a request (`fresh`
        for its first attempt) or the body of an answer. Fails at once if the transfer
        has stalled already; an answer that arrives counts as progress."""
        with self._lock:
            if fresh and self._in_flight == 0 and self._failed is None:
                self._last = self.clock.monotonic()  # from idle: the clock starts now
            self._in_flight += 1
        previous = getattr(_current, "watch", None)
        _current.watch = self
        try:
            self.check(None, what=what)
            yield
            self.moved()
        finally:
            _current.watch = previous
            with self._lock:
                self._in_flight -= 1

    def check(self, error: TransientError | None, *, what: str) -> None:
        """Raise Stalled if the transfer has stalled or passed its deadline (`error`, the
        failure that just happened, says what it waited for); once raised, always."""
        if self._failed is not None:
            raise self._failed
        left = self.left()
        if left is None or left > _SLACK:
            return
        now = self.clock.monotonic()
        over = self._deadline_at is not None and now >= self._deadline_at - _SLACK
        if isinstance(error, RequestStalled):
            where, waited = error.where, f" waiting for {error.waiting_for}"
        else:
            where, waited = what, f" (the last attempt: {error})" if error is not None else ""
        if over:
            message = f"{where}: the deadline of {self.deadline:g} s passed{waited}"
            failure = Stalled(message, code="DeadlinePassed")
        else:
            message = f"{where}: no progress for {self.stall_timeout:g} s{waited}"
            failure = Stalled(message, code="StallTimeout")
        self._failed = failure
        raise failure from error


class Sent:
    """How much of one request body has been sent, over all its attempts: progress only
    past the most any attempt sent, so a retry resending a part is none. Given to a body
    as its `on_read` (see `bodies.ChunkedBody`)."""

    def __init__(self, watch: Watchdog) -> None:
        self._watch = watch
        self._most = 0

    def __call__(self, upto: int) -> None:
        if upto > self._most:
            self._most = upto
            self._watch.moved()


def budget() -> float | None:
    """Seconds one socket operation of the current thread may wait for its transfer
    (None: no transfer is watching this thread): what is left before the transfer stalls
    or passes its deadline, at least 10 ms. Drivers clamp their timeouts to it."""
    watch: Watchdog | None = getattr(_current, "watch", None)
    if watch is None:
        return None
    left = watch.left()
    return None if left is None else max(left, _MIN_WAIT)
