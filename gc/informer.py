"""List, then watch, the objects of one resource in one scope (a namespace, or all of
them), keeping a small cache of parsed values and telling the controller what changed:
the workflows, and the ArtifactGCPolicies (so a policy edit applies to planning at once).

The protocol the API server expects from a well-behaved client: list (paged) to get the
state and a resourceVersion; watch from that version; on 410 Gone the version is too old,
so list again; on any other failure reconnect with capped full-jitter backoff from the
last version seen (BOOKMARK events keep it fresh on quiet watches). A relist also finds
objects deleted while the watch was down. Only parsed values (`Workflow`, `PolicyObject`)
are kept, not raw objects.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from argosy.argo.kube import Kube, KubeError, KubeGone, WatchStream
from argosy.argo.resources import WORKFLOWS, Resource
from argosy.argo.workflow import parse_workflow
from argosy.gc.metrics import Metrics
from argosy.gc.settings import WatchSettings

log = logging.getLogger("argosy.gc")
Key = tuple[str, str]


class Watched(Protocol):
    @property
    def key(self) -> Key: ...

    @property
    def resource_version(self) -> str: ...


T = TypeVar("T", bound=Watched)
Parse = Callable[..., T]  # (raw object, *, gone: bool) -> T


@dataclass(frozen=True)
class PolicyObject:
    """An ArtifactGCPolicy as watched: judged by the `PolicyBook`, not here."""

    namespace: str
    name: str
    resource_version: str
    raw: Mapping[str, Any] = field(hash=False, compare=False)
    gone: bool = False

    @property
    def key(self) -> Key:
        return self.namespace, self.name


def parse_policy_object(obj: Mapping[str, Any], *, gone: bool = False) -> PolicyObject:
    meta = obj.get("metadata") or {}
    return PolicyObject(
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(meta.get("resourceVersion") or ""),
        obj,
        gone,
    )


class Informer(Generic[T]):
    def __init__(
        self,
        kube: Kube,
        namespace: str | None,
        *,
        on_change: Callable[[T], None],
        settings: WatchSettings,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        resource: Resource = WORKFLOWS,
        parse: Parse[T] = parse_workflow,  # type: ignore[assignment]
        on_synced: Callable[[], None] = lambda: None,
    ) -> None:
        """`parse(obj, gone=...)` turns a raw object into the cached value (a frozen
        dataclass with a `gone` field); the default watches workflows."""
        self.kube, self.namespace, self.on_change = kube, namespace, on_change
        self.settings, self.metrics = settings, metrics or Metrics()
        self.rng = rng or random.Random()
        self.resource, self.parse, self.on_synced = resource, parse, on_synced
        self._cache: dict[Key, T] = {}
        self._lock = threading.Lock()
        self._stream: WatchStream | None = None
        self.synced = threading.Event()
        self.resource_version = ""

    @property
    def scope(self) -> str:
        return f"{self.resource.plural} of {self.namespace or 'all namespaces'}"

    @property
    def watching(self) -> bool:
        """A watch stream is open: what it says arrives as it happens."""
        return self._stream is not None

    def get(self, key: Key) -> T | None:
        with self._lock:
            return self._cache.get(key)

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._cache)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def relist(self) -> str:
        """Replace the cache with a fresh list; report additions, changes and vanishings."""
        seen: set[Key] = set()
        version = ""
        for items, rv in self.kube.list_pages(
            self.resource, self.namespace, limit=self.settings.page_size
        ):
            version = version or rv
            for item in items:
                wf = self.parse(item)
                seen.add(wf.key)
                self._apply(wf)
        with self._lock:
            vanished = [self._cache.pop(k) for k in list(self._cache) if k not in seen]
        for wf in vanished:
            self.on_change(replace(wf, gone=True))  # type: ignore[type-var]
        self.synced.set()
        self.on_synced()
        return version

    def _apply(self, wf: T) -> None:
        with self._lock:
            old = self._cache.get(wf.key)
            self._cache[wf.key] = wf
        if old is None or old.resource_version != wf.resource_version:
            self.on_change(wf)

    def _backoff(self, failures: int) -> float:
        window = min(self.settings.backoff_cap, self.settings.backoff_base * 2**failures)
        return self.rng.uniform(0, window)

    def run(self, stop: threading.Event) -> None:
        version = ""
        failures = 0
        while not stop.is_set():
            try:
                if not version:
                    version = self.relist()
                    self.resource_version = version
                stream = self.kube.watch(
                    self.resource,
                    self.namespace,
                    version,
                    timeout_seconds=self.settings.watch_timeout,
                )
                self._stream = stream
                if stop.is_set():
                    stream.close()
                    break
                for event in stream:
                    failures = 0
                    rv = str((event.object.get("metadata") or {}).get("resourceVersion") or "")
                    if event.type == "BOOKMARK":
                        version = rv or version
                        continue
                    if event.type == "DELETED":
                        wf = self.parse(event.object, gone=True)
                        with self._lock:
                            self._cache.pop(wf.key, None)
                        self.on_change(wf)
                    elif event.type in ("ADDED", "MODIFIED"):
                        self._apply(self.parse(event.object))
                    version = rv or version
                    self.resource_version = version
                    if stop.is_set():
                        break
            except KubeGone:
                log.info(
                    "watch of %s: resourceVersion %s expired; listing again", self.scope, version
                )
                self.metrics.inc(
                    "argosy_gc_watch_restarts_total", reason="gone", resource=self.resource.plural
                )
                version = ""
            except KubeError as error:
                failures += 1
                delay = self._backoff(failures)
                log.warning(
                    "watch of %s failed (%s); reconnecting in %.1fs", self.scope, error, delay
                )
                self.metrics.inc(
                    "argosy_gc_watch_restarts_total", reason="error", resource=self.resource.plural
                )
                stop.wait(delay)
            finally:
                self._stream = None

    def close(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.close()
