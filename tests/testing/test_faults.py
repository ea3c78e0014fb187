"""The fault proxy: each fault does what it says, seen from a real HTTP client in front of
a tiny upstream that records what reached it."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from argosy.testing.faults import (
    Answer,
    BlackHole,
    Corrupt,
    Delay,
    FaultProxy,
    LoseAnswer,
    Reset,
    Rule,
    Truncate,
    parse_rule,
)

ROOT = Path(__file__).resolve().parents[2]
BLOB = bytes(range(256)) * 400  # 100 KiB


class Upstream(ThreadingHTTPServer):
    """GET /blob: BLOB; GET /chunked: BLOB in chunked coding; PUT /store/NAME: kept in
    `stored`; POST /count: `count` + 1. `seen` has every request line that arrived."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stored: dict[str, bytes] = {}
        self.count = 0
        self.seen: list[str] = []
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, payload: bytes, *, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def do_HEAD(self) -> None:
        self.server.seen.append(self.requestline)
        self._reply(200, BLOB, head=True)

    def do_GET(self) -> None:
        self.server.seen.append(self.requestline)
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for at in range(0, len(BLOB), 30000):
                piece = BLOB[at : at + 30000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self._reply(200, BLOB)

    def do_PUT(self) -> None:
        self.server.seen.append(self.requestline)
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.stored[self.path] = data
        self._reply(200, b"")

    def do_POST(self) -> None:
        self.server.seen.append(self.requestline)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.count += 1
        self._reply(200, b"done")


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url) as running:
        yield running


