"""An Alibaba STS test server: AssumeRoleWithOIDC (RRSA) on loopback, for the OSS test server.

On ACK a pod trades its projected service-account token for temporary OSS credentials by
calling STS ``AssumeRoleWithOIDC``.  This companion to ``OssTestServer`` answers that call
the way STS does -- JSON with ``Credentials {AccessKeyId, AccessKeySecret, SecurityToken,
Expiration}``, or an error document with STS's codes and statuses -- and registers each
credential it issues with the OSS server, which then accepts requests signed with it until
its expiry (on the OSS server's clock, which may be a fake one).

Use in tests::

    with OssTestServer(tmp_path) as oss, StsTestServer(oss) as sts:
        sts.allow(ROLE_ARN, PROVIDER_ARN, token="the-projected-token")
        # ALIBABA_CLOUD_STS_ENDPOINT=sts.endpoint, ALIBABA_CLOUD_ROLE_ARN=ROLE_ARN, ...
        assert sts.issued[-1].role_arn == ROLE_ARN
        sts.fail_next(503, "")   # the next call answers 503 with an empty body
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .serving import BackgroundServer

if TYPE_CHECKING:
    from .server import OssTestServer

_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
_REQUIRED = ("RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName")


class StsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Issued:
    """One credential handed out (the secret and token stay with the OSS server)."""

    role_arn: str
    session_name: str
    access_key_id: str
    expires_at: float


class StsTestServer(BackgroundServer):
    """AssumeRoleWithOIDC on a background thread; ``start()`` returns the endpoint."""

    def __init__(self, oss: OssTestServer, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.oss = oss
        self.host, self.port = host, port
        self.issued: list[Issued] = []
        self.calls = 0
        self._roles: dict[str, tuple[str, str]] = {}  # role ARN -> (provider ARN, token)
        self._faults: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------
    def allow(self, role_arn: str, provider_arn: str, token: str) -> None:
        """Let ``token`` from ``provider_arn`` assume ``role_arn`` (replacing the token it
        took before, as a rotated service-account token replaces the old one)."""
        with self._lock:
            self._roles[role_arn] = (provider_arn, token)

    def fail_next(self, status: int, body: str | bytes, *, times: int = 1) -> None:
        """Answer the next ``times`` calls with ``status`` and ``body`` verbatim."""
        raw = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._faults.extend([(status, raw)] * times)

    # -- lifecycle ----------------------------------------------------------------------------
    def _make_server(self) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.sts = self  # type: ignore[attr-defined]
        return httpd

    # -- the call -----------------------------------------------------------------------------
    def answer(self, params: dict[str, str]) -> tuple[int, bytes]:
        request_id = str(uuid.uuid4()).upper()
        with self._lock:
            self.calls += 1
            if self._faults:
                return self._faults.pop(0)
        try:
            document = self._assume_role(params)
        except StsError as error:
            return error.status, json.dumps(
                {
                    "RequestId": request_id,
                    "HostId": f"{self.host}:{self.port}",
                    "Code": error.code,
                    "Message": error.message,
                    "Recommend": "https://api.aliyun.com/troubleshoot?q=" + error.code,
                }
            ).encode()
        return 200, json.dumps({"RequestId": request_id, **document}).encode()

    def _assume_role(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("Action") != "AssumeRoleWithOIDC":
            raise StsError(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        for name in _REQUIRED:
            if not params.get(name):
                raise StsError(400, f"Missing{name}", f"{name} is mandatory for this action.")
        duration = params.get("DurationSeconds", "3600")
        if not duration.isdigit() or not 900 <= int(duration) <= 43200:
            raise StsError(
                400,
                "InvalidParameter.DurationSeconds",
                "The Min/Max value of DurationSeconds is 15min/12hr.",
            )
        session = params["RoleSessionName"]
        if not _SESSION_NAME.match(session):
            raise StsError(
                400,
                "InvalidParameter.RoleSessionName",
                "The parameter RoleSessionName is wrongly formed.",
            )
        role = params["RoleArn"]
        with self._lock:
            allowed = self._roles.get(role)
        if allowed is None:
            raise StsError(403, "EntityNotExist.Role", f"The specified Role not exists: {role}")
        if params["OIDCProviderArn"] != allowed[0]:
            raise StsError(
                401, "AuthenticationFail.NoPermission", "No such OIDC Provider registered."
            )
        if not secrets.compare_digest(params["OIDCToken"], allowed[1]):
            raise StsError(
                401,
                "AuthenticationFail.OIDCToken.Invalid",
                "The Jwt content is invalid that cannot be recognized.",
            )
        expires_at = float(int(self.oss.authenticator.clock() + int(duration)))
        access_key_id = "STS." + secrets.token_hex(10)
        secret, token = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        self.oss.add_sts_token(token, access_key_id, secret, expires_at)
        with self._lock:
            self.issued.append(Issued(role, session, access_key_id, expires_at))
        return {
            "AssumedRoleUser": {
                "Arn": f"{role}/{session}",
                "AssumedRoleId": f"{secrets.randbelow(10**18)}:{session}",
            },
            "Credentials": {
                "AccessKeyId": access_key_id,
                "AccessKeySecret": secret,
                "SecurityToken": token,
                "Expiration": datetime.fromtimestamp(expires_at, UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            },
        }


class _Handler(BaseHTTPRequestHandler):
    """STS's RPC style: parameters in the query string and/or a form-encoded body."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        _, _, query = self.path.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        status, body = self.server.sts.answer(params)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass
