"""The work queue between watching and reconciling: deduplicated, bounded, delayed
retries, and fair across namespaces.

Keys are (namespace, name). A key is never handed to two workers at once: one added
again while it is being processed is queued once more when the worker calls `done`
(client-go's rule). Ready keys wait in one FIFO per namespace and workers take from the
namespaces in turn, so a namespace with 10,000 completed workflows cannot starve one with
a single workflow being deleted. The queue holds at most `capacity` keys; beyond that an
`add` is refused and counted, and the next resync offers the key again.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

Key = tuple[str, str]


class FairQueue:
    def __init__(
        self, capacity: int = 100_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._ready: OrderedDict[str, deque[Key]] = OrderedDict()  # namespace -> keys
        self._queued: set[Key] = set()  # ready keys
        self._delayed: list[tuple[float, int, Key]] = []
        self._delayed_due: dict[Key, float] = {}
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()  # added while processing
        self._seq = itertools.count()
        self._closed = False
        self.dropped = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._queued) + len(self._delayed_due)

    @property
    def idle(self) -> bool:
        """Nothing ready, nothing being processed (delayed keys may remain)."""
        with self._cond:
            return not self._queued and not self._processing

    def _size(self) -> int:
        return len(self._queued) + len(self._delayed_due) + len(self._dirty)

    def add(self, key: Key) -> bool:
        with self._cond:
            if self._closed:
                return False
            if key in self._queued or key in self._dirty:
                return True
            if key in self._processing:
                self._dirty.add(key)
                return True
            if self._size() >= self.capacity and key not in self._delayed_due:
                self.dropped += 1
                return False
            self._delayed_due.pop(key, None)  # ready now beats a later retry
            self._push(key)
            self._cond.notify()
            return True

    def _push(self, key: Key) -> None:
        self._queued.add(key)
        self._ready.setdefault(key[0], deque()).append(key)

    def add_after(self, key: Key, delay: float) -> bool:
        if delay <= 0:
            return self.add(key)
        with self._cond:
            if self._closed or key in self._queued or key in self._dirty:
                return not self._closed
            due = self._monotonic() + delay
            if key in self._delayed_due:
                if self._delayed_due[key] <= due:
                    return True
            elif self._size() >= self.capacity:
                self.dropped += 1
                return False
            self._delayed_due[key] = due
            heapq.heappush(self._delayed, (due, next(self._seq), key))
            self._cond.notify()
            return True

    def _promote(self) -> float | None:
        """Move due keys to ready; return seconds until the next one (None: none)."""
        now = self._monotonic()
        while self._delayed:
            due, _, key = self._delayed[0]
            if self._delayed_due.get(key) != due:  # superseded or already promoted
                heapq.heappop(self._delayed)
                continue
            if due > now:
                return due - now
            heapq.heappop(self._delayed)
            del self._delayed_due[key]
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._push(key)
        return None

    def get(self, timeout: float | None = None) -> Key | None:
        """The next key, namespaces in turn; None on timeout or after `close`."""
        deadline = None if timeout is None else self._monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                wait = self._promote()
                if self._ready:
                    namespace, keys = next(iter(self._ready.items()))
                    key = keys.popleft()
                    del self._ready[namespace]
                    if keys:  # the namespace goes to the back of the line
                        self._ready[namespace] = keys
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                if deadline is not None:
                    left = deadline - self._monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                # a short cap keeps an injected clock usable: it is re-read every 50 ms
                self._cond.wait(0.05 if wait is None else min(wait, 0.05))

    def done(self, key: Key) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._push(key)
                self._cond.notify()
            else:
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is ready or processing (delayed keys may remain)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._queued or self._processing:
                self._promote()
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True
