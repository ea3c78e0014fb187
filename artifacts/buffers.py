"""A fixed set of part buffers, reused for the whole of one streamed transfer.

Streamed uploads and downloads hold whole parts in memory. Allocating a fresh part for
each one and freeing it in another thread lets glibc keep the freed parts in per-thread
arenas (its mmap threshold rises to the largest block freed), so a long stream's RSS
crept well past `concurrency x part size`. A pool allocates `count` buffers once and
hands them round: peak memory is exactly `count x size`, by construction.
"""

from __future__ import annotations

import queue
import threading


class BufferPool:
    """`count` bytearrays of `size` bytes. `take()` blocks until one is free, which is
    also what bounds the number of parts in flight."""

    def __init__(self, count: int, size: int) -> None:
        if count < 1 or size < 1:
            raise ValueError("a pool needs at least one buffer of at least one byte")
        self.size = size
        self.count = count
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._made = 0
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        """A free buffer; its contents are whatever the last user left."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            fresh = self._made < self.count  # allocated lazily: a small stream needs one
            self._made += fresh
        return bytearray(self.size) if fresh else self._free.get()

    def give(self, buffer: bytearray) -> None:
        """Return a buffer taken from this pool; its user must hold no view of it."""
        self._free.put(buffer)

    @property
    def allocated(self) -> int:
        return self._made
