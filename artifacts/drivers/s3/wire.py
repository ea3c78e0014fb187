"""HTTP/1.1 for the direct path: keep-alive connections on plain sockets.

Why not urllib3: importing it (with http.client, email and ssl) took ~55 ms of every
command's start here, a third of all the imports of an archive upload, and the direct
path needs little of it: one request at a time per connection, answers framed by
Content-Length or chunked, keep-alive, TLS when the endpoint is https (`ssl` is then
imported, only then).

What it does, as urllib3 did for the direct path (no retries, no redirects):
- a pool of idle connections (the most recently used first), of at most `maxsize`; an
  idle connection the server has closed or written to is dropped, not reused;
- the request's head and a small body (below 1 MiB, as bytes) in one write; a larger
  or file-like body after it, in reads of 1 MiB;
- every answer is awaited with immediate ACKs asked for (`ack_at_once`);
- interim answers (1xx, RFC 9110 15.2: a 100 Continue sent unasked, 103 Early Hints) are
  skipped with their headers, and the answer after them is the request's; a 101 is an
  error, as no request here asks to switch protocols;
- a body read to its end gives its connection back to the pool; one closed early, or a
  connection the server will close, is dropped.

Timeouts: a socket operation waits at most the pool's read timeout, and never longer
than the transfer the current thread works for has left (`stall.budget()`), so a stalled
server is given up on as soon as the transfer as a whole has stalled, retries included.
A wait that runs out raises Stall naming what was waited for (sending the body, the
answer's head, the rest of its body), or ConnectFailed with `timed_out` when connecting.

Failures: connecting raises ConnectFailed (the endpoint cannot be reached); a broken
answer or a connection lost midway raises WireError; both are ConnectionErrors, so the
driver maps them like any transport failure. TLS failures are `ssl`'s own errors.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Mapping
from typing import Any

from argosy.artifacts.stall import budget

BLOCK = 1 << 20  # bytes per write of a large or file-like body
_MAX_LINE = 64 << 10  # longest status, header or chunk-size line accepted
_MAX_HEADERS = 200
_MAX_INTERIM = 32  # 1xx answers skipped before the final one; past that the server is broken
_HEAD_READ = 64 << 10  # bytes per receive while reading an answer's head
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux


class WireError(ConnectionError):
    """The server broke HTTP/1.1 framing, or the connection ended midway."""


class ConnectFailed(ConnectionError):
    """No connection to the endpoint (refused, unknown host, timed out)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Stall(TimeoutError):
    """A socket operation ran out of time: `phase` says what it waited for (`send`: the
    server to take the request's body; `answer`: the answer's head; `body`: the rest of
    the answer's body)."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"timed out waiting ({phase})")
        self.phase = phase


def ack_at_once(sock: socket.socket | None) -> None:
    """Ask the kernel to acknowledge the next segments at once instead of delaying the
    ACK. Ceph RGW (beast, as shipped) writes an answer's headers and its body in two
    writes with Nagle's algorithm on, so the body waits until the headers are ACKed,
    and Linux delays that ACK up to 40 ms on a request/response connection: every
    answer with a body (Complete, the record's copy, CreateMultipartUpload, an error)
    took 43-48 ms here instead of 0.5-8 (a GET's body likewise waited behind its
    headers). The mode lapses by itself, so it is asked for before every answer, and by
    a GET's body on botocore's connections too (`S3ReadStream`)."""
    if _QUICKACK is not None and sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:
            pass


class Headers(dict[str, str]):
    """An answer's headers by lower-case name; `get` takes any case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Connection:
    """`timeout`: the longest one socket operation waits, unless the current thread's
    transfer has less left (`_arm`)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = self._armed = timeout
        self._buffer = bytearray()

    def _arm(self) -> None:
        """Set the socket's timeout for the next operation: the connection's own, or
        what the transfer has left, whichever is shorter (a syscall only on a change)."""
        wait = self.timeout
        left = budget()
        if left is not None and left < wait:
            wait = left
        if wait != self._armed:
            self.sock.settimeout(wait)
            self._armed = wait

    def dropped(self) -> bool:
        """True if the server closed this idle connection (or sent something unasked)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, head: bytes, body: Any) -> None:
        self._arm()
        if body is None:
            self.sock.sendall(head)
        elif isinstance(body, (bytes, bytearray, memoryview)):
            if len(body) < BLOCK:
                self.sock.sendall(head + bytes(body))
            else:
                self.sock.sendall(head)
                self.sock.sendall(body)
        else:
            self.sock.sendall(head)
            while block := body.read(BLOCK):
                self._arm()
                self.sock.sendall(block)

    def recv_into(self, view: memoryview) -> int:
        if self._buffer:
            n = min(len(view), len(self._buffer))
            view[:n] = self._buffer[:n]
            del self._buffer[:n]
            return n
        self._arm()
        return self.sock.recv_into(view)

    def readline(self) -> bytes:
        while True:
            end = self._buffer.find(b"\n", 0, _MAX_LINE)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) >= _MAX_LINE:
                raise WireError("an answer line longer than 64 KiB")
            self._arm()
            data = self.sock.recv(_HEAD_READ)
            if not data:
                raise WireError("the server closed the connection before its answer was complete")
            self._buffer += data

    def skip(self, count: int) -> None:
        view = memoryview(bytearray(min(count, BLOCK)))
        while count:
            got = self.recv_into(view[: min(count, len(view))])
            if not got:
                raise WireError("the server closed the connection inside a chunk")
            count -= got


