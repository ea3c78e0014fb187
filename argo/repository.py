"""Argo artifact repositories and locations, turned into storage a driver opens.

One entry (`s3:` / `oss:` / `local:` beside `keyFormat` and `archiveLogs`) or a whole
`artifact-repositories` ConfigMap (`choose_entry`, `read_entry`); an artifact's merged
location (`storage_for`) is read by the same code, so an entry means the same bucket URL
and the same credentials in a pod, in the GC and in `repo check`. The Secrets it names
come from the `SecretSource` the caller passes (files in a pod, the API elsewhere).

Addressing, as Argo's S3 client (minio-go's bucket lookup "auto") decides it:
`addressingStyle` when given; otherwise virtual-hosted for AWS and Alibaba Cloud hosts
(`*.amazonaws.com`, `*.aliyuncs.com`; with no endpoint, botocore's own choice for AWS,
virtual-hosted wherever the bucket's name allows it), path-style for any other endpoint
(MinIO, Ceph, an IP address).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from argosy.argo import secrets
from argosy.argo.location import Location, through_plugin
from argosy.argo.names import (
    DEFAULT_KEY_FORMAT,
    DEFAULT_REPOSITORY_ANNOTATION,
    REPOSITORY_KINDS,
    STORAGE_KINDS,
)
from argosy.argo.secrets import SecretSource
from argosy.artifacts.connect import (
    LocalStorage,
    OssStorage,
    S3Storage,
    Storage,
    open_driver,
)
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Driver

_VIRTUAL_HOSTED = ("amazonaws.com", "amazonaws.com.cn", "aliyuncs.com")


@dataclass(frozen=True)
class Repository:
    """An `artifact-repositories` entry with its secrets read."""

    s3: S3Storage | None = None
    oss: OssStorage | None = None
    local: LocalStorage | None = None
    bucket: str | None = None
    key_format: str = DEFAULT_KEY_FORMAT
    archive_logs: bool = False
    source: str = ""

    @property
    def storage(self) -> Storage:
        found = self.s3 or self.oss or self.local
        assert found is not None
        return found

    @property
    def kind(self) -> str:
        return "s3" if self.s3 else "oss" if self.oss else "local"


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidSpec(f"{name} must be true or false, not {value!r}")


def _text(value: Any, name: str) -> str | None:
    """A string field (None when absent or empty): Argo's own types are strings there,
    and anything else would reach a driver or an SDK that fails on it in its own way. The
    message names the type, never the value (a securityToken is a credential)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidSpec(f"{name} must be a string, not {type(value).__name__}")
    return value


def _endpoint(raw: Mapping[str, Any], *, insecure: bool, where: str) -> str | None:
    """Argo's endpoint is a host[:port]: https unless `insecure`; a URL is kept as it is."""
    endpoint = _text(raw.get("endpoint"), f"{where}.endpoint")
    if not endpoint:
        return None
    return endpoint if "://" in endpoint else f"{'http' if insecure else 'https'}://{endpoint}"


def addressing_style(raw: Mapping[str, Any], endpoint: str | None, where: str) -> str:
    """The style Argo's client would use (see the module's docstring)."""
    given = raw.get("addressingStyle", raw.get("addressing_style"))
    if given:
        style = {"virtual-hosted": "virtual", "virtualhosted": "virtual"}.get(
            str(given), str(given)
        )
        if style not in ("path", "virtual", "auto"):
            raise InvalidSpec(
                f"{where}.addressingStyle must be path or virtual-hosted, not {given!r}"
            )
        return style
    if endpoint is None:
        return "auto"  # AWS by region: botocore goes virtual-hosted where the name allows
    try:
        host = (urlsplit(endpoint).hostname or "").lower()
    except ValueError:  # not a URL: the driver refuses it, naming it
        host = ""
    return "virtual" if _under(host, _VIRTUAL_HOSTED) else "path"


def _under(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def s3_storage(raw: Any, source: SecretSource, where: str = "s3") -> S3Storage:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where} must be a mapping")
    insecure = _bool(raw.get("insecure", False), f"{where}.insecure")
    endpoint = _endpoint(raw, insecure=insecure, where=where)
    ca_bundle = secrets.read_file(source, raw.get("caSecret"), f"{where}.caSecret")
    enc = raw.get("encryptionOptions") or {}
    if not isinstance(enc, Mapping):
        raise InvalidSpec(f"{where}.encryptionOptions must be a mapping")
    customer = secrets.read(
        source,
        enc.get("serverSideCustomerKeySecret"),
        f"{where}.encryptionOptions.serverSideCustomerKeySecret",
    )
    mode = "none"
    if customer:
        mode = "c"
    elif _text(enc.get("kmsKeyId"), f"{where}.encryptionOptions.kmsKeyId"):
        mode = "kms"
    elif _bool(enc.get("enableEncryption", False), f"{where}.encryptionOptions.enableEncryption"):
        mode = "s3"
    sdk = _bool(raw.get("useSDKCreds", False), f"{where}.useSDKCreds")
    keys = (
        {}
        if sdk
        else dict(
            access_key=secrets.read(source, raw.get("accessKeySecret"), f"{where}.accessKeySecret"),
            secret_key=secrets.read(source, raw.get("secretKeySecret"), f"{where}.secretKeySecret"),
            session_token=secrets.read(
                source, raw.get("sessionTokenSecret"), f"{where}.sessionTokenSecret"
            ),
        )
    )
    return S3Storage(
        endpoint=endpoint,
        region=_text(raw.get("region"), f"{where}.region"),
        insecure=insecure,
        addressing_style=addressing_style(raw, endpoint, where),
        ca_bundle=ca_bundle,
        use_sdk_creds=sdk,
        sse_mode=mode,
        kms_key_id=_text(enc.get("kmsKeyId"), f"{where}.encryptionOptions.kmsKeyId"),
        kms_context=_text(
            enc.get("kmsEncryptionContext"), f"{where}.encryptionOptions.kmsEncryptionContext"
        ),
        customer_key=customer.encode() if customer else None,
        **keys,
    )


