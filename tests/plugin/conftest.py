"""A plugin as Argo runs it: `argosy plugin SOCKET` in its own process, spoken to over a
real unix socket with a gRPC client, against Ceph RGW and the OSS test server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from argosy.plugin import artifact_pb2 as pb
from argosy.plugin import artifact_pb2_grpc as rpc
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, s3_driver, unique_bucket


@dataclass
class Plugin:
    process: subprocess.Popen[bytes]
    socket: Path
    log: Path
    stub: rpc.ArtifactServiceStub
    channel: grpc.Channel

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout)


def start_plugin(
    socket: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True
) -> Plugin:
    log = tmp_path / f"plugin-{time.monotonic_ns()}.log"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "ARGOSY_", "KUBERNETES_"))
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "argosy", "plugin", str(socket), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**base, "HOME": str(tmp_path), **(env or {})},
        )
    channel = grpc.insecure_channel(f"unix:{socket}")
    plugin = Plugin(process, socket, log, rpc.ArtifactServiceStub(channel), channel)
    if wait:
        deadline = time.monotonic() + 30
        while "serving" not in plugin.output():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the plugin did not start: {plugin.output()}")
            time.sleep(0.02)
    return plugin


def artifact(configuration: str, key: str, name: str = "a") -> pb.Artifact:
    return pb.Artifact(
        name=name, plugin=pb.PluginArtifact(name="argosy", configuration=configuration, key=key)
    )


@dataclass
class Storage:
    """One bucket the plugin reaches, the configuration that names it, and a driver of
    our own to look at it."""

    configuration: str
    driver: Any
    secrets: Path


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    return folder


def _secret(folder: Path, name: str, values: dict[str, str]) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    for key, value in values.items():
        (folder / name / key).write_text(value)


@pytest.fixture
def rgw_storage(rgw: dict[str, str], secrets: Path) -> Storage:
    bucket = unique_bucket("plugin")
    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"], rgw["AWS_ACCESS_KEY_ID"], rgw["AWS_SECRET_ACCESS_KEY"], bucket
    )
    _secret(
        secrets,
        "rgw-creds",
        {"accessKey": rgw["AWS_ACCESS_KEY_ID"], "secretKey": rgw["AWS_SECRET_ACCESS_KEY"]},
    )
    configuration = yaml.safe_dump(
        {  # Argo's S3 fields, as the community S3 plugin reads them
            "bucket": bucket,
            "endpoint": rgw["AWS_ENDPOINT_URL"].removeprefix("http://"),
            "insecure": True,
            "region": "us-east-1",
            "accessKeySecret": {"name": "rgw-creds", "key": "accessKey"},
            "secretKeySecret": {"name": "rgw-creds", "key": "secretKey"},
        }
    )
    return Storage(configuration, driver, secrets)


@pytest.fixture
def oss_storage(oss_server: Any, secrets: Path) -> Storage:
    bucket = unique_bucket("plugin")
    driver = oss_driver(oss_server.endpoint, bucket)
    _secret(secrets, "oss-creds", {"accessKey": OSS_ACCESS_KEY, "secretKey": OSS_SECRET})
    configuration = yaml.safe_dump(
        {
            "oss": {  # an Argosy repository entry
                "bucket": bucket,
                "endpoint": oss_server.endpoint,
                "accessKeySecret": {"name": "oss-creds", "key": "accessKey"},
                "secretKeySecret": {"name": "oss-creds", "key": "secretKey"},
            }
        }
    )
    return Storage(configuration, driver, secrets)


@pytest.fixture
def plugin(tmp_path: Path, secrets: Path) -> Iterator[Plugin]:
    running = start_plugin(
        tmp_path / "plugins" / "argosy" / "socket",
        tmp_path,
        "--grace",
        "5",
        env={"ARGOSY_SECRETS_DIR": str(secrets)},
    )
    yield running
    if running.process.poll() is None:
        running.stop()
    running.channel.close()
