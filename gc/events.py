"""Kubernetes Events about workflows and policies: the place users look first when
artifacts are not deleted (`kubectl describe workflow`).

Failures are named by cause in the reason (`ArtifactGCAccessDenied`,
`ArtifactGCNoSuchBucket`, `ArtifactGCEndpointUnreachable`, ...), so they can be found and
alerted on without parsing messages. A storage outage must not flood the API server: one
event per object and reason per `interval`. Writing an event never fails the caller.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argosy.argo.resources import EVENTS

if TYPE_CHECKING:
    from argosy.argo.kube import Kube

log = logging.getLogger("argosy.gc")
COMPONENT = "argosy-gc"
MAX_MESSAGE = 1024  # the API server caps messages; a leak list must stay readable anyway


def workflow_ref(namespace: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "namespace": namespace,
        "name": name,
        "uid": uid,
    }


class EventRecorder:
    def __init__(
        self,
        kube: Kube | None,
        *,
        clock: Callable[[], datetime],
        interval: timedelta = timedelta(minutes=10),
        write: bool = True,
        instance: str | None = None,
    ) -> None:
        self.kube, self.clock, self.interval, self.write = kube, clock, interval, write
        self.instance = instance or socket.gethostname()
        self._last: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def warn(self, namespace: str, involved: Mapping[str, Any], reason: str, message: str) -> bool:
        return self._emit("Warning", namespace, involved, reason, message)

    def normal(
        self, namespace: str, involved: Mapping[str, Any], reason: str, message: str
    ) -> bool:
        return self._emit("Normal", namespace, involved, reason, message)

    def _emit(
        self, kind: str, namespace: str, involved: Mapping[str, Any], reason: str, message: str
    ) -> bool:
        now = self.clock()
        who = str(involved.get("uid") or f"{namespace}/{involved.get('name')}")
        with self._lock:
            last = self._last.get((who, reason))
            if last is not None and now - last < self.interval:
                return False
            self._last[(who, reason)] = now
            if len(self._last) > 10000:  # forget the oldest half; a repeat event is harmless
                for key in sorted(self._last, key=self._last.__getitem__)[:5000]:
                    del self._last[key]
        text = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        log.log(
            logging.WARNING if kind == "Warning" else logging.INFO,
            "%s %s/%s: %s",
            reason,
            namespace,
            involved.get("name"),
            text,
        )
        if not self.write or self.kube is None:
            return False
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            # named as client-go names events (object name + a nanosecond stamp), not by
            # generateName: unique without a server round-trip, and fakes handle it too
            "metadata": {
                "name": f"{involved.get('name')}.{time.time_ns():x}",
                "namespace": namespace,
            },
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason,
            "message": text,
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.kube.create(EVENTS, namespace, event)
            return True
        except Exception as error:  # noqa: BLE001 - an event is never worth failing for
            log.warning(
                "could not record event %s on %s/%s: %s",
                reason,
                namespace,
                involved.get("name"),
                error,
            )
            return False
