"""Configuration for the command line, resolved once: flags > --repository FILE >
environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION; OSS_ENDPOINT, OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET,
OSS_SESSION_TOKEN, OSS_REGION; ARGOSY_LOCAL_ROOT). The only place the CLI reads
`os.environ`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from argosy.artifacts import repository as repo
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.location import Location
from argosy.artifacts.protocol import Driver
from argosy.artifacts.resume import CheckpointStore
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import MiB, TransferSettings


def default_local_root(env: Mapping[str, str]) -> str:
    if env.get("ARGOSY_LOCAL_ROOT"):
        return env["ARGOSY_LOCAL_ROOT"]
    data_home = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                          "share")
    return os.path.join(data_home, "argosy")


@dataclass
class Config:
    args: argparse.Namespace
    env: Mapping[str, str]
    repository: repo.Repository | None = None
    _drivers: dict[tuple[str, str], Driver] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: Mapping[str, str]) -> Config:
        repository = None
        if getattr(args, "repository", None):
            secrets = Path(env.get("ARGOSY_SECRETS_DIR", "/argo/secret"))
            repository = repo.load(args.repository, key=args.repository_key, secrets_dir=secrets)
        elif getattr(args, "repository_key", None):
            raise InvalidSpec("--repository-key needs --repository FILE")
        return cls(args, env, repository)

    def checkpoints(self) -> CheckpointStore | None:
        """Where resumable uploads keep their checkpoints (None with --no-resume)."""
        if getattr(self.args, "no_resume", False):
            return None
        folder = self.env.get("ARGOSY_CHECKPOINT_DIR")
        if not folder:
            cache = self.env.get("XDG_CACHE_HOME") or os.path.join(
                os.path.expanduser("~"), ".cache")
            folder = os.path.join(cache, "argosy", "uploads")
        return CheckpointStore(folder)

    def transfer(self) -> TransferSettings:
        defaults = TransferSettings()
        part = getattr(self.args, "part_size", None)
        conc = getattr(self.args, "concurrency", None)
        return TransferSettings(
            part_size=part * MiB if part else defaults.part_size,
            multipart_threshold=part * MiB if part else defaults.multipart_threshold,
            stream_part_size=min(part * MiB, defaults.stream_part_size) if part
            else defaults.stream_part_size,
            concurrency=conc or defaults.concurrency,
            retry=RetryPolicy(),
        )

    def driver(self, location: Location) -> Driver:
        cache_key = (location.scheme, location.bucket)
        if cache_key not in self._drivers:
            self._drivers[cache_key] = self._open(location)
        return self._drivers[cache_key]

    def _open(self, location: Location) -> Driver:
        if location.scheme == "local":
            root = None
            if self.repository and self.repository.local:
                root = self.repository.local.root
            return LocalDriver(root or default_local_root(self.env), location.bucket)
        if location.scheme == "s3":
            from argosy.artifacts.drivers.s3 import Encryption, S3Driver, S3Settings

            entry = self.repository.s3 if self.repository and self.repository.s3 else None
            a, env = self.args, self.env
            verify: bool | str = True
            if getattr(a, "insecure", False) or (entry and entry.insecure and
                                                 entry.endpoint and
                                                 entry.endpoint.startswith("https")):
                verify = False
            ca = getattr(a, "ca_bundle", None) or (entry.ca_bundle if entry else None) \
                or env.get("AWS_CA_BUNDLE")
            if ca:
                verify = ca
            encryption = Encryption(
                mode=entry.sse_mode if entry else "none",
                kms_key_id=entry.kms_key_id if entry else None,
                kms_context=entry.kms_context if entry else None,
                customer_key=entry.customer_key if entry else None,
            )
            if getattr(a, "sse", None):
                encryption = Encryption(mode=a.sse, kms_key_id=a.sse_kms_key_id,
                                        customer_key=_read_key(a.sse_c_key_file))
            settings = S3Settings(
                endpoint=getattr(a, "endpoint", None) or (entry.endpoint if entry else None)
                or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
                region=getattr(a, "region", None) or (entry.region if entry else None)
                or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
                addressing_style=getattr(a, "addressing_style", None)
                or (entry.addressing_style if entry else "auto"),
                verify=verify,
                access_key=entry.access_key if entry else None,
                secret_key=entry.secret_key if entry else None,
                session_token=entry.session_token if entry else None,
                profile=getattr(a, "profile", None),
                encryption=encryption,
                max_connections=max(32, self.transfer().concurrency * 2 + 8),
            )
            return S3Driver(settings, location.bucket)
        if location.scheme == "oss":
            return self._open_oss(location)
        raise InvalidSpec(f"{location.scheme}:// is not supported yet")

    def _open_oss(self, location: Location) -> Driver:
        try:
            from argosy.artifacts.drivers.oss import Lifecycle, OssDriver, OssSettings
        except ImportError as error:
            raise InvalidSpec(f"oss:// needs oss2 and crcmod ({error.name} is missing): "
                              "pip install 'argosy[oss]'") from None

        entry = self.repository.oss if self.repository and self.repository.oss else None
        a, env = self.args, self.env
        verify: bool | str = not getattr(a, "insecure", False)
        if getattr(a, "ca_bundle", None):
            verify = a.ca_bundle
        lifecycle = None
        if entry and (entry.mark_infrequent_access_after_days or
                      entry.mark_deletion_after_days):
            key_format = self.repository.key_format if self.repository else ""
            lifecycle = Lifecycle(entry.mark_infrequent_access_after_days,
                                  entry.mark_deletion_after_days, repo.static_prefix(key_format))
        if entry and (entry.access_key or entry.use_sdk_creds):
            key, secret, token = entry.access_key, entry.secret_key, entry.security_token
        else:
            key, secret, token = (env.get("OSS_ACCESS_KEY_ID"), env.get("OSS_ACCESS_KEY_SECRET"),
                                  env.get("OSS_SESSION_TOKEN"))
        settings = OssSettings(
            endpoint=getattr(a, "endpoint", None) or (entry.endpoint if entry else None)
            or env.get("OSS_ENDPOINT"),
            access_key=key, secret_key=secret, security_token=token,
            use_sdk_creds=bool(entry and entry.use_sdk_creds),
            region=env.get("OSS_REGION"),
            verify=verify,
            create_bucket_if_not_present=bool(entry and entry.create_bucket_if_not_present),
            lifecycle=lifecycle,
            max_connections=max(32, self.transfer().concurrency * 2 + 8),
        )
        return OssDriver(settings, location.bucket)


def _read_key(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as error:
        raise InvalidSpec(f"cannot read SSE-C key file {path}: {error.strerror}") from None
    if len(key) != 32:
        raise InvalidSpec(f"SSE-C key in {path} must be 32 bytes, not {len(key)}")
    return key
