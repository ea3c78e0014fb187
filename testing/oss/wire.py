"""Request and reply types of the OSS test server, and streaming request-body decoding.

The operations in ``ops`` see an :class:`OssRequest` (already split into
bucket, key, decoded query and lower-cased headers) and answer a
:class:`Reply`.  A reply body is either bytes or a byte range of an open file,
which the HTTP layer sends with ``sendfile`` so GETs of large objects use
bounded memory.  :class:`BodyReader` yields a request body in chunks, for both
``Content-Length`` and ``Transfer-Encoding: chunked`` requests, and can drain
an unread body so a keep-alive connection stays usable after an error answer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedIOBase
from typing import BinaryIO

from .xml import OssError

CHUNK_SIZE = 1 << 20
MAX_XML_BODY = 16 << 20


class BodyReader:
    """Reads one request body from the connection, at most once."""

    def __init__(self, rfile: BufferedIOBase, headers: dict[str, str]) -> None:
        self._rfile = rfile
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self.length: int | None = None
        if not self.chunked:
            try:
                self.length = int(length) if length is not None else 0
            except ValueError as exc:
                raise OssError("InvalidArgument", "Invalid Content-Length.") from exc
        self.received = 0
        self.finished = self.length == 0

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if self.finished:
            return
        if self.chunked:
            yield from self._chunked(size)
        else:
            assert self.length is not None
            remaining = self.length - self.received
            while remaining > 0:
                data = self._rfile.read(min(size, remaining))
                if not data:
                    raise ConnectionError("client closed the connection mid-body")
                remaining -= len(data)
                self.received += len(data)
                yield data
        self.finished = True

    def _chunked(self, size: int) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                remaining = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise OssError("InvalidArgument", "Bad chunked encoding.") from exc
            if remaining == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            while remaining > 0:
                data = self._rfile.read(min(size, remaining))
                if not data:
                    raise ConnectionError("client closed the connection mid-body")
                remaining -= len(data)
                self.received += len(data)
                yield data
            self._rfile.readline(1024)  # CRLF after the chunk

    def read_all(self, limit: int = MAX_XML_BODY) -> bytes:
        if self.length is not None and self.length > limit:
            raise OssError("EntityTooLarge")
        parts: list[bytes] = []
        total = 0
        for chunk in self.chunks():
            total += len(chunk)
            if total > limit:
                raise OssError("EntityTooLarge")
            parts.append(chunk)
        return b"".join(parts)

    def drain(self) -> None:
        for _ in self.chunks():
            pass


@dataclass
class Reply:
    """An answer: status, headers and either ``body`` or ``length`` bytes of ``file``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: BinaryIO | None = None
    offset: int = 0
    length: int = 0
    corrupt: bool = False

    @property
    def content_length(self) -> int:
        return self.length if self.file is not None else len(self.body)


@dataclass
class OssRequest:
    """One parsed request as the operations see it."""

    method: str
    path: str
    bucket: str | None
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    body: BodyReader
    request_id: str
    operation: str
    endpoint_host: str
    corrupt_body: bool = False
    standard_ranges: bool = False
    access_key_id: str = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def user_meta(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.startswith("x-oss-meta-")}

    def stored_headers(self) -> dict[str, str]:
        """Standard headers OSS keeps with an object and returns on GET/HEAD."""
        names = {
            "cache-control": "Cache-Control",
            "content-disposition": "Content-Disposition",
            "content-encoding": "Content-Encoding",
            "content-language": "Content-Language",
            "expires": "Expires",
        }
        return {proper: self.headers[low] for low, proper in names.items() if low in self.headers}

    def content_md5(self) -> bytes | None:
        """The decoded Content-MD5 header, or InvalidDigest if it is not a base64 MD5."""
        value = self.headers.get("content-md5")
        if value is None:
            return None
        try:
            digest = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise OssError("InvalidDigest", extra={"Content-MD5": value}) from exc
        if len(digest) != 16:
            raise OssError("InvalidDigest", extra={"Content-MD5": value})
        return digest

    def small_body(self, limit: int = MAX_XML_BODY) -> bytes:
        """Read an XML body, checking Content-MD5 when the client sent one."""
        expected = self.content_md5()
        data = self.body.read_all(limit)
        if expected is not None and hashlib.md5(data).digest() != expected:
            raise OssError("InvalidDigest", extra={"Content-MD5": self.headers["content-md5"]})
        return data