def _read_head(conn: Connection) -> tuple[bytes, int, Headers]:
    """An answer's status line and headers: (HTTP version, status, headers)."""
    version, status = _status(conn.readline())
    headers = Headers()
    for _ in range(_MAX_HEADERS):
        line = conn.readline()
        if line in (b"\r\n", b"\n"):
            return version, status, headers
        _header(headers, line)
    raise WireError(f"more than {_MAX_HEADERS} headers")


def parse_head(block: bytes) -> tuple[bytes, int, Headers]:
    """An answer's head already in memory (up to, not including, its blank line), as
    `_read_head` reads it from a connection."""
    lines = block.split(b"\n")
    if len(lines) > _MAX_HEADERS + 1:
        raise WireError(f"more than {_MAX_HEADERS} headers")
    version, status = _status(lines[0])
    headers = Headers()
    for line in lines[1:]:
        _header(headers, line)
    return version, status, headers


def _status(line: bytes) -> tuple[bytes, int]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise WireError(f"not an HTTP/1.x answer: {line[:60]!r}")
    return parts[0], int(parts[1])


def _header(headers: Headers, line: bytes) -> None:
    name, sep, value = line.decode("latin-1").partition(":")
    if not sep:
        raise WireError(f"a malformed header line: {line[:60]!r}")
    key, text = name.strip().lower(), value.strip()
    headers[key] = f"{headers[key]}, {text}" if key in headers else text


