"""The fault proxy: HTTP/1.1 on 127.0.0.1 in front of an upstream, one thread a connection.

    with FaultProxy("http://127.0.0.1:8000", [Rule(Answer(503), method="PUT", times=2)]) as p:
        ...  # point the client at p.url

Requests and answers are relayed as they come (heads unchanged, so signatures hold;
bodies in pieces of at most 256 KiB), each client connection with its own upstream
connection, kept alive as long as both sides keep it. A request that asks for
`Expect: 100-continue` is told to continue by the proxy itself and sent upstream without
the header, so a fault can be chosen with the whole request in hand.

Bounded: at most `max_connections` connections are served at once (the next ones wait in
the listen backlog), and `stop()` ends every one of them, black holes included.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from argosy.testing.faults.rules import (
    Answer,
    BlackHole,
    Corrupt,
    Delay,
    Fault,
    Hit,
    LoseAnswer,
    Reset,
    Rule,
    RuleBook,
    Truncate,
)
from argosy.testing.faults.wire import Head, ProtocolError, Stream, body, framing


@dataclass
class Stats:
    """What went through: connections accepted, requests read, pieces and bytes relayed
    client -> upstream (up) and upstream -> client (down); answers whose body relay
    began, ended, or was cut because the client stopped taking it (it went away); the most
    requests in hand at once (from a request's head read to its answer's end or fault)."""

    connections: int = 0
    requests: int = 0
    chunks: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    answers: int = 0
    answers_done: int = 0
    answers_cut: int = 0
    most_in_flight: int = 0


class _ClientGone(ConnectionError):
    """The client stopped taking an answer's body (it went away mid-body)."""


class _Dropped(Exception):
    """The connection is over (a fault ended it, or a peer went away)."""


def upstream_address(upstream: str) -> tuple[str, int]:
    """HOST:PORT of `http://HOST:PORT[/]` or `HOST:PORT` (plain HTTP only)."""
    parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"upstream must be http://HOST:PORT or HOST:PORT, not {upstream!r}")
    return parts.hostname, parts.port


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dropped connection looks to its peer."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _error_body(answer: Answer) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{answer.code}</Code><Message>{answer.message}</Message></Error>"
    ).encode()


