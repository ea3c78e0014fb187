"""In-memory object storage with the consistency rules of etcd behind kube-apiserver.

What a controller test needs from "the cluster" is mostly here: one global, monotonic
resourceVersion; optimistic concurrency (409 on a stale write); finalizers holding a
deleted object with ``deletionTimestamp`` until the last one is removed; status-subresource
isolation; and a bounded, replayable event history so a watch can resume from a
resourceVersion or be told 410 Expired once that version has been compacted away.

The store is thread-safe (one lock) and knows nothing about HTTP or asyncio: watchers hand
in a ``deliver`` callable, which the store calls under its lock, so every watcher sees the
events in commit order with no gap between its replayed history and the live stream.
"""

from __future__ import annotations

import base64
import copy
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argosy.testing.kube.model import (
    Clock,
    JsonDict,
    KubeError,
    ResourceSpec,
    format_time,
    utc_now,
)
from argosy.testing.kube.semantics import Requirement, selects

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects
Deliver = Callable[[tuple[str, JsonDict]], None]
CLOSE, ABORT = "CLOSE", "ABORT"  # pseudo event types that end a watch stream
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what apiserver's generateName draws from
_SERVER_FIELDS = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)


@dataclass(frozen=True)
class Event:
    rv: int
    type: str
    group: str
    plural: str
    old: JsonDict | None  # the previous state, so selector transitions can be judged
    obj: JsonDict


@dataclass
class Watcher:
    group: str
    plural: str
    namespace: str | None
    labels: list[Requirement]
    fields: list[tuple[str, bool, str]]
    deliver: Deliver
    bookmarks: bool
    bookmark_object: JsonDict

    def translate(self, event: Event) -> tuple[str, JsonDict] | None:
        """The event this watcher should see, honouring scope and selector transitions."""
        if (event.group, event.plural) != (self.group, self.plural):
            return None
        if self.namespace is not None and _ns(event.obj) != self.namespace:
            return None
        now = selects(event.obj, self.labels, self.fields)
        before = event.old is not None and selects(event.old, self.labels, self.fields)
        if event.type == "MODIFIED":
            if now and before:
                return "MODIFIED", event.obj
            if now:
                return "ADDED", event.obj
            return ("DELETED", event.obj) if before else None
        return (event.type, event.obj) if now else None


def _ns(obj: JsonDict) -> str:
    return str(obj["metadata"].get("namespace", ""))


def _meta(obj: JsonDict) -> JsonDict:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise KubeError(400, "object has no metadata")
    return meta


def _rv_of(obj: JsonDict) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


