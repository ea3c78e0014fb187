"""From an artifact as written to the place its bytes live: kind, bucket, key, driver.

Argo's rules: an artifact naming its own bucket is used as it is; a key-only artifact
(`s3: {key: ...}`) takes everything else from the repository; an artifact with no
location uses the repository and a key made of the keyFormat and its own file name. The
repository is, in order: the template's `archiveLocation` (Argo's controller fills it
in, key prefix already expanded), the `artifact-repositories` entry given with
`--repository`, or none (then such an artifact is an error naming it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from argosy.argo import keys
from argosy.argo import repository as repo
from argosy.argo.location import Location, Target, relocate, unwrap_plugins
from argosy.argo.names import DEFAULT_KEY_FORMAT, STORAGE_KINDS
from argosy.argo.secrets import FileSecrets
from argosy.argo.template import Artifact, Template
from argosy.artifacts.connect import open_driver as open_storage
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Driver


@dataclass(frozen=True)
class Context:
    """What resolution needs from the pod: variables, secrets, the repository."""

    variables: Mapping[str, str]
    secrets_dir: Path
    local_root: str
    created: datetime | None = None
    repository: Mapping[str, Any] | None = None  # a raw Argo entry, from --repository
    max_connections: int = 32


_REPOSITORY = (*STORAGE_KINDS, "plugin")  # an Argosy plugin location names storage too


def repository_location(
    ctx: Context, template: Template, *, want_prefix: bool = True
) -> tuple[Location | None, str]:
    """The repository as a location, and the key prefix outputs go under (expanded only
    when wanted: inputs name their keys, and need no workflow variables)."""
    if template.archive_location is not None and template.archive_location.kind in _REPOSITORY:
        loc = template.archive_location
        prefix = loc.key
        if prefix is None and want_prefix:
            key_format = str(loc.config.get("keyFormat") or DEFAULT_KEY_FORMAT)
            prefix = keys.expand(key_format, ctx.variables, created=ctx.created)
        return loc, prefix or ""
    if ctx.repository:
        kinds = [k for k in _REPOSITORY if k in ctx.repository]
        if len(kinds) != 1:
            raise InvalidSpec("the repository entry needs exactly one of s3, oss, local, plugin")
        config = dict(ctx.repository[kinds[0]] or {})
        key_format = str(
            ctx.repository.get("keyFormat") or config.pop("keyFormat", None) or DEFAULT_KEY_FORMAT
        )
        prefix = keys.expand(key_format, ctx.variables, created=ctx.created) if want_prefix else ""
        return Location(kinds[0], config), prefix
    return None, ""


def repository_archive_logs(ctx: Context, template: Template) -> bool:
    if template.archive_logs is not None:
        return template.archive_logs
    return bool(ctx.repository and ctx.repository.get("archiveLogs"))


def target_for(
    artifact: Artifact, *, ctx: Context, template: Template, fmt: str, output: bool
) -> Target:
    """Where `artifact` lives; `fmt` names the output's file when the key is derived."""
    own = artifact.location
    what = f"{artifact.where} ({artifact.name})"
    repo_loc, prefix = repository_location(
        ctx, template, want_prefix=output and not (own is not None and own.key)
    )
    own, repo_loc, plugin = unwrap_plugins(
        own, repo_loc if own is None or not own.bucket else None, what=what
    )
    if own is not None and own.kind not in STORAGE_KINDS:
        raise InvalidSpec(f"{what}: {own.kind} is not a storage location")
    if repo_loc is None and not (own is not None and own.bucket):
        raise InvalidSpec(
            f"{artifact.where} ({artifact.name}) has no location and there is "
            "no artifact repository (give --repository or an archiveLocation)"
        )
    if own is not None and own.bucket:
        key = own.key
        if not key and output:  # Argo's rule: the keyFormat's key, in the artifact's bucket
            if repo_loc is None:
                raise InvalidSpec(
                    f"{artifact.where} ({artifact.name}) names a bucket but no "
                    "key, and there is no repository keyFormat to make one"
                )
            key = keys.output_key(prefix, artifact.name, artifact.path, fmt)
        if not key:
            raise InvalidSpec(
                f"{artifact.where}.{own.kind}.key: input {artifact.name} names a bucket but no key"
            )
    elif own is not None and own.key:
        key = keys.expand(
            own.key, ctx.variables, created=ctx.created, what=f"{artifact.where}.{own.kind}.key"
        )
    elif output:
        key = keys.output_key(prefix, artifact.name, artifact.path, fmt)
    else:
        raise InvalidSpec(
            f"{artifact.where} ({artifact.name}) is an input with no key: "
            "its location must come from `from:` (resolved by the engine)"
        )
    return relocate(own, lambda: repo_loc, key=key, what=what, plugin=plugin)


def open_driver(target: Target, ctx: Context) -> Driver:
    """A driver for the target's bucket, its secrets read from files as Argo mounts them.
    With no secrets named, the SDK's own chain applies: AWS's (environment, web identity,
    instance roles) for S3, Alibaba's for OSS (OSS_* or ALIBABA_CLOUD_* keys, then RRSA's
    OIDC token traded with STS)."""
    storage = repo.storage_for(target.kind, target.config, FileSecrets(ctx.secrets_dir))
    return open_storage(
        storage,
        target.bucket,
        default_local_root=ctx.local_root,
        max_connections=ctx.max_connections,
    )


class DriverCache:
    """One driver per repository location, shared by the artifacts moving at once: a
    client costs ~12 MiB and ~0.1 s to build, and eight inputs from one bucket should
    not pay for eight. Thread-safe; drivers themselves are."""

    def __init__(self, opener: Callable[[Target, Context], Driver] = open_driver) -> None:
        self._opener = opener
        self._drivers: dict[str, Driver] = {}
        self._lock = threading.Lock()

    def __call__(self, target: Target, ctx: Context) -> Driver:
        key = json.dumps([target.kind, target.bucket, target.config], sort_keys=True, default=str)
        with self._lock:  # building under the lock: botocore sessions are not thread-safe
            if key not in self._drivers:
                self._drivers[key] = self._opener(target, ctx)
            return self._drivers[key]
