"""The direct path's HTTP/1.1 (`drivers/s3/wire.py`) against a scripted server on
127.0.0.1: framing by Content-Length, chunks or the connection's end; keep-alive and
when not to keep a connection; interim (1xx) answers before the final one; answers cut
short or malformed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from argosy.artifacts.drivers.s3 import map_error
from argosy.artifacts.drivers.s3.wire import ConnectFailed, Pool, WireError
from argosy.artifacts.errors import TransientError


class Hangup(bytes):
    """An answer after which the server closes the connection at once, as an idle
    timeout would, without saying so in the answer."""


class Scripted:
    """Answers each request it reads, on whichever connection, with the next scripted
    bytes (a Hangup then closes the connection; `None` closes it without answering).
    Counts connections and keeps what each request sent."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            while self.answers:
                request = self._read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                answer = self.answers.pop(0)
                if answer is None:
                    return
                conn.sendall(answer)
                if isinstance(answer, Hangup):
                    return

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def pool(self) -> Pool:
        return Pool("http", f"127.0.0.1:{self.port}", maxsize=4, timeout=(2.0, 2.0))


@pytest.fixture
def server() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for s in made:
        s.listener.close()


def _serve(made: list[Scripted], *answers: bytes | None) -> Scripted:
    s = Scripted(list(answers))
    made.append(s)
    return s


OK = b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello'


def test_answers_framed_by_length_share_one_kept_alive_connection(server) -> None:
    s = _serve(server, OK, OK, OK)
    pool = s.pool()
    for _ in range(3):
        answer = pool.request("GET", "/b/k", headers={})
        assert answer.status == 200 and answer.data == b"hello"
        assert answer.headers.get("etag") == '"e"' and answer.headers.get("ETag") == '"e"'
    assert s.connections == 1 and pool.made == 1
    assert s.requests[0].startswith(b"GET /b/k HTTP/1.1\r\nhost: 127.0.0.1:")


def test_a_chunked_answer_is_joined_and_its_connection_kept(server) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\n<Comp\r\nb\r\nleteResult>\r\n0\r\nTrailer: x\r\n\r\n"
    )
    s = _serve(server, chunked, OK)
    pool = s.pool()
    assert pool.request("POST", "/b/k", headers={"content-length": "0"}).data == b"<CompleteResult>"
    assert pool.request("GET", "/b/k", headers={}).data == b"hello"
    assert s.connections == 1


