"""S3 through botocore: the only module that imports it, loaded when a request needs it.

With static credentials and an explicit endpoint (`route.py`), a command that moves
objects never loads botocore: its imports and S3 model cost ~0.15 s of every start. Lists,
batch deletes, bucket creation and everything else come here.

Transport choices, each measured in `bench/` or required by S3 clones:
- botocore's own retries are off (`max_attempts=1`): retries live in `retry.py`.
- Payload signing is off (`UNSIGNED-PAYLOAD`) and botocore's default CRC32 trailer is
  only sent when an operation requires it: over plain http botocore would otherwise hash
  every byte with SHA-256, and Ceph RGW 16 rejects aws-chunked trailers. Integrity comes
  from Argosy's own CRC32C record instead.
- `Expect: 100-continue` only on bodies of 1 MiB and more: botocore sends it with every
  file-like body, and for a small PUT it doubles the round trips (headers, wait for 100,
  body) for nothing a server could refuse cheaply.
- A client starts without botocore's survey of every service it ships (see `_Loader`).
- Timestamps are parsed natively (`dates.timestamp`), not with dateutil: a listing of
  1000 keys otherwise spends 0.1-0.3 s of CPU on its LastModified dates.
- Every answer is acknowledged at once (TCP_QUICKACK, `wire.ack_at_once`, asked for when
  the connection starts waiting for the answer): Ceph RGW writes an answer's headers
  and body in two writes, and the body of every list page and DeleteObjects answer
  otherwise waited ~40 ms for the client's delayed ACK of the headers
  (`bench/s3_ack.py` measures it).
- Its connect and read timeouts are the settings' (capped by the transfer's stall timeout
  where the caller opens the driver for one); botocore takes no timeout per request, so
  unlike the direct path its waits are not clamped to what a transfer has left.
"""

from __future__ import annotations

import base64
import hashlib
import os
import warnings
from datetime import datetime
from typing import Any

import botocore.exceptions as bx
import botocore.session
from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)
from botocore.config import Config
from botocore.handlers import add_expect_header
from botocore.loaders import Loader, instance_cache
from botocore.utils import parse_timestamp

from argosy.artifacts.drivers.s3 import dates, wire
from argosy.artifacts.drivers.s3.errors import refused, tls_failed
from argosy.artifacts.drivers.s3.route import Route, proxied
from argosy.artifacts.drivers.s3.settings import EXPECT_CONTINUE_MIN, S3Settings
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    InvalidSpec,
    PermanentError,
    RequestStalled,
    TransientError,
    redact_url,
)

_TRANSIENT_SDK = (
    bx.EndpointConnectionError,
    bx.ConnectTimeoutError,
    bx.ReadTimeoutError,
    bx.ConnectionClosedError,
    bx.ResponseStreamingError,
    bx.IncompleteReadError,
    bx.HTTPClientError,
)


def parse_any_timestamp(value: Any) -> datetime:
    """botocore's parser, for the date forms `dates.timestamp` does not parse itself."""
    parsed = parse_timestamp(value)
    assert isinstance(parsed, datetime)
    return parsed


def timestamp(value: Any) -> datetime:
    """S3's dates as botocore's client parses them: natively where `dates.timestamp`
    can, else with botocore's own parser."""
    return dates.timestamp(value, otherwise=parse_any_timestamp)


