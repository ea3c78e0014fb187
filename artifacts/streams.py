"""Where a streamed upload's parts come from: a file-like stream read into a fixed pool
of part buffers, or an iterator of chunks (an archive being written) cut into parts
without copying a byte.

Either way a part is a list of views holding exactly the part size, fewer at the end
of the stream, none once it is over; the upload engine (`upload.py`) hands each part
back with `give` once it has been sent, and bounds how many exist at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol, cast

from argosy.artifacts.buffers import BufferPool, PartBuffer


class PartSource(Protocol):
    def take(self, size: int) -> list[memoryview]:
        """The next `size` bytes of the stream (fewer at its end, none after it)."""
        ...

    def give(self, part: list[memoryview]) -> None:
        """A part taken from here has been sent: its memory may be used again."""
        ...


class ReadParts:
    """A file-like stream's parts, each read into a buffer of `pool` (whose buffers hold
    a part each) and given back to it once sent: memory is the pool's, by construction."""

    def __init__(self, stream: BinaryIO, pool: BufferPool) -> None:
        self._stream = stream
        self._pool = pool

    def take(self, size: int) -> list[memoryview]:
        buffer = self._pool.take()
        view = memoryview(buffer)[: min(size, len(buffer))]
        filled = 0
        while filled < len(view):
            n = self._stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not n:
                break
            filled += n
        if not filled:
            self._pool.give(buffer)
            return []
        return [view[:filled]]

    def give(self, part: list[memoryview]) -> None:
        for view in part:
            self._pool.give(cast(PartBuffer, view.obj))  # the buffer the view is of


class ChunkParts:
    """Parts cut from an iterator of chunks, each part the views of the chunks (or the
    pieces of them) that hold it: no byte is copied between the writer and the socket.
    The chunks must be buffers their writer never writes again; closing stops the
    iterator (a writer in another thread: `archive.pipeline.background`)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._rest = memoryview(b"")

    def take(self, size: int) -> list[memoryview]:
        part: list[memoryview] = []
        need = size
        while need:
            if not self._rest:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._rest = memoryview(chunk).cast("B")
                continue
            piece = self._rest[:need]
            self._rest = self._rest[len(piece) :]
            part.append(piece)
            need -= len(piece)
        return part

    def give(self, part: list[memoryview]) -> None:
        pass  # the chunks go when the last view of them does

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
