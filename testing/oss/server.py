"""An Alibaba OSS protocol test server: real HTTP on loopback for the real ``oss2`` client.

No OSS server can be installed where Argosy is developed and tested, so this
module provides one that speaks enough of the OSS protocol for oss2-based code
to run unmodified: objects, ranges, listings (v1 and v2), multipart uploads,
batch delete, lifecycle, bucket calls, CRC64 headers, conditional requests,
and -- the point of it -- authentication checked the way OSS checks it
(signature V1 and V4, presigned URLs, STS tokens with expiry, clock skew), so
a client with a wrong key, a tampered header or an expired token fails here
as it would in production.  Objects are streamed to and from files under the
data directory, so large objects do not sit in memory.

Use in tests::

    with OssTestServer(tmp_path, credentials={"ak": "secret"}, buckets=["b"]) as server:
        bucket = oss2.Bucket(oss2.Auth("ak", "secret"), server.endpoint, "b")
        ...
        assert server.stats.max_concurrent_upload_parts >= 2
        server.inject_fault("GetObject", status=503, times=1)
        server.corrupt_get(key="k")   # the next GetObject of "k" serves a flipped byte

Or by hand: ``python -m argosy.testing.oss_server --port 9000 --data /tmp/oss
--access-key ak --secret secret --bucket demo``.
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import NamedTuple

from .auth import Authenticator, StsToken
from .http import OssHTTPServer
from .serving import BackgroundServer
from .store import Store

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET",
    "Fault",
    "OssTestServer",
    "RequestRecord",
    "ServerStats",
    "StsToken",
    "main",
]

DEFAULT_ACCESS_KEY = "argosy-test-access-key"
DEFAULT_SECRET = "argosy-test-secret"


class RequestRecord(NamedTuple):
    """One served request, in arrival-completion order."""

    method: str
    path: str
    query: dict[str, str]
    operation: str
    status: int
    request_id: str


class ServerStats:
    """Counters the tests read; ``max_concurrent_upload_parts`` is the high-water mark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.reset()

    def wait_for(self, predicate: Callable[[ServerStats], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(stats)`` holds (re-checked on every request start/end)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def reset(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.upload_parts_in_flight = 0
        self.max_concurrent_upload_parts = 0
        self.operations: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.bytes_received = 0
        self.bytes_sent = 0

    def begin(self, operation: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if operation == "UploadPart":
                self.upload_parts_in_flight += 1
                self.max_concurrent_upload_parts = max(
                    self.max_concurrent_upload_parts, self.upload_parts_in_flight
                )
            self._changed.notify_all()

    def end(self, operation: str, status: int, received: int, sent: int) -> None:
        with self._lock:
            self.in_flight -= 1
            if operation == "UploadPart":
                self.upload_parts_in_flight -= 1
            self.requests += 1
            self.operations[operation] += 1
            self.statuses[status] += 1
            self.bytes_received += received
            self.bytes_sent += sent
            self._changed.notify_all()


@dataclass
class Fault:
    """An injected failure for requests of ``operation`` (optionally one bucket/key).

    ``kind`` is ``"error"`` (answer ``status``/``code``), ``"disconnect"`` (drop the
    connection without an answer, the request not applied), ``"lost"`` (apply the
    request, then drop the connection without its answer: a client cannot tell it
    succeeded) or ``"corrupt"`` (GetObject serves the right length with its first byte
    flipped).  ``times=None`` fires forever.
    """

    operation: str
    kind: str = "error"
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "Injected fault: please reduce your request rate."
    times: int | None = 1
    bucket: str | None = None
    key: str | None = None
    delay_seconds: float = 0.0
    fired: int = field(default=0)


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, operation: str, bucket: str | None, key: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if (
                    fault.operation in (operation, "*")
                    and fault.bucket in (None, bucket)
                    and fault.key in (None, key)
                ):
                    fault.fired += 1
                    if fault.times is not None and fault.fired >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None


class OssTestServer(BackgroundServer):
    """In-process OSS server on a background thread; ``start()`` returns the endpoint."""

    thread_name = "oss-test-server"

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        credentials: Mapping[str, str] | None = None,
        sts_tokens: Mapping[str, StsToken] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        buckets: Iterable[str] = (),
        max_skew_seconds: float = 900.0,
        region: str | None = None,
        clock: Callable[[], float] = time.time,
        request_log_limit: int = 100_000,
        standard_ranges: bool = False,
    ) -> None:
        """``standard_ranges=True`` answers every GetObject as if it carried
        ``x-oss-range-behavior: standard`` (416 / clamping instead of OSS's default of
        ignoring a range that does not fit the object)."""
        self.host = host
        self.standard_ranges = standard_ranges
        self.port = port
        self.store = Store(root_dir)
        self.authenticator = Authenticator(
            credentials if credentials is not None else {DEFAULT_ACCESS_KEY: DEFAULT_SECRET},
            sts_tokens or {},
            max_skew_seconds=max_skew_seconds,
            region=region,
            clock=clock,
        )
        self.stats = ServerStats()
        self.faults = FaultInjector()
        self._log: collections.deque[RequestRecord] = collections.deque(maxlen=request_log_limit)
        self._log_lock = threading.Lock()
        for name in buckets:
            self.store.create_bucket(name, exist_ok=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def _make_server(self) -> OssHTTPServer:
        return OssHTTPServer((self.host, self.port), self)

    # -- configuration ------------------------------------------------------------------------
    def create_bucket(self, name: str) -> None:
        self.store.create_bucket(name, exist_ok=True)

    def add_credentials(self, access_key_id: str, access_key_secret: str) -> None:
        self.authenticator.credentials[access_key_id] = access_key_secret

    def add_sts_token(
        self, token: str, access_key_id: str, access_key_secret: str, expires_at: float
    ) -> None:
        self.authenticator.sts_tokens[token] = StsToken(
            access_key_id, access_key_secret, expires_at
        )

    def issue_sts_credentials(self, ttl_seconds: float = 3600.0) -> tuple[str, str, str]:
        """Mint temporary ``(access_key_id, access_key_secret, security_token)``."""
        access_key_id = "STS." + secrets.token_hex(8)
        secret, token = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        self.add_sts_token(token, access_key_id, secret, self.authenticator.clock() + ttl_seconds)
        return access_key_id, secret, token

    # -- faults -------------------------------------------------------------------------------
    def inject_fault(
        self,
        operation: str,
        *,
        status: int = 503,
        code: str = "ServiceUnavailable",
        message: str | None = None,
        times: int | None = 1,
        bucket: str | None = None,
        key: str | None = None,
        disconnect: bool = False,
        lose_answer: bool = False,
        delay_seconds: float = 0.0,
    ) -> Fault:
        """Make the next ``times`` ``operation`` requests (``"*"`` = any) fail: answered
        with ``status``/``code``, or with ``disconnect`` dropped unapplied, or with
        ``lose_answer`` applied and then dropped unanswered."""
        if disconnect and lose_answer:
            raise ValueError("a fault either drops the request or loses its answer")
        fault = Fault(
            operation,
            "disconnect" if disconnect else "lost" if lose_answer else "error",
            status,
            code,
            times=times,
            bucket=bucket,
            key=key,
            delay_seconds=delay_seconds,
        )
        if message is not None:
            fault.message = message
        return self.faults.add(fault)

    def corrupt_get(
        self, *, times: int | None = 1, bucket: str | None = None, key: str | None = None
    ) -> Fault:
        """Serve the next ``times`` GetObject bodies with one byte flipped (CRC mismatch)."""
        return self.faults.add(Fault("GetObject", "corrupt", times=times, bucket=bucket, key=key))

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- request log --------------------------------------------------------------------------
    def record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        operation: str,
        status: int,
        request_id: str,
    ) -> None:
        with self._log_lock:
            self._log.append(RequestRecord(method, path, query, operation, status, request_id))

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the served requests, oldest first."""
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()


def main(argv: list[str] | None = None) -> int:
    """Run the server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m argosy.testing.oss_server", description="Alibaba OSS protocol test server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data", required=True, help="directory holding buckets and objects")
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--bucket", action="append", default=[], help="create if missing")
    parser.add_argument(
        "--sts-token", action="append", default=[], metavar="TOKEN:ACCESS_KEY:SECRET:TTL_SECONDS"
    )
    args = parser.parse_args(argv)
    server = OssTestServer(
        args.data,
        {args.access_key: args.secret},
        host=args.host,
        port=args.port,
        buckets=args.bucket,
    )
    for spec in args.sts_token:
        token, access_key, secret, ttl = spec.rsplit(":", 3)
        server.add_sts_token(token, access_key, secret, time.time() + float(ttl))
    stopped = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"OSS test server listening on {server.start()} (data in {args.data})", flush=True)
    stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
