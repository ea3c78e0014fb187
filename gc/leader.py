"""Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never delete at
the same time.

The algorithm is client-go's: the holder renews `spec.renewTime` every `retry_period`;
another replica takes the Lease (an update carrying the resourceVersion it read, so only
one of several contenders wins: the others get 409) only when it has seen no change to
the Lease record for `lease_duration` by its own clock. The holder considers itself
leader only while its last successful renewal is younger than `renew_deadline`, which is
shorter than `lease_duration`: it has stopped before anyone else may start. `is_leader`
is the fence the deleter checks before every batch.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from argosy.argo.kube import Kube, KubeConflict, KubeError
from argosy.argo.resources import LEASES
from argosy.gc.settings import LeaseSettings

log = logging.getLogger("argosy.gc")


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        settings: LeaseSettings,
        *,
        clock: Callable[[], datetime],
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self.kube, self.settings, self.clock = kube, settings, clock
        self.identity = settings.identity or default_identity()
        self.on_change = on_change
        self._lock = threading.Lock()
        self._renewed_at: datetime | None = None  # our last successful acquire/renew
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at: datetime | None = None
        self._leading = False
        self.last_error: str | None = None  # why the last round failed, if it did

    def is_leader(self) -> bool:
        with self._lock:
            if not self._leading or self._renewed_at is None:
                return False
            fresh = self.clock() - self._renewed_at < timedelta(
                seconds=self.settings.renew_deadline
            )
        if not fresh:
            self._set_leading(False)
        return fresh

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            changed = self._leading != leading
            self._leading = leading
            if not leading:
                self._renewed_at = None
        if changed:
            log.info(
                "%s %s the Lease %s/%s",
                self.identity,
                "holds" if leading else "no longer holds",
                self.settings.namespace,
                self.settings.name,
            )
            self.on_change(leading)

    def _spec(self, now: datetime, acquired: Any, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.settings.lease_duration)),
            "acquireTime": acquired or _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One round of the algorithm; True while this replica leads."""
        s = self.settings
        now = self.clock()
        try:
            lease = self.kube.find(LEASES, s.namespace, s.name)
            if lease is None:
                self.kube.create(
                    LEASES,
                    s.namespace,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": s.name, "namespace": s.namespace},
                        "spec": self._spec(now, None, 0),
                    },
                )
                return self._won(now)
            self.last_error = None
            spec = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            record = (holder, str(spec.get("renewTime") or ""))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            duration = timedelta(
                seconds=float(spec.get("leaseDurationSeconds") or s.lease_duration)
            )
            mine = holder == self.identity
            held = (
                bool(holder)
                and self._observed_at is not None
                and now - self._observed_at < duration
            )
            if not mine and held:
                self._set_leading(False)
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
            acquired = spec.get("acquireTime") if mine else None
            body = dict(lease)
            body["spec"] = self._spec(now, acquired, transitions)
            self.kube.replace(LEASES, s.namespace, s.name, body)
            return self._won(now)
        except KubeConflict:  # another replica wrote the Lease first
            return self.is_leader()
        except KubeError as error:
            log.warning("Lease %s/%s: %s", s.namespace, s.name, error)
            self.last_error = str(error)
            return self.is_leader()

    def _won(self, now: datetime) -> bool:
        with self._lock:
            self._renewed_at = now
            self._observed = None
        self._set_leading(True)
        return True

    def release(self) -> None:
        """Give the Lease up on a clean shutdown, so the next replica need not wait."""
        if not self.is_leader():
            return
        s = self.settings
        self._set_leading(False)
        try:
            lease = self.kube.find(LEASES, s.namespace, s.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = dict(lease)
            body["spec"] = {
                **(lease.get("spec") or {}),
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": _micro(self.clock()),
            }
            self.kube.replace(LEASES, s.namespace, s.name, body)
        except KubeError as error:
            log.warning("could not release Lease %s/%s: %s", s.namespace, s.name, error)

    def run(self, stop: threading.Event, *, wait: Callable[[float], bool] | None = None) -> None:
        """Acquire and renew until `stop`; `wait` (default `stop.wait`) paces the rounds."""
        pause = wait or stop.wait
        while not stop.is_set():
            self.try_acquire_or_renew()
            if pause(self.settings.retry_period):
                break


def lease_holder(lease: dict[str, Any] | None) -> str:
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
