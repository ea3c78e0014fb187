"""Just enough HTTP/1.1 for the fault proxy to find where each message ends.

A proxy that changes one request in a keep-alive stream must know where that request and
its answer end: heads are parsed (start line, headers in order), bodies framed by
Content-Length, chunked transfer coding, or the connection's end. Nothing else is read:
headers go through as they came (a signed request stays signed).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 256 << 10  # the largest piece relayed at once
MAX_HEAD = 64 << 10


class ProtocolError(Exception):
    """A peer sent something that is not HTTP/1.1, or closed mid-message."""


class Stream:
    """A socket read through a buffer: heads by their blank line, bodies by pieces."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(CHUNK)
        self._buffer += data
        return bool(data)

    def read_head(self) -> bytes | None:
        """The next head, blank line included; None when the peer closed before one."""
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("a head longer than 64 KiB")
            if not self._fill():
                if self._buffer:
                    raise ProtocolError("closed in the middle of a head")
                return None
        head = bytes(self._buffer[: end + 4])
        del self._buffer[: end + 4]
        return head

    def read_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD or not self._fill():
                raise ProtocolError("closed in the middle of a chunk header")
        line = bytes(self._buffer[: end + 2])
        del self._buffer[: end + 2]
        return line

    def read_some(self, most: int, *, eof_ok: bool = False) -> bytes:
        """At least one byte and at most `most` (b"" at the end only with `eof_ok`)."""
        if not self._buffer and not self._fill():
            if eof_ok:
                return b""
            raise ProtocolError("closed in the middle of a body")
        piece = bytes(self._buffer[:most])
        del self._buffer[:most]
        return piece


@dataclass(frozen=True)
class Head:
    """A request or status line and its headers, in their order."""

    start: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, raw: bytes) -> Head:
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line:
                name, colon, value = line.partition(":")
                if not colon:
                    raise ProtocolError(f"a header line without a colon: {line[:60]!r}")
                headers.append((name.strip(), value.strip()))
        return cls(lines[0], tuple(headers))

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    def without(self, name: str) -> Head:
        name = name.lower()
        return Head(self.start, tuple((n, v) for n, v in self.headers if n.lower() != name))

    def encode(self) -> bytes:
        lines = [self.start, *(f"{n}: {v}" for n, v in self.headers), "", ""]
        return "\r\n".join(lines).encode("latin-1")

    @property
    def status(self) -> int:
        parts = self.start.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"not a status line: {self.start[:60]!r}")
        return int(parts[1])

    @property
    def closes(self) -> bool:
        """Whether the connection ends after this message."""
        return (self.get("Connection") or "").lower() == "close" or self.start.endswith("HTTP/1.0")


def framing(head: Head, *, request: bool, method: str = "GET") -> tuple[str, int]:
    """How a message's body ends: ("length", N), ("chunked", 0) or ("close", 0)."""
    if not request and (method == "HEAD" or head.status in (204, 304) or 100 <= head.status < 200):
        return "length", 0
    if "chunked" in (head.get("Transfer-Encoding") or "").lower():
        return "chunked", 0
    length = head.get("Content-Length")
    if length is not None:
        if not length.isdigit():
            raise ProtocolError(f"Content-Length {length[:30]!r}")
        return "length", int(length)
    return ("length", 0) if request else ("close", 0)


def body(stream: Stream, kind: str, length: int) -> Iterator[tuple[bytes, bool]]:
    """A body's bytes as they travel, each piece with whether it is payload (True) or
    chunked framing (False)."""
    if kind == "length":
        left = length
        while left:
            piece = stream.read_some(min(left, CHUNK))
            left -= len(piece)
            yield piece, True
    elif kind == "chunked":
        while True:
            line = stream.read_line()
            yield line, False
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"a chunk size of {line[:30]!r}") from None
            if size == 0:
                while (trailer := stream.read_line()) != b"\r\n":
                    yield trailer, False
                yield trailer, False
                return
            left = size
            while left:
                piece = stream.read_some(min(left, CHUNK))
                left -= len(piece)
                yield piece, True
            yield stream.read_line(), False
    else:
        while piece := stream.read_some(CHUNK, eof_ok=True):
            yield piece, True
