"""What an Argo Workflow says about its artifacts, parsed once into small frozen values.

Only output artifacts of Pod nodes are collected (logs included: Argo records them as
`main-logs`), as Argo's own GC does. Each keeps its raw location (`s3:`/`oss:`/...; often
key-only, the bucket coming from the repository frozen into
`status.artifactRepositoryRef`) and its own `artifactGC.strategy`, if any. The controller
caches these values instead of raw objects, so thousands of workflows with large statuses
stay small in memory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argosy.argo.location import (
    Location,
    RepositoryMissing,
    Target,
    relocate,
    through_plugin,
    unwrap_plugins,
)
from argosy.argo.names import (
    ARGO_GC_FINALIZER,
    COMPLETED_PHASES,
    LOCATION_KINDS,
    REPOSITORIES_CONFIGMAP,
    REPOSITORY_KINDS,
)
from argosy.argo.repository import choose_entry
from argosy.artifacts.errors import InvalidSpec

ConfigMapReader = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name)

FINALIZER = "argosy.io/artifact-gc"
ARGO_FINALIZER = ARGO_GC_FINALIZER


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 as the API server writes it; None for absent or unparsable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Artifact:
    node_id: str
    name: str
    kind: str | None  # "s3", "oss", "local", ... or None when it has no location at all
    location: Mapping[str, Any] = field(default_factory=dict, hash=False)
    strategy: str | None = None  # raw `artifactGC.strategy`; validated by the plan
    deleted: bool = False  # Argo's own GC already deleted it

    @property
    def id(self) -> str:
        return f"{self.node_id}/{self.name}"

    @property
    def key(self) -> str | None:
        value = self.location.get("key")
        return str(value) if value else None


@dataclass(frozen=True)
class RepositoryRef:
    """`status.artifactRepositoryRef`: the repository frozen in when the workflow started
    (`entry` holds it inline in Argo >= 3.1), or where to read it from."""

    config_map: str | None = None
    key: str | None = None
    namespace: str | None = None
    default: bool = False
    entry: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Workflow:
    namespace: str
    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    finalizers: tuple[str, ...] = ()
    phase: str = ""
    created: datetime | None = None
    finished_at: datetime | None = None
    deletion_timestamp: datetime | None = None
    strategy: str | None = None  # raw `spec.artifactGC.strategy`
    template_strategies: frozenset[str] = frozenset()
    repository: RepositoryRef = RepositoryRef()
    artifacts: tuple[Artifact, ...] = ()
    gone: bool = False  # seen in a DELETED event: the object no longer exists

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def completed(self) -> bool:
        return self.phase in COMPLETED_PHASES

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"

    @property
    def deleting(self) -> bool:
        return self.deletion_timestamp is not None or self.gone

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strategy_of(holder: Any) -> str | None:
    gc = _mapping(_mapping(holder).get("artifactGC"))
    value = gc.get("strategy")
    return str(value) if value not in (None, "") else None


def parse_artifact(node_id: str, raw: Mapping[str, Any]) -> Artifact:
    kinds = [k for k in LOCATION_KINDS if isinstance(raw.get(k), Mapping)]
    kind = kinds[0] if kinds else None
    return Artifact(
        node_id=node_id,
        name=str(raw.get("name") or ""),
        kind=kind,
        location={sys.intern(str(k)): v for k, v in raw[kind].items()} if kind else {},
        strategy=_strategy_of(raw),
        deleted=bool(raw.get("deleted", False)),
    )


def _templates(obj: Mapping[str, Any]) -> list[Any]:
    spec, status = _mapping(obj.get("spec")), _mapping(obj.get("status"))
    stored = _mapping(status.get("storedWorkflowTemplateSpec"))
    found = list(spec.get("templates") or []) + list(stored.get("templates") or [])
    found += list(_mapping(status.get("storedTemplates")).values())
    return [t for t in found if isinstance(t, Mapping)]


def _template_strategies(obj: Mapping[str, Any]) -> frozenset[str]:
    strategies = set()
    for template in _templates(obj):
        for art in _mapping(template.get("outputs")).get("artifacts") or []:
            strategy = _strategy_of(art)
            if strategy:
                strategies.add(strategy)
    return frozenset(strategies)


def _repository(status: Mapping[str, Any]) -> RepositoryRef:
    ref = _mapping(status.get("artifactRepositoryRef"))
    entry = ref.get("artifactRepository")
    return RepositoryRef(
        config_map=ref.get("configMap") or None,
        key=ref.get("key") or None,
        namespace=ref.get("namespace") or None,
        default=bool(ref.get("default", False)),
        entry=dict(entry) if isinstance(entry, Mapping) else None,
    )


def parse_workflow(obj: Mapping[str, Any], *, gone: bool = False) -> Workflow:
    meta, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
    status = _mapping(obj.get("status"))
    stored = _mapping(status.get("storedWorkflowTemplateSpec"))
    artifacts: list[Artifact] = []
    for node_id, node in sorted(_mapping(status.get("nodes")).items()):
        if not isinstance(node, Mapping) or node.get("type") != "Pod":
            continue
        for raw in _mapping(node.get("outputs")).get("artifacts") or []:
            if isinstance(raw, Mapping):
                artifacts.append(parse_artifact(str(node.get("id") or node_id), raw))
    # names that repeat from workflow to workflow are interned: a watch event is decoded
    # by itself, so without this each cached workflow would hold its own copy of them
    intern = sys.intern
    return Workflow(
        namespace=intern(str(meta.get("namespace") or "")),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        labels={intern(str(k)): intern(str(v)) for k, v in _mapping(meta.get("labels")).items()},
        annotations={intern(str(k)): str(v) for k, v in _mapping(meta.get("annotations")).items()},
        finalizers=tuple(intern(str(f)) for f in meta.get("finalizers") or []),
        phase=intern(str(status.get("phase") or "")),
        created=parse_time(meta.get("creationTimestamp")),
        finished_at=parse_time(status.get("finishedAt")),
        deletion_timestamp=parse_time(meta.get("deletionTimestamp")),
        strategy=_strategy_of(spec) or _strategy_of(stored),
        template_strategies=_template_strategies(obj),
        repository=_repository(status),
        artifacts=tuple(artifacts),
        gone=gone,
    )


def summary(workflow: Workflow) -> str:
    """One line for logs."""
    return json.dumps(
        {
            "workflow": workflow.ref,
            "phase": workflow.phase,
            "artifacts": len(workflow.artifacts),
            "deleting": workflow.deleting,
        }
    )


# -- where a workflow's artifacts are ---------------------------------------------------


def entry_from_configmap(
    configmap: Mapping[str, Any], key: str | None, where: str
) -> Mapping[str, Any]:
    try:
        return choose_entry(
            configmap, key, where=where, how_to_pick="set it, or artifactRepositoryRef.key"
        )[1]
    except InvalidSpec as error:
        raise RepositoryMissing(str(error)) from None


def recorded_repository(
    workflow: Workflow, read_configmap: ConfigMapReader, *, default: Mapping[str, Any] | None = None
) -> Mapping[str, Any]:
    """The repository entry the workflow wrote its artifacts with: inline in its status,
    or the ConfigMap entry its `artifactRepositoryRef` names (the namespace's
    `artifact-repositories` and its default annotation when it names none)."""
    ref = workflow.repository
    if ref.entry is not None:
        return ref.entry
    if ref.default and not ref.config_map:
        if default is None:
            raise RepositoryMissing(
                f"{workflow.ref} used the Argo controller's default repository, which the "
                "GC cannot see: give it with --default-repository FILE"
            )
        return default
    namespace = ref.namespace or workflow.namespace
    name = ref.config_map or REPOSITORIES_CONFIGMAP
    configmap = read_configmap(namespace, name)
    if configmap is None:
        if ref.config_map is None and default is not None:
            return default
        raise RepositoryMissing(
            f"ConfigMap {namespace}/{name} not found (the repository of {workflow.ref})"
        )
    return entry_from_configmap(configmap, ref.key, f"ConfigMap {namespace}/{name}")


def entry_location(entry: Mapping[str, Any]) -> Location | None:
    """A repository entry as the location its key-only artifacts are merged with."""
    kinds = [k for k in REPOSITORY_KINDS if isinstance(entry.get(k), Mapping)]
    return Location(kinds[0], entry[kinds[0]]) if len(kinds) == 1 else None


def artifact_target(artifact: Artifact, entry: Callable[[], Mapping[str, Any]]) -> Target:
    """Where a recorded artifact is (`entry`, the workflow's repository, is only read for
    a key-only artifact). Argosy's plugin locations (`plugin: {name: argosy,
    configuration, key}`) are the storage their configuration names; a key-only one takes
    the configuration of the repository's plugin."""
    if artifact.kind is None or not artifact.key:
        raise InvalidSpec(f"artifact {artifact.id} records no storage location")
    what = f"artifact {artifact.id}"
    own = Location(artifact.kind, artifact.location)
    if own.kind != "plugin":
        return relocate(own, lambda: _storage_location(entry(), what), key=artifact.key, what=what)
    repository = None
    if own.config.get("configuration") is None:
        repository = entry_location(entry())
        if repository is not None and repository.kind == "plugin" and not own.config.get("name"):
            own = Location("plugin", {**own.config, "name": repository.config.get("name")})
    storage, repository_storage, plugin = unwrap_plugins(own, repository, what=what)
    return relocate(storage, lambda: repository_storage, key=artifact.key, what=what, plugin=plugin)


def _storage_location(entry: Mapping[str, Any], what: str) -> Location | None:
    """The repository's location, an Argosy plugin repository as the storage it names."""
    location = entry_location(entry)
    if location is not None and location.kind == "plugin":
        return through_plugin(location, what=what)
    return location
