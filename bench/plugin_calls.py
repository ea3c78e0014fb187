"""The gRPC side of bench/plugin.py: the plugin (or the raw grpcio server) in its own
process on a unix socket, and the client calls the benchmark times, made from the
benchmark's own process as Argo's executor makes them.

Why it exists: the calls must be exactly what a client of Argo's artifact plugin sends
(only paths and keys cross the socket for Save, Load and Delete; OpenStream's bytes are
counted and dropped; SaveStream sends the file in 2 MiB chunks), and every call must be
checked for Argo's failure signals (`success: false`, an `error` frame, a stream that
never says `is_end`) so a failed call is never timed as a fast one.
"""

from __future__ import annotations

import json
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

from argosy.plugin import artifact_pb2 as pb
from argosy.plugin import artifact_pb2_grpc as rpc

MiB = 1 << 20
CHUNK = 2 * MiB  # SaveStream's chunks, Argo's executor's size
START_TIMEOUT_S = 60
SECRET = "bench-rgw"  # the Secret the plugin locations name, as files in Argo's layout


class CallFailed(RuntimeError):
    """A call answered failure (or broke off): its message is the plugin's one line."""


@dataclass
class Server:
    """A gRPC server process and a channel to it."""

    process: subprocess.Popen[bytes]
    socket: Path
    log: Path
    channel: grpc.Channel
    stub: rpc.ArtifactServiceStub

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _start(cmd: list[str], socket: Path, log: Path, env: dict[str, str], ready: str) -> Server:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            start_new_session=True,  # a Ctrl-C of the benchmark reaches it through stop()
        )
    channel = grpc.insecure_channel(f"unix:{socket}")
    server = Server(process, socket, log, channel, rpc.ArtifactServiceStub(channel))
    deadline = time.monotonic() + START_TIMEOUT_S
    while ready not in server.output():
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{' '.join(cmd)} did not start: {server.output()[-2000:]}")
        time.sleep(0.05)
    return server


def start_plugin(argosy: str, socket: Path, log: Path, secrets: Path) -> Server:
    """`argosy plugin SOCKET` as Argo starts it, its Secrets as files under `secrets`; no
    AWS_* variables: its locations name everything it needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARGOSY_"))}
    cmd = [argosy, "plugin", str(socket), "--secrets-dir", str(secrets)]
    return _start(cmd, socket, log, env, "serving")


def start_raw(socket: Path, log: Path) -> Server:
    """bench/plugin_raw.py: OpenStream from memory, no storage behind it."""
    cmd = [sys.executable, "-m", "bench.plugin_raw", str(socket)]
    return _start(cmd, socket, log, dict(os.environ), '"ready"')


def write_secret(folder: Path, access_key: str, secret_key: str) -> None:
    (folder / SECRET).mkdir(parents=True, exist_ok=True)
    (folder / SECRET / "accessKey").write_text(access_key)
    (folder / SECRET / "secretKey").write_text(secret_key)


def configuration(endpoint: str, bucket: str, region: str) -> str:
    """A plugin location's configuration: Argo's S3 fields, as the community S3 plugin
    reads them (JSON is YAML)."""
    return json.dumps(
        {
            "bucket": bucket,
            "endpoint": endpoint.split("://", 1)[-1].rstrip("/"),
            "insecure": endpoint.startswith("http://"),
            "region": region,
            "accessKeySecret": {"name": SECRET, "key": "accessKey"},
            "secretKeySecret": {"name": SECRET, "key": "secretKey"},
        }
    )


def artifact(config: str, key: str) -> pb.Artifact:
    return pb.Artifact(
        name="bench", plugin=pb.PluginArtifact(name="argosy", configuration=config, key=key)
    )


def _checked(answer: Any, call: str) -> None:
    if not answer.success:
        raise CallFailed(f"{call}: {answer.error}")


def save(stub: rpc.ArtifactServiceStub, config: str, key: str, path: Path, timeout: float) -> None:
    _checked(
        stub.Save(
            pb.SaveArtifactRequest(path=str(path), output_artifact=artifact(config, key)),
            timeout=timeout,
        ),
        "Save",
    )


def load(stub: rpc.ArtifactServiceStub, config: str, key: str, path: Path, timeout: float) -> None:
    _checked(
        stub.Load(
            pb.LoadArtifactRequest(input_artifact=artifact(config, key), path=str(path)),
            timeout=timeout,
        ),
        "Load",
    )


def delete(stub: rpc.ArtifactServiceStub, config: str, key: str, timeout: float) -> None:
    _checked(
        stub.Delete(pb.DeleteArtifactRequest(artifact=artifact(config, key)), timeout=timeout),
        "Delete",
    )


def open_stream(stub: rpc.ArtifactServiceStub, config: str, key: str, timeout: float) -> int:
    """Read the whole stream, keep nothing; the bytes received. A stream that ends in an
    error frame, or without `is_end`, fails."""
    received, ended = 0, False
    for frame in stub.OpenStream(
        pb.OpenStreamRequest(artifact=artifact(config, key)), timeout=timeout
    ):
        if frame.error:
            raise CallFailed(f"OpenStream: {frame.error} (after {received} B)")
        if ended:
            raise CallFailed("OpenStream: a frame after is_end")
        received += len(frame.data)
        ended = frame.is_end
    if not ended:
        raise CallFailed(f"OpenStream: ended without is_end after {received} B")
    return received


def _chunks(path: Path, first: pb.Artifact) -> Iterator[pb.SaveStreamArtifactRequest]:
    yield pb.SaveStreamArtifactRequest(output_artifact=first)
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            yield pb.SaveStreamArtifactRequest(chunk=chunk)


def save_stream(
    stub: rpc.ArtifactServiceStub, config: str, key: str, path: Path, timeout: float
) -> None:
    _checked(stub.SaveStream(_chunks(path, artifact(config, key)), timeout=timeout), "SaveStream")


def warm(stub: rpc.ArtifactServiceStub, config: str) -> None:
    """One cheap call per configuration, so the plugin opens its driver (a client per
    configuration, kept) before the first timed call."""
    answer = stub.IsDirectory(
        pb.IsDirectoryRequest(artifact=artifact(config, "warm-up")), timeout=60
    )
    if answer.error:
        raise CallFailed(f"IsDirectory: {answer.error}")


def rpc_error(error: grpc.RpcError) -> str:
    """One line for a call that broke off (the server died, a deadline passed)."""
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    return f"{code.name if code else 'RPC error'}: {details}"
