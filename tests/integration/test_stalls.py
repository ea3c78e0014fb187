"""Servers that stop answering, on 127.0.0.1, against `argosy` run as a user runs it: a
transfer that moves no byte for its stall timeout fails with exit 1 naming the endpoint
and what it waited for, in seconds rather than minutes, whatever the retries; a deadline
cuts a transfer that moves but too slowly.

The servers are a few lines each: one reads every request and never answers, one answers
a GET's head and the start of its body and then nothing, one answers CreateMultipartUpload
and then nothing, one trickles a body."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sidecar.pods import Pod, configmap, secrets

MiB = 1 << 20
SIZE = 64 * MiB  # what the head-answering servers say the object is
Handler = Callable[[socket.socket], None]


def _requests(conn: socket.socket) -> Iterator[bytes]:
    """Each request's head as it arrives, its body read and dropped."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(1 << 16)
            if not chunk:
                return
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(data) < length:
            chunk = conn.recv(1 << 16)
            if not chunk:
                return
            data += chunk
        data = data[length:]
        yield head


def _partial_head() -> bytes:
    return (
        b"HTTP/1.1 206 Partial Content\r\n"
        + f"Content-Length: {SIZE}\r\nContent-Range: bytes 0-{SIZE - 1}/{SIZE}\r\n".encode()
        + b'ETag: "e"\r\nLast-Modified: Sun, 06 Dec 2026 10:00:00 GMT\r\n\r\n'
    )


def silent(conn: socket.socket) -> None:
    for _ in _requests(conn):
        pass


def head_then_nothing(conn: socket.socket) -> None:
    for _ in _requests(conn):
        conn.sendall(_partial_head() + b"x" * 1000)


def creates_then_nothing(conn: socket.socket) -> None:
    for head in _requests(conn):
        if b"?uploads" in head.split(b"\r\n", 1)[0]:
            xml = b"<InitiateMultipartUploadResult><UploadId>u1</UploadId>"
            xml += b"</InitiateMultipartUploadResult>"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(xml) + xml)


