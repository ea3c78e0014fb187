"""The stall rule (`artifacts/stall.py`): a transfer as a whole fails once no byte has been
acknowledged for its stall timeout, or its deadline passed; retries never multiply the
wait. Fake time throughout, but for the one socket test."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from argosy.artifacts.bodies import BufferBody, watched
from argosy.artifacts.drivers.s3.wire import Pool, Stall
from argosy.artifacts.errors import RequestStalled, Stalled, TransientError
from argosy.artifacts.retry import Retrier, RetryPolicy
from argosy.artifacts.stall import Sent, Watchdog, budget
from tests.unit.fakes import FakeClock

READ_TIMEOUT = 60.0  # a driver's own socket timeout, as S3Settings has it


def _retrier(clock: FakeClock, *, stall: float = 120.0, deadline: float | None = None) -> Retrier:
    watch = Watchdog(stall_timeout=stall, deadline=deadline, clock=clock)
    return Retrier(RetryPolicy(attempts=5), clock, random.Random(1), watch)


def _silent_server(clock: FakeClock, calls: list[float]) -> Callable[[], None]:
    """A request to a server that never answers: it waits its socket timeout, clamped as
    the drivers clamp it to what the transfer has left, then times out."""

    def request() -> None:
        calls.append(clock.now)
        left = budget()
        clock.now += READ_TIMEOUT if left is None else min(READ_TIMEOUT, left)
        raise RequestStalled("s3://b/k", "the answer to UploadPart 3 from http://h:9")

    return request


def test_a_silent_server_fails_the_transfer_once_its_stall_timeout_has_passed() -> None:
    clock, calls = FakeClock(), list[float]()
    with pytest.raises(Stalled) as caught:
        _retrier(clock).call(_silent_server(clock, calls), what="part 3 of s3://b/k")
    assert str(caught.value) == (
        "s3://b/k: no progress for 120 s waiting for the answer to UploadPart 3 from http://h:9"
    )
    assert caught.value.exit_code == 1 and caught.value.code == "StallTimeout"
    # two read timeouts of 60 s, not five: the retries end where the stall timeout does
    assert len(calls) == 2 and clock.now == pytest.approx(120, abs=0.1)


def test_retries_never_wait_past_the_stall_timeout_whatever_the_socket_timeout() -> None:
    clock, calls = FakeClock(), list[float]()
    watch = Watchdog(stall_timeout=90, clock=clock)
    retrier = Retrier(RetryPolicy(attempts=5, base=4, cap=8), clock, random.Random(3), watch)
    with pytest.raises(Stalled):
        retrier.call(_silent_server(clock, calls), what="put s3://b/k")
    assert clock.now <= 90 + 0.1  # 60 s, a backoff, then only what was left


def test_a_stalled_request_is_retried_while_the_rest_of_the_transfer_moves() -> None:
    clock = FakeClock()
    retrier = _retrier(clock)
    attempts: list[float] = []

    def meanwhile_other_parts_arrive() -> str:
        attempts.append(clock.now)
        if len(attempts) < 4:
            clock.now += 60
            retrier.watch.moved()  # type: ignore[union-attr]
            raise RequestStalled("s3://b/k", "the answer to UploadPart 3 from http://h:9")
        return "etag"

    assert retrier.call(meanwhile_other_parts_arrive, what="part 3") == "etag"
    assert len(attempts) == 4


def test_once_stalled_every_later_request_of_the_transfer_fails_at_once() -> None:
    clock = FakeClock()
    retrier = _retrier(clock, stall=2)
    with pytest.raises(Stalled):
        retrier.call(_silent_server(clock, []), what="part 1")
    later: list[int] = []
    with pytest.raises(Stalled, match="no progress for 2 s"):
        retrier.call(lambda: later.append(1), what="part 2")
    assert later == []


def test_time_spent_away_from_the_network_is_no_stall() -> None:
    # a slow source (an archive being compressed) between two requests of the transfer
    clock = FakeClock()
    retrier = _retrier(clock, stall=2)
    assert retrier.call(lambda: "part 1", what="part 1") == "part 1"
    clock.now += 300
    assert retrier.call(lambda: "part 2", what="part 2") == "part 2"


def test_a_transfer_that_moves_fails_when_its_deadline_passes() -> None:
    clock = FakeClock()
    retrier = _retrier(clock, deadline=10)

    def slow_but_moving() -> None:
        for _ in range(100):
            clock.now += 0.5
            retrier.watch.moved()  # type: ignore[union-attr]
            retrier.watch.check(None, what="read s3://b/k")  # type: ignore[union-attr]

    with pytest.raises(Stalled, match="read s3://b/k: the deadline of 10 s passed") as caught:
        retrier.call(slow_but_moving, what="read s3://b/k")
    assert caught.value.code == "DeadlinePassed" and clock.now == pytest.approx(10, abs=0.6)


def test_a_backoff_never_outlasts_what_the_transfer_has_left() -> None:
    clock = FakeClock()
    retrier = _retrier(clock, stall=1)

    def throttled() -> None:
        raise TransientError("slow down", delay=30.0)

    with pytest.raises(Stalled, match=r"no progress for 1 s \(the last attempt: slow down\)"):
        retrier.call(throttled, what="put s3://b/k")
    assert sum(clock.sleeps) <= 1.0


def test_bytes_resent_by_a_retry_are_no_progress() -> None:
    clock = FakeClock()
    watch = Watchdog(stall_timeout=5, clock=clock)
    sent = Sent(watch)
    body = watched(bytes(3 << 20), sent)
    assert isinstance(body, BufferBody)
    while body.read(1 << 20):  # the first attempt sends it all
        pass
    clock.now += 4
    body.seek(0)
    while body.read(1 << 20):  # the retry sends the same bytes again
        pass
    left = watch.left()
    assert left is not None and left == pytest.approx(1)


def test_a_cleanup_after_a_stall_gets_a_watch_of_its_own() -> None:
    clock = FakeClock()
    retrier = _retrier(clock, stall=2)
    with pytest.raises(Stalled):
        retrier.call(_silent_server(clock, []), what="part 1")
    assert retrier.for_cleanup().call(lambda: "aborted", what="abort upload") == "aborted"


def test_no_budget_is_set_outside_a_transfer() -> None:
    assert budget() is None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and reads requests, and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


def test_the_direct_path_waits_no_longer_than_the_transfer_has_left(silent_port: int) -> None:
    pool = Pool("http", f"127.0.0.1:{silent_port}", maxsize=1, timeout=(10.0, 10.0))
    retrier = Retrier(watch=Watchdog(stall_timeout=0.3))
    with pytest.raises(Stall) as caught, retrier.waiting(fresh=True, what="get"):
        pool.request("GET", "/b/k", headers={})
    assert caught.value.phase == "answer"  # the watchdog's, not the socket's own 10 s timeout
