"""tests/hostile: Argosy tried as an attacker and as a careless user would try it.

Every test here is seeded and bounded: with no environment set it runs a fixed number of
examples or cases, the same ones every time (hypothesis derandomized, `random.Random`
seeded with SEED). For a soak run, `ARGOSY_HOSTILE_ITERATIONS=N` runs N examples or
cases per test instead, and `ARGOSY_HOSTILE_SEED=S` draws other ones.

The invariants, whatever is thrown at Argosy: bad input is a clean `ArtifactError` (a
one-line error and its exit code through the command), never another exception; a
transfer ends with the right bytes, verified, or with nothing half-written under the
final key or path; no secret is ever written anywhere.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, seed, settings

ITERATIONS = "ARGOSY_HOSTILE_ITERATIONS"
SEED = int(os.environ.get("ARGOSY_HOSTILE_SEED", "1337"))
F = TypeVar("F", bound=Callable[..., Any])


def iterations(default: int) -> int:
    """How many examples or cases a test runs: its default, or ARGOSY_HOSTILE_ITERATIONS."""
    return int(os.environ.get(ITERATIONS) or default)


def fuzz(default: int) -> Callable[[F], F]:
    """Hypothesis settings for a hostile-input test: `iterations(default)` examples, no
    deadline, no example database; derandomized unless ARGOSY_HOSTILE_SEED is set."""

    def decorate(test: F) -> F:
        configured = settings(
            max_examples=iterations(default),
            deadline=None,
            database=None,
            derandomize="ARGOSY_HOSTILE_SEED" not in os.environ,
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
            ],
        )(test)
        if "ARGOSY_HOSTILE_SEED" in os.environ:
            configured = seed(SEED)(configured)
        return configured

    return decorate


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A random source seeded by SEED and the test's name: the same draws every run."""
    return random.Random(f"{SEED}:{request.node.name}")
