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

from argosy.argo.names import FETCHABLE_KINDS, REPOSITORY_ONLY_FIELDS
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
        return self.kind in FETCHABLE_KINDS


@dataclass(frozen=True)
class Target:
    """One artifact's place in storage; `config` is the merged Argo location (secret
    references unresolved: they are read when a driver is opened)."""

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

    def location(self) -> dict[str, Any]:
        """Argo's location object for this target (secret references, never values)."""
        return {self.kind: {**self.config, "bucket": self.bucket, "key": self.key}}


class RepositoryMissing(InvalidSpec):
    """The repository a key-only artifact needs is not there, or does not fit it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="RepositoryMissing")


def _own(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("key", *REPOSITORY_ONLY_FIELDS)}


def relocate(
    own: Location | None, repository: Callable[[], Location | None], *, key: str, what: str
) -> Target:
    """The target of an artifact whose key is `key`: `own` as it is when it names its
    bucket, else merged over the repository's location (`repository()`, asked only
    then). `what` names the artifact in messages."""
    if own is not None and own.bucket:
        return Target(own.kind, own.bucket, key, _own(own.config))
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
    return Target(base.kind, bucket, key, merged)
