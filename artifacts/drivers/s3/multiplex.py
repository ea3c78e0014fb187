"""Many whole small objects got and put at once from one thread: non-blocking sockets,
one selector, HTTP/1.1 keep-alive. This is the S3 driver's `batch` (`protocol.Batch`).

Why: a pool of threads moving a tree of small files hands Python's GIL from thread to
thread around every blocking system call of every file (the pooled connection's check,
the poll a socket timeout puts before each send and receive, the send and receive
themselves, the file's open, write and close): about 100 futex calls and a dozen context
switches a file. On a machine whose cores the server needs too, that was more of the
client's CPU than the requests. One thread waiting on all its sockets at once makes none
of those hand-offs.

What a batch does, and what it leaves to the driver's primitives: a GET of a whole object,
or a PUT of bytes in memory, over HTTP or HTTPS (connections are made, TLS handshake
included, as the driver's pool makes them), answered with a Content-Length. Anything else
fails the exchange, which the caller then does through the primitives (their retries,
errors and watchdog apply there): a refusal (any status but 200), a chunked answer, an
interim answer other than 100, an object larger than the batch's limit, a connection that
breaks or says nothing for the read timeout (or what the transfer has left, `budget`). A
connection that cannot be made ends the run; what is in flight fails, and the exchanges
not yet taken stay with the caller. Once `stop` is set nothing new is sent, and what is
in flight is seen to its end.

A server (or a proxy before it) that serves a client only so many connections at once
leaves the others in its listen backlog: connected, their requests sent, never answered
while the served ones stay open. A new connection that has heard nothing for `UNSERVED`
seconds while the others were answered `2 x connections` times is taken for one of those:
its exchange fails then, not at the read timeout, and the batch goes on with only the
connections the server answers. A busy server answers every connection in turn, so it
never meets both bounds.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator

from argosy.artifacts.drivers.s3.direct import Direct
from argosy.artifacts.drivers.s3.wire import (
    Headers,
    WireError,
    ack_at_once,
    parse_head,
    request_head,
)
from argosy.artifacts.protocol import Exchange, ObjectInfo

_RECV = 256 << 10  # bytes per receive
_MAX_HEAD = 64 << 10  # longest answer head accepted
_TICK = 0.1  # seconds: the longest the selector waits before `stop` is looked at again
UNSERVED = 2.0  # seconds a new connection may go unanswered while the others are answered

Describe = Callable[[str, int, Headers], ObjectInfo]  # key, size, answer headers


class _Connection:
    """One keep-alive connection and the exchange it carries, if any."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.exchange: Exchange | None = None
        self.out = memoryview(b"")  # what is left to send
        self.buffer = bytearray()  # the answer: its head(s), then its body from `body_at`
        self.body_at = 0
        self.head: tuple[bytes, int, Headers] | None = None
        self.length = 0  # the answer's body length, once its head is read
        self.deadline = 0.0
        self.held = 0  # bytes of bodies the exchange holds: its PUT's, or its GET's expected
        self.heard = False  # the server has sent something on this connection
        self.sent_at = 0.0  # when the exchange began, and the batch's answers then
        self.answers_then = 0

    def begin(self, exchange: Exchange, request: bytes, wait: float, answers: int) -> None:
        self.exchange, self.out, self.head = exchange, memoryview(request), None
        self.held = len(exchange.body) if exchange.body is not None else exchange.size
        self.buffer, self.body_at = bytearray(), 0
        self.sent_at, self.answers_then = time.monotonic(), answers
        self.deadline = self.sent_at + wait