def _days(value: Any, name: str) -> int | None:
    if value is None or value == 0:  # Argo's zero value: no such rule
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSpec(f"{name} must be a number of days, not {value!r}")
    return value


def oss_storage(
    raw: Any, source: SecretSource, where: str = "oss", *, key_format: str = ""
) -> OssStorage:
    """Argo's OSS fields; `securityToken` is a plain string in Argo, not a secret. With no
    keys named, Alibaba's own credential chain applies (OSS_* or ALIBABA_CLOUD_* keys,
    then RRSA), as Argo's OSS driver does."""
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where} must be a mapping")
    rule = raw.get("lifecycleRule") or {}
    if not isinstance(rule, Mapping):
        raise InvalidSpec(f"{where}.lifecycleRule must be a mapping")
    token = _text(raw.get("securityToken"), f"{where}.securityToken")
    access = secrets.read(source, raw.get("accessKeySecret"), f"{where}.accessKeySecret")
    return OssStorage(
        endpoint=_endpoint(raw, insecure=False, where=where),
        access_key=access,
        secret_key=secrets.read(source, raw.get("secretKeySecret"), f"{where}.secretKeySecret"),
        security_token=token,
        use_sdk_creds=_bool(raw.get("useSDKCreds", False), f"{where}.useSDKCreds") or not access,
        create_bucket_if_not_present=_bool(
            raw.get("createBucketIfNotPresent", False), f"{where}.createBucketIfNotPresent"
        ),
        mark_infrequent_access_after_days=_days(
            rule.get("markInfrequentAccessAfterDays"),
            f"{where}.lifecycleRule.markInfrequentAccessAfterDays",
        ),
        mark_deletion_after_days=_days(
            rule.get("markDeletionAfterDays"), f"{where}.lifecycleRule.markDeletionAfterDays"
        ),
        lifecycle_prefix=static_prefix(key_format),
    )


def local_storage(raw: Any, where: str = "local") -> LocalStorage:
    if raw is not None and not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where} must be a mapping")
    return LocalStorage(_text((raw or {}).get("root"), f"{where}.root"))


def storage_for(
    kind: str, raw: Any, source: SecretSource, *, where: str | None = None, key_format: str = ""
) -> Storage:
    """How to reach the storage an Argo location of `kind` describes, its secrets read."""
    where = where or kind
    if kind == "s3":
        return s3_storage(raw, source, where)
    if kind == "oss":
        return oss_storage(raw, source, where, key_format=key_format)
    if kind == "local":
        return local_storage(raw, where)
    raise InvalidSpec(
        f"{where}: {kind} storage is not supported by Argosy (supported: s3, oss, local)"
    )


def static_prefix(key_format: str) -> str:
    """The folder every key of a `keyFormat` lies under: its text before the first
    `{{`, cut back to the last '/' (`runs/{{workflow.name}}` -> `runs/`)."""
    head = key_format.split("{{", 1)[0]
    return head[: head.rfind("/") + 1]


def entry_kind(raw: Mapping[str, Any], source: str = "") -> str:
    kinds = [k for k in REPOSITORY_KINDS if k in raw]
    if len(kinds) != 1:
        raise InvalidSpec(
            f"{source}: a repository entry needs exactly one of s3, oss, local, plugin "
            f"(found {', '.join(kinds) or 'none'})"
        )
    return kinds[0]


def parse_entry(raw: Any, *, secrets: SecretSource, source: str = "") -> Repository:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{source}: a repository entry must be a mapping")
    kind = entry_kind(raw, source)
    inner = raw.get(kind) or {}
    if kind == "plugin" and isinstance(inner, Mapping):
        through = through_plugin(Location("plugin", inner), what=source or "repository")
        kind, inner = through.kind, through.config
    if kind not in STORAGE_KINDS:
        raise InvalidSpec(f"{source}: {kind} repositories are not supported yet")
    fields = inner if isinstance(inner, Mapping) else {}
    key_format = (
        _text(raw.get("keyFormat"), f"{source}: keyFormat")
        or _text(fields.get("keyFormat"), f"{source}: {kind}.keyFormat")
        or DEFAULT_KEY_FORMAT
    )
    storage = storage_for(kind, inner, secrets, key_format=key_format)
    bucket = _text(fields.get("bucket"), f"{source}: {kind}.bucket")
    return Repository(
        s3=storage if isinstance(storage, S3Storage) else None,
        oss=storage if isinstance(storage, OssStorage) else None,
        local=storage if isinstance(storage, LocalStorage) else None,
        bucket=bucket,
        key_format=key_format,
        archive_logs=_bool(raw.get("archiveLogs", False), f"{source}: archiveLogs"),
        source=source,
    )


