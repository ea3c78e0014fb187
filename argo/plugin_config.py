"""The `configuration` of an Argo plugin location (`plugin: {name: argosy, configuration,
key}`), parsed once per distinct string, for the plugin, the GC and the server alike.

Argo hands a plugin this string unread in every request. Argosy reads two forms:
- an Argosy repository entry: a mapping with one of `s3`, `oss` or `local` at the top
  level (as in `artifact-repositories`), optionally beside an `argosy:` block;
- otherwise Argo's S3 location, as the community S3 plugin reads it: the fields of Argo's
  `S3Bucket` at the top level (`bucket`, `endpoint`, `region`, `insecure`,
  `addressingStyle`, `accessKeySecret`, `secretKeySecret`, `sessionTokenSecret`,
  `roleARN`, `useSDKCreds`, `caSecret`, `encryptionOptions`,
  `createBucketIfNotPresent`), plus an optional `argosy:` block.
`argosy:` takes `concurrency` (parts in flight), `files` (files in flight, for a folder
of objects) and `partSize` (MiB). An unknown field is
an error naming it. `endpoint` without a scheme means https, or http with
`insecure: true`. With `useSDKCreds: true`, or no secret named, the storage SDK's own
credential chain applies and no Secret is read.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from argosy.argo.names import LOCATION_FIELDS, REPOSITORY_ONLY_FIELDS, STORAGE_KINDS
from argosy.artifacts.errors import InvalidSpec

ARGOSY_FIELDS = frozenset({"concurrency", "files", "partSize"})
_S3_FIELDS = LOCATION_FIELDS["s3"] - {"key", "keyFormat"}
_ENTRY_FIELDS = frozenset({*STORAGE_KINDS, "keyFormat", "archiveLogs", "argosy"})
MiB = 1 << 20


@dataclass(frozen=True)
class PluginConfig:
    """Where a plugin location's objects are: a storage kind, its bucket, the Argo-style
    location fields a driver is opened from (secret references unread), and Argosy's
    transfer settings for it."""

    kind: str
    bucket: str
    location: Mapping[str, Any] = field(hash=False, compare=False)
    key_format: str | None = None
    concurrency: int | None = None
    part_size: int | None = None  # bytes
    files: int | None = None

    @property
    def names_secrets(self) -> bool:
        """Whether opening it reads Secrets (some `...Secret` field, and no SDK chain)."""
        if self.location.get("useSDKCreds"):
            return False
        return any(k.endswith("Secret") for k in self.location) or any(
            k.endswith("Secret") for k in self.location.get("encryptionOptions") or {}
        )


def _unknown(raw: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    extra = sorted(str(k) for k in raw if k not in known)
    if extra:
        raise InvalidSpec(
            f"{where}: unknown field(s) {', '.join(extra)} (known: {', '.join(sorted(known))})"
        )


def _positive(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidSpec(f"{where} must be a positive number, not {value!r}")
    return value


@functools.lru_cache(maxsize=64)
def parse(configuration: str) -> PluginConfig:
    """The configuration string of a plugin location (cached: Argo sends the same string
    with every request)."""
    import yaml

    where = "plugin configuration"
    try:
        raw = yaml.safe_load(configuration) if configuration.strip() else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise InvalidSpec(f"{where}: not valid YAML{line}") from None
    except RecursionError:
        raise InvalidSpec(f"{where}: nested too deeply") from None
    if not isinstance(raw, Mapping):
        raise InvalidSpec(
            f"{where} must be a YAML mapping (an Argosy repository entry or "
            "Argo's S3 location fields)"
        )
    extras = raw.get("argosy") or {}
    if not isinstance(extras, Mapping):
        raise InvalidSpec(f"{where}.argosy must be a mapping")
    _unknown(extras, ARGOSY_FIELDS, f"{where}.argosy")
    concurrency = _positive(extras.get("concurrency"), f"{where}.argosy.concurrency")
    files = _positive(extras.get("files"), f"{where}.argosy.files")
    part_mib = _positive(extras.get("partSize"), f"{where}.argosy.partSize")
    part_size = part_mib * MiB if part_mib else None
    kinds = [k for k in STORAGE_KINDS if k in raw]
    if kinds:
        _unknown(raw, _ENTRY_FIELDS, where)
        if len(kinds) > 1:
            raise InvalidSpec(f"{where} names several storages ({', '.join(kinds)}); give one")
        kind = kinds[0]
        inner = raw[kind]
        if not isinstance(inner, Mapping):
            raise InvalidSpec(f"{where}.{kind} must be a mapping")
        _unknown(inner, LOCATION_FIELDS[kind] - {"key"}, f"{where}.{kind}")
        location = {k: v for k, v in inner.items() if k not in REPOSITORY_ONLY_FIELDS}
        key_format = raw.get("keyFormat") or inner.get("keyFormat")
    else:
        _unknown(raw, _S3_FIELDS | {"argosy"}, where)
        kind = "s3"
        location = {k: v for k, v in raw.items() if k != "argosy"}
        key_format = None
    bucket = location.get("bucket")
    if not bucket or not isinstance(bucket, str):
        raise InvalidSpec(f"{where}: no bucket (give `bucket:`)")
    return PluginConfig(
        kind,
        bucket,
        location,
        str(key_format) if key_format else None,
        concurrency,
        part_size,
        files,
    )
