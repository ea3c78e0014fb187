"""Drivers opened from Argo location dicts, with credentials read through the Kubernetes
API (Secrets in the workflow's namespace, as Argo mounts them into its pods).

The location is turned into storage by the Argo layer (`argosy.argo.repository`), the
same code a pod's sidecar uses, so a workflow's artifacts are reached at the same bucket
URL with the same credentials here as where they were written. The controller talks to
many repositories; opening a client costs time and memory (~7 MiB and ~0.1 s of CPU for an
S3 one), so drivers are cached: a small LRU keyed by the storage they reach (location and
resolved credentials, by digest: never a secret value in clear), so namespaces whose
repositories name the same bucket with the same credentials share one client instead of
holding one each.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from argosy.argo.location import Target
from argosy.argo.repository import storage_for
from argosy.argo.secrets import ApiSecrets
from argosy.artifacts.connect import open_driver
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    InvalidSpec,
    ThrottledError,
    TransientError,
)
from argosy.artifacts.protocol import Driver

SecretReader = Callable[[str, str], Mapping[str, bytes] | None]  # (namespace, name)
_PER_ARTIFACT = frozenset({"key", "keyFormat"})


@dataclass(frozen=True)
class StorageSettings:
    """How the GC reaches storage.

    connect_timeout / read_timeout: seconds (5: an unreachable endpoint fails fast and
        is retried by the controller later, not by a worker waiting; 60: a batch delete of
        1000 keys can take a while on a busy cluster).
    max_connections: per client; at least the per-bucket concurrency.
    local_root: the root of `local:` repositories without one of their own.
    cache_size: drivers kept open (each holds a connection pool).
    """

    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_connections: int = 16
    local_root: str | None = None
    cache_size: int = 32


def cause_of(error: BaseException) -> str:
    """A short, stable name for why storage failed, used in Events and metrics."""
    code = getattr(error, "code", None)
    if code in (
        "NoSuchBucket",
        "RepositoryMissing",
        "SecretNotFound",
        "SecretForbidden",
        "EndpointUnreachable",
        "LeadershipLost",
    ):
        return str(code)
    if isinstance(error, AccessDenied):
        return "AccessDenied"
    if isinstance(error, ThrottledError):
        return "Throttled"
    if isinstance(error, TransientError):
        return (
            "EndpointUnreachable"
            if code in ("ConnectTimeoutError", "ConnectionError")
            else "Unavailable"
        )
    if isinstance(error, InvalidSpec):
        return "InvalidLocation"
    return "Failed"


class DriverFactory:
    """Opens (and caches) a driver for a target, reading its secrets when needed."""

    def __init__(
        self,
        secrets: SecretReader,
        settings: StorageSettings | None = None,
        *,
        decorate: Callable[[Driver], Driver] = lambda driver: driver,
    ) -> None:
        """`secrets(namespace, name)` is a Secret's decoded data (None: no such Secret);
        `decorate` wraps every driver opened (logging, accounting, tests' recorders)."""
        self.settings = settings or StorageSettings()
        self._secrets = secrets
        self._decorate = decorate
        self._cache: OrderedDict[str, Driver] = OrderedDict()  # storage digest -> driver
        self._where: OrderedDict[str, str] = OrderedDict()  # location digest -> storage digest
        self._sources: dict[str, ApiSecrets] = {}
        self._lock = threading.Lock()

    def open(self, target: Target, namespace: str) -> Driver:
        # the artifact's own key is not part of where the client goes: one per bucket
        where = {k: v for k, v in target.config.items() if k not in _PER_ARTIFACT}
        location = _digest([namespace, target.kind, target.bucket, where])
        with self._lock:
            known = self._where.get(location)
            driver = self._cache.get(known) if known is not None else None
            if driver is not None and known is not None:
                self._where.move_to_end(location)
                self._cache.move_to_end(known)
                return driver
        if target.config.get("roleARN"):
            raise InvalidSpec(
                f"{target.url}: roleARN is not supported by the Argosy GC yet; "
                "give keys or useSDKCreds (IRSA)"
            )
        storage = storage_for(target.kind, where, self._source(namespace))
        # every field, the credentials too (their repr hides them): two namespaces share a
        # client only when it would reach the bucket as the same principal
        reaches = _digest([target.kind, target.bucket, type(storage).__name__, asdict(storage)])
        with self._lock:
            driver = self._cache.get(reaches)
            if driver is not None:
                self._remember(location, reaches)
                return driver
        driver = self._decorate(
            open_driver(
                storage,
                target.bucket,
                default_local_root=self.settings.local_root,
                max_connections=self.settings.max_connections,
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.read_timeout,
            )
        )
        with self._lock:
            driver = self._cache.setdefault(reaches, driver)
            self._cache.move_to_end(reaches)
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
            self._remember(location, reaches)
        return driver

    def _remember(self, location: str, reaches: str) -> None:
        self._where[location] = reaches
        self._where.move_to_end(location)
        while len(self._where) > 16 * self.settings.cache_size:
            self._where.popitem(last=False)

    def _source(self, namespace: str) -> ApiSecrets:
        with self._lock:
            if namespace not in self._sources:
                self._sources[namespace] = ApiSecrets(
                    lambda name: self._secrets(namespace, name), namespace=namespace
                )
            return self._sources[namespace]

    def close(self) -> None:
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            source.close()


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def describe_error(error: ArtifactError) -> str:
    return f"{cause_of(error)}: {error}"
