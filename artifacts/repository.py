"""Argo artifact repositories: one entry (`s3:` / `oss:` / `local:` + `keyFormat`) or a whole
`artifact-repositories` ConfigMap, parsed into settings a driver can be opened with.

Secrets named by an entry (`accessKeySecret: {name, key}`) are read from files laid out
as Argo mounts them, `SECRETS_DIR/<name>/<key>`; the folder is given by the caller. Every
reference, here and wherever else Argosy reads a secret by name (http inputs, the GC, `repo
check`), goes through `secret_ref`: only a valid Kubernetes Secret name and key are read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argosy.artifacts.errors import InvalidSpec

DEFAULT_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
DEFAULT_KEY_FORMAT = "{{workflow.name}}/{{pod.name}}"
# Kubernetes' rules: a Secret's name is an RFC 1123 subdomain, its keys ConfigMap keys
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_MAX_SECRET_NAME = _MAX_SECRET_KEY = 253


@dataclass(frozen=True)
class S3Entry:
    bucket: str | None = None
    endpoint: str | None = None  # with scheme, as boto3 takes it
    region: str | None = None
    insecure: bool = False
    addressing_style: str = "auto"
    ca_bundle: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    use_sdk_creds: bool = False
    sse_mode: str = "none"
    kms_key_id: str | None = None
    kms_context: str | None = None
    customer_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OssEntry:
    """Argo's OSS fields; `securityToken` is a plain string in Argo, not a secret."""

    bucket: str | None = None
    endpoint: str | None = None  # with scheme; https when Argo's entry has none
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    use_sdk_creds: bool = False
    create_bucket_if_not_present: bool = False
    mark_infrequent_access_after_days: int | None = None
    mark_deletion_after_days: int | None = None


@dataclass(frozen=True)
class LocalEntry:
    root: str | None = None
    bucket: str | None = None


@dataclass(frozen=True)
class Repository:
    s3: S3Entry | None = None
    oss: OssEntry | None = None
    local: LocalEntry | None = None
    key_format: str = DEFAULT_KEY_FORMAT
    archive_logs: bool = False
    source: str = ""


def secret_ref(ref: Any, field_name: str) -> tuple[str, str]:
    """The (name, key) of a `{name, key}` reference, refused unless both are what
    Kubernetes allows in a Secret: they become a path (SECRETS_DIR/<name>/<key>) or an API
    request, and a `../` in either would send any file of the pod as a credential."""
    if not isinstance(ref, Mapping) or "name" not in ref or "key" not in ref:
        raise InvalidSpec(f"{field_name} must be {{name, key}}")
    name, key = str(ref["name"]), str(ref["key"])
    if len(name) > _MAX_SECRET_NAME or not _SECRET_NAME.fullmatch(name):
        raise InvalidSpec(f"{field_name}.name: {name!r} is not a valid Kubernetes secret name")
    if len(key) > _MAX_SECRET_KEY or not _SECRET_KEY.fullmatch(key) or key == "." \
            or key.startswith(".."):
        raise InvalidSpec(f"{field_name}.key: {key!r} is not a valid Kubernetes secret key")
    return name, key


def secret_path(ref: Any, secrets_dir: Path, field_name: str) -> Path | None:
    """Where Argo mounts the secret a reference names (None for no reference)."""
    if ref is None:
        return None
    name, key = secret_ref(ref, field_name)
    return secrets_dir / name / key


def read_secret(ref: Any, secrets_dir: Path, field_name: str) -> str | None:
    """A secret named `{name, key}`, from Argo's layout SECRETS_DIR/<name>/<key>."""
    path = secret_path(ref, secrets_dir, field_name)
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError:
        raise InvalidSpec(f"{field_name}: secret {path.parent.name}/{path.name} not found "
                          f"(looked for {path})") from None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidSpec(f"{name} must be true or false, not {value!r}")