class Multiplexer:
    """Exchanges with one bucket over up to `connections` connections at once."""

    def __init__(
        self, direct: Direct, describe: Describe, *, connections: int, memory: int, limit: int
    ):
        self._direct, self._describe = direct, describe
        self._would_block: tuple[type[OSError], ...] = (BlockingIOError,)
        self._tls = direct.tls
        if direct.tls:  # `ssl` is loaded already: the driver's pool made its context
            import ssl

            self._would_block += (ssl.SSLWantReadError, ssl.SSLWantWriteError)
        self._connections, self._memory, self._limit = max(1, connections), memory, limit
        self._read_timeout = direct.read_timeout
        self._idle: list[_Connection] = []  # kept from exchange to exchange until `close`
        self._selector = selectors.DefaultSelector()  # every connection, busy or idle
        self._busy: dict[int, _Connection] = {}
        self._held = 0  # bytes the busy exchanges hold
        self._answers = 0  # complete answers so far, on every connection

    def run(
        self,
        exchanges: Iterator[Exchange],
        finished: Callable[[Exchange], None],
        stop: threading.Event,
        budget: Callable[[], float | None],
    ) -> None:
        exhausted = False
        checked = time.monotonic()
        try:
            while True:
                while (
                    not exhausted
                    and not stop.is_set()
                    and len(self._busy) < self._connections
                    and self._held < self._memory
                ):
                    exchange = next(exchanges, None)
                    if exchange is None:
                        exhausted = True
                    elif not self._start(exchange, finished, budget):
                        return  # the server cannot be reached: the rest stays untaken
                if not self._busy:
                    return
                for key, events in self._selector.select(_TICK):
                    conn = key.data
                    if conn.exchange is None:  # an idle connection the server closed
                        self._drop(conn)
                        continue
                    try:
                        over = self._step(conn, events)
                    except (OSError, ValueError) as error:  # WireError is an OSError
                        finished(self._fail(conn, str(error) or type(error).__name__))
                        continue
                    if over:
                        finished(self._finish(conn))
                now = time.monotonic()
                if now - checked >= _TICK:
                    checked = now
                    for conn in [c for c in self._busy.values() if c.deadline <= now]:
                        finished(self._fail(conn, "timed out"))
                    self._fail_unserved(now, finished)
        finally:
            for conn in list(self._busy.values()):
                finished(self._fail(conn, "stopped"))

    def _fail_unserved(self, now: float, finished: Callable[[Exchange], None]) -> None:
        """Fail the exchanges of new connections the server leaves unanswered while it
        answers the others (see the module's notes), and open no more than it answers."""
        unserved = [
            c
            for c in self._busy.values()
            if not c.heard
            and now - c.sent_at >= UNSERVED
            and self._answers - c.answers_then >= 2 * self._connections
        ]
        if not unserved:
            return
        served = sum(c.heard for c in [*self._busy.values(), *self._idle])
        why = (
            f"not answered in {now - unserved[0].sent_at:.0f} s on a new connection while"
            f" {self._answers - unserved[0].answers_then} answers came on the batch's other"
            f" {served}: the server serves only so many connections at once"
        )
        for conn in unserved:
            finished(self._fail(conn, why))
        self._connections = max(1, served)

    def close(self) -> None:
        while self._idle:
            self._drop(self._idle[-1])
        self._selector.close()

    def _start(
        self,
        exchange: Exchange,
        finished: Callable[[Exchange], None],
        budget: Callable[[], float | None],
    ) -> bool:
        """Send `exchange` on an idle connection or a new one; False if none can be made
        (the exchange is finished as failed)."""
        try:
            request = self._request(exchange)
        except ValueError as error:
            exchange.failed = str(error)
            finished(exchange)
            return True
        if self._idle:
            conn = self._idle.pop()
        else:
            try:
                sock = self._direct.open()
            except OSError as error:
                exchange.failed = f"cannot connect: {error}"
                finished(exchange)
                return False
            sock.setblocking(False)
            conn = _Connection(sock)
            self._selector.register(sock, selectors.EVENT_READ, conn)
        self._busy[conn.sock.fileno()] = conn
        left = budget()
        wait = self._read_timeout if left is None else min(self._read_timeout, left)
        conn.begin(exchange, request, wait, self._answers)
        self._held += conn.held
        try:
            if not self._send(conn):
                self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        except OSError as error:  # e.g. an idle connection the server closed
            finished(self._fail(conn, str(error) or type(error).__name__))
        return True

    def _request(self, exchange: Exchange) -> bytes:
        """The exchange's request as it goes on the wire: a small body in the same write
        as the head, as `wire.Connection.send` sends one."""
        if exchange.body is None:
            target, headers = self._direct.signed("GET", exchange.key)
            return request_head("GET", target, self._direct.netloc, headers)
        if not all(f"{k}{v}".isascii() for k, v in exchange.metadata.items()):
            raise ValueError("metadata that is not ASCII")  # botocore's path encodes it
        target, headers = self._direct.signed(
            "PUT",
            exchange.key,
            headers=self._direct.metadata_headers(exchange.metadata),
            length=len(exchange.body),
        )
        return request_head("PUT", target, self._direct.netloc, headers) + exchange.body

    def _send(self, conn: _Connection) -> bool:
        """Send what the socket takes now; True once the whole request is out."""
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except self._would_block:
                return False
            conn.out = conn.out[sent:]
        ack_at_once(conn.sock)
        return True

    def _step(self, conn: _Connection, events: int) -> bool:
        """Move the exchange on; True once its answer is complete."""
        if events & selectors.EVENT_WRITE:
            if self._send(conn):
                self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return False
        try:
            data = conn.sock.recv(_RECV)
            while self._tls and data and conn.sock.pending():  # type: ignore[attr-defined]
                data += conn.sock.recv(_RECV)  # TLS: decrypted bytes select cannot see
        except self._would_block:
            return False
        if not data:
            raise WireError("the server closed the connection before its answer was complete")
        conn.heard = True
        conn.buffer += data
        conn.deadline = time.monotonic() + self._read_timeout
        while conn.head is None:
            end = conn.buffer.find(b"\r\n\r\n", conn.body_at)
            if end < 0:
                if len(conn.buffer) - conn.body_at > _MAX_HEAD:
                    raise WireError("an answer head longer than 64 KiB")
                return False
            head = parse_head(bytes(conn.buffer[conn.body_at : end]))
            conn.body_at = end + 4  # the body starts here, unmoved: no copy of it
            status, headers = head[1], head[2]
            if status == 100:
                continue  # sent unasked; the answer follows
            if status < 200:
                raise WireError(f"an interim answer {status} a batch does not handle")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raise WireError("a chunked answer")
            length = headers.get("content-length")
            if length is None or not length.isdigit():
                raise WireError("an answer without a Content-Length")
            # a GET's object is no larger than it was said to be (its bytes are what the
            # memory bound counts); any other answer (an error's text) no larger than the
            # batch's limit
            getting = status == 200 and conn.exchange is not None and conn.exchange.body is None
            cap = conn.held if getting else self._limit
            if int(length) > cap:
                raise WireError(f"an answer of {length} bytes where {cap} at most were expected")
            conn.head, conn.length = head, int(length)
        got = len(conn.buffer) - conn.body_at
        if got > conn.length:
            raise WireError("more bytes than the answer's Content-Length")
        return got == conn.length

    def _finish(self, conn: _Connection) -> Exchange:
        """The exchange whose answer is complete; its connection idle again, or closed."""
        exchange, head = self._release(conn)
        assert head is not None
        self._answers += 1
        version, status, headers = head
        data = memoryview(conn.buffer)[conn.body_at :]  # the exchange's now, not copied
        conn.buffer, conn.body_at = bytearray(), 0
        connection = headers.get("connection", "").lower()
        if "close" in connection or version == b"HTTP/1.0":
            self._drop(conn)
        else:
            self._idle.append(conn)
        if status != 200:
            exchange.failed = f"answered {status}"
        elif exchange.body is None:
            exchange.data = data
            exchange.info = self._describe(exchange.key, len(data), headers)
        else:
            exchange.etag = str(headers.get("etag", "")).strip('"')
        return exchange

    def _fail(self, conn: _Connection, why: str) -> Exchange:
        """The busy connection's exchange, failed for `why`; the connection closed."""
        exchange, _ = self._release(conn)
        self._drop(conn)
        exchange.failed = why
        return exchange

    def _release(self, conn: _Connection) -> tuple[Exchange, tuple[bytes, int, Headers] | None]:
        del self._busy[conn.sock.fileno()]
        self._held -= conn.held
        exchange, head = conn.exchange, conn.head
        assert exchange is not None
        conn.exchange, conn.head, conn.held = None, None, 0
        return exchange, head

    def _drop(self, conn: _Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
        self._selector.unregister(conn.sock)
        conn.sock.close()
