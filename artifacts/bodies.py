"""Request bodies that checksum the bytes as the HTTP layer reads them.

A `FileRange` is a seekable window onto an open file descriptor, read with `pread`
so many parts of one file can be sent at once without sharing a file position. It
hands out large chunks (1 MiB) whatever size the HTTP layer asks for, and computes
CRC32C over exactly the bytes it handed out: the checksum costs no extra pass.
"""

from __future__ import annotations

import os

from argosy.artifacts.checksum import crc32c
from argosy.artifacts.errors import SourceChanged

CHUNK = 1 << 20


class ChunkedBody:
    """A request body of known size that the HTTP layer reads once, in chunks of at
    least CHUNK bytes, and may rewind to its start (to resend it); subclasses hand out
    the bytes in `_take` and checksum them there."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pos = 0

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
        return self._take(count)

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
        return len(data)

    @property
    def crc(self) -> int:
        """CRC32C of the whole range, once it has been read to the end."""
        if self._pos != self._size:
            raise RuntimeError("range not read to the end")
        return self._crc
