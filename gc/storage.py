"""Drivers opened from Argo location dicts, with credentials read through the Kubernetes
API (Secrets in the workflow's namespace, as Argo mounts them into its pods).

The controller talks to many repositories; opening a client costs time and memory, so
drivers are cached (a small LRU keyed by namespace and location, never by secret value
in clear). Argo's location fields are honoured where they matter for deleting: endpoint
(without a scheme: https, or http with `insecure`), region, addressingStyle (path-style
for non-AWS endpoints unless told otherwise, like Argo's MinIO client), caSecret,
access/secret/session-token secrets and useSDKCreds; OSS endpoint, keys, securityToken.
Encryption settings do not matter for deletes and are ignored.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.drivers.s3 import S3Driver, S3Settings
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    InvalidSpec,
    ThrottledError,
    TransientError,
)
from argosy.artifacts.protocol import Driver
from argosy.artifacts.repository import secret_ref
from argosy.gc.locations import Target

SecretReader = Callable[[str, str, str], str]  # (namespace, secret name, key) -> value
_PER_ARTIFACT = frozenset({"key", "keyFormat"})


@dataclass(frozen=True)
class StorageSettings:
    """How the GC reaches storage.

    connect_timeout / read_timeout: seconds (5: an unreachable endpoint fails fast and
        is retried by the controller later, not by a worker waiting; 60: a batch delete of
        1000 keys can take a while on a busy cluster).
    max_connections: per client; at least the per-bucket concurrency.
    local_root: the root of `local:` repositories without one of their own.
    cache_size: drivers kept open (each holds a connection pool).
    """

    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_connections: int = 16
    local_root: str | None = None
    cache_size: int = 32


def cause_of(error: BaseException) -> str:
    """A short, stable name for why storage failed, used in Events and metrics."""
    code = getattr(error, "code", None)
    if code in ("NoSuchBucket", "RepositoryMissing", "SecretNotFound", "SecretForbidden",
                "EndpointUnreachable", "LeadershipLost"):
        return str(code)
    if isinstance(error, AccessDenied):
        return "AccessDenied"
    if isinstance(error, ThrottledError):
        return "Throttled"
    if isinstance(error, TransientError):
        return "EndpointUnreachable" if code in ("ConnectTimeoutError", "ConnectionError") \
            else "Unavailable"
    if isinstance(error, InvalidSpec):
        return "InvalidLocation"
    return "Failed"


def _s3_endpoint(config: Mapping[str, Any]) -> str | None:
    endpoint = config.get("endpoint")
    if not endpoint:
        return None
    endpoint = str(endpoint)
    if "://" not in endpoint:
        endpoint = f"{'http' if config.get('insecure') else 'https'}://{endpoint}"
    return endpoint


def _addressing(config: Mapping[str, Any], endpoint: str | None) -> str:
    style = str(config.get("addressingStyle") or "")
    style = {"virtual-hosted": "virtual", "virtualhosted": "virtual"}.get(style, style)
    if style in ("path", "virtual"):
        return style
    if endpoint and "amazonaws.com" not in endpoint:
        return "path"  # Argo's MinIO client looks buckets up by path on other endpoints
    return "auto"


class DriverFactory:
    """Opens (and caches) a driver for a target, reading its secrets when needed."""

    def __init__(self, secrets: SecretReader, settings: StorageSettings | None = None, *,
                 decorate: Callable[[Driver], Driver] = lambda driver: driver) -> None:
        """`decorate` wraps every driver opened (logging, accounting, tests' recorders)."""
        self.settings = settings or StorageSettings()
        self._secrets = secrets
        self._decorate = decorate
        self._cache: OrderedDict[str, Driver] = OrderedDict()
        self._lock = threading.Lock()
        self._ca_dir: Path | None = None

    def open(self, target: Target, namespace: str) -> Driver:
        config = self._resolve(target, namespace)
        # the artifact's own key is not part of where the client goes: one per bucket
        where = {k: v for k, v in config.items() if k not in _PER_ARTIFACT}
        cache_key = hashlib.sha256(json.dumps([namespace, target.kind, target.bucket, where],
                                              sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            driver = self._cache.get(cache_key)
            if driver is not None:
                self._cache.move_to_end(cache_key)
                return driver
        driver = self._decorate(self._build(target, config))
        with self._lock:
            self._cache[cache_key] = driver
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
        return driver

    def _secret(self, namespace: str, ref: Any, field: str) -> str | None:
        if ref is None:
            return None
        name, key = secret_ref(ref, field)
        return self._secrets(namespace, name, key)

    def _resolve(self, target: Target, namespace: str) -> dict[str, Any]:
        """The location with its secrets read: what the driver is built from."""
        config = dict(target.config)
        for field in ("accessKeySecret", "secretKeySecret", "sessionTokenSecret", "caSecret"):
            if field in config:
                config[field] = self._secret(namespace, config[field], f"{target.kind}.{field}")
        return config

    def _build(self, target: Target, config: Mapping[str, Any]) -> Driver:
        if target.kind == "s3":
            return self._s3(target, config)
        if target.kind == "oss":
            return self._oss(target, config)
        if target.kind == "local":
            root = config.get("root") or self.settings.local_root
            if not root:
                raise InvalidSpec("a local repository needs a root (or --local-root)")
            return LocalDriver(str(root), target.bucket)
        raise InvalidSpec(f"{target.kind} storage is not supported by the Argosy GC")

    def _ca_file(self, pem: str) -> str:
        with self._lock:
            if self._ca_dir is None:
                self._ca_dir = Path(tempfile.mkdtemp(prefix="argosy-gc-ca-"))
        path = self._ca_dir / (hashlib.sha256(pem.encode()).hexdigest()[:16] + ".pem")
        if not path.exists():
            path.write_text(pem)
        return str(path)

    def _s3(self, target: Target, config: Mapping[str, Any]) -> Driver:
        if config.get("roleARN"):
            raise InvalidSpec(f"{target.url}: roleARN is not supported by the Argosy GC yet; "
                              "give keys or useSDKCreds (IRSA)")
        endpoint = _s3_endpoint(config)
        sdk = bool(config.get("useSDKCreds"))
        ca = config.get("caSecret")
        settings = S3Settings(
            endpoint=endpoint, region=config.get("region") or None,
            addressing_style=_addressing(config, endpoint),
            verify=self._ca_file(str(ca)) if ca else True,
            access_key=None if sdk else config.get("accessKeySecret"),
            secret_key=None if sdk else config.get("secretKeySecret"),
            session_token=None if sdk else config.get("sessionTokenSecret"),
            max_connections=self.settings.max_connections,
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout)
        return S3Driver(settings, target.bucket)

    def _oss(self, target: Target, config: Mapping[str, Any]) -> Driver:
        try:
            from argosy.artifacts.drivers.oss import OssDriver, OssSettings
        except ImportError:
            raise InvalidSpec("OSS repositories need Argosy's oss extra (oss2, crcmod)") \
                from None
        endpoint = str(config.get("endpoint") or "")
        if endpoint and "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        sdk = bool(config.get("useSDKCreds"))
        token = config.get("securityToken")
        settings = OssSettings(
            endpoint=endpoint or None,
            access_key=None if sdk else config.get("accessKeySecret"),
            secret_key=None if sdk else config.get("secretKeySecret"),
            security_token=str(token) if token and not sdk else None, use_sdk_creds=sdk,
            max_connections=self.settings.max_connections,
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout)
        return OssDriver(settings, target.bucket)


def describe_error(error: ArtifactError) -> str:
    return f"{cause_of(error)}: {error}"
