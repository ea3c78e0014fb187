"""Cached reads the reconciler makes for every workflow: the namespace's policy, its
repository ConfigMaps and the Secrets its locations name.

Thousands of workflows share a handful of these objects, so each is read at most once
per `ttl` seconds (rotated secrets are picked up within that time). Policies are watched
by the controller (`PolicyBook.observe`), so an edit applies to planning at once; until
that watch has listed them they are read like the rest. Before any deletion the policy is
read afresh, unless the watch is open (then the watched copy is as fresh as a read), see
`PolicyBook.fresh`.
A read that fails keeps the last good value when there is one; the errors that reach
the caller are `ArtifactError`s naming the cause (SecretNotFound, SecretForbidden, ...),
so they end up in the workflow's record and Events like any storage failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from argosy.argo.kube import Kube, KubeError, KubeForbidden, KubeUnavailable
from argosy.argo.resources import CONFIGMAPS
from argosy.artifacts.errors import AccessDenied, ArtifactError, TransientError
from argosy.gc.events import EventRecorder
from argosy.gc.policy import KIND, POLICIES, POLICY_NAME, GcPolicy, judge_policy

log = logging.getLogger("argosy.gc")
T = TypeVar("T")


class PolicyUnavailable(TransientError):
    """The namespace's policy could not be read: nothing is deleted on a guess."""


def _artifact_error(error: KubeError, what: str, code: str) -> ArtifactError:
    if isinstance(error, KubeForbidden):
        return AccessDenied(f"{what}: forbidden by RBAC ({error.detail})", code=code + "Forbidden")
    if isinstance(error, KubeUnavailable):
        return TransientError(
            f"{what}: the Kubernetes API is unavailable ({error})", code="KubeUnavailable"
        )
    return ArtifactError(f"{what}: {error}", code=code + "Failed")


@dataclass
class _Entry(Generic[T]):
    value: T
    at: float


class TtlCache(Generic[T]):
    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._monotonic = ttl, monotonic
        self._items: dict[tuple[str, ...], _Entry[T]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        now = self._monotonic()
        with self._lock:
            entry = self._items.get(key)
        if entry is not None and now - entry.at < self.ttl:
            return entry.value
        try:
            value = load()
        except ArtifactError:
            if entry is not None and not isinstance(entry.value, BaseException):
                log.warning("using the last good copy of %s", "/".join(key))
                return entry.value
            raise
        with self._lock:
            self._items[key] = _Entry(value, now)
        return value

    def refresh(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        """Load now, whatever the cache holds, and keep the result; a failure raises
        (no last good copy: the caller wants the value as it is now)."""
        now = self._monotonic()
        value = load()
        with self._lock:
            self._items[key] = _Entry(value, now)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ClusterReader:
    """ConfigMaps and Secrets, cached."""

    def __init__(
        self, kube: Kube, *, ttl: float = 30.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube = kube
        self._configmaps: TtlCache[Mapping[str, Any] | None] = TtlCache(ttl, monotonic)
        self._secrets: TtlCache[Mapping[str, bytes] | None] = TtlCache(ttl, monotonic)

    def configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        def load() -> Mapping[str, Any] | None:
            try:
                return self.kube.find(CONFIGMAPS, namespace, name)
            except KubeError as error:
                raise _artifact_error(error, f"ConfigMap {namespace}/{name}", "ConfigMap") from None

        return self._configmaps.get((namespace, name), load)

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """A Secret's data, decoded (None: there is no such Secret)."""

        def load() -> Mapping[str, bytes] | None:
            try:
                return self.kube.secret_data(namespace, name)
            except KubeError as error:
                raise _artifact_error(error, f"Secret {namespace}/{name}", "Secret") from None

        return self._secrets.get((namespace, name), load)


class PolicyBook:
    """The policy in force per namespace: validated, its status kept current (unless in
    a dry run), the last accepted one kept when an edit is rejected."""

    def __init__(
        self,
        kube: Kube,
        *,
        clock: Callable[[], datetime],
        ttl: float = 30.0,
        write: bool = True,
        events: EventRecorder | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.clock, self.write, self.events = kube, clock, write, events
        self._cache: TtlCache[GcPolicy | None] = TtlCache(ttl, monotonic)
        self._accepted: dict[str, GcPolicy] = {}
        self._lock = threading.Lock()
        # policies as the watch saw them last, once it has listed them all (`watched`)
        self._watched: dict[str, GcPolicy | None] = {}
        self.watched = threading.Event()
        self.live: Callable[[], bool] = lambda: False  # the watch is open now

    def get(self, namespace: str) -> GcPolicy | None:
        if self.watched.is_set():
            with self._lock:
                return self._watched.get(namespace)
        return self._cache.get((namespace,), lambda: self._load(namespace))

    def observe(self, namespace: str, obj: Mapping[str, Any] | None) -> bool:
        """The watch saw the namespace's `default` policy change (None: it was deleted);
        judge it now. True when the policy in force changed."""
        policy = self._judge(namespace, obj)
        with self._lock:
            before = self._watched.get(namespace)
            self._watched[namespace] = policy
        return before != policy

    def fresh(self, namespace: str) -> GcPolicy | None:
        """The policy as the API server has it now (asked before anything is deleted: an
        edit that keeps artifacts must not lose to a cached copy up to `ttl` old). While
        the watch is open, its copy is that (an edit arrives in milliseconds) and ten
        thousand deletions cost no ten thousand reads; otherwise it is read."""
        if self.watched.is_set() and self.live():
            with self._lock:
                return self._watched.get(namespace)
        return self._cache.refresh((namespace,), lambda: self._load(namespace))

    def invalidate(self) -> None:
        self._cache.clear()

    def _load(self, namespace: str) -> GcPolicy | None:
        try:
            obj = self.kube.find(POLICIES, namespace, POLICY_NAME)
        except KubeError as error:
            raise PolicyUnavailable(
                f"ArtifactGCPolicy {namespace}/{POLICY_NAME} could not be read: {error}",
                code="PolicyUnavailable",
            ) from None
        return self._judge(namespace, obj)

    def _judge(self, namespace: str, obj: Mapping[str, Any] | None) -> GcPolicy | None:
        if obj is None:
            with self._lock:
                self._accepted.pop(namespace, None)
            return None
        verdict = judge_policy(obj, self.clock())
        policy = verdict.policy
        with self._lock:
            if verdict.accepted and policy is not None:
                self._accepted[namespace] = policy
            elif policy is None:
                policy = self._accepted.get(namespace)
        if not verdict.accepted:
            log.warning("ArtifactGCPolicy %s/%s %s", namespace, POLICY_NAME, verdict.message)
        if verdict.status is not None and self.write:
            try:
                self.kube.patch(
                    POLICIES,
                    namespace,
                    POLICY_NAME,
                    {"status": verdict.status},
                    subresource="status",
                )
            except KubeError as error:
                log.warning(
                    "could not write the status of ArtifactGCPolicy %s/%s: %s",
                    namespace,
                    POLICY_NAME,
                    error,
                )
            if not verdict.accepted and self.events is not None:
                self.events.warn(
                    namespace,
                    {
                        "apiVersion": "argosy.io/v1alpha1",
                        "kind": KIND,
                        "name": POLICY_NAME,
                        "namespace": namespace,
                        "uid": (obj.get("metadata") or {}).get("uid"),
                    },
                    "InvalidPolicy",
                    verdict.message,
                )
        return policy
