"""A real `argosy serve` process: graceful shutdown on SIGTERM, TLS with a self-signed
certificate made here, and JSON access-log lines that never hold a token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from argosy.testing.faults import Delay, FaultProxy, Rule
from tests.server.conftest import NS, PROXIED_WF, READER, World, art, bearer
from tests.tls_proxy import make_cert

pytestmark = [pytest.mark.rgw]


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    port: int
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def argosy_serve(world: World, tmp_path: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    def start(*flags: str, scheme: str = "http", env: dict[str, str] | None = None) -> Served:
        kubeconfig = world.kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        port = _free_port()
        log = tmp_path / f"serve-{port}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "argosy",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--kubeconfig",
                str(kubeconfig),
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            env={**os.environ, **(env or {})},
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"listening on {scheme}://127.0.0.1:{port}" in line, (line, log.read_text())
        for _ in range(200):  # bounded: the socket is bound just after the line
            if not _refused(port):
                break
            time.sleep(0.05)
        return Served(process, f"{scheme}://127.0.0.1:{port}", port, log)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.asyncio
async def test_sigterm_finishes_the_stream_in_flight_and_refuses_new_connections(
    argosy_serve, world, proxied: FaultProxy
):
    served = argosy_serve("--shutdown-grace", "60")
    proxied.clear()
    # storage at ~3 MB/s: the stream is still going when the signal comes
    proxied.add(Rule(Delay(between_chunks=0.02, chunk=64 << 10), method="^GET$", times=None))
    try:
        async with aiohttp.ClientSession() as session:
            url = served.url + art("big", PROXIED_WF)
            async with session.get(url, headers=bearer(READER)) as r:
                assert r.status == 200
                first = await r.content.readexactly(64 << 10)
                served.process.send_signal(signal.SIGTERM)
                for _ in range(200):  # bounded wait for the listener to close
                    if _refused(served.port):
                        break
                    await asyncio.sleep(0.05)
                assert _refused(served.port)  # new connections are refused
                assert served.process.poll() is None  # while the stream goes on
                rest = await r.read()
            assert first + rest == world.big
        assert await asyncio.to_thread(served.process.wait, 30) == 0
    finally:
        proxied.clear()


@pytest.mark.asyncio
async def test_argo_s_environment_variables_set_the_sandbox_headers(argosy_serve):
    csp = "sandbox allow-scripts; default-src 'self'"
    served = argosy_serve(
        env={"ARGO_ARTIFACT_CONTENT_SECURITY_POLICY": csp, "ARGO_ARTIFACT_X_FRAME_OPTIONS": "DENY"}
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(served.url + art("small"), headers=bearer(READER)) as r:
            assert r.status == 200
            assert r.headers["Content-Security-Policy"] == csp
            assert r.headers["X-Frame-Options"] == "DENY"


@pytest.mark.asyncio
async def test_tls_serves_with_the_given_certificate(argosy_serve, world, tmp_path):
    cert, key = make_cert(tmp_path)
    served = argosy_serve("--tls-cert", str(cert), "--tls-key", str(key), scheme="https")
    trusted = ssl.create_default_context(cafile=str(cert))
    async with aiohttp.ClientSession() as session:
        async with session.get(served.url + art("small"), headers=bearer(READER), ssl=trusted) as r:
            assert r.status == 200 and await r.read() == world.small
        # a client that does not trust the certificate is refused by its own check
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(served.url + "/healthz", ssl=ssl.create_default_context())
        # plain HTTP to the TLS port gets no answer
        with pytest.raises(aiohttp.ClientError):
            await session.get(served.url.replace("https://", "http://") + "/healthz")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "x.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "missing.crt", "--tls-key", "missing.key"], "cannot load --tls-cert"),
    ],
)
def test_bad_tls_flags_are_a_one_line_error(world, tmp_path, flags, message):
    kubeconfig = world.kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    done = subprocess.run(
        [sys.executable, "-m", "argosy", "serve", "--listen", f"127.0.0.1:{_free_port()}"]
        + ["--kubeconfig", str(kubeconfig), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.asyncio
async def test_json_access_log_has_one_line_per_request_and_never_the_token(argosy_serve, world):
    served = argosy_serve("--log-format", "json")
    secret = READER
    async with aiohttp.ClientSession() as session:
        for headers in (
            bearer(secret),
            {"Cookie": f"authorization=Bearer%20{secret}"},
            bearer("wrong-" + secret),
        ):
            async with session.get(
                served.url + art("small") + f"?token={secret}", headers=headers
            ) as r:
                await r.read()
        async with session.get(served.url + "/healthz") as r:
            await r.read()
    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(served.process.wait, 30) == 0
    text = served.log.read_text()
    assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert [(line["method"], line["status"]) for line in lines] == [
        ("GET", 200),
        ("GET", 200),
        ("GET", 401),
        ("GET", 200),
    ]
    assert lines[0]["path"] == art("small") and "seconds" in lines[0]
    assert lines[2]["cause"] == "unauthenticated"