def _s3(raw: Any, secrets_dir: Path) -> S3Entry:
    if not isinstance(raw, Mapping):
        raise InvalidSpec("s3 must be a mapping")
    insecure = _bool(raw.get("insecure", False), "s3.insecure")
    endpoint = raw.get("endpoint")
    if endpoint and "://" not in str(endpoint):
        endpoint = f"{'http' if insecure else 'https'}://{endpoint}"
    style = str(raw.get("addressingStyle", raw.get("addressing_style", "auto")))
    style = {"virtual-hosted": "virtual", "virtualhosted": "virtual"}.get(style, style)
    if style not in ("auto", "path", "virtual"):
        raise InvalidSpec(f"s3.addressingStyle must be path or virtual-hosted, not {style!r}")
    ca_pem = read_secret(raw.get("caSecret"), secrets_dir, "s3.caSecret")
    ca_bundle = None
    if ca_pem:
        ca_bundle = str(secret_path(raw["caSecret"], secrets_dir, "s3.caSecret"))
    enc = raw.get("encryptionOptions") or {}
    if not isinstance(enc, Mapping):
        raise InvalidSpec("s3.encryptionOptions must be a mapping")
    customer = read_secret(enc.get("serverSideCustomerKeySecret"), secrets_dir,
                       "s3.encryptionOptions.serverSideCustomerKeySecret")
    mode = "none"
    if customer:
        mode = "c"
    elif enc.get("kmsKeyId"):
        mode = "kms"
    elif enc.get("enableEncryption"):
        mode = "s3"
    return S3Entry(
        bucket=raw.get("bucket"), endpoint=endpoint, region=raw.get("region"),
        insecure=insecure, addressing_style=style, ca_bundle=ca_bundle,
        access_key=read_secret(raw.get("accessKeySecret"), secrets_dir, "s3.accessKeySecret"),
        secret_key=read_secret(raw.get("secretKeySecret"), secrets_dir, "s3.secretKeySecret"),
        session_token=read_secret(raw.get("sessionTokenSecret"), secrets_dir,
                              "s3.sessionTokenSecret"),
        use_sdk_creds=_bool(raw.get("useSDKCreds", False), "s3.useSDKCreds"),
        sse_mode=mode, kms_key_id=enc.get("kmsKeyId"),
        kms_context=enc.get("kmsEncryptionContext"),
        customer_key=customer.encode() if customer else None,
    )


def _days(value: Any, name: str) -> int | None:
    if value is None or value == 0:  # Argo's zero value: no such rule
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSpec(f"{name} must be a number of days, not {value!r}")
    return value


def _oss(raw: Any, secrets_dir: Path) -> OssEntry:
    if not isinstance(raw, Mapping):
        raise InvalidSpec("oss must be a mapping")
    endpoint = raw.get("endpoint")
    if endpoint and "://" not in str(endpoint):
        endpoint = f"https://{endpoint}"
    rule = raw.get("lifecycleRule") or {}
    if not isinstance(rule, Mapping):
        raise InvalidSpec("oss.lifecycleRule must be a mapping")
    token = raw.get("securityToken")
    return OssEntry(
        bucket=raw.get("bucket"), endpoint=endpoint,
        access_key=read_secret(raw.get("accessKeySecret"), secrets_dir, "oss.accessKeySecret"),
        secret_key=read_secret(raw.get("secretKeySecret"), secrets_dir, "oss.secretKeySecret"),
        security_token=str(token) if token else None,
        use_sdk_creds=_bool(raw.get("useSDKCreds", False), "oss.useSDKCreds"),
        create_bucket_if_not_present=_bool(raw.get("createBucketIfNotPresent", False),
                                           "oss.createBucketIfNotPresent"),
        mark_infrequent_access_after_days=_days(
            rule.get("markInfrequentAccessAfterDays"),
            "oss.lifecycleRule.markInfrequentAccessAfterDays"),
        mark_deletion_after_days=_days(rule.get("markDeletionAfterDays"),
                                       "oss.lifecycleRule.markDeletionAfterDays"),
    )


def static_prefix(key_format: str) -> str:
    """The folder every key of a `keyFormat` lies under: its text before the first
    `{{`, cut back to the last '/' (`runs/{{workflow.name}}` -> `runs/`)."""
    head = key_format.split("{{", 1)[0]
    return head[: head.rfind("/") + 1]