def map_botocore(error: BaseException, where: str, request: str = "") -> ArtifactError | None:
    """botocore's failures in Argosy's tree (None: not one of botocore's); a timeout
    names `request` (`UploadPart 3`) and the endpoint it waited for."""
    if isinstance(error, bx.ClientError):
        err = error.response.get("Error", {})
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return refused(
            str(err.get("Code") or status or "unknown"),
            status,
            str(err.get("Message") or ""),
            where,
        )
    if isinstance(error, bx.SSLError):
        return tls_failed(error, where)
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AccessDenied(
            f"{where}: no usable credentials ({type(error).__name__})", code="NoCredentials"
        )
    if isinstance(error, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        phase = "connect" if isinstance(error, bx.ConnectTimeoutError) else "answer"
        endpoint = str(error.kwargs.get("endpoint_url", ""))
        return RequestStalled.at(where, phase, request=request, endpoint=endpoint)
    if isinstance(error, bx.EndpointConnectionError):
        endpoint = error.kwargs.get("endpoint_url", "")
        return TransientError(
            f"{where}: cannot reach the endpoint ({redact_url(endpoint, endpoint=True)})",
            code="EndpointUnreachable",
        )
    if isinstance(error, _TRANSIENT_SDK):
        return TransientError(
            f"{where}: connection failed ({type(error).__name__})", code=type(error).__name__
        )
    if isinstance(error, bx.ParamValidationError):
        return InvalidSpec(f"{where}: {error}", code="InvalidParameter")
    if isinstance(error, bx.BotoCoreError):
        return PermanentError(f"{where}: {type(error).__name__}", code=type(error).__name__)
    return None


class _Loader(Loader):
    """botocore's loader with a cheaper list of services. Before each model it loads,
    botocore checks that the service exists by listing every service folder it ships
    and, in each, every API version for a file of the model's type: ~450 listings and
    ~900 stat calls, 10-20 ms of every start. Here every folder of the data paths counts
    as a service (one directory read); a folder without the model still fails, when its
    model is loaded. The credential chain loads STS and SSO models through the same
    loader, so no service may be left out."""

    @instance_cache
    def list_available_services(self, type_name: str) -> list[str]:
        names: set[str] = set()
        for path in self.search_paths:
            if os.path.isdir(path):
                with os.scandir(path) as entries:
                    names.update(entry.name for entry in entries if entry.is_dir())
        return sorted(names)


def _loader(session: botocore.session.Session) -> _Loader:
    """The loader botocore would make (AWS_DATA_PATH and `data_path` honoured)."""
    extra = session.get_config_variable("data_path")
    paths = (
        [os.path.expanduser(os.path.expandvars(p)) for p in extra.split(os.pathsep)]
        if extra
        else None
    )
    return _Loader(extra_search_paths=paths)


def _expect_continue(model: Any, params: dict[str, Any], **_: Any) -> None:
    """botocore's add_expect_header, for large bodies only: waiting for `100 Continue`
    before sending costs a round trip, worth it only when sending a body that the server
    is about to refuse (bad signature, no such bucket) would cost more."""
    if model.http.get("method", "") not in ("PUT", "POST"):
        return
    body = params.get("body")
    if body is None or not hasattr(body, "read"):
        return
    length = params["headers"].get("Content-Length")
    if length is not None and int(length) < EXPECT_CONTINUE_MIN:
        return
    params["headers"]["Expect"] = "100-continue"


class _AckingHTTPConnection(AWSHTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        wire.ack_at_once(self.sock)  # also sends an ACK the kernel was holding back
        return super().getresponse(*args, **kwargs)


class _AckingHTTPSConnection(AWSHTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        wire.ack_at_once(self.sock)
        return super().getresponse(*args, **kwargs)


class _AckingHTTPConnectionPool(AWSHTTPConnectionPool):
    ConnectionCls = _AckingHTTPConnection


class _AckingHTTPSConnectionPool(AWSHTTPSConnectionPool):
    ConnectionCls = _AckingHTTPSConnection


ACKING_POOLS: dict[str, Any] = {
    "http": _AckingHTTPConnectionPool,
    "https": _AckingHTTPSConnectionPool,
}


def use_pools(client: Any, pools: dict[str, Any]) -> bool:
    """Make `client`'s connections of these pool classes (before its first request);
    False when this botocore keeps its pools elsewhere (the answers then wait as before)."""
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    manager = getattr(http, "_manager", None)
    if http is None or manager is None or not hasattr(http, "_pool_classes_by_scheme"):
        return False
    http._pool_classes_by_scheme = dict(pools)
    manager.pool_classes_by_scheme = http._pool_classes_by_scheme
    for proxy_manager in getattr(http, "_proxy_managers", {}).values():
        proxy_manager.pool_classes_by_scheme = http._pool_classes_by_scheme
    return True


def make_client(settings: S3Settings) -> Any:
    if settings.addressing_style not in ("auto", "path", "virtual"):
        raise InvalidSpec(
            f"addressing style must be path or virtual, not {settings.addressing_style!r}"
        )
    if settings.verify is False:
        # the user asked for no TLS checks: say nothing more on every request
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    # botocore directly, not boto3: boto3 adds s3transfer and its resources to every
    # start (~0.1 s), and a command that moves a file should not pay for them.
    session = botocore.session.Session(profile=settings.profile)
    session.register_component("data_loader", _loader(session))
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=timestamp)
    if settings.access_key or settings.secret_key:
        if not (settings.access_key and settings.secret_key):
            raise AccessDenied(
                "static S3 credentials need both an access key and a secret key",
                code="PartialCredentials",
            )
        session.set_credentials(settings.access_key, settings.secret_key, settings.session_token)
    s3_options: Any = {
        "addressing_style": settings.addressing_style,
        "payload_signing_enabled": False,
    }
    config = Config(
        region_name=settings.region or session.get_config_variable("region") or "us-east-1",
        retries={"max_attempts": 1, "mode": "standard"},
        max_pool_connections=settings.max_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        tcp_keepalive=True,
        s3=s3_options,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = session.create_client(
        "s3", endpoint_url=settings.endpoint, verify=settings.verify, config=config
    )
    client.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    client.meta.events.unregister("before-call.s3", add_expect_header)
    client.meta.events.register("before-call.s3", _expect_continue)
    use_pools(client, ACKING_POOLS)
    return client


def _content_md5(request: Any, **_: Any) -> None:
    """MinIO and Ceph require Content-MD5 on DeleteObjects; botocore >= 1.36 sends a
    CRC32 instead (boto/boto3#4392), so set the MD5 and drop the flexible checksum."""
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    for name in list(request.headers.keys()):
        if (
            name.lower().startswith("x-amz-checksum-")
            or name.lower() == "x-amz-sdk-checksum-algorithm"
        ):
            del request.headers[name]
    request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()


def resolved_route(client: Any, settings: S3Settings, bucket: str) -> Route | None:
    """The route botocore resolved for the bucket, for the direct path's small PUTs and
    GETs (see `direct.py`); None where the direct path might not send what botocore
    would. It reads two of botocore's private attributes (the client's credentials and
    TLS setting): if a botocore release drops them, everything goes through botocore."""
    if settings.encryption.mode not in ("none", "s3") or proxied():
        return None
    signer = getattr(client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", None)
    region = getattr(signer, "region_name", None)
    verify = getattr(
        getattr(getattr(client, "_endpoint", None), "http_session", None), "_verify", None
    )
    if credentials is None or not region or verify is None:
        return None
    try:
        url = client.generate_presigned_url(
            "put_object", ExpiresIn=60, Params={"Bucket": bucket, "Key": "K"}
        )
    except Exception:  # noqa: BLE001 - no credentials or no endpoint: botocore will say
        return None
    base = str(url).split("?", 1)[0]
    if not base.endswith("/K"):
        return None

    def frozen() -> tuple[str, str, str | None]:
        now = credentials.get_frozen_credentials()
        return now.access_key, now.secret_key, now.token

    return Route(
        base[:-1],
        region,
        frozen,
        verify=verify is not False,
        ca_certs=verify if isinstance(verify, str) else None,
    )
