"""Adapters between iterators of chunks and the file-like reads the upload engine takes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class ChunkReader:
    """A `readinto()` view of an iterator of byte chunks: an archive being written, or
    another object being downloaded, streamed straight into a multipart upload."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = memoryview(b"")
        self.consumed = 0

    def readinto(self, target: memoryview) -> int:
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self.consumed += n
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
