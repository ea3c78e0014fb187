"""The bytes of one request, CRC64'd as they pass: `Crc64Body` is what an upload hands to
requests, `OssReadStream` what a GET hands back. Part bodies are read in 1 MiB chunks
whatever the HTTP layer asks for, so an upload holds (parts in flight x 1 MiB) of data."""

from __future__ import annotations

from typing import Any

from argosy.artifacts.bodies import ChunkedBody
from argosy.artifacts.drivers.oss.crc import crc64
from argosy.artifacts.drivers.oss.errors import map_error
from argosy.artifacts.errors import IntegrityError, SourceChanged
from argosy.artifacts.protocol import Body


class Crc64Body(ChunkedBody):
    """What requests sends: the caller's body handed out in 1 MiB chunks (whatever size
    the HTTP layer asks for), CRC64 computed over exactly those bytes. Buffers are sent
    as memoryview slices, without copies."""

    def __init__(self, body: Body, size: int) -> None:
        super().__init__(size)
        self._buffer = (
            memoryview(body).cast("B") if isinstance(body, (bytes, bytearray, memoryview)) else None
        )
        self._body: Any = body
        self.crc = 0

    def _rewind(self) -> None:
        if self._buffer is None:
            self._body.seek(0)
        self.crc = 0

    def _take(self, count: int) -> bytes | memoryview:
        data = (
            self._buffer[self._pos : self._pos + count]
            if self._buffer is not None
            else self._body.read(count)
        )
        if not data:
            raise SourceChanged(f"the body ended at byte {self._pos} of {self._size}")
        self.crc = crc64(data, self.crc)
        self._pos += len(data)
        return data


class OssReadStream:
    """One GET's bytes; when they are the whole object, their CRC64 is checked against the
    server's at the last byte, before that byte is handed over."""

    def __init__(
        self,
        result: Any,
        start: int,
        end: int,
        total: int,
        etag: str,
        whole_crc: int | None,
        where: str,
        *,
        endpoint: str = "",
        request: str = "GetObject",
    ) -> None:
        self._result = result
        self._endpoint, self._request = endpoint, request
        self._raw = result.resp.response.raw  # exact stored bytes: no content decoding
        self.start, self.end, self.total, self.etag = start, end, total, etag
        self._expected = whole_crc
        self._left = end - start + 1
        self._crc = 0
        self._where = where

    def readinto(self, buffer: memoryview) -> int:
        try:
            n = int(self._raw.readinto(buffer))
        except Exception as error:  # noqa: BLE001 - mapped, never leaked
            raise map_error(
                error, self._where, self._endpoint, request=self._request, phase="body"
            ) from error
        if self._expected is not None and n:
            self._crc = crc64(buffer[:n], self._crc)
            self._left -= n
            if self._left <= 0 and self._crc != self._expected:
                raise IntegrityError(
                    f"{self._where}: CRC64 mismatch: the server records "
                    f"{self._expected:016x}, the bytes read have "
                    f"{self._crc:016x}",
                    code="Crc64Mismatch",
                )
        return n

    def close(self) -> None:
        self._result.resp.response.close()