def test_an_answer_without_length_runs_to_the_connections_end_and_is_not_kept(server) -> None:
    s = _serve(server, Hangup(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"), OK)
    pool = s.pool()
    assert pool.request("GET", "/a", headers={}).data == b"until the end"
    assert pool.request("GET", "/b", headers={}).data == b"hello"
    assert s.connections == 2


@pytest.mark.parametrize(
    "closing",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    ],
)
def test_a_connection_the_server_will_close_is_not_reused(server, closing: bytes) -> None:
    s = _serve(server, closing, OK)  # the server would answer on the same connection
    pool = s.pool()
    assert pool.request("GET", "/a", headers={}).data == b"hello"
    assert pool.request("GET", "/b", headers={}).data == b"hello"
    assert s.connections == 2


def test_an_idle_connection_the_server_closed_is_dropped_not_reused(server) -> None:
    s = _serve(server, Hangup(OK), OK)
    pool = s.pool()
    assert pool.request("GET", "/a", headers={}).data == b"hello"
    time.sleep(0.2)  # the server's FIN reaches the idle connection
    assert pool.request("GET", "/b", headers={}).data == b"hello"
    assert s.connections == 2 and pool.made == 2


def test_a_body_cut_short_is_a_transient_failure(server) -> None:
    s = _serve(server, Hangup(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"))
    answer = s.pool().request("GET", "/a", headers={})
    with pytest.raises(WireError, match="before the body's end") as caught:
        answer.data  # noqa: B018
    assert isinstance(map_error(caught.value, "s3://b/a"), TransientError)


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (70 << 10) + b"\r\n\r\n",
    ],
)
def test_a_malformed_answer_is_a_wire_error(server, answer: bytes) -> None:
    s = _serve(server, Hangup(answer))
    with pytest.raises(WireError):
        s.pool().request("GET", "/a", headers={}).data  # noqa: B018


def test_a_refused_connection_means_the_endpoint_cannot_be_reached() -> None:
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    pool = Pool("http", f"127.0.0.1:{port}", maxsize=1, timeout=(1.0, 1.0))
    with pytest.raises(ConnectFailed) as caught:
        pool.request("GET", "/a", headers={})
    mapped = map_error(caught.value, "s3://b/a", f"http://127.0.0.1:{port}")
    assert isinstance(mapped, TransientError) and mapped.code == "EndpointUnreachable"


def test_a_large_body_is_sent_whole_after_the_head(server) -> None:
    s = _serve(server, OK)
    body = bytes(range(256)) * 8192  # 2 MiB
    answer = s.pool().request(
        "PUT", "/a", headers={"content-length": str(len(body))}, body=memoryview(body)
    )
    assert answer.data == b"hello"
    assert s.requests[0].endswith(b"\r\n\r\n" + body)


def test_a_head_answer_has_no_body_whatever_its_length_says(server) -> None:
    s = _serve(server, b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", OK)
    pool = s.pool()
    head = pool.request("HEAD", "/a", headers={})
    assert head.headers.get("content-length") == "1234" and head.data == b""
    assert pool.request("GET", "/a", headers={}).data == b"hello"
    assert s.connections == 1


def _reused_for_the_next_request(s: Scripted, pool: Pool) -> None:
    follow = pool.request("GET", "/next", headers={})
    assert follow.status == 200 and follow.data == b"hello"
    assert s.connections == 1 and pool.made == 1


def test_a_100_continue_sent_unasked_is_skipped_for_the_answer_after_it(server) -> None:
    s = _serve(server, b"HTTP/1.1 100 Continue\r\n\r\n" + OK, OK)
    pool = s.pool()
    answer = pool.request("PUT", "/b/k", headers={"content-length": "4"}, body=b"data")
    assert answer.status == 200 and answer.data == b"hello"
    assert answer.headers.get("etag") == '"e"'
    _reused_for_the_next_request(s, pool)


def test_early_hints_and_their_headers_are_skipped_for_the_final_answer(server) -> None:
    hints = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
        b'ETag: "not-this-one"\r\n\r\n'
    )
    s = _serve(server, hints + OK, OK)
    pool = s.pool()
    answer = pool.request("GET", "/b/k", headers={})
    assert answer.status == 200 and answer.data == b"hello"
    assert answer.headers.get("etag") == '"e"' and answer.headers.get("link") is None
    _reused_for_the_next_request(s, pool)


def test_several_interim_answers_in_a_row_are_all_skipped(server) -> None:
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </b>; rel=preload\r\n\r\n"
    )
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n<Comp\r\nb\r\nleteResult>\r\n0\r\n\r\n"
    )
    s = _serve(server, interim + chunked, OK)
    pool = s.pool()
    answer = pool.request("POST", "/b/k", headers={"content-length": "0"})
    assert answer.status == 200 and answer.data == b"<CompleteResult>"
    assert answer.headers.get("link") is None
    _reused_for_the_next_request(s, pool)


def test_a_switch_of_protocols_nobody_asked_for_is_a_wire_error_and_not_reused(server) -> None:
    s = _serve(server, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n" + OK, OK)
    pool = s.pool()
    with pytest.raises(WireError, match="101") as caught:
        pool.request("GET", "/b/k", headers={})
    assert isinstance(map_error(caught.value, "s3://b/k"), TransientError)
    assert pool.request("GET", "/b/k", headers={}).data == b"hello"
    assert s.connections == 2


def test_a_server_that_never_stops_sending_interim_answers_is_a_wire_error(server) -> None:
    s = _serve(server, Hangup(b"HTTP/1.1 100 Continue\r\n\r\n" * 40 + OK))
    with pytest.raises(WireError, match="interim"):
        s.pool().request("GET", "/b/k", headers={})
