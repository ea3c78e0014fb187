"""Open a driver for one repository entry.

Every layer that reaches storage from an Argo entry (the CLI with `--repository`, the
sidecar with an artifact's merged location, `argosy repo check`) opens its driver here,
so an entry means the same thing everywhere. The entry arrives fully resolved: secrets
read, flags and environment already folded in by the caller.
"""

from __future__ import annotations

from argosy.artifacts import repository as repo
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Driver


def s3_driver(entry: repo.S3Entry, bucket: str, *, max_connections: int = 32,
              profile: str | None = None) -> Driver:
    from argosy.artifacts.drivers.s3 import Encryption, S3Driver, S3Settings

    verify: bool | str = True
    if entry.insecure and not (entry.endpoint or "").startswith("http://"):
        verify = False  # Argo's insecure means plain http; on https it means no TLS checks
    if entry.ca_bundle:
        verify = entry.ca_bundle
    encryption = Encryption(mode=entry.sse_mode, kms_key_id=entry.kms_key_id,
                            kms_context=entry.kms_context, customer_key=entry.customer_key)
    sdk = entry.use_sdk_creds
    settings = S3Settings(
        endpoint=entry.endpoint, region=entry.region,
        addressing_style=entry.addressing_style, verify=verify,
        access_key=None if sdk else entry.access_key,
        secret_key=None if sdk else entry.secret_key,
        session_token=None if sdk else entry.session_token,
        profile=profile, encryption=encryption, max_connections=max_connections)
    return S3Driver(settings, bucket)


def oss_driver(entry: repo.OssEntry, bucket: str, *, key_format: str = "",
               region: str | None = None, verify: bool | str = True,
               max_connections: int = 32) -> Driver:
    try:
        from argosy.artifacts.drivers.oss import Lifecycle, OssDriver, OssSettings
    except ImportError as error:
        raise InvalidSpec(f"oss:// needs oss2 and crcmod ({error.name} is missing): "
                          "pip install 'argosy[oss]'") from None
    lifecycle = None
    if entry.mark_infrequent_access_after_days or entry.mark_deletion_after_days:
        lifecycle = Lifecycle(entry.mark_infrequent_access_after_days,
                              entry.mark_deletion_after_days, repo.static_prefix(key_format))
    settings = OssSettings(
        endpoint=entry.endpoint, access_key=entry.access_key, secret_key=entry.secret_key,
        security_token=entry.security_token, use_sdk_creds=entry.use_sdk_creds,
        region=region, verify=verify,
        create_bucket_if_not_present=entry.create_bucket_if_not_present,
        lifecycle=lifecycle, max_connections=max_connections)
    return OssDriver(settings, bucket)


def local_driver(entry: repo.LocalEntry | None, bucket: str, *, default_root: str) -> Driver:
    from argosy.artifacts.drivers.local import LocalDriver  # each driver loads when used

    return LocalDriver((entry.root if entry else None) or default_root, bucket)


def bucket_of(repository: repo.Repository) -> str:
    entry = repository.s3 or repository.oss or repository.local
    bucket = entry.bucket if entry else None
    if not bucket:
        raise InvalidSpec(f"{repository.source or 'the repository'} names no bucket")
    return bucket


def repository_driver(repository: repo.Repository, *, bucket: str | None = None,
                      default_local_root: str, max_connections: int = 32) -> Driver:
    """The driver for an entry's bucket (or `bucket`, for an artifact naming its own)."""
    name = bucket or bucket_of(repository)
    if repository.s3:
        return s3_driver(repository.s3, name, max_connections=max_connections)
    if repository.oss:
        return oss_driver(repository.oss, name, key_format=repository.key_format,
                          max_connections=max_connections)
    return local_driver(repository.local, name, default_root=default_local_root)


def scheme_of(repository: repo.Repository) -> str:
    return "s3" if repository.s3 else "oss" if repository.oss else "local"