def repository_driver(
    repository: Repository,
    *,
    bucket: str | None = None,
    default_local_root: str,
    max_connections: int = 32,
) -> Driver:
    """The driver for an entry's bucket (or `bucket`, for an artifact naming its own)."""
    name = bucket or repository.bucket
    if not name:
        raise InvalidSpec(f"{repository.source or 'the repository'} names no bucket")
    return open_driver(
        repository.storage,
        name,
        default_local_root=default_local_root,
        max_connections=max_connections,
    )


def read_default_repository(path: str, *, flag: str = "--default-repository") -> Any:
    """The Argo controller's default repository entry (its `artifactRepository`, as YAML)
    from a file, for workflows that used it: `argosy gc` and `argosy serve` both take it.
    A file that cannot be read, is not text or not YAML is one line naming it."""
    from argosy.argo import yamlpos

    source = f"{flag} {path}"
    entry = yamlpos.load_file(path, source)
    if not isinstance(entry, Mapping):
        raise InvalidSpec(f"{source}: a repository entry must be a mapping (s3:, oss:, ...)")
    return entry


@functools.lru_cache(maxsize=256)
def _parsed_entry(text: str) -> Any:
    """An entry's YAML, parsed once per text: the GC resolves the same entry for every
    workflow of a namespace, and parsing it cost more than the rest of a workflow's plan."""
    from argosy.argo import yamlpos

    return yamlpos.safe_load(text)


def choose_entry(
    configmap: Mapping[str, Any],
    key: str | None,
    *,
    where: str,
    how_to_pick: str = "name one with --repository-key",
) -> tuple[str, dict[str, Any]]:
    """The name and raw entry (secret references unread) an `artifact-repositories` ConfigMap
    holds under `key`, else under its default-repository annotation, else its only one.
    `how_to_pick` ends the error for several entries and no default."""
    import yaml

    from argosy.argo import yamlpos

    data = configmap.get("data") or {}
    metadata = configmap.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidSpec(f"{where}: metadata must be a mapping")
    annotations = metadata.get("annotations") or {}
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InvalidSpec(f"{where}: data must map repository names to YAML strings")
    if not isinstance(annotations, Mapping):
        raise InvalidSpec(f"{where}: metadata.annotations must be a mapping")
    chosen = key or annotations.get(DEFAULT_REPOSITORY_ANNOTATION)
    if chosen is not None and not isinstance(chosen, str):
        raise InvalidSpec(f"{where}: the {DEFAULT_REPOSITORY_ANNOTATION} annotation is not a name")
    if not chosen:
        if len(data) != 1:
            raise InvalidSpec(
                f"{where}: several repositories and no "
                f"{DEFAULT_REPOSITORY_ANNOTATION} annotation; {how_to_pick}"
            )
        chosen = next(iter(data))
    if chosen not in data:
        raise InvalidSpec(
            f"{where}: no repository {chosen!r} (has: {', '.join(sorted(data)) or 'none'})"
        )
    try:
        entry = copy.deepcopy(_parsed_entry(data[chosen]))  # the caller's own copy
    except yamlpos.TooDeep as error:
        raise InvalidSpec(f"{where}: repository {chosen!r} is {error.problem}") from None
    except yaml.YAMLError:
        raise InvalidSpec(f"{where}: repository {chosen!r} is not valid YAML") from None
    if not isinstance(entry, Mapping):
        raise InvalidSpec(f"{where}: repository {chosen!r} is not a mapping")
    return chosen, dict(entry)


def read_entry(
    path: str | os.PathLike[str], *, key: str | None = None
) -> tuple[dict[str, Any], str]:
    """A repository file's raw entry (one entry, or an `artifact-repositories`
    ConfigMap's, see `choose_entry`) and a name for it in messages; secrets unread."""
    from argosy.argo import yamlpos  # here, not at the top: yaml is ~12 ms of every start

    source = os.fspath(path)
    doc = yamlpos.load_file(path, f"repository file {source}")
    if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap":
        chosen, entry = choose_entry(doc, key, where=source)
        return entry, f"{source}[{chosen}]"
    if key:
        raise InvalidSpec(f"{source}: --repository-key needs an artifact-repositories ConfigMap")
    if not isinstance(doc, Mapping):
        raise InvalidSpec(f"{source}: a repository entry must be a mapping")
    return dict(doc), source


def load(path: str | os.PathLike[str], *, key: str | None = None, secrets_dir: Path) -> Repository:
    """Read a repository file and its secrets from files in Argo's layout."""
    entry, source = read_entry(path, key=key)
    return parse_entry(entry, secrets=secrets.FileSecrets(secrets_dir), source=source)
