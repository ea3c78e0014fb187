"""Where an artifact's bytes are: Argo's location objects, and the key-only merge.

Written once, as Argo writes it once (`ArtifactLocation.Relocate`), and used by the
sidecar (an artifact of the pod's template with the pod's repository) and the GC (an
artifact of a workflow's status with the repository the workflow recorded). An artifact
that names its own bucket is used as it is; a key-only artifact (`s3: {key: ...}`)
takes every other field from the repository, its own fields laid over the
repository's, the repository's own `keyFormat` and `keyPrefix` dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from argosy.argo.names import FETCHABLE_KINDS, PLUGIN_NAME, REPOSITORY_ONLY_FIELDS
from argosy.artifacts.errors import InvalidSpec


@dataclass(frozen=True)
class Location:
    """One of Argo's location objects, as written (secret references unresolved)."""

    kind: str
    config: Mapping[str, Any] = field(hash=False)

    @property
    def key(self) -> str | None:
        value = self.config.get("key")
        return str(value) if value is not None else None

    @property
    def bucket(self) -> str | None:
        value = self.config.get("bucket")
        return str(value) if value else None

    @property
    def supported(self) -> bool:
        return self.kind in FETCHABLE_KINDS or (
            self.kind == "plugin" and self.config.get("name") == PLUGIN_NAME
        )


@dataclass(frozen=True)
class PluginRef:
    """An Argo plugin location of Argosy's own: the configuration string names the storage
    (`argo.plugin_config`); recorded outputs keep this form, so Argo reads them back."""

    name: str
    configuration: str


@dataclass(frozen=True)
class Target:
    """One artifact's place in storage; `config` is the merged Argo location (secret
    references unresolved: they are read when a driver is opened)."""

    kind: str
    bucket: str
    key: str
    config: Mapping[str, Any] = field(hash=False, compare=False)
    plugin: PluginRef | None = None  # reached through Argosy's plugin location

    @property
    def url(self) -> str:
        return f"{self.kind}://{self.bucket}/{self.key}"

    @property
    def bucket_id(self) -> str:
        """Which bucket, for per-bucket limits: the same name on two endpoints differs."""
        endpoint = self.config.get("endpoint") or self.config.get("root") or ""
        return f"{self.kind}|{endpoint}|{self.bucket}"

    def location(self) -> dict[str, Any]:
        """Argo's location object for this target (secret references, never values): the
        plugin form when it was reached through one."""
        if self.plugin is not None:
            return {
                "plugin": {
                    "name": self.plugin.name,
                    "configuration": self.plugin.configuration,
                    "key": self.key,
                }
            }
        return {self.kind: {**self.config, "bucket": self.bucket, "key": self.key}}


class RepositoryMissing(InvalidSpec):
    """The repository a key-only artifact needs is not there, or does not fit it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="RepositoryMissing")


def _own(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("key", *REPOSITORY_ONLY_FIELDS)}


def relocate(
    own: Location | None,
    repository: Callable[[], Location | None],
    *,
    key: str,
    what: str,
    plugin: PluginRef | None = None,
) -> Target:
    """The target of an artifact whose key is `key`: `own` as it is when it names its
    bucket, else merged over the repository's location (`repository()`, asked only
    then). `what` names the artifact in messages."""
    if own is not None and own.bucket:
        return Target(own.kind, own.bucket, key, _own(own.config), plugin)
    base = repository()
    if base is None:
        raise RepositoryMissing(
            f"{what} has no bucket of its own and there is no artifact repository to take it from"
        )
    if own is not None and own.kind != base.kind:
        raise RepositoryMissing(
            f"{what} is a key-only {own.kind} artifact but the repository is {base.kind}"
        )
    merged = {**_own(base.config), **_own(own.config if own else {})}
    bucket = str(merged.get("bucket") or "")
    if not bucket:
        raise RepositoryMissing(
            f"{what}: no bucket in the artifact nor its repository ({base.kind})"
        )
    return Target(base.kind, bucket, key, merged, plugin)


def _plugin_ref(location: Location, what: str, *, default: PluginRef | None) -> PluginRef:
    name = str(location.config.get("name") or "")
    if name != PLUGIN_NAME:
        raise InvalidSpec(
            f"{what}: plugin {name or '(no name)'} is not Argosy's "
            f"({PLUGIN_NAME}): Argosy moves only its own plugin's artifacts"
        )
    configuration = location.config.get("configuration")
    if configuration is None:
        if default is None:
            raise RepositoryMissing(
                f"{what} is a key-only plugin artifact but the repository is not Argosy's plugin"
            )
        return default
    return PluginRef(name, str(configuration))


def _through(location: Location, ref: PluginRef) -> Location:
    from argosy.argo import plugin_config

    parsed = plugin_config.parse(ref.configuration)
    fields = dict(parsed.location)
    for name in ("key", "keyFormat"):
        if location.config.get(name) is not None:
            fields[name] = location.config[name]
    if parsed.key_format and "keyFormat" not in fields:
        fields["keyFormat"] = parsed.key_format
    return Location(parsed.kind, fields)


def through_plugin(location: Location, *, what: str) -> Location:
    """A complete plugin location of Argosy's (a repository entry's, or an artifact's with
    its configuration) as the storage location its configuration names."""
    return _through(location, _plugin_ref(location, what, default=None))


def unwrap_plugins(
    own: Location | None, repository: Location | None, *, what: str
) -> tuple[Location | None, Location | None, PluginRef | None]:
    """An artifact and its repository with Argosy's plugin locations turned into the
    storage locations their configuration names (a key-only plugin artifact takes the
    repository's configuration), and the plugin they were reached through."""
    ref = None
    if repository is not None and repository.kind == "plugin":
        ref = _plugin_ref(repository, what, default=None)
        repository = _through(repository, ref)
    if own is not None and own.kind == "plugin":
        ref = _plugin_ref(own, what, default=ref)
        own = _through(own, ref)
    return own, repository, ref
