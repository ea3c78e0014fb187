"""Open a driver from neutral settings: how to reach S3, OSS or a local repository.

Every component opens its drivers here (the commands, the sidecar, the GC, and above them
Argo's repository entries through `argosy.argo.repository`), so the same settings mean
the same client everywhere. The settings are already resolved: secrets read, flags and
environment folded in by the caller. This module knows no Argo field name; turning an
Argo entry into these settings is the Argo layer's job.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Driver

if TYPE_CHECKING:  # each driver's package loads only when it is opened
    from argosy.artifacts.drivers.oss import OssSettings
    from argosy.artifacts.drivers.s3 import S3Settings


@dataclass(frozen=True)
class S3Storage:
    """An S3 endpoint and how to talk to it.

    endpoint: with scheme (None: AWS by region).
    insecure: plain http when the endpoint says http; on https, no TLS checks.
    addressing_style: path | virtual | auto (botocore's choice).
    ca_bundle: a CA file to trust (wins over `insecure`).
    use_sdk_creds: the SDK's credential chain instead of the keys given.
    sse_mode: none | s3 | kms | c (with kms_key_id, kms_context, customer_key).
    """

    endpoint: str | None = None
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
class OssStorage:
    """An OSS endpoint and how to talk to it.

    endpoint: with scheme. region: set, requests are signed with V4 for it.
    verify: False = no TLS checks; a str = a CA bundle file.
    security_token: an STS token beside the access key.
    use_sdk_creds: Alibaba's credential chain instead of the keys given.
    create_bucket_if_not_present, lifecycle (days, and the prefix they apply under):
    applied once, before the driver's first write.
    """

    endpoint: str | None = None
    region: str | None = None
    verify: bool | str = True
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    use_sdk_creds: bool = False
    create_bucket_if_not_present: bool = False
    mark_infrequent_access_after_days: int | None = None
    mark_deletion_after_days: int | None = None
    lifecycle_prefix: str = ""


@dataclass(frozen=True)
class LocalStorage:
    """A local repository: buckets are folders under `root` (None: the caller's default)."""

    root: str | None = None


Storage = S3Storage | OssStorage | LocalStorage


def default_local_root(env: Mapping[str, str]) -> str:
    """Where local repositories live when none is named: ARGOSY_LOCAL_ROOT, else the
    user's data folder ($XDG_DATA_HOME or ~/.local/share, then /argosy)."""
    if env.get("ARGOSY_LOCAL_ROOT"):
        return env["ARGOSY_LOCAL_ROOT"]
    data_home = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "argosy")


def scheme_of(storage: Storage) -> str:
    return (
        "s3"
        if isinstance(storage, S3Storage)
        else "oss"
        if isinstance(storage, OssStorage)
        else "local"
    )


def s3_driver(
    storage: S3Storage,
    bucket: str,
    *,
    max_connections: int = 32,
    profile: str | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Driver:
    """`stall_timeout` (a transfer's, see `TransferSettings`) caps the socket timeouts: a
    driver whose requests cannot be clamped to what a transfer has left (botocore's)
    then waits no longer than the transfer would."""
    from argosy.artifacts.drivers.s3 import Encryption, S3Driver, S3Settings

    verify: bool | str = True
    if storage.insecure and not (storage.endpoint or "").startswith("http://"):
        verify = False  # insecure on https means no TLS checks; on http it is plain http
    if storage.ca_bundle:
        verify = storage.ca_bundle
    encryption = Encryption(
        mode=storage.sse_mode,
        kms_key_id=storage.kms_key_id,
        kms_context=storage.kms_context,
        customer_key=storage.customer_key,
    )
    sdk = storage.use_sdk_creds
    timeouts = {
        k: v
        for k, v in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout))
        if v is not None
    }
    settings = S3Settings(
        endpoint=storage.endpoint,
        region=storage.region,
        addressing_style=storage.addressing_style,
        verify=verify,
        access_key=None if sdk else storage.access_key,
        secret_key=None if sdk else storage.secret_key,
        session_token=None if sdk else storage.session_token,
        profile=profile,
        encryption=encryption,
        max_connections=max_connections,
        **timeouts,
    )
    return S3Driver(_capped(settings, stall_timeout), bucket)


def oss_driver(
    storage: OssStorage,
    bucket: str,
    *,
    max_connections: int = 32,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Driver:
    """`stall_timeout` caps the socket timeouts, as for `s3_driver`."""
    try:
        from argosy.artifacts.drivers.oss import Lifecycle, OssDriver, OssSettings
    except ImportError as error:
        raise InvalidSpec(
            f"oss:// needs oss2 and crcmod ({error.name} is missing): pip install 'argosy[oss]'"
        ) from None
    lifecycle = None
    if storage.mark_infrequent_access_after_days or storage.mark_deletion_after_days:
        lifecycle = Lifecycle(
            storage.mark_infrequent_access_after_days,
            storage.mark_deletion_after_days,
            storage.lifecycle_prefix,
        )
    timeouts = {
        k: v
        for k, v in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout))
        if v is not None
    }
    settings = OssSettings(
        endpoint=storage.endpoint,
        access_key=storage.access_key,
        secret_key=storage.secret_key,
        security_token=storage.security_token,
        use_sdk_creds=storage.use_sdk_creds,
        region=storage.region,
        verify=storage.verify,
        create_bucket_if_not_present=storage.create_bucket_if_not_present,
        lifecycle=lifecycle,
        max_connections=max_connections,
        **timeouts,
    )
    return OssDriver(_capped(settings, stall_timeout), bucket)


S = TypeVar("S", "S3Settings", "OssSettings")


def _capped(settings: S, stall_timeout: float | None) -> S:
    """The driver's settings with neither socket timeout longer than `stall_timeout`."""
    if stall_timeout is None:
        return settings
    return dataclasses.replace(
        settings,
        connect_timeout=min(settings.connect_timeout, stall_timeout),
        read_timeout=min(settings.read_timeout, stall_timeout),
    )


def local_driver(storage: LocalStorage | None, bucket: str, *, default_root: str) -> Driver:
    from argosy.artifacts.drivers.local import LocalDriver  # each driver loads when used

    return LocalDriver((storage.root if storage else None) or default_root, bucket)


def open_driver(
    storage: Storage,
    bucket: str,
    *,
    default_local_root: str | None = None,
    max_connections: int = 32,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    stall_timeout: float | None = None,
) -> Driver:
    """The driver for one bucket of `storage`."""
    if isinstance(storage, S3Storage):
        return s3_driver(
            storage,
            bucket,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            stall_timeout=stall_timeout,
        )
    if isinstance(storage, OssStorage):
        return oss_driver(
            storage,
            bucket,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            stall_timeout=stall_timeout,
        )
    root = storage.root or default_local_root
    if not root:
        raise InvalidSpec("a local repository needs a root")
    return local_driver(storage, bucket, default_root=root)
