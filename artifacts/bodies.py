"""Request bodies that checksum the bytes as the HTTP layer reads them, and tell how far
it has read.

A `FileRange` is a seekable window onto an open file descriptor, read with `pread`
so many parts of one file can be sent at once without sharing a file position. It
hands out large chunks (1 MiB) whatever size the HTTP layer asks for, and computes
CRC32C over exactly the bytes it handed out: the checksum costs no extra pass.

A body's `on_read` hears how many of its bytes the HTTP layer has taken after each read:
the transfer's watchdog counts bytes the kernel took as progress (`stall.Sent`), so a
large part on a slow link is not a stall. `watched` gives a body one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import cast

from argosy.artifacts.checksum import crc32c
from argosy.artifacts.errors import SourceChanged
from argosy.artifacts.protocol import Body

CHUNK = 1 << 20


class ChunkedBody:
    """A request body of known size that the HTTP layer reads once, in chunks of at
    least CHUNK bytes where the source holds that many in one piece, and may rewind to
    its start (to resend it); subclasses hand out the bytes in `_take` and checksum them
    there."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pos = 0
        self.on_read: Callable[[int], None] | None = None  # told _pos after each read

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        target = {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence]
        if target != self._pos:
            if target != 0:
                raise ValueError("a request body only rewinds to its start")
            self._rewind()
            self._pos = 0
        return self._pos

    def read(self, amount: int | None = -1) -> bytes | memoryview:
        remaining = self._size - self._pos
        if remaining <= 0:
            return b""
        count = remaining if amount is None or amount < 0 else min(remaining, max(amount, CHUNK))
        data = self._take(count)
        if self.on_read is not None:
            self.on_read(self._pos)
        return data

    def _take(self, count: int) -> bytes | memoryview:
        raise NotImplementedError

    def _rewind(self) -> None:
        raise NotImplementedError


class FileRange(ChunkedBody):
    def __init__(self, fd: int, offset: int, size: int, *, name: str = "") -> None:
        super().__init__(size)
        self._fd = fd
        self._offset = offset
        self._crc = 0
        self._name = name

    def read(self, amount: int | None = -1) -> bytes:
        return bytes(super().read(amount))  # _take gives bytes: no copy

    def _rewind(self) -> None:
        self._crc = 0

    def _take(self, count: int) -> bytes:
        data = os.pread(self._fd, count, self._offset + self._pos)
        if len(data) != count:
            raise SourceChanged(f"{self._name}: file shrank while it was being read")
        self._crc = crc32c(data, self._crc)
        self._pos += count
        return data

    def readinto(self, buffer: memoryview) -> int:
        data = self._take(min(len(buffer), self._size - self._pos))
        buffer[: len(data)] = data
        if self.on_read is not None:
            self.on_read(self._pos)
        return len(data)

    @property
    def crc(self) -> int:
        """CRC32C of the whole range, once it has been read to the end."""
        if self._pos != self._size:
            raise RuntimeError("range not read to the end")
        return self._crc


class BufferBody(ChunkedBody):
    """A part in memory, one buffer or several sent in order (a stream's part made of the
    chunks that hold it), handed to the HTTP layer as views: never copied, never joined.
    A read stops at the end of a buffer, so it may be shorter than asked for; how far
    the part has been sent can be told (`on_read`)."""

    def __init__(self, *buffers: bytes | bytearray | memoryview) -> None:
        views = [memoryview(b).cast("B") for b in buffers]
        self._views = [v for v in views if len(v)]
        super().__init__(sum(len(v) for v in self._views))
        self._at = 0  # the buffer holding the next byte
        self._start = 0  # where that buffer starts in the body

    def _take(self, count: int) -> memoryview:
        view = self._views[self._at]
        offset = self._pos - self._start
        data = view[offset : offset + count]
        self._pos += len(data)
        if offset + len(data) == len(view) and self._at + 1 < len(self._views):
            self._at += 1
            self._start += len(view)
        return data

    def _rewind(self) -> None:
        self._at = self._start = 0


def watched(body: Body, on_read: Callable[[int], None] | None) -> Body:
    """`body`, telling `on_read` how far it has been sent: a ChunkedBody is given the
    hook, a buffer of a CHUNK or more is wrapped in a BufferBody; a smaller one leaves
    with its request's headers in one write, and its answer is the progress."""
    if on_read is None:
        return body
    if isinstance(body, ChunkedBody):
        body.on_read = on_read
        return body
    if isinstance(body, (bytes, bytearray, memoryview)) and memoryview(body).nbytes >= CHUNK:
        wrapped = BufferBody(body)
        wrapped.on_read = on_read
        # its reads hand out views, as every driver's HTTP layer takes (see `_take`)
        return cast(Body, wrapped)
    return body
