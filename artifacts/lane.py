"""The batch lane of a tree: small files through the driver's batch, in one thread of
their own, beside the pool of threads that moves the rest.

`Lane.feed(items)` is what the pool takes (`tree._run_all`): the lane's thread walks
`items`, sends each one `take` makes an exchange of through the batch, and hands every
other item to the pool as it comes (a large file, one `take` cannot read); the items
whose exchange failed (refused, broken, timed out, or not what `finish` accepts) follow
once the batch is over, so the pool does them through the driver's primitives, with
their retries, errors and watchdog. What the lane finished is in `done`.

Bounds: the items handed to the pool wait in a queue of `ahead` (the lane's walk pauses
while it is full, as the pool's own walk does); the batch holds at most its connections'
exchanges in memory, and closes its connections as soon as its run is over, before the
pool does what failed. `close` stops the lane (those in flight fail, nothing new starts)
and waits for its thread: nothing is at work once it returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from argosy.artifacts.protocol import Batch, Exchange

T = TypeVar("T")
R = TypeVar("R")

_WAIT = 0.1  # seconds between looks at the stop flag while the pool's queue is full


class _End:
    """The lane's walk is over."""


class _Raised:
    """The lane's walk failed (a listing, a name refused): the pool's walk fails with it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Lane(Generic[T, R]):
    def __init__(
        self,
        batch: Batch,
        take: Callable[[T], Exchange | None],
        finish: Callable[[T, Exchange], R],
        *,
        budget: Callable[[], float | None],
        ahead: int,
    ) -> None:
        self._batch, self._take, self._finish, self._budget = batch, take, finish, budget
        self._handoff: queue.Queue[T | _End | _Raised] = queue.Queue(maxsize=max(1, ahead))
        self._failed: list[T] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done: list[tuple[T, R]] = []

    def feed(self, items: Iterable[T]) -> Iterator[T]:
        """The items for the pool, as the lane's walk of `items` meets them."""
        self._thread = threading.Thread(
            target=self._run, args=(iter(items),), name="argosy-batch", daemon=True
        )
        self._thread.start()
        while True:
            got = self._handoff.get()
            if isinstance(got, _End):
                break
            if isinstance(got, _Raised):
                raise got.error
            yield got
        yield from self._failed  # the thread is over: nothing appends any more

    def close(self) -> None:
        """Stop the lane and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._batch.close()

    def _run(self, items: Iterator[T]) -> None:
        end: _End | _Raised = _End()
        try:
            try:
                self._batch.run(self._exchanges(items), self._finished, self._stop, self._budget)
            finally:
                # its connections go before the pool redoes what failed: a server that
                # serves a client only so many connections at once then serves the pool's
                self._batch.close()
            for item in items:  # left untaken: the batch could not reach its server
                if self._stop.is_set():
                    break
                self._pass(item)
        except BaseException as error:  # noqa: BLE001 - handed to the pool's walk
            end = _Raised(error)
        finally:
            self._pass(end)

    def _exchanges(self, items: Iterator[T]) -> Iterator[Exchange]:
        """The batch's exchanges, as the walk meets their items; the others to the pool."""
        for item in items:
            if self._stop.is_set():
                return
            exchange = self._take(item)
            if exchange is None:
                self._pass(item)
            else:
                exchange.tag = item
                yield exchange

    def _finished(self, exchange: Exchange) -> None:
        item: T = exchange.tag
        if not exchange.failed:
            try:
                self.done.append((item, self._finish(item, exchange)))
                return
            except Exception:  # noqa: BLE001 - the pool does it again, and reports
                pass
        self._failed.append(item)

    def _pass(self, item: T | _End | _Raised) -> None:
        """Hand `item` to the pool; given up once the lane is stopped."""
        while True:
            try:
                self._handoff.put(item, timeout=_WAIT)
                return
            except queue.Full:
                if self._stop.is_set():
                    return
