"""The oss2 Bucket a driver talks through: its HTTP session, TLS choices and signer.

oss2 never retries on its own (retries live in `retry.py`) and its own CRC check
(`enable_crc`) is off: its body adapter assumes `read(n)` returns exactly n bytes and cannot
send a memoryview, so the driver checks CRC64s itself (`streams.py`). Proxies come from
HTTP(S)_PROXY / NO_PROXY through requests.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import oss2
import requests.adapters
from requests.models import PreparedRequest, Response

from argosy.artifacts.drivers.oss.auth import sign_with
from argosy.artifacts.drivers.oss.settings import OssSettings
from argosy.artifacts.errors import InvalidSpec, redact_url
from argosy.artifacts.stall import budget

Timeout = float | tuple[float, float] | tuple[float, None] | None

# Alibaba's rule for bucket names; oss2 refuses others with an exception of its own
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def check_bucket_name(bucket: str) -> None:
    if not _BUCKET_NAME.fullmatch(bucket):
        raise InvalidSpec(
            f"invalid OSS bucket name {bucket!r}: OSS bucket names are 3-63 characters, "
            "lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        )


class _Adapter(requests.adapters.HTTPAdapter):
    """Every request of the driver's session goes through here, to be given:

    - --insecure / --ca-bundle (`verify`; None keeps what requests chose): oss2 passes no
      `verify` per request, and requests then lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
      override the session's;
    - no longer to wait than the transfer it belongs to has left (`stall.budget()`):
      oss2 passes its one timeout pair to every request, so a stalled server would
      otherwise hold each retry for the full read timeout. A body read later keeps the
      read timeout of its request."""

    def __init__(self, verify: bool | str | None, pool_size: int) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size)
        self._verify = verify

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Timeout = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        return super().send(
            request,
            stream=stream,
            timeout=_within_budget(timeout),
            verify=verify if self._verify is None else self._verify,
            cert=cert,
            proxies=proxies,
        )


def _within_budget(timeout: Timeout) -> Timeout:
    """`timeout` (connect, read), neither longer than the current transfer has left."""
    left = budget()
    if left is None:
        return timeout
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (
        left if connect is None else min(connect, left),
        left if read is None else min(read, left),
    )


def _connection(settings: OssSettings, clock: Callable[[], float]) -> tuple[Any, str, Any]:
    """(auth, endpoint URL, session) for a Bucket or the Service. useSDKCreds reads the
    process environment here, once: it is the SDK chain's input."""
    if not settings.endpoint:
        raise InvalidSpec(
            "OSS needs an endpoint (--endpoint, OSS_ENDPOINT or the repository's endpoint)"
        )
    endpoint = settings.endpoint if "://" in settings.endpoint else f"https://{settings.endpoint}"
    if settings.verify is False:
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    adapter = _Adapter(
        None if settings.verify is True else settings.verify, settings.max_connections
    )
    session = oss2.Session(pool_size=settings.max_connections, adapter=adapter)
    return sign_with(settings, os.environ, clock=clock), endpoint, session


def _endpoint_refused(endpoint: str) -> InvalidSpec:
    """What oss2 checks itself when a Bucket or Service is made: the endpoint's form."""
    return InvalidSpec(
        f"OSS endpoint {redact_url(endpoint, endpoint=True)!r} is not a URL: "
        "give it as HOST, https://HOST or http://HOST"
    )


def make_bucket(
    settings: OssSettings, bucket: str, *, clock: Callable[[], float] = time.time
) -> Any:
    """`clock` (Unix seconds) decides when STS credentials need refreshing."""
    check_bucket_name(bucket)
    auth, endpoint, session = _connection(settings, clock)
    try:
        return oss2.Bucket(
            auth,
            endpoint,
            bucket,
            session=session,
            connect_timeout=(settings.connect_timeout, settings.read_timeout),
            enable_crc=False,
            region=settings.region,
        )
    except oss2.exceptions.ClientError:
        raise _endpoint_refused(settings.endpoint or endpoint) from None


def make_service(settings: OssSettings, *, clock: Callable[[], float] = time.time) -> Any:
    """The account's side of the endpoint: ListBuckets."""
    auth, endpoint, session = _connection(settings, clock)
    try:
        return oss2.Service(
            auth,
            endpoint,
            session=session,
            connect_timeout=(settings.connect_timeout, settings.read_timeout),
            region=settings.region,
        )
    except oss2.exceptions.ClientError:
        raise _endpoint_refused(settings.endpoint or endpoint) from None
