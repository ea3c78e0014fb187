"""Where an artifact's bytes are: its own location merged with the workflow's repository.

Argo records most output artifacts key-only (`s3: {key: wf/pod/out.tgz}`): the bucket,
endpoint and credentials come from the repository frozen into the workflow's
`status.artifactRepositoryRef` (inline as `artifactRepository`, or by reference to a
ConfigMap: `configMap`/`key`/`namespace`, defaulting to the namespace's
`artifact-repositories` and its `workflows.argoproj.io/default-artifact-repository`
annotation). An artifact that names its own bucket is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from argosy.argo.names import REPOSITORIES_CONFIGMAP, REPOSITORY_KINDS, REPOSITORY_ONLY_FIELDS
from argosy.argo.repository import choose_entry
from argosy.argo.workflow import Artifact, Workflow
from argosy.artifacts.errors import InvalidSpec

DEFAULT_CONFIGMAP = REPOSITORIES_CONFIGMAP
_REPOSITORY_ONLY = REPOSITORY_ONLY_FIELDS

ConfigMapReader = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name)


class RepositoryMissing(InvalidSpec):
    """The workflow's repository cannot be found (a deleted ConfigMap, a missing key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="RepositoryMissing")


@dataclass(frozen=True)
class Target:
    """One artifact's place in storage; `config` is the merged Argo location dict (secret
    references unresolved: `argosy.gc.storage` reads them)."""

    kind: str
    bucket: str
    key: str
    config: Mapping[str, Any] = field(hash=False, compare=False)

    @property
    def url(self) -> str:
        return f"{self.kind}://{self.bucket}/{self.key}"

    @property
    def bucket_id(self) -> str:
        """Which bucket, for per-bucket limits: the same name on two endpoints differs."""
        endpoint = self.config.get("endpoint") or self.config.get("root") or ""
        return f"{self.kind}|{endpoint}|{self.bucket}"


def entry_from_configmap(configmap: Mapping[str, Any], key: str | None,
                         where: str) -> Mapping[str, Any]:
    try:
        return choose_entry(configmap, key, where=where,
                            how_to_pick="set it, or artifactRepositoryRef.key")[1]
    except InvalidSpec as error:
        raise RepositoryMissing(str(error)) from None


def repository_entry(workflow: Workflow, read_configmap: ConfigMapReader, *,
                     default: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """The repository the workflow wrote its artifacts with."""
    ref = workflow.repository
    if ref.entry is not None:
        return ref.entry
    if ref.default and not ref.config_map:
        if default is None:
            raise RepositoryMissing(
                f"{workflow.ref} used the Argo controller's default repository, which the "
                "GC cannot see: give it with --default-repository FILE")
        return default
    namespace = ref.namespace or workflow.namespace
    name = ref.config_map or DEFAULT_CONFIGMAP
    configmap = read_configmap(namespace, name)
    if configmap is None:
        if ref.config_map is None and default is not None:
            return default
        raise RepositoryMissing(f"ConfigMap {namespace}/{name} not found (the repository of "
                                f"{workflow.ref})")
    return entry_from_configmap(configmap, ref.key, f"ConfigMap {namespace}/{name}")


def resolve_target(artifact: Artifact, entry: Callable[[], Mapping[str, Any]]) -> Target:
    """Merge a key-only artifact with its repository (`entry` is only called then)."""
    kind, location = artifact.kind, dict(artifact.location)
    if kind is None or not artifact.key:
        raise InvalidSpec(f"artifact {artifact.id} records no storage location")
    if not location.get("bucket"):
        repository = entry()
        base = repository.get(kind)
        if not isinstance(base, Mapping):
            kinds = [k for k in REPOSITORY_KINDS if k in repository]
            raise RepositoryMissing(f"artifact {artifact.id} is {kind} key-only but the "
                                    f"repository is {', '.join(kinds) or 'empty'}")
        merged = {k: v for k, v in base.items() if k not in _REPOSITORY_ONLY}
        merged.update(location)
        location = merged
    bucket = str(location.get("bucket") or "")
    if not bucket:
        raise RepositoryMissing(f"artifact {artifact.id}: no bucket in the artifact nor its "
                                "repository")
    return Target(kind, bucket, str(location["key"]), location)
