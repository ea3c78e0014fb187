"""The controller's settings, grouped by concern, built once by the entry point.

Every field says its unit and why its default is what it is; tests shrink the periods
and inject clocks instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from argosy.argo.names import Strategy
from argosy.gc.deleter import DeleteSettings
from argosy.gc.storage import StorageSettings


@dataclass(frozen=True)
class FinalizerSettings:
    """The finalizer's way out: after `max_attempts` failed deletion passes, or once
    `deadline` has passed since the workflow's deletionTimestamp, the finalizer is
    removed anyway (with a Warning event and the leaks recorded). 10 attempts / 1 hour:
    long enough to ride out an outage of a bucket, short enough that nobody has to
    edit finalizers by hand (argoproj/argo-workflows#10840)."""

    max_attempts: int = 10
    deadline: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class WatchSettings:
    """watch_timeout: seconds one watch request lasts before it is renewed (the server
    may end it sooner). resync: seconds between re-queues of every known workflow
    (expiry and retries are caught even without events). backoff_base/backoff_cap:
    seconds, reconnecting after errors with capped full jitter. page_size: workflows
    per list request."""

    watch_timeout: int = 300
    resync: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    page_size: int = 500


@dataclass(frozen=True)
class LeaseSettings:
    """Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: a
    replica takes the Lease only after `lease_duration` seconds without seeing it renewed,
    and the holder stops deleting once it has failed to renew for `renew_deadline`
    seconds (shorter, so the two never overlap). It tries every `retry_period`."""

    namespace: str = "argosy-system"
    name: str = "argosy-gc"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


@dataclass(frozen=True)
class GcSettings:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    default_strategy: Strategy = Strategy.NEVER
    dry_run: bool = False
    workers: int = 16  # workflows reconciled at once: their requests overlap
    queue_capacity: int = 100_000
    lookup_ttl: float = 30.0  # seconds a policy, ConfigMap or Secret read is reused
    failure_backoff: float = 10.0  # seconds before retrying a failed workflow, doubling
    failure_backoff_cap: float = 600.0
    event_interval: timedelta = timedelta(minutes=10)
    sweep_interval: float = 3600.0  # seconds between opt-in sweeps (0: never)
    finalizer: FinalizerSettings = field(default_factory=FinalizerSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    lease: LeaseSettings | None = field(default_factory=LeaseSettings)
    delete: DeleteSettings = field(default_factory=DeleteSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    default_repository: Mapping[str, Any] | None = None