def request_head(method: str, target: str, netloc: str, headers: Mapping[str, str]) -> bytes:
    """A request's head as it goes on the wire."""
    lines = [
        f"{method} {target} HTTP/1.1",
        f"host: {netloc}",
        "user-agent: argosy",
        "accept-encoding: identity",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1")


class Response:
    """One answer. `data` reads the whole body; `readinto` and `read` stream it."""

    def __init__(self, pool: Pool, conn: Connection, method: str) -> None:
        self._pool, self._conn = pool, conn
        for _ in range(_MAX_INTERIM + 1):
            version, self.status, self.headers = _read_head(conn)
            if not 100 <= self.status < 200:
                break
            if self.status == 101:
                raise WireError(
                    "the server switched protocols (101) on a request that asked for no upgrade"
                )
            # an interim answer has no body: the request's own answer follows it
        else:
            raise WireError(f"more than {_MAX_INTERIM} interim (1xx) answers")
        connection = self.headers.get("connection", "").lower()
        self._reuse = "close" not in connection and (
            version != b"HTTP/1.0" or "keep-alive" in connection
        )
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._left: int | None  # bytes left in the body (or chunk); None: until closed
        if method == "HEAD" or self.status in (204, 304):
            self._left, self._chunked = 0, False
        elif self._chunked:
            self._left = 0
        elif (length := self.headers.get("content-length")) is not None:
            if not length.isdigit():
                raise WireError(f"a malformed Content-Length: {length[:40]!r}")
            self._left = int(length)
        else:
            self._left, self._reuse = None, False
        self._done = False
        self._data: bytes | None = None
        if self._left == 0 and not self._chunked:
            self._finish()

    @property
    def sock(self) -> socket.socket | None:
        return self._conn.sock if self._conn is not None else None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.read()
        return self._data

    def read(self, amount: int | None = None) -> bytes:
        """The body (or its next `amount` bytes), in buffers no larger than what is left
        of it: most answers have an empty or small body."""
        out = bytearray()
        try:
            while (amount is None or len(out) < amount) and not self._done:
                if self._chunked and self._left == 0:
                    self._next_chunk()
                    continue
                want = BLOCK if amount is None else min(BLOCK, amount - len(out))
                buffer = bytearray(want if self._left is None else min(want, self._left))
                got = self._read_some(memoryview(buffer))
                out += memoryview(buffer)[:got]
        except TimeoutError as error:
            raise self._stalled(error) from error
        return bytes(out)

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill `buffer` from the body; fewer bytes only where the body ends."""
        view = memoryview(buffer).cast("B")
        filled = 0
        try:
            while filled < len(view) and not self._done:
                filled += self._read_some(view[filled:])
        except TimeoutError as error:
            raise self._stalled(error) from error
        return filled

    def _stalled(self, error: TimeoutError) -> Stall:
        """The body stopped coming: its connection cannot be reused."""
        if not self._done:
            self._done = True
            self._drop()
        return error if isinstance(error, Stall) else Stall("body")

    def isclosed(self) -> bool:
        """True once the body has been read to its end."""
        return self._done

    def release_conn(self) -> None:
        """Done with this answer: its connection is reused if its body was read to the
        end, else dropped."""
        if not self._done:
            self._done = True
            self._drop()

    close = release_conn

    def _next_chunk(self) -> None:
        """Read a chunk's size line: the next chunk's size in `_left`, or the end."""
        size_line = self._conn.readline().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise WireError(f"a malformed chunk size: {size_line[:40]!r}") from None
        if size == 0:
            while self._conn.readline() not in (b"\r\n", b"\n"):
                pass  # trailers
            self._finish()
        self._left = size

    def _read_some(self, view: memoryview) -> int:
        if self._chunked and self._left == 0:
            self._next_chunk()
            if self._done:
                return 0
        want = len(view) if self._left is None else min(len(view), self._left)
        got = self._conn.recv_into(view[:want])
        if not got:
            if self._left is None:
                self._finish()
                return 0
            self._done = True
            self._drop()
            raise WireError("the server closed the connection before the body's end")
        if self._left is not None:
            self._left -= got
            if self._left == 0:
                if self._chunked:
                    if self._conn.readline().strip():
                        raise WireError("a chunk longer than its size")
                else:
                    self._finish()
        return got

    def _finish(self) -> None:
        self._done = True
        if self._reuse:
            self._pool.put(self._conn)
        else:
            self._conn.close()

    def _drop(self) -> None:
        self._conn.close()


class Pool:
    """Keep-alive connections to one origin (`scheme://host[:port]`)."""

    def __init__(
        self,
        scheme: str,
        netloc: str,
        *,
        maxsize: int,
        timeout: tuple[float, float],
        ca_certs: str | None = None,
        verify: bool = True,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) endpoint: {scheme}://{netloc}")
        self.scheme, self.netloc = scheme, netloc
        host, _, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
        if not host or not port.isdigit():
            host, port = netloc, ""
        self._host = host.strip("[]")
        self._port = int(port) if port else (443 if scheme == "https" else 80)
        self._maxsize = maxsize
        self._connect_timeout, self._read_timeout = timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self.made = 0  # connections opened, ever
        self._tls: Any = None
        if scheme == "https":
            import ssl  # only for https endpoints

            context = ssl.create_default_context(cafile=ca_certs if verify else None)
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    def request(
        self, method: str, target: str, *, headers: Mapping[str, str], body: Any = None
    ) -> Response:
        """Send one request and read its answer's head; the body is the caller's to read
        (or `.data`). `headers` should hold content-length for a request with a body."""
        head = request_head(method, target, self.netloc, headers)
        conn = self._take()
        try:
            try:
                conn.send(head, body)
            except TimeoutError as error:
                raise Stall("send") from error
            ack_at_once(conn.sock)
            try:
                return Response(self, conn, method)
            except TimeoutError as error:
                raise Stall("answer") from error
        except BaseException:
            conn.close()
            raise

    def put(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def _take(self) -> Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not conn.dropped():
                return conn
            conn.close()

    def _connect(self) -> Connection:
        sock = self.open()
        connection = Connection(sock, self._read_timeout)
        connection._armed = sock.gettimeout() or self._read_timeout
        return connection

    def open(self) -> socket.socket:
        """A new socket to the origin, TLS handshake done, TCP_NODELAY on, its timeout the
        read timeout (or what the transfer has left)."""
        left = budget()
        try:
            sock = socket.create_connection(
                (self._host, self._port),
                timeout=self._connect_timeout if left is None else min(self._connect_timeout, left),
            )
        except OSError as error:
            raise ConnectFailed(
                f"cannot connect to {self.scheme}://{self.netloc}: {error.strerror or error}",
                timed_out=isinstance(error, TimeoutError),
            ) from error
        self.made += 1
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            left = budget()
            sock.settimeout(self._read_timeout if left is None else min(self._read_timeout, left))
            if self._tls is not None:
                try:
                    sock = self._tls.wrap_socket(sock, server_hostname=self._host)
                except TimeoutError as error:
                    raise ConnectFailed(
                        f"no TLS handshake with {self.scheme}://{self.netloc} in time",
                        timed_out=True,
                    ) from error
        except BaseException:
            sock.close()
            raise
        return sock