class Store:
    """All objects, the resourceVersion counter, the event history and the watchers."""

    def __init__(
        self, *, clock: Clock = utc_now, history_limit: int = 1000, require_namespaces: bool = False
    ) -> None:
        self.clock = clock
        self.require_namespaces = require_namespaces
        self._lock = threading.RLock()
        self._rv = 0
        self._objects: dict[tuple[str, str], dict[Key, JsonDict]] = {}
        self._history: deque[Event] = deque(maxlen=max(1, history_limit))
        self._compacted_rv = 0  # a watch must start at or after this version
        self._watchers: list[Watcher] = []

    # -- reading -------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, spec: ResourceSpec, namespace: str, name: str) -> JsonDict:
        with self._lock:
            return copy.deepcopy(self._current(spec, namespace, name))

    def select(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[tuple[str, bool, str]],
    ) -> tuple[list[JsonDict], int]:
        """Matching objects sorted by (namespace, name), and the version they reflect."""
        with self._lock:
            bucket = self._objects.get((spec.group, spec.plural), {})
            items = [
                copy.deepcopy(obj)
                for key, obj in sorted(bucket.items())
                if (namespace is None or key[0] == namespace) and selects(obj, labels, fields)
            ]
            return items, self._rv

    def _current(self, spec: ResourceSpec, namespace: str, name: str) -> JsonDict:
        obj = self._objects.get((spec.group, spec.plural), {}).get((namespace, name))
        if obj is None:
            raise KubeError(
                404, f'{spec.qualified} "{name}" not found', details=self._details(spec, name)
            )
        return obj

    @staticmethod
    def _details(spec: ResourceSpec, name: str) -> JsonDict:
        details: JsonDict = {"name": name, "kind": spec.plural}
        if spec.group:
            details["group"] = spec.group
        return details

    # -- writing -------------------------------------------------------------------------
    def _commit(
        self, spec: ResourceSpec, type_: str, old: JsonDict | None, obj: JsonDict
    ) -> JsonDict:
        """Give ``obj`` the next resourceVersion, store (or drop) it and emit the event."""
        self._rv += 1
        _meta(obj)["resourceVersion"] = str(self._rv)
        bucket = self._objects.setdefault((spec.group, spec.plural), {})
        key = (_ns(obj), str(obj["metadata"]["name"]))
        if type_ == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        event = Event(self._rv, type_, spec.group, spec.plural, old, obj)
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for watcher in self._watchers:
            seen = watcher.translate(event)
            if seen is not None:
                watcher.deliver(seen)
        return copy.deepcopy(obj)

    def create(self, spec: ResourceSpec, namespace: str, body: JsonDict) -> JsonDict:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise KubeError(400, "metadata must be an object")
        obj["apiVersion"], obj["kind"] = spec.api_version, obj.get("kind") or spec.kind
        with self._lock:
            if spec.namespaced:
                if meta.get("namespace") and meta["namespace"] != namespace:
                    raise KubeError(
                        400,
                        "the namespace of the provided object does not match "
                        "the namespace sent on the request",
                    )
                meta["namespace"] = namespace
                if self.require_namespaces and ("", namespace) not in self._objects.get(
                    ("", "namespaces"), {}
                ):
                    raise KubeError(
                        404,
                        f'namespaces "{namespace}" not found',
                        details={"name": namespace, "kind": "namespaces"},
                    )
            else:
                meta.pop("namespace", None)
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise KubeError(
                        422, "metadata.name: Required value: name or generateName is required"
                    )
                meta["name"] = self._generate_name(spec, namespace, str(meta["generateName"]))
            name = str(meta["name"])
            if (namespace if spec.namespaced else "", name) in self._objects.get(
                (spec.group, spec.plural), {}
            ):
                raise KubeError(
                    409,
                    f'{spec.qualified} "{name}" already exists',
                    reason="AlreadyExists",
                    details=self._details(spec, name),
                )
            for field in _SERVER_FIELDS + ("resourceVersion",):
                meta.pop(field, None)
            meta.update(
                uid=str(uuid.uuid4()), creationTimestamp=format_time(self.clock()), generation=1
            )
            if spec.status_subresource:
                obj.pop("status", None)
            return self._commit(spec, "ADDED", None, _normalize(spec, obj))

    def _generate_name(self, spec: ResourceSpec, namespace: str, prefix: str) -> str:
        bucket = self._objects.get((spec.group, spec.plural), {})
        while True:
            name = prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))
            if (namespace if spec.namespaced else "", name) not in bucket:
                return name

    def update(
        self,
        spec: ResourceSpec,
        namespace: str,
        name: str,
        body: JsonDict,
        *,
        subresource: str | None = None,
        require_rv: bool = False,
    ) -> JsonDict:
        """A PUT: ``body`` replaces the object (or only its status, for ``/status``)."""
        with self._lock:
            old = self._current(spec, namespace, name)
            meta = _meta(body)
            if meta.get("name") not in (None, name):
                raise KubeError(
                    400,
                    f"the name of the object ({meta.get('name')}) does not "
                    f"match the name on the URL ({name})",
                )
            given = str(meta.get("resourceVersion") or "")
            if not given and require_rv:
                raise KubeError(
                    422,
                    f'{spec.qualified} "{name}" is invalid: '
                    "metadata.resourceVersion: Invalid value: 0x0: "
                    "must be specified for an update",
                )
            if given and given != _rv_of(old):
                raise self._conflict(spec, name)
            return self._replace(spec, old, copy.deepcopy(body), subresource)

    def patch(
        self,
        spec: ResourceSpec,
        namespace: str,
        name: str,
        apply: Callable[[JsonDict], Any],
        *,
        subresource: str | None = None,
    ) -> JsonDict:
        """A PATCH: ``apply`` turns the current object into the wanted one, atomically."""
        with self._lock:
            old = self._current(spec, namespace, name)
            new = apply(copy.deepcopy(old))
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise KubeError(422, "the patched object is not a valid Kubernetes object")
            if _rv_of(new) and _rv_of(new) != _rv_of(old):
                raise self._conflict(spec, name)
            if new["metadata"].get("name") != name:
                raise KubeError(422, "metadata.name: Invalid value: field is immutable")
            return self._replace(spec, old, new, subresource)

    @staticmethod
    def _conflict(spec: ResourceSpec, name: str) -> KubeError:
        return KubeError(
            409,
            f'Operation cannot be fulfilled on {spec.qualified} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            details=Store._details(spec, name),
        )

    def _replace(
        self, spec: ResourceSpec, old: JsonDict, new: JsonDict, subresource: str | None
    ) -> JsonDict:
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif spec.status_subresource:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        old_meta, meta = old["metadata"], new.setdefault("metadata", {})
        for field in _SERVER_FIELDS + ("name", "namespace"):
            meta.pop(field, None)
            if field in old_meta:
                meta[field] = old_meta[field]
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        _normalize(spec, new)
        self._check_finalizers(spec, old, new)
        if _body(new, spec) != _body(old, spec):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if new == old:
            return copy.deepcopy(old)  # a no-op write keeps its version and emits nothing
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(spec, "DELETED", old, new)
        return self._commit(spec, "MODIFIED", old, new)

    @staticmethod
    def _check_finalizers(spec: ResourceSpec, old: JsonDict, new: JsonDict) -> None:
        if not old["metadata"].get("deletionTimestamp"):
            return
        before = set(old["metadata"].get("finalizers") or [])
        added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
        if added:
            name = old["metadata"]["name"]
            raise KubeError(
                422,
                f'{spec.kind} "{name}" is invalid: metadata.finalizers: Forbidden: no new '
                f"finalizers can be added if the object is being deleted, found new "
                f"finalizers {added}",
                details={
                    **Store._details(spec, name),
                    "causes": [
                        {
                            "reason": "FieldValueForbidden",
                            "field": "metadata.finalizers",
                            "message": "Forbidden: no new finalizers can be added if the object "
                            "is being deleted",
                        }
                    ],
                },
            )

    def delete(
        self, spec: ResourceSpec, namespace: str, name: str, preconditions: JsonDict | None = None
    ) -> tuple[JsonDict, bool]:
        """Delete now, or mark for deletion if finalizers remain; says which happened."""
        with self._lock:
            old = self._current(spec, namespace, name)
            meta = old["metadata"]
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = (preconditions or {}).get(field)
                if wanted and str(wanted) != str(meta.get(field)):
                    raise KubeError(
                        409,
                        f"Precondition failed: {label} in precondition: "
                        f"{wanted}, {label} in object meta: {meta.get(field)}",
                        details=self._details(spec, name),
                    )
            if not meta.get("finalizers"):
                if spec.plural == "namespaces" and not spec.group:
                    self._delete_namespace_contents(name)
                return self._commit(spec, "DELETED", old, copy.deepcopy(old)), True
            if meta.get("deletionTimestamp"):
                return copy.deepcopy(old), False
            new = copy.deepcopy(old)
            new["metadata"].update(
                deletionTimestamp=format_time(self.clock()),
                deletionGracePeriodSeconds=0,
                generation=int(meta.get("generation", 1)) + 1,
            )
            return self._commit(spec, "MODIFIED", old, new), False

    def _delete_namespace_contents(self, namespace: str) -> None:
        for (group, plural), bucket in list(self._objects.items()):
            for key in [k for k in bucket if k[0] == namespace]:
                kind = bucket[key].get("kind", "")
                spec = ResourceSpec(group, "", plural, kind)
                self.delete(spec, namespace, key[1])

    # -- watching ------------------------------------------------------------------------
    def watch(self, watcher: Watcher, since: int | None) -> list[tuple[str, JsonDict]]:
        """Register ``watcher``; returns what it must see first (state or replayed events).

        ``since=None`` means "from now", preceded by a synthetic ADDED per existing object,
        which is what the API server does for a watch without a resourceVersion (or "0").
        """
        with self._lock:
            if since is None:
                bucket = self._objects.get((watcher.group, watcher.plural), {})
                initial = [
                    ("ADDED", copy.deepcopy(obj))
                    for key, obj in sorted(bucket.items())
                    if (watcher.namespace is None or key[0] == watcher.namespace)
                    and selects(obj, watcher.labels, watcher.fields)
                ]
            elif since < self._compacted_rv:
                raise KubeError(
                    410,
                    f"too old resource version: {since} ({self._compacted_rv})",
                    reason="Expired",
                )
            else:
                initial = [
                    seen
                    for event in self._history
                    if event.rv > since
                    for seen in [watcher.translate(event)]
                    if seen is not None
                ]
            self._watchers.append(watcher)
            return initial

    @property
    def open_watches(self) -> int:
        with self._lock:
            return len(self._watchers)

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def bookmark(self, watcher: Watcher) -> None:
        """Send a BOOKMARK at the current version through the ordered delivery path."""
        with self._lock:
            if watcher in self._watchers:
                mark = copy.deepcopy(watcher.bookmark_object)
                mark["metadata"] = {"resourceVersion": str(self._rv)}
                watcher.deliver(("BOOKMARK", mark))

    def close_watches(self, *, abort: bool = False) -> int:
        """End every open watch (cleanly, or by dropping the connection); returns how many."""
        with self._lock:
            watchers, self._watchers = self._watchers, []
            for watcher in watchers:
                watcher.deliver((ABORT if abort else CLOSE, {}))
            return len(watchers)

    def compact(self, rv: int | None = None) -> None:
        """Forget history up to ``rv`` (default: all of it); older watches then get 410."""
        with self._lock:
            target = self._rv if rv is None else min(rv, self._rv)
            while self._history and self._history[0].rv <= target:
                self._history.popleft()
            self._compacted_rv = max(self._compacted_rv, target)


def _normalize(spec: ResourceSpec, obj: JsonDict) -> JsonDict:
    """What the API server does to a Secret on write: ``stringData`` folds into ``data``."""
    if (spec.group, spec.plural) == ("", "secrets"):
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        obj.setdefault("type", "Opaque")
    return obj


def _body(obj: JsonDict, spec: ResourceSpec) -> JsonDict:
    """The part of an object whose change bumps metadata.generation."""
    ignored = {"metadata", "status"} if spec.status_subresource else {"metadata"}
    return {k: v for k, v in obj.items() if k not in ignored}
