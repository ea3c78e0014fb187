"""RRSA: credentials from STS AssumeRoleWithOIDC, cached and refreshed before they expire.

On ACK, RAM Roles for Service Accounts gives a pod a role ARN, the cluster's OIDC provider
ARN and a projected service-account token that the kubelet rotates on disk. STS trades the
token for a temporary key pair and security token (an anonymous RPC call: the token is the
proof). `OidcRoleProvider` is what oss2 asks for credentials before signing each request:

- one STS call serves every thread until the credentials near their Expiration; the
  token file is read again for each call, since it rotates;
- a refresh that fails while the old credentials are still valid is logged and the old
  ones are kept (tried again after `OidcRole.retry_after_seconds`), so a short STS outage
  does not stop transfers already under way;
- failures become Argosy's errors: STS refusing (a wrong token, an unknown role) is
  AccessDenied naming STS and the role; 5xx, throttling and connection failures are
  transient, left to the one retry layer above the driver; nothing is retried here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import oss2.credentials
import requests
import requests.exceptions as rx

from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    PermanentError,
    ThrottledError,
    TransientError,
    redact_url,
)

log = logging.getLogger("argosy.oss.sts")


@dataclass(frozen=True)
class OidcRole:
    """What to ask STS for.

    endpoint: the STS endpoint; without a scheme, https.
    duration_seconds: how long the credentials last (3600: STS's default; 900 is its least).
    refresh_before_seconds: refresh this long before Expiration (300: a request signed just
        before still reaches OSS in time, with a few minutes of clock skew to spare); at most
        half the credentials' life, so short-lived ones are not fetched for every request.
    retry_after_seconds: after a failed refresh while the old credentials still hold, how
        long to use them before asking STS again (30: one slow STS call per half minute,
        not one per request).
    """

    role_arn: str
    provider_arn: str
    token_file: str
    session_name: str = "argosy"
    endpoint: str = "sts.aliyuncs.com"
    duration_seconds: int = 3600
    refresh_before_seconds: float = 300.0
    retry_after_seconds: float = 30.0

    @property
    def url(self) -> str:
        return self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}"


@dataclass(frozen=True)
class _Held:
    credentials: oss2.credentials.Credentials
    expires_at: float
    refresh_at: float


class OidcRoleProvider(oss2.credentials.CredentialsProvider):  # type: ignore[misc]
    """oss2's credentials provider for RRSA; thread-safe, `clock` is Unix seconds."""

    def __init__(
        self,
        role: OidcRole,
        *,
        timeout: tuple[float, float],
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.role = role
        self._timeout = timeout
        self._clock = clock
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._held: _Held | None = None

    def get_credentials(self) -> oss2.credentials.Credentials:
        held, now = self._held, self._clock()
        if held is not None and now < held.refresh_at:
            return held.credentials
        if held is not None and now < held.expires_at:
            if not self._lock.acquire(blocking=False):
                return held.credentials  # another thread is refreshing; these still hold
        else:
            self._lock.acquire()  # nothing usable: wait for the one STS call under way
        try:
            return self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> oss2.credentials.Credentials:
        held, now = self._held, self._clock()
        if held is not None and now < held.refresh_at:
            return held.credentials  # refreshed while this thread waited
        try:
            self._held = self._assume_role(now)
        except ArtifactError as error:
            if held is None or now >= held.expires_at:
                raise
            log.warning(
                "%s; the current credentials hold until %s",
                error,
                datetime.fromtimestamp(held.expires_at, UTC).isoformat(),
            )
            self._held = _Held(
                held.credentials,
                held.expires_at,
                min(now + self.role.retry_after_seconds, held.expires_at),
            )
            return held.credentials
        return self._held.credentials

    # -- one STS call ---------------------------------------------------------------------
    def _shown_url(self) -> str:
        """The STS endpoint as messages show it: ALIBABA_CLOUD_STS_ENDPOINT may hold user
        info."""
        return redact_url(self.role.url, endpoint=True)

    def _where(self) -> str:
        return (
            f"OSS credentials: STS AssumeRoleWithOIDC at {self._shown_url()} for role "
            f"{self.role.role_arn}"
        )

    def _read_token(self) -> str:
        try:
            with open(self.role.token_file, encoding="utf-8") as file:
                token = file.read().strip()
        except OSError as error:
            raise AccessDenied(
                f"{self._where()}: cannot read the OIDC token file "
                f"{self.role.token_file} ({error.strerror or error})",
                code="OidcTokenFileUnreadable",
            ) from None
        if not token:
            raise AccessDenied(
                f"{self._where()}: the OIDC token file {self.role.token_file} is empty",
                code="OidcTokenFileEmpty",
            )
        return token

    def _assume_role(self, now: float) -> _Held:
        form = {
            "Action": "AssumeRoleWithOIDC",
            "Format": "JSON",
            "Version": "2015-04-01",
            "Timestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": self.role.role_arn,
            "OIDCProviderArn": self.role.provider_arn,
            "OIDCToken": self._read_token(),
            "RoleSessionName": self.role.session_name,
            "DurationSeconds": str(self.role.duration_seconds),
        }
        try:  # POST: the token goes in the body, never in a URL a proxy might log
            answer = self._session.post(self.role.url, data=form, timeout=self._timeout)
        except rx.SSLError:
            raise PermanentError(f"{self._where()}: TLS failed", code="TLSError") from None
        except (rx.ConnectionError, rx.Timeout) as error:
            raise TransientError(
                f"OSS credentials: cannot reach STS at {self._shown_url()} "
                f"({type(error).__name__})",
                code="StsUnreachable",
            ) from None
        except rx.RequestException as error:
            raise TransientError(
                f"{self._where()}: {type(error).__name__}", code=type(error).__name__
            ) from None
        if answer.status_code != 200:
            raise self._refused(answer.status_code, answer.content)
        return self._held_from(answer.content, now)

    def _refused(self, status: int, body: bytes) -> ArtifactError:
        document = _json(body) or {}
        code = str(document.get("Code") or status)
        said = " ".join(str(document.get("Message") or "").split())[:200]
        request = document.get("RequestId")
        detail = (
            code
            + (f": {said.rstrip('.')}" if said else "")
            + (f"; request {request}" if request else "")
        )
        if status == 429 or code.startswith("Throttling"):
            return ThrottledError(f"{self._where()}: throttled ({detail})", code=code)
        if status >= 500:
            return TransientError(f"{self._where()}: server error {status} ({detail})", code=code)
        if 400 <= status < 500:
            return AccessDenied(f"{self._where()}: refused ({detail})", code=code)
        return PermanentError(f"{self._where()}: unexpected HTTP {status} ({detail})", code=code)

    def _held_from(self, body: bytes, now: float) -> _Held:
        document = _json(body) or {}
        found = document.get("Credentials")
        try:
            if not isinstance(found, dict):
                raise KeyError("Credentials")
            credentials = oss2.credentials.Credentials(
                str(found["AccessKeyId"]),
                str(found["AccessKeySecret"]),
                str(found["SecurityToken"]),
            )
            expiration = datetime.fromisoformat(str(found["Expiration"]))
        except (KeyError, ValueError):
            raise PermanentError(
                f"{self._where()}: the answer holds no credentials with an "
                "Expiration (is the endpoint STS?)",
                code="StsMalformedAnswer",
            ) from None
        if expiration.tzinfo is None:  # STS writes UTC ("...Z"); never read it as local
            expiration = expiration.replace(tzinfo=UTC)
        expires_at = expiration.timestamp()
        margin = min(self.role.refresh_before_seconds, max(expires_at - now, 0.0) / 2)
        return _Held(credentials, expires_at, expires_at - margin)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
