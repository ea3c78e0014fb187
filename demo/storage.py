"""Where the demo's workflows keep their artifacts, written down the way Argo users do: an
`artifact-repositories` ConfigMap file (REPO.yaml) whose entry names its credentials as
Secrets, and those Secrets as files under a secrets folder (`SECRETS/<name>/<key>`,
Argo's mount layout, given to the sidecar as ARGOSY_SECRETS_DIR).

By default the repository is the embedded one: an S3 server (moto) started in this
process, which needs nothing from outside, whatever AWS_* or OSS_* variables are set.
`--endpoint URL --bucket NAME` (or `--bucket` with the endpoint from AWS_ENDPOINT_URL /
OSS_ENDPOINT) points the same workflows at a real S3 or OSS endpoint instead;
`--bucket oss://NAME` picks OSS.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from argosy.argo import repository as repo
from argosy.argo.names import DEFAULT_REPOSITORY_ANNOTATION, REPOSITORIES_CONFIGMAP
from argosy.argo.secrets import FileSecrets
from argosy.artifacts.drivers import check_endpoint
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Driver

REPO_KEY = "default"
SECRET = "argosy-demo-credentials"
DEMO_BUCKET = "argosy-demo"
KEY_FORMAT = "{{workflow.name}}/{{pod.name}}"
MOTO_ACCESS, MOTO_SECRET = "demo", "demo-secret"  # moto accepts any pair


@dataclass(frozen=True)
class DemoStorage:
    """One repository entry and the secret values it refers to."""

    kind: str  # "s3" or "oss"
    bucket: str
    endpoint: str
    entry: Mapping[str, Any]  # Argo's repository entry, secret references only
    secrets: Mapping[str, str] = field(repr=False)  # key in Secret SECRET -> value
    embedded: bool = False

    @property
    def url(self) -> str:
        return f"{self.kind}://{self.bucket}/"

    def configmap(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": REPOSITORIES_CONFIGMAP,
                "annotations": {DEFAULT_REPOSITORY_ANNOTATION: REPO_KEY},
            },
            "data": {REPO_KEY: yaml.safe_dump(dict(self.entry), sort_keys=False)},
        }

    def secret(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET},
            "type": "Opaque",
            "stringData": dict(self.secrets),
        }

    def write(self, folder: Path) -> tuple[Path, Path]:
        """REPO.yaml and the secrets folder, under `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        repository = folder / "artifact-repositories.yaml"
        repository.write_text(yaml.safe_dump(self.configmap(), sort_keys=False))
        secrets_dir = folder / "secrets"
        (secrets_dir / SECRET).mkdir(parents=True, exist_ok=True)
        for key, value in self.secrets.items():
            path = secrets_dir / SECRET / key
            path.write_text(value)
            path.chmod(0o600)
        return repository, secrets_dir

    def driver(self, secrets_dir: Path) -> Driver:
        """A driver for the bucket, opened from the entry as the sidecar opens it."""
        entry = repo.parse_entry(
            dict(self.entry), secrets=FileSecrets(secrets_dir), source="the demo's repository"
        )
        return repo.repository_driver(entry, default_local_root=str(secrets_dir))


def _refs(*keys: str) -> dict[str, Any]:
    names = {
        "access": "accessKeySecret",
        "secret": "secretKeySecret",
        "token": "sessionTokenSecret",
    }
    return {names[k]: {"name": SECRET, "key": k} for k in keys}


def _host(endpoint: str) -> tuple[str, bool]:
    """Argo writes endpoints without a scheme; `insecure: true` means plain http."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint, False
    return rest.rstrip("/"), scheme == "http"


def s3_storage(
    endpoint: str,
    bucket: str,
    *,
    access: str | None,
    secret: str | None,
    token: str | None = None,
    region: str | None = None,
    embedded: bool = False,
) -> DemoStorage:
    host, insecure = _host(endpoint)
    config: dict[str, Any] = {"endpoint": host, "bucket": bucket, "insecure": insecure}
    if region:
        config["region"] = region
    if "amazonaws.com" not in host:
        config["addressingStyle"] = "path"  # MinIO, RGW, moto: path-style, as Argo's client
    values: dict[str, str] = {}
    if access and secret:
        values = {"access": access, "secret": secret, **({"token": token} if token else {})}
        config.update(_refs(*values))
    else:
        config["useSDKCreds"] = True  # the AWS default chain: profile, IRSA, instance role
    return DemoStorage(
        "s3",
        bucket,
        endpoint,
        {"archiveLogs": True, "s3": config, "keyFormat": KEY_FORMAT},
        values,
        embedded,
    )


def oss_storage(
    endpoint: str,
    bucket: str,
    *,
    access: str | None,
    secret: str | None,
) -> DemoStorage:
    if not (access and secret):
        raise InvalidSpec("OSS needs OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET")
    config = {"endpoint": endpoint, "bucket": bucket, **_refs("access", "secret")}
    return DemoStorage(
        "oss",
        bucket,
        endpoint,
        {"archiveLogs": True, "oss": config, "keyFormat": KEY_FORMAT},
        {"access": access, "secret": secret},
    )


_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "oss": "OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET",
}


def remote_storage(
    *, endpoint: str | None, bucket: str | None, region: str | None, env: Mapping[str, str]
) -> DemoStorage | None:
    """The storage the flags name (`--endpoint`, `--bucket`), or None for the embedded
    default. The environment fills in what the flags leave out (the endpoint for a
    `--bucket`, credentials) but never points the demo away from its embedded S3 by
    itself: AWS_ENDPOINT_URL set for other tools must not stop `argosy demo`."""
    if not endpoint and not bucket:
        return None
    kind = "s3"
    if bucket and "://" in bucket:
        kind, _, bucket = bucket.partition("://")
        bucket = bucket.strip("/")
        if kind not in ("s3", "oss"):
            raise InvalidSpec(f"--bucket {kind}://...: only s3:// and oss:// are supported")
    elif not endpoint and not env.get("AWS_ENDPOINT_URL") and env.get("OSS_ENDPOINT"):
        kind = "oss"
    if kind == "oss":
        endpoint = endpoint or env.get("OSS_ENDPOINT")
    else:
        endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:  # refused before the demo writes it into its repository file or prints it
        check_endpoint(endpoint, credentials=_CREDENTIALS[kind])
    if not bucket:
        raise InvalidSpec(
            f"--endpoint {endpoint}: give the bucket to use with --bucket NAME "
            "(the demo writes under <workflow>/ and its GC deletes that again)"
        )
    if kind == "oss":
        if not endpoint:
            raise InvalidSpec("--bucket oss://...: give --endpoint or OSS_ENDPOINT")
        return oss_storage(
            endpoint,
            bucket,
            access=env.get("OSS_ACCESS_KEY_ID"),
            secret=env.get("OSS_ACCESS_KEY_SECRET"),
        )
    if not endpoint:
        endpoint = f"https://s3.{region or env.get('AWS_REGION') or 'us-east-1'}.amazonaws.com"
    return s3_storage(
        endpoint,
        bucket,
        access=env.get("AWS_ACCESS_KEY_ID"),
        secret=env.get("AWS_SECRET_ACCESS_KEY"),
        token=env.get("AWS_SESSION_TOKEN"),
        region=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def embedded_s3(bucket: str = DEMO_BUCKET) -> Iterator[DemoStorage]:
    """An S3 server (moto) in this process on 127.0.0.1, for as long as the block runs."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise InvalidSpec(
            "the embedded S3 server needs moto: pip install 'argosy[demo]' "
            "(or give --endpoint and --bucket)"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        from argosy.artifacts.drivers.s3 import S3Driver, S3Settings

        endpoint = f"http://127.0.0.1:{port}"
        S3Driver(
            S3Settings(
                endpoint=endpoint,
                region="us-east-1",
                access_key=MOTO_ACCESS,
                secret_key=MOTO_SECRET,
                addressing_style="path",
            ),
            bucket,
        ).create_bucket()
        yield s3_storage(
            endpoint,
            bucket,
            access=MOTO_ACCESS,
            secret=MOTO_SECRET,
            region="us-east-1",
            embedded=True,
        )
    finally:
        server.stop()
