"""Retries: transient errors retried with capped full jitter, everything else at once."""

from __future__ import annotations

import random

import pytest

from argosy.artifacts.errors import AccessDenied, ThrottledError, TransientError
from argosy.artifacts.retry import Retrier, RetryPolicy
from tests.unit.fakes import FakeClock


def _flaky(failures: list[Exception]):
    calls = []

    def fn():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    return fn, calls


def test_a_transient_error_is_retried_until_it_passes() -> None:
    clock = FakeClock()
    fn, calls = _flaky([TransientError("503"), TransientError("reset")])
    assert Retrier(RetryPolicy(attempts=5), clock, random.Random(1)).call(fn) == "ok"
    assert len(calls) == 3 and len(clock.sleeps) == 2


def test_a_permanent_error_is_raised_at_once() -> None:
    clock = FakeClock()
    fn, calls = _flaky([AccessDenied("no")])
    with pytest.raises(AccessDenied):
        Retrier(RetryPolicy(), clock).call(fn)
    assert len(calls) == 1 and clock.sleeps == []


def test_retries_stop_after_the_policy_s_attempts() -> None:
    clock = FakeClock()
    fn, calls = _flaky([TransientError(str(i)) for i in range(10)])
    with pytest.raises(TransientError):
        Retrier(RetryPolicy(attempts=4), clock).call(fn)
    assert len(calls) == 4 and len(clock.sleeps) == 3


def test_backoff_is_full_jitter_within_a_capped_window() -> None:
    retrier = Retrier(RetryPolicy(base=1.0, cap=5.0), FakeClock(), random.Random(7))
    for attempt in range(10):
        waits = [retrier.backoff(attempt) for _ in range(200)]
        window = min(5.0, 1.0 * 2**attempt)
        assert all(0.0 <= w <= window for w in waits)
        assert max(waits) > window * 0.8  # the whole window is used, not a fixed delay


def test_a_delay_the_server_asked_for_is_honoured_up_to_the_cap() -> None:
    clock = FakeClock()
    fn, _ = _flaky([ThrottledError("slow down", delay=3.0), ThrottledError("x", delay=99.0)])
    Retrier(RetryPolicy(cap=8.0), clock).call(fn)
    assert clock.sleeps == [3.0, 8.0]