def _client(proxy: FaultProxy, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def _get(proxy: FaultProxy, path: str = "/blob") -> tuple[int, bytes]:
    conn = _client(proxy)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_requests_no_rule_fires_on_pass_untouched_on_one_kept_alive_connection(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    conn = _client(proxy)
    conn.request("PUT", "/store/a", body=BLOB)
    assert conn.getresponse().read() == b""
    conn.request("GET", "/blob")
    assert conn.getresponse().read() == BLOB
    conn.request("GET", "/chunked")
    assert conn.getresponse().read() == BLOB
    conn.request("HEAD", "/blob")
    head = conn.getresponse()
    assert head.getheader("Content-Length") == str(len(BLOB)) and head.read() == b""
    conn.close()
    assert upstream.stored["/store/a"] == BLOB
    assert upstream.connections == 1 and proxy.stats.connections == 1
    assert proxy.stats.requests == 4 and proxy.hits == []


def test_a_request_asking_to_continue_is_told_to_and_its_body_goes_upstream(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    conn = _client(proxy)
    conn.putrequest("PUT", "/store/e")
    conn.putheader("Content-Length", str(len(BLOB)))
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    assert conn.sock is not None
    assert conn.sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.send(BLOB)
    assert conn.getresponse().status == 200
    assert upstream.stored["/store/e"] == BLOB


def test_a_delay_holds_the_request_before_it_goes_upstream(proxy: FaultProxy) -> None:
    proxy.add(Rule(Delay(head=0.4), path="^/blob$"))
    started = time.monotonic()
    assert _get(proxy) == (200, BLOB)
    assert time.monotonic() - started >= 0.4
    assert _get(proxy) == (200, BLOB)  # times=1: the next one is not delayed
    assert [hit.fault for hit in proxy.hits] == [Delay(head=0.4)]


def test_the_most_requests_in_hand_at_once_are_counted_one_by_one_and_at_the_same_time(
    proxy: FaultProxy,
) -> None:
    proxy.add(Rule(Delay(head=0.3), path="^/blob$", times=None))
    assert _get(proxy) == (200, BLOB) and _get(proxy) == (200, BLOB)
    assert proxy.stats.most_in_flight == 1  # one after the other
    threads = [threading.Thread(target=_get, args=(proxy,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert proxy.stats.most_in_flight == 3 and proxy.stats.requests == 5


def test_a_delay_between_chunks_paces_the_body_and_keeps_its_bytes(proxy: FaultProxy) -> None:
    proxy.add(Rule(Delay(between_chunks=0.1, chunk=25 * 1024)))
    started = time.monotonic()
    assert _get(proxy) == (200, BLOB)  # 100 KiB in four pieces
    assert time.monotonic() - started >= 0.4


def test_a_503_storm_answers_slowdown_that_many_times_and_never_reaches_upstream(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.add(Rule(Answer(503, retry_after=1), method="^PUT$", times=3))
    conn = _client(proxy)
    for _ in range(3):
        conn.request("PUT", "/store/s", body=b"x" * 1000)
        answer = conn.getresponse()
        assert answer.status == 503 and answer.getheader("Retry-After") == "1"
        assert b"<Code>SlowDown</Code>" in answer.read()
    conn.request("PUT", "/store/s", body=b"x" * 1000)  # the same connection still works
    assert conn.getresponse().status == 200
    assert upstream.seen == ["PUT /store/s HTTP/1.1"]
    assert [hit.method for hit in proxy.hits] == ["PUT"] * 3


def test_a_reset_after_n_response_bytes_cuts_the_body_there(proxy: FaultProxy) -> None:
    proxy.add(Rule(Reset(response_bytes=5000)))
    conn = _client(proxy)
    conn.request("GET", "/blob")
    answer = conn.getresponse()
    assert answer.status == 200
    got = b""
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        while piece := answer.read1(100000):
            got += piece
        raise http.client.IncompleteRead(got)
    assert got == BLOB[: len(got)] and len(got) <= 5000


def test_a_reset_after_n_request_bytes_leaves_upstream_with_half_a_body(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.add(Rule(Reset(request_bytes=1000), method="^PUT$"))
    conn = _client(proxy)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.request("PUT", "/store/r", body=BLOB)
        conn.getresponse().read()
    assert "/store/r" not in upstream.stored


def test_a_truncated_body_ends_early_under_a_content_length_that_promised_more(
    proxy: FaultProxy,
) -> None:
    proxy.add(Rule(Truncate(after=7000)))
    conn = _client(proxy)
    conn.request("GET", "/blob")
    answer = conn.getresponse()
    assert answer.getheader("Content-Length") == str(len(BLOB))
    with pytest.raises(http.client.IncompleteRead) as cut:
        answer.read()
    assert cut.value.partial == BLOB[:7000]


def test_corruption_changes_exactly_n_bytes_the_same_way_for_the_same_seed(
    proxy: FaultProxy,
) -> None:
    proxy.add(Rule(Corrupt(count=3, seed=7), times=2))
    proxy.add(Rule(Corrupt(count=3, seed=7), path="^/chunked$"))
    first, second, chunked = _get(proxy)[1], _get(proxy)[1], _get(proxy, "/chunked")[1]
    assert len(first) == len(BLOB) and first == second
    assert sum(a != b for a, b in zip(first, BLOB, strict=True)) == 3
    assert len(chunked) == len(BLOB)
    assert sum(a != b for a, b in zip(chunked, BLOB, strict=True)) == 3


def test_a_black_hole_never_answers_and_stopping_the_proxy_ends_it(upstream: Upstream) -> None:
    with FaultProxy(upstream.url, [Rule(BlackHole(), times=None)]) as proxy:
        conn = _client(proxy, timeout=0.5)
        conn.request("GET", "/blob")
        with pytest.raises(TimeoutError):
            conn.getresponse()
    # stopping the proxy (the block's end) returned, and closed the held connection
    conn.sock.settimeout(5)
    try:
        assert conn.sock.recv(1) == b""
    except ConnectionResetError:
        pass
    assert upstream.seen == []


def test_a_lost_answer_is_applied_upstream_and_the_client_hears_nothing(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.add(Rule(LoseAnswer(), method="^POST$", query="uploadId="))
    conn = _client(proxy)
    conn.request("POST", "/count?uploadId=1")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.getresponse()
    assert upstream.count == 1
    conn = _client(proxy)
    conn.request("POST", "/count?uploadId=1")  # the retry goes through
    assert conn.getresponse().read() == b"done" and upstream.count == 2


def test_a_rule_fires_on_its_method_path_and_query_after_skipping_and_times_times(
    proxy: FaultProxy,
) -> None:
    proxy.add(Rule(Answer(500, code="InternalError"), path="^/blob$", query="x=1", skip=1, times=2))
    statuses = [_get(proxy, "/blob?x=1")[0] for _ in range(4)]
    assert statuses == [200, 500, 500, 200]
    assert _get(proxy, "/blob?y=1")[0] == 200


def test_a_rule_reads_from_its_command_line_form() -> None:
    rule = parse_rule("status status=503 code=SlowDown method=PUT path=^/b/ times=3 skip=1")
    assert rule.fault == Answer(503, code="SlowDown") and (rule.times, rule.skip) == (3, 1)
    assert rule.matches("PUT", "/b/k", "") and not rule.matches("PUTX", "/b/k", "")
    assert parse_rule("delay head=0.02 times=all").times is None
    assert parse_rule("reset response_bytes=10").fault == Reset(response_bytes=10)
    for bad in ("", "explode", "reset", "truncate after", "corrupt count=x"):
        with pytest.raises(ValueError):
            parse_rule(bad)


def _start(command: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(json.loads(line)["port"])


def _finish(proc: subprocess.Popen[str]) -> dict[str, float]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_the_command_serves_its_rules_and_prints_its_statistics_when_stopped(
    upstream: Upstream,
) -> None:
    proc, port = _start(
        [
            sys.executable,
            "-m",
            "argosy.testing.faults",
            "--upstream",
            upstream.url,
            "--rule",
            "status status=500 method=GET times=1",
        ]
    )
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/blob")
        failed = conn.getresponse()
        assert failed.status == 500 and b"<Code>SlowDown</Code>" in failed.read()
        conn.request("GET", "/blob")
        assert conn.getresponse().read() == BLOB
    finally:
        stats = _finish(proc)
    assert stats["connections"] == 1 and stats["requests"] == 2
    assert stats["bytes_down"] == len(BLOB)


def test_bench_delay_proxy_is_the_fault_proxy_delaying_every_request(upstream: Upstream) -> None:
    proc, port = _start(
        [
            sys.executable,
            "-m",
            "bench.delay_proxy",
            "--upstream",
            upstream.url[7:],
            "--delay-ms",
            "150",
        ]
    )
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started = time.monotonic()
        for _ in range(2):
            conn.request("GET", "/blob")
            assert conn.getresponse().read() == BLOB
        assert time.monotonic() - started >= 0.3
    finally:
        stats = _finish(proc)
    assert {"connections", "chunks", "bytes_up", "bytes_down", "seconds"} <= set(stats)
