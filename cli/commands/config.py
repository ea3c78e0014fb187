"""Configuration for the command line, resolved once: flags > --repository FILE >
environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION; OSS_ENDPOINT, OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET,
OSS_SESSION_TOKEN, OSS_REGION; ARGOSY_LOCAL_ROOT). The only place the CLI reads
`os.environ`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from argosy.argo import repository as repo
from argosy.artifacts import connect
from argosy.artifacts.connect import OssStorage, S3Storage, default_local_root
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.location import Location
from argosy.artifacts.protocol import Driver
from argosy.artifacts.resume import CheckpointStore
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import MiB, TransferSettings, direct_io_asked


class _Deferred:
    """Stands for a driver still being opened; every attribute waits for it."""

    def __init__(self, future: Future[Driver]) -> None:
        self._future = future

    def __getattr__(self, name: str) -> Any:
        return getattr(self._future.result(), name)


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
                os.path.expanduser("~"), ".cache"
            )
            folder = os.path.join(cache, "argosy", "uploads")
        return CheckpointStore(folder)

    def transfer(self) -> TransferSettings:
        defaults = TransferSettings()
        part = getattr(self.args, "part_size", None)
        conc = getattr(self.args, "concurrency", None)
        stall = getattr(self.args, "stall_timeout", None)
        files = getattr(self.args, "files", None)
        # 0 is refused by TransferSettings, not taken as "unset"
        return TransferSettings(
            part_size=defaults.part_size if part is None else part * MiB,
            multipart_threshold=defaults.multipart_threshold if part is None else part * MiB,
            stream_part_size=defaults.stream_part_size
            if part is None
            else min(part * MiB, defaults.stream_part_size),
            concurrency=defaults.concurrency if conc is None else conc,
            files=files,
            direct_io=bool(getattr(self.args, "direct_io", False)) or direct_io_asked(self.env),
            retry=RetryPolicy(),
            stall_timeout=defaults.stall_timeout if stall is None else stall,
            deadline=getattr(self.args, "deadline", None),
        )

    def driver(self, location: Location) -> Driver:
        cache_key = (location.scheme, location.bucket)
        if cache_key not in self._drivers:
            self._drivers[cache_key] = self._open(location)
        return self._drivers[cache_key]

    def driver_soon(self, location: Location) -> Driver:
        """The driver for `location`, opened in a background thread: for uploads that
        read their first part before they send anything (an archive being written, a
        stream), the driver's imports and set-up (~0.1 s) overlap with that reading
        instead of coming first. Using it waits for the open; its error is raised there."""
        future: Future[Driver] = Future()

        def run() -> None:
            try:
                future.set_result(self.driver(location))
            except BaseException as error:  # noqa: BLE001 - raised where the driver is used
                future.set_exception(error)

        threading.Thread(target=run, name="argosy-open", daemon=True).start()
        return cast(Driver, _Deferred(future))

    def _open(self, location: Location) -> Driver:
        settings = self.transfer()
        # the pool's threads each hold a connection: --files may ask for more than 32
        max_connections = max(32, settings.concurrency * 2 + 8, settings.files or 0)
        if location.scheme == "local":
            entry = self.repository.local if self.repository else None
            return connect.local_driver(
                entry, location.bucket, default_root=default_local_root(self.env)
            )
        if location.scheme == "s3":
            return connect.s3_driver(
                self._s3_storage(),
                location.bucket,
                max_connections=max_connections,
                profile=getattr(self.args, "profile", None),
                stall_timeout=settings.stall_timeout,
            )
        if location.scheme == "oss":
            return connect.oss_driver(
                self._oss_storage(),
                location.bucket,
                max_connections=max_connections,
                stall_timeout=settings.stall_timeout,
            )
        raise InvalidSpec(f"{location.scheme}:// is not supported yet")

    def _s3_storage(self) -> S3Storage:
        """The repository's S3 storage (or none) with flags and environment folded in."""
        entry = self.repository.s3 if self.repository and self.repository.s3 else None
        a, env = self.args, self.env
        base = entry or S3Storage()
        insecure = bool(getattr(a, "insecure", False)) or base.insecure
        endpoint = (
            getattr(a, "endpoint", None)
            or base.endpoint
            or env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL")
        )
        changes: dict[str, object] = dict(
            endpoint=endpoint,
            region=getattr(a, "region", None)
            or base.region
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION"),
            addressing_style=getattr(a, "addressing_style", None) or base.addressing_style,
            insecure=insecure,
            ca_bundle=getattr(a, "ca_bundle", None) or base.ca_bundle or env.get("AWS_CA_BUNDLE"),
        )
        key_file = getattr(a, "sse_c_key_file", None)
        sse = getattr(a, "sse", None) or ("c" if key_file else None)
        if sse:
            changes.update(
                sse_mode=sse,
                kms_key_id=getattr(a, "sse_kms_key_id", None),
                kms_context=None,
                customer_key=_read_key(key_file),
            )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def _oss_storage(self) -> OssStorage:
        entry = self.repository.oss if self.repository and self.repository.oss else None
        a, env = self.args, self.env
        base = entry or OssStorage()
        if not base.access_key and env.get("OSS_ACCESS_KEY_ID"):
            base = dataclasses.replace(
                base,
                access_key=env.get("OSS_ACCESS_KEY_ID"),
                secret_key=env.get("OSS_ACCESS_KEY_SECRET"),
                security_token=env.get("OSS_SESSION_TOKEN"),
                use_sdk_creds=False,
            )
        verify: bool | str = base.verify if not getattr(a, "insecure", False) else False
        if getattr(a, "ca_bundle", None):
            verify = a.ca_bundle
        endpoint = getattr(a, "endpoint", None) or base.endpoint or env.get("OSS_ENDPOINT")
        return dataclasses.replace(
            base, endpoint=endpoint, verify=verify, region=base.region or env.get("OSS_REGION")
        )


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