def trickle(conn: socket.socket) -> None:
    for _ in _requests(conn):
        conn.sendall(_partial_head())
        for _ in range(SIZE // (16 << 10)):  # 16 KiB every 20 ms: ~0.8 MiB/s, never idle
            conn.sendall(b"x" * (16 << 10))
            time.sleep(0.02)


@dataclass
class Server:
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    listeners: list[socket.socket] = []
    connections: list[socket.socket] = []

    def start(handler: Handler) -> Server:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                connections.append(conn)
                threading.Thread(target=_quietly, args=(handler, conn), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return Server(listener.getsockname()[1])

    yield start
    for sock in listeners + connections:
        sock.close()


def _quietly(handler: Handler, conn: socket.socket) -> None:
    try:
        handler(conn)
    except OSError:
        pass  # the client gave up and closed: that is the point


@dataclass
class Ran:
    code: int
    err: str


def _argosy(env: dict[str, str], cwd: Path, *args: str) -> Ran:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "ARGOSY_"))}
    done = subprocess.run(  # a hang past the stall rule ends in TimeoutExpired
        [sys.executable, "-m", "argosy", *args],
        env={**keep, "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Ran(done.returncode, done.stderr)


def _s3(server: Server) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "us-east-1",
    }


def _failed_fast(ran: Ran, *expected: str) -> None:
    assert ran.code == 1, ran.err
    assert len(ran.err.strip().splitlines()) == 1, ran.err
    for text in expected:
        assert text in ran.err


def test_a_file_upload_to_a_server_that_never_answers_fails_in_seconds_naming_it(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(silent)
    (tmp_path / "f").write_bytes(os.urandom(3 * MiB))
    ran = _argosy(_s3(server), tmp_path, "cp", "--stall-timeout", "2", "f", "s3://b/k")
    _failed_fast(
        ran,
        f"s3://b/k: no progress for 2 s waiting for the answer to PutObject from {server.endpoint}",
    )


def test_a_file_download_from_a_server_that_never_answers_fails_in_seconds_and_leaves_nothing(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(silent)
    ran = _argosy(_s3(server), tmp_path, "cp", "--stall-timeout", "2", "s3://b/k", "out/")
    _failed_fast(ran, "s3://b/k: no progress for 2 s waiting for the answer to GetObject")
    assert server.endpoint in ran.err and not (tmp_path / "out").exists()


def test_a_download_whose_answer_stops_midway_fails_in_seconds_and_leaves_nothing(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(head_then_nothing)
    (tmp_path / "out").mkdir()
    ran = _argosy(_s3(server), tmp_path, "cp", "--stall-timeout", "2", "s3://b/k", "out/")
    _failed_fast(
        ran, "no progress for 2 s waiting for the rest of the answer to GetObject", server.endpoint
    )
    assert os.listdir(tmp_path / "out") == []


def test_a_tree_upload_to_a_server_that_never_answers_fails_as_a_whole_in_seconds(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(silent)
    for i in range(100):  # more files than go at once: the tree stalls once, not per file
        (tmp_path / "tree" / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / f"d{i % 7}" / f"f{i}").write_bytes(os.urandom(100))
    ran = _argosy(_s3(server), tmp_path, "cp", "-r", "--stall-timeout", "2", "tree", "s3://b/t/")
    _failed_fast(ran, "no progress for 2 s waiting for the answer to PutObject", server.endpoint)


def test_a_multipart_upload_whose_parts_go_unanswered_fails_in_seconds(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(creates_then_nothing)
    (tmp_path / "f").write_bytes(os.urandom(12 * MiB))
    ran = _argosy(
        _s3(server), tmp_path, "cp", "--stall-timeout", "2", "--part-size", "5", "f", "s3://b/k"
    )
    assert ran.code == 1, ran.err
    error = ran.err.strip().splitlines()[-1]  # after the warning that the abort went unanswered
    assert error.startswith(
        "argosy: error: s3://b/k: no progress for 2 s waiting for the answer to UploadPart"
    )
    assert server.endpoint in error


def test_an_oss_upload_to_a_server_that_never_answers_fails_in_seconds_naming_it(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(silent)
    (tmp_path / "f").write_bytes(os.urandom(1000))
    env = {
        "OSS_ENDPOINT": server.endpoint,
        "OSS_ACCESS_KEY_ID": "key",
        "OSS_ACCESS_KEY_SECRET": "secret",
    }
    ran = _argosy(env, tmp_path, "cp", "--stall-timeout", "2", "f", "oss://bucket/k")
    _failed_fast(
        ran,
        "oss://bucket/k: no progress for 2 s waiting for the answer to PutObject from "
        f"{server.endpoint}",
    )


def test_the_deadline_cuts_a_download_that_moves_but_too_slowly(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(trickle)  # 64 MiB at ~0.8 MiB/s: over a minute, never 2 s idle
    (tmp_path / "out").mkdir()
    ran = _argosy(
        _s3(server), tmp_path, "cp", "--stall-timeout", "2", "--deadline", "3", "s3://b/k", "out/"
    )
    _failed_fast(ran, "s3://b/k", "the deadline of 3 s passed")
    assert os.listdir(tmp_path / "out") == []


def test_a_pods_stall_timeout_from_its_annotation_fails_the_output_in_seconds(
    serve: Callable[[Handler], Server], tmp_path: Path
) -> None:
    server = serve(silent)
    secrets(tmp_path / "secrets", {"s3": {"accessKey": "key", "secretKey": "secret"}})
    repo = configmap(
        {
            "keyFormat": "{{workflow.name}}",
            "s3": {
                "endpoint": server.endpoint,
                "bucket": "b",
                "insecure": True,
                "accessKeySecret": {"name": "s3", "key": "accessKey"},
                "secretKeySecret": {"name": "s3", "key": "secretKey"},
            },
            "argosy": {"stallTimeout": 600},  # the annotation's 2 s wins over the repository's
        },
        tmp_path / "repo.yaml",
    )
    pod = Pod(tmp_path / "pod", repo, env={"ARGOSY_SECRETS_DIR": str(tmp_path / "secrets")})
    pod.workdir.mkdir(parents=True)
    (pod.workdir / "annotations").write_text('argosy.io/settings="{\\"stallTimeout\\": 2}"\n')
    _, wait = pod.main_and_wait(
        "echo result > tmp/r.txt",
        {"name": "t", "outputs": {"artifacts": [{"name": "r", "path": "/tmp/r.txt"}]}},
    )
    assert wait.code == 1, wait.err
    reason = pod.output("r")["reason"]
    assert "no progress for 2 s" in reason and server.endpoint in reason
