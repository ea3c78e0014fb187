"""http inputs follow redirects the way browsers and curl do with credentials: the
headers from secrets, basic auth and cookies go to the input's own origin and to no
other, https never steps down to http, and a chain longer than 10 hops fails.

Each origin is a real HTTP server on 127.0.0.1 (two ports: two origins) that records the
headers of every request it is sent."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from argosy.argo.location import Location
from argosy.argo.template import Artifact
from argosy.artifacts.errors import InvalidSpec
from argosy.sidecar.httpfetch import fetch_http
from tests.sidecar.pods import secrets
from tests.tls_proxy import make_cert

BODY = b"the payload\n"


@dataclass
class Origin:
    """A loopback server: `redirects` maps a path to (status, Location); `/chain/N`
    redirects to `/chain/N-1` until 0; any other path answers BODY."""

    url: str = ""
    redirects: dict[str, tuple[int, str]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, headers)

    def headers_at(self, path: str) -> dict[str, str]:
        return next(headers for seen, headers in self.seen if seen == path)


def _handler(origin: Origin) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            origin.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, location = origin.redirects.get(self.path, (0, ""))
            if self.path.startswith("/chain/") and self.path != "/chain/0":
                status, location = 302, f"/chain/{int(self.path[7:]) - 1}"
            if status:
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


Serve = Callable[..., Origin]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts origins (https when given a TLS context); all are stopped at the end."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(tls: ssl.SSLContext | None = None) -> Origin:
        origin = Origin()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(origin))
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        origin.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
        return origin

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    return secrets(
        tmp_path / "secrets", {"web": {"user": "robot", "password": "hunter2", "token": "t0ken"}}
    )


def _fetch(
    url: str, secrets_dir: Path, dest: Path, headers: list[Any] | None = None, basic: bool = True
) -> Path:
    config: dict[str, Any] = {
        "url": url,
        "headers": headers
        or [{"name": "X-Token", "valueFrom": {"secretKeyRef": {"name": "web", "key": "token"}}}],
    }
    if basic:
        config["auth"] = {
            "basicAuth": {
                "usernameSecret": {"name": "web", "key": "user"},
                "passwordSecret": {"name": "web", "key": "password"},
            }
        }
    artifact = Artifact(
        "tool", "inputs.artifacts[0]", path="/bin/tool", location=Location("http", config)
    )
    fetch_http(artifact, dest, secrets_dir=secrets_dir, include=())
    return dest


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_port_carries_neither_basic_auth_nor_headers_from_secrets(
    serve: Serve, secrets_dir: Path, tmp_path: Path, status: int
) -> None:
    first, other = serve(), serve()
    first.redirects["/tool"] = (status, f"{other.url}/tool")
    assert _fetch(f"{first.url}/tool", secrets_dir, tmp_path / "tool").read_bytes() == BODY
    sent = first.headers_at("/tool")
    assert sent["authorization"].startswith("Basic ") and sent["x-token"] == "t0ken"
    followed = other.headers_at("/tool")
    assert "authorization" not in followed and "x-token" not in followed
    assert followed["user-agent"] == "argosy"


def test_a_redirect_within_the_origin_keeps_the_credentials(
    serve: Serve, secrets_dir: Path, tmp_path: Path
) -> None:
    origin = serve()
    origin.redirects["/tool"] = (302, "/v2/tool")
    assert _fetch(f"{origin.url}/tool", secrets_dir, tmp_path / "tool").read_bytes() == BODY
    followed = origin.headers_at("/v2/tool")
    assert followed["authorization"].startswith("Basic ") and followed["x-token"] == "t0ken"


def test_plain_template_headers_follow_to_another_origin_but_cookies_do_not(
    serve: Serve, secrets_dir: Path, tmp_path: Path
) -> None:
    first, other = serve(), serve()
    first.redirects["/tool"] = (302, f"{other.url}/tool")
    _fetch(
        f"{first.url}/tool",
        secrets_dir,
        tmp_path / "tool",
        basic=False,
        headers=[
            {"name": "Accept", "value": "application/octet-stream"},
            {"name": "Cookie", "value": "session=abc"},
        ],
    )
    assert first.headers_at("/tool")["cookie"] == "session=abc"
    followed = other.headers_at("/tool")
    assert followed["accept"] == "application/octet-stream" and "cookie" not in followed


def test_credentials_dropped_at_one_hop_stay_dropped_when_a_later_hop_comes_back(
    serve: Serve, secrets_dir: Path, tmp_path: Path
) -> None:
    first, other = serve(), serve()
    first.redirects["/tool"] = (302, f"{other.url}/bounce")
    other.redirects["/bounce"] = (302, f"{first.url}/back")
    _fetch(f"{first.url}/tool", secrets_dir, tmp_path / "tool")
    assert "authorization" not in first.headers_at("/back")


def test_a_redirect_from_https_down_to_http_is_refused_naming_the_input_and_both_urls(
    serve: Serve, secrets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the fetch trusts the test's CA
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    secure, plain = serve(tls), serve()
    secure.redirects["/tool"] = (302, f"{plain.url}/tool")
    with pytest.raises(InvalidSpec) as refused:
        _fetch(f"{secure.url}/tool", secrets_dir, tmp_path / "tool")
    assert str(refused.value) == (
        f"input tool: refusing the redirect from https to http: "
        f"{secure.url}/tool -> {plain.url}/tool"
    )
    assert secure.seen and not plain.seen
    assert not (tmp_path / "tool").exists()


def test_ten_redirects_are_followed_and_an_eleventh_is_refused_naming_the_limit(
    serve: Serve, secrets_dir: Path, tmp_path: Path
) -> None:
    origin = serve()
    assert _fetch(f"{origin.url}/chain/10", secrets_dir, tmp_path / "ten").read_bytes() == BODY
    with pytest.raises(
        InvalidSpec,
        match=r"^input tool: more than 10 redirects from "
        rf"{origin.url}/chain/11 \(the last to {origin.url}/chain/0\)$",
    ):
        _fetch(f"{origin.url}/chain/11", secrets_dir, tmp_path / "eleven")
    assert not (tmp_path / "eleven").exists()