def parse_entry(raw: Any, *, secrets_dir: Path, source: str = "") -> Repository:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{source}: a repository entry must be a mapping")
    kinds = [k for k in ("s3", "oss", "gcs", "azure", "hdfs", "artifactory", "local")
             if k in raw]
    if len(kinds) != 1:
        raise InvalidSpec(f"{source}: a repository entry needs exactly one of s3, oss, local "
                          f"(found {', '.join(kinds) or 'none'})")
    kind = kinds[0]
    key_format = str(raw.get("keyFormat") or (raw.get(kind) or {}).get("keyFormat")
                     or DEFAULT_KEY_FORMAT)
    archive_logs = bool(raw.get("archiveLogs", False))
    if kind == "s3":
        return Repository(s3=_s3(raw["s3"], secrets_dir), key_format=key_format,
                          archive_logs=archive_logs, source=source)
    if kind == "oss":
        return Repository(oss=_oss(raw["oss"], secrets_dir), key_format=key_format,
                          archive_logs=archive_logs, source=source)
    if kind == "local":
        loc = raw["local"] or {}
        return Repository(local=LocalEntry(loc.get("root"), loc.get("bucket")),
                          key_format=key_format, archive_logs=archive_logs, source=source)
    raise InvalidSpec(f"{source}: {kind} repositories are not supported yet")


def choose_entry(configmap: Mapping[str, Any], key: str | None, *, where: str,
                 how_to_pick: str = "name one with --repository-key",
                 ) -> tuple[str, dict[str, Any]]:
    """The name and raw entry (secret references unread) an `artifact-repositories` ConfigMap
    holds under `key`, else under its default-repository annotation, else its only one.
    `how_to_pick` ends the error for several entries and no default."""
    import yaml

    data = configmap.get("data") or {}
    annotations = (configmap.get("metadata") or {}).get("annotations") or {}
    chosen = key or annotations.get(DEFAULT_ANNOTATION)
    if not chosen:
        if len(data) != 1:
            raise InvalidSpec(f"{where}: several repositories and no {DEFAULT_ANNOTATION} "
                              f"annotation; {how_to_pick}")
        chosen = next(iter(data))
    if chosen not in data:
        raise InvalidSpec(f"{where}: no repository {chosen!r} "
                          f"(has: {', '.join(sorted(data)) or 'none'})")
    try:
        entry = yaml.safe_load(data[chosen])
    except yaml.YAMLError:
        raise InvalidSpec(f"{where}: repository {chosen!r} is not valid YAML") from None
    if not isinstance(entry, Mapping):
        raise InvalidSpec(f"{where}: repository {chosen!r} is not a mapping")
    return chosen, dict(entry)


def read_entry(path: str | os.PathLike[str], *, key: str | None = None
               ) -> tuple[dict[str, Any], str]:
    """A repository file's raw entry (one entry, or an `artifact-repositories`
    ConfigMap's, see `choose_entry`) and a name for it in messages; secrets unread."""
    import yaml  # here, not at the top: ~12 ms of every start, for runs that read a file

    source = os.fspath(path)
    try:
        with open(path) as handle:
            doc = yaml.safe_load(handle)
    except OSError as error:
        raise InvalidSpec(f"cannot read repository file {source}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InvalidSpec(f"{source}:{where} is not valid YAML") from None
    if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap":
        chosen, entry = choose_entry(doc, key, where=source)
        return entry, f"{source}[{chosen}]"
    if key:
        raise InvalidSpec(f"{source}: --repository-key needs an artifact-repositories ConfigMap")
    if not isinstance(doc, Mapping):
        raise InvalidSpec(f"{source}: a repository entry must be a mapping")
    return dict(doc), source


def load(path: str | os.PathLike[str], *, key: str | None = None,
         secrets_dir: Path) -> Repository:
    """Read a repository file and its secrets (see `read_entry`)."""
    entry, source = read_entry(path, key=key)
    return parse_entry(entry, secrets_dir=secrets_dir, source=source)