class FaultProxy:
    """A fault-and-delay proxy; `rules` (see `rules.Rule`) can be added while it runs."""

    def __init__(
        self,
        upstream: str,
        rules: Sequence[Rule] = (),
        *,
        port: int = 0,
        max_connections: int = 256,
    ) -> None:
        self.upstream = upstream_address(upstream)
        self.rules = RuleBook(tuple(rules))
        self.stats = Stats()
        self._port = port
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._in_flight = 0
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- the API tests use ------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hits(self) -> list[Hit]:
        """Every request a rule fired on, in order."""
        return list(self.rules.hits)

    def add(self, rule: Rule) -> Rule:
        return self.rules.add(rule)

    def clear(self) -> None:
        self.rules.clear()

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(1024)
        listener.settimeout(0.2)  # so the acceptor sees `stop()`
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                self._slots.release()
                continue
            thread = threading.Thread(target=self._connection, args=(client,), daemon=True)
            with self._lock:
                self.stats.connections += 1
                self._threads.add(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        # an answer's head and body (a request's too) go out as separate writes: with
        # Nagle on, the second waited for the peer's delayed ACK (~40 ms), a stall the
        # proxy added on top of its delay that no real link has
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _forget(self, sock: socket.socket | None, *, reset: bool = False) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        if reset:
            _reset(sock)
        else:
            sock.close()

    def _count(
        self,
        *,
        up: int = 0,
        down: int = 0,
        chunks: int = 0,
        requests: int = 0,
        answers: int = 0,
        done: int = 0,
        cut: int = 0,
    ) -> None:
        with self._lock:
            self.stats.bytes_up += up
            self.stats.bytes_down += down
            self.stats.chunks += chunks
            self.stats.requests += requests
            self.stats.answers += answers
            self.stats.answers_done += done
            self.stats.answers_cut += cut

    def _connection(self, sock: socket.socket) -> None:
        client = Stream(self._track(sock))
        upstream: Stream | None = None
        reset = False
        try:
            while not self._stopping.is_set():
                upstream = self._exchange(client, upstream)
        except _Dropped as dropped:
            reset = bool(dropped.args and dropped.args[0] == "reset")
        except (OSError, ProtocolError):
            reset = True
        finally:
            self._forget(upstream.sock if upstream else None, reset=reset)
            self._forget(sock, reset=reset)
            with self._lock:
                self._threads.discard(threading.current_thread())
            self._slots.release()

    def _upstream(self, current: Stream | None) -> Stream:
        """The connection to upstream: the current one unless upstream closed it (or sent
        something unasked) while it was idle."""
        if current is not None:
            readable, _, _ = select.select([current.sock], [], [], 0)
            if not readable:
                return current
            self._forget(current.sock)
        sock = socket.create_connection(self.upstream, timeout=60)
        sock.settimeout(None)
        return Stream(self._track(sock))

    def _exchange(self, client: Stream, upstream: Stream | None) -> Stream | None:
        """One request and its answer (or its fault); the upstream connection to keep."""
        raw = client.read_head()
        if raw is None:
            raise _Dropped("closed")
        with self._lock:
            self._in_flight += 1
            self.stats.most_in_flight = max(self.stats.most_in_flight, self._in_flight)
        try:
            return self._serve(client, upstream, raw)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, client: Stream, upstream: Stream | None, raw: bytes) -> Stream | None:
        request = Head.parse(raw)
        method, _, target = request.start.partition(" ")
        target = target.rsplit(" ", 1)[0]
        path, _, query = target.partition("?")
        self._count(requests=1)
        fault = self.rules.choose(method, path, query)
        if (request.get("Expect") or "").lower() == "100-continue":
            client.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            request = request.without("Expect")
        pieces = body(client, *framing(request, request=True))
        if isinstance(fault, Answer):
            self._drain(pieces)
            self._answer(client, fault)
            if request.closes:
                raise _Dropped("closed")
            return upstream
        if isinstance(fault, BlackHole):
            self._drain(pieces)
            self._hold(client)
            raise _Dropped("closed")
        if isinstance(fault, Delay) and fault.head:
            self._stopping.wait(fault.head)
        upstream = self._upstream(upstream)
        self._send_request(upstream, request, pieces, fault)
        answer, answer_pieces = self._read_answer(client, upstream, method, fault)
        if isinstance(fault, LoseAnswer):
            self._drain(answer_pieces)
            raise _Dropped("reset")
        client.sock.sendall(answer.encode())
        self._count(answers=1)
        try:
            self._relay_answer(
                client, answer_pieces, fault, framing(answer, request=False, method=method)
            )
        except _ClientGone:
            self._count(cut=1)
            raise
        except BaseException:
            self._count(done=1)  # ended by the fault itself, or by upstream
            raise
        self._count(done=1)
        kind, _ = framing(answer, request=False, method=method)
        if request.closes or answer.closes or kind == "close":
            raise _Dropped("closed")
        return upstream

    def _drain(self, pieces: Iterable[tuple[bytes, bool]]) -> None:
        for piece, _ in pieces:
            self._count(up=len(piece), chunks=1)

    def _answer(self, client: Stream, answer: Answer) -> None:
        payload = _error_body(answer)
        reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(
            answer.status, "Error"
        )
        headers = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(payload))),
            ("x-amz-request-id", "fault-proxy"),
        ]
        if answer.retry_after is not None:
            headers.append(("Retry-After", str(answer.retry_after)))
        head = Head(f"HTTP/1.1 {answer.status} {reason}", tuple(headers))
        client.sock.sendall(head.encode() + payload)

    def _hold(self, client: Stream) -> None:
        """Keep a black-holed connection open, reading and ignoring, until the client
        closes it or the proxy stops."""
        client.sock.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                if not client.sock.recv(1 << 16):
                    return
            except TimeoutError:
                continue

    def _send_request(
        self,
        upstream: Stream,
        request: Head,
        pieces: Iterator[tuple[bytes, bool]],
        fault: Fault | None,
    ) -> None:
        upstream.sock.sendall(request.encode())
        budget = fault.request_bytes if isinstance(fault, Reset) else None
        for piece, _ in pieces:
            if budget is not None and len(piece) >= budget:
                upstream.sock.sendall(piece[:budget])
                self._count(up=budget, chunks=1)
                raise _Dropped("reset")
            upstream.sock.sendall(piece)
            self._count(up=len(piece), chunks=1)
            if budget is not None:
                budget -= len(piece)
        if budget is not None:  # the body was shorter than the budget
            raise _Dropped("reset")
        # RGW writes an answer's head and body separately with Nagle on: the body waits
        # for the head's ACK, which Linux delays up to 40 ms. A client that asks for
        # quick ACKs on its own socket cannot reach this one: ask here, so the proxy
        # adds its delay and nothing else
        if hasattr(socket, "TCP_QUICKACK"):
            try:
                upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass

    def _read_answer(
        self, client: Stream, upstream: Stream, method: str, fault: Fault | None
    ) -> tuple[Head, Iterator[tuple[bytes, bool]]]:
        """The final answer's head and its body; interim (1xx) answers relayed."""
        while True:
            raw = upstream.read_head()
            if raw is None:
                raise ProtocolError("upstream closed without answering")
            answer = Head.parse(raw)
            if 100 <= answer.status < 200 and answer.status != 101:
                if not isinstance(fault, LoseAnswer):
                    client.sock.sendall(raw)
                continue
            return answer, body(upstream, *framing(answer, request=False, method=method))

    def _relay_answer(
        self,
        client: Stream,
        pieces: Iterator[tuple[bytes, bool]],
        fault: Fault | None,
        frame: tuple[str, int],
    ) -> None:
        if isinstance(fault, Delay) and fault.between_chunks:
            pieces = self._paced(pieces, fault)
        if isinstance(fault, Corrupt):
            pieces = _corrupted(pieces, fault, frame)
        budget: int | None = None
        if isinstance(fault, Truncate):
            budget = fault.after
        elif isinstance(fault, Reset):
            budget = fault.response_bytes
        sent = 0

        def send(data: bytes) -> None:
            try:
                client.sock.sendall(data)
            except OSError as error:
                raise _ClientGone(str(error)) from error

        for piece, _ in pieces:
            if budget is not None and sent + len(piece) >= budget:
                send(piece[: budget - sent])
                self._count(down=budget - sent)
                raise _Dropped("reset" if isinstance(fault, Reset) else "closed")
            send(piece)
            sent += len(piece)
            self._count(down=len(piece))
        if budget is not None:  # shorter than the budget: still end it the fault's way
            raise _Dropped("reset" if isinstance(fault, Reset) else "closed")

    def _paced(
        self, pieces: Iterator[tuple[bytes, bool]], delay: Delay
    ) -> Iterator[tuple[bytes, bool]]:
        for piece, payload in pieces:
            for at in range(0, len(piece), delay.chunk):
                if self._stopping.wait(delay.between_chunks):
                    raise _Dropped("closed")
                yield piece[at : at + delay.chunk], payload


def _corrupted(
    pieces: Iterator[tuple[bytes, bool]], fault: Corrupt, frame: tuple[str, int]
) -> Iterator[tuple[bytes, bool]]:
    """The payload with `fault.count` bytes changed: positions drawn from the seed over
    the Content-Length (or over the first 64 KiB of a body of unknown length)."""
    rng = random.Random(fault.seed)
    kind, length = frame
    span = length if kind == "length" else 64 << 10
    if span <= 0:
        yield from pieces
        return
    hits = {rng.randrange(span): rng.randrange(1, 256) for _ in range(fault.count)}
    offset = 0
    for piece, payload in pieces:
        if payload and hits:
            changed = bytearray(piece)
            for at in [a for a in hits if offset <= a < offset + len(piece)]:
                changed[at - offset] ^= hits.pop(at)
            offset += len(piece)
            yield bytes(changed), payload
        else:
            yield piece, payload
