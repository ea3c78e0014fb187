"""Shared vocabulary of the Kubernetes test API server: errors, resource kinds, time.

The store, the HTTP layer and the tests all need to agree on three things: how a failure
looks on the wire (a ``Status`` object whose ``reason`` and ``code`` the official client
turns into ``ApiException``), which resources exist and how each behaves (scope, status
subresource, built-in or custom), and what "now" is (an injectable clock so tests can pin
creation and deletion timestamps). Keeping them here lets each of the other modules stay
single-purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Clock = Callable[[], datetime]
JsonDict = dict[str, Any]

# The reason the API server puts next to each HTTP code in a Status object.
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class KubeError(Exception):
    """A failure the server answers with a ``Status`` object (and its HTTP code)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JsonDict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> JsonDict:
        return status_object(self.code, self.message, reason=self.reason, details=self.details)


def status_object(
    code: int, message: str, *, reason: str | None = None, details: JsonDict | None = None
) -> JsonDict:
    """A ``meta/v1 Status`` as the API server sends it for failures."""
    body: JsonDict = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details is not None:
        body["details"] = details
    if code < 400:
        del body["message"], body["reason"]
    return body


@dataclass(frozen=True)
class ResourceSpec:
    """How one resource type behaves; mirrors what discovery and the CRD would say.

    ``builtin`` separates Kubernetes' own types from custom resources, because the real
    server treats them differently: custom resources refuse strategic merge patches (415)
    and refuse a PUT without ``metadata.resourceVersion`` (422).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    builtin: bool = False
    short_names: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """The name used in messages: ``configmaps`` or ``workflows.argoproj.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _builtin(group: str, version: str, plural: str, kind: str, **kw: Any) -> ResourceSpec:
    return ResourceSpec(group, version, plural, kind, builtin=True, **kw)


DEFAULT_RESOURCES: tuple[ResourceSpec, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True),
    _builtin("", "v1", "configmaps", "ConfigMap"),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "pods", "Pod", status_subresource=True),
    _builtin("", "v1", "events", "Event"),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount"),
    _builtin("", "v1", "services", "Service", status_subresource=True),
    _builtin("events.k8s.io", "v1", "events", "Event"),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    # Argo's CRDs declare `subresources: {}`: the controller writes .status with a plain update.
    ResourceSpec("argoproj.io", "v1alpha1", "workflows", "Workflow", short_names=("wf",)),
    ResourceSpec("argoproj.io", "v1alpha1", "workflowtaskresults", "WorkflowTaskResult"),
    ResourceSpec("argoproj.io", "v1alpha1", "workflowtemplates", "WorkflowTemplate"),
    ResourceSpec(
        "argosy.io",
        "v1alpha1",
        "artifactgcpolicies",
        "ArtifactGCPolicy",
        status_subresource=True,
    ),
)


class ResourceRegistry:
    """Known resource types; unknown ones are admitted as custom resources unless strict."""

    def __init__(
        self, specs: tuple[ResourceSpec, ...] = DEFAULT_RESOURCES, *, strict: bool = False
    ) -> None:
        self._lock = threading.Lock()
        self._specs: dict[tuple[str, str, str], ResourceSpec] = {}
        self.strict = strict
        for spec in specs:
            self.register(spec)

    def register(self, spec: ResourceSpec) -> None:
        with self._lock:
            self._specs[(spec.group, spec.version, spec.plural)] = spec

    def all(self) -> list[ResourceSpec]:
        with self._lock:
            return list(self._specs.values())

    def find_kind(self, api_version: str, kind: str) -> ResourceSpec | None:
        return next(
            (s for s in self.all() if s.api_version == api_version and s.kind == kind), None
        )

    def resolve(self, group: str, version: str, plural: str, *, namespaced: bool) -> ResourceSpec:
        """The spec for a URL; unknown plurals become custom resources shaped by the URL."""
        with self._lock:
            spec = self._specs.get((group, version, plural))
        if spec is not None:
            return spec
        if self.strict or not group:
            raise KubeError(404, "the server could not find the requested resource")
        kind = plural.removesuffix("s")
        return ResourceSpec(
            group, version, plural, kind[:1].upper() + kind[1:], namespaced=namespaced
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 with second precision, the way ``metav1.Time`` is serialised."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ManualClock:
    """A clock tests move by hand: ``clock.advance(seconds=90)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = start or datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment
