"""A fixed set of part buffers, reused for the whole of one streamed transfer.

Streamed uploads and downloads hold whole parts in memory. Allocating a fresh part for
each one and freeing it in another thread lets glibc keep the freed parts in per-thread
arenas (its mmap threshold rises to the largest block freed), so a long stream's RSS
crept well past `concurrency x part size`. A pool allocates `count` buffers once and
hands them round: peak memory is exactly `count x size`, by construction.

A `mapped` pool's buffers are anonymous memory maps instead of bytearrays: the kernel
hands out zeroed pages as they are first written, so a buffer costs nothing until used
and is never zeroed twice. A 16 MiB bytearray is zero-filled when made (~10 ms here, at
the start of every streamed upload, before its first byte is read).
"""

from __future__ import annotations

import mmap
import queue
import threading

PartBuffer = bytearray | mmap.mmap


class BufferPool:
    """`count` bytearrays of `size` bytes. `take()` blocks until one is free, which is
    also what bounds the number of parts in flight."""

    def __init__(self, count: int, size: int, *, mapped: bool = False) -> None:
        if count < 1 or size < 1:
            raise ValueError("a pool needs at least one buffer of at least one byte")
        self.size = size
        self.count = count
        self.mapped = mapped
        self._free: queue.SimpleQueue[PartBuffer] = queue.SimpleQueue()
        self._made = 0
        self._lock = threading.Lock()

    def take(self) -> PartBuffer:
        """A free buffer; its contents are whatever the last user left."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            fresh = self._made < self.count  # allocated lazily: a small stream needs one
            self._made += fresh
        if not fresh:
            return self._free.get()
        return mmap.mmap(-1, self.size) if self.mapped else bytearray(self.size)

    def give(self, buffer: PartBuffer) -> None:
        """Return a buffer taken from this pool; its user must hold no view of it."""
        self._free.put(buffer)

    @property
    def allocated(self) -> int:
        return self._made


class Recycler:
    """Buffers of one size that their reader hands back once done with them, for the
    writer to fill again: a writer streaming through a consumer in another thread (the
    tar writer into the zstd frames) reuses a handful of buffers instead of allocating,
    faulting in and zero-filling a fresh one per chunk. Never blocks: with none free,
    `take` makes one, so it holds no more buffers than the pipeline ever held at once."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a buffer needs at least one byte")
        self.size = size
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self.made = 0

    def take(self) -> bytearray:
        """A buffer of `size` bytes, holding whatever its last writer left."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            self.made += 1
            return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        """Hand back a buffer this recycler made; nothing may read it any more."""
        self._free.put(buffer)
