"""S3 (AWS, MinIO, Ceph RGW) through botocore: the only module that imports it.

Transport choices, each measured in `bench/` or required by S3 clones:
- botocore's own retries are off (`max_attempts=1`): retries live in `retry.py`.
- Payload signing is off (`UNSIGNED-PAYLOAD`) and botocore's default CRC32 trailer is
  only sent when an operation requires it: over plain http botocore would otherwise hash
  every byte with SHA-256, and Ceph RGW 16 rejects aws-chunked trailers. Integrity comes
  from Argosy's own CRC32C record instead.
- Part bodies are file slices read in 1 MiB chunks, not part-sized buffers, so an upload
  holds (parts in flight x 1 MiB) of data, not (parts in flight x part size).
- `Expect: 100-continue` only on bodies of 1 MiB and more: botocore sends it with every
  file-like body, and for a small PUT it doubles the round trips (headers, wait for 100,
  body) for nothing a server could refuse cheaply.
- A client starts without botocore's survey of every service it ships (see `_Loader`).
- Timestamps are parsed natively (`_timestamp`), not with dateutil: a listing of 1000
  keys otherwise spends 0.1-0.3 s of CPU on its LastModified dates.
- A GET's connection goes back to the pool once its body is read, and its answer is
  acknowledged at once (TCP_QUICKACK): servers that write the headers and a small body
  separately (Ceph RGW's beast) otherwise hold the body until the client's delayed ACK
  fires, 40 ms later, on every small GET over a kept-alive connection.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import http.client
import os
import socket
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import botocore.exceptions as bx
import botocore.session
import urllib3
from botocore.config import Config
from botocore.handlers import add_expect_header
from botocore.loaders import Loader, instance_cache
from botocore.utils import parse_timestamp

from argosy.artifacts.drivers.s3.direct import DIRECT_MAX, Direct, Failure, Signer
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    NotFound,
    PermanentError,
    PreconditionFailed,
    ThrottledError,
    TransientError,
)
from argosy.artifacts.protocol import (
    Body,
    DeleteFailure,
    ListPage,
    ObjectInfo,
    Part,
    UploadInfo,
    answered_range,
)

# One table: S3 error code -> (class, what it means to a user).
ERROR_TABLE: dict[str, tuple[type[ArtifactError], str]] = {
    "NoSuchKey": (NotFound, "no such key"),
    "404": (NotFound, "no such key"),
    "NotFound": (NotFound, "not found"),
    "NoSuchBucket": (NotFound, "no such bucket"),
    "NoSuchUpload": (NotFound, "no such multipart upload"),
    "AccessDenied": (AccessDenied, "access denied"),
    "403": (AccessDenied, "access denied"),
    "Forbidden": (AccessDenied, "access denied"),
    "InvalidAccessKeyId": (AccessDenied, "unknown access key"),
    "SignatureDoesNotMatch": (AccessDenied, "signature does not match (wrong secret key?)"),
    "ExpiredToken": (AccessDenied, "the session token has expired"),
    "InvalidToken": (AccessDenied, "invalid session token"),
    "TokenRefreshRequired": (AccessDenied, "the session token must be refreshed"),
    "AuthorizationHeaderMalformed": (AccessDenied, "authorization header malformed "
                                                   "(wrong region?)"),
    "PermanentRedirect": (InvalidSpec, "the bucket is in another region or endpoint"),
    "PreconditionFailed": (PreconditionFailed, "the object changed while being read"),
    "412": (PreconditionFailed, "the object changed while being read"),
    "InvalidRange": (IntegrityError, "requested range is outside the object"),
    "416": (IntegrityError, "requested range is outside the object"),
    "BadDigest": (IntegrityError, "the server computed a different checksum"),
    "InvalidDigest": (IntegrityError, "invalid Content-MD5"),
    "XAmzContentSHA256Mismatch": (IntegrityError, "payload hash mismatch"),
    "EntityTooSmall": (InvalidSpec, "part too small (S3 needs >= 5 MiB but the last)"),
    "EntityTooLarge": (InvalidSpec, "object or part too large"),
    "InvalidPart": (InvalidSpec, "a part is missing or its ETag differs"),
    "InvalidPartOrder": (InvalidSpec, "parts are not in ascending order"),
    "InvalidBucketName": (InvalidSpec, "invalid bucket name"),
    "InvalidArgument": (InvalidSpec, "invalid argument"),
    "InvalidRequest": (InvalidSpec, "invalid request"),
    "KMS.NotFoundException": (InvalidSpec, "KMS key not found"),
    "NotImplemented": (PermanentError, "the server does not implement this request"),
    "SlowDown": (ThrottledError, "the server asked to slow down"),
    "Throttling": (ThrottledError, "throttled"),
    "ThrottlingException": (ThrottledError, "throttled"),
    "RequestLimitExceeded": (ThrottledError, "request limit exceeded"),
    "TooManyRequests": (ThrottledError, "too many requests"),
    "429": (ThrottledError, "too many requests"),
    "RequestTimeout": (TransientError, "the server timed out reading the request"),
    "RequestTimeTooSkewed": (TransientError, "clock skew"),
    "InternalError": (TransientError, "internal server error"),
    "ServiceUnavailable": (ThrottledError, "service unavailable"),
    "503": (ThrottledError, "service unavailable"),
    "500": (TransientError, "internal server error"),
    "502": (TransientError, "bad gateway"),
    "504": (TransientError, "gateway timeout"),
}

_TRANSIENT_SDK = (
    bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError,
    bx.ConnectionClosedError, bx.ResponseStreamingError, bx.IncompleteReadError,
    bx.HTTPClientError,
)


def _tls_reason(error: BaseException) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate verify failed"
    if "WRONG_VERSION_NUMBER" in text:
        return "the endpoint does not speak TLS"
    return "handshake failed"


def map_error(error: BaseException, where: str, endpoint: str = "") -> ArtifactError:
    """Translate one failure of botocore, or of urllib3 and http.client under the direct
    path and a GET's body, into Argosy's tree; never leaks secrets. `endpoint` names the
    server for failures that do not carry it (urllib3's)."""
    if isinstance(error, ArtifactError):
        return error
    if isinstance(error, bx.ClientError):
        err = error.response.get("Error", {})
        code = str(err.get("Code") or error.response.get("ResponseMetadata", {})
                   .get("HTTPStatusCode", "unknown"))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        cls, meaning = ERROR_TABLE.get(code, (None, ""))
        if cls is None:
            if status >= 500:
                cls, meaning = TransientError, f"server error {status}"
            elif status == 404:
                cls, meaning = NotFound, "not found"
            elif status == 403:
                cls, meaning = AccessDenied, "access denied"
            else:
                cls, meaning = PermanentError, err.get("Message") or "request failed"
        return cls(f"{where}: {meaning} ({code})", code=code)
    if isinstance(error, (bx.SSLError, urllib3.exceptions.SSLError)):
        return PermanentError(f"{where}: TLS failed ({_tls_reason(error)}); trust the server "
                              "with --ca-bundle FILE, or skip checks with --insecure",
                              code="TLSError")
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AccessDenied(f"{where}: no usable credentials ({type(error).__name__})",
                            code="NoCredentials")
    if isinstance(error, bx.EndpointConnectionError):
        endpoint = error.kwargs.get("endpoint_url", "")
        return TransientError(f"{where}: cannot reach the endpoint ({endpoint})",
                              code="EndpointUnreachable")
    if isinstance(error, (urllib3.exceptions.NewConnectionError,
                          urllib3.exceptions.ConnectTimeoutError)):
        return TransientError(f"{where}: cannot reach the endpoint ({endpoint})",
                              code="EndpointUnreachable")
    if isinstance(error, _TRANSIENT_SDK) or isinstance(error, (
            ConnectionError, TimeoutError, urllib3.exceptions.HTTPError,
            http.client.HTTPException)):
        return TransientError(f"{where}: connection failed ({type(error).__name__})",
                              code=type(error).__name__)
    if isinstance(error, (bx.ParamValidationError, ValueError)):
        return InvalidSpec(f"{where}: {error}", code="InvalidParameter")
    if isinstance(error, bx.BotoCoreError):
        return PermanentError(f"{where}: {type(error).__name__}", code=type(error).__name__)
    if isinstance(error, OSError):
        return TransientError(f"{where}: {type(error).__name__}: {error.strerror or ''}",
                              code=type(error).__name__)
    raise error


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption: mode is none, s3 (SSE-S3), kms (SSE-KMS) or c (SSE-C)."""

    mode: str = "none"
    kms_key_id: str | None = None
    kms_context: str | None = None  # JSON, as S3 takes it
    customer_key: bytes | None = field(default=None, repr=False)

    def write_args(self) -> dict[str, Any]:
        if self.mode == "s3":
            return {"ServerSideEncryption": "AES256"}
        if self.mode == "kms":
            args: dict[str, Any] = {"ServerSideEncryption": "aws:kms"}
            if self.kms_key_id:
                args["SSEKMSKeyId"] = self.kms_key_id
            if self.kms_context:
                args["SSEKMSEncryptionContext"] = base64.b64encode(
                    self.kms_context.encode()).decode()
            return args
        return self.customer_args()

    def customer_args(self) -> dict[str, Any]:
        if self.mode != "c" or not self.customer_key:
            return {}
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": self.customer_key}

    def copy_source_args(self) -> dict[str, Any]:
        if self.mode != "c" or not self.customer_key:
            return {}
        return {"CopySourceSSECustomerAlgorithm": "AES256",
                "CopySourceSSECustomerKey": self.customer_key}


@dataclass(frozen=True)
class S3Settings:
    """How to reach one S3 service. Unset credentials fall back to the AWS default chain
    (environment, shared files, web identity / IRSA, container and instance roles)."""

    endpoint: str | None = None
    region: str | None = None
    addressing_style: str = "auto"  # path | virtual | auto
    verify: bool | str = True  # False = insecure; str = a CA bundle file
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    encryption: Encryption = field(default_factory=Encryption)
    max_connections: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


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
    paths = [os.path.expanduser(os.path.expandvars(p)) for p in extra.split(os.pathsep)] \
        if extra else None
    return _Loader(extra_search_paths=paths)


def _timestamp(value: Any) -> datetime:
    """The two forms S3 sends, parsed natively (ISO 8601 in XML bodies, RFC 1123 in
    headers: ~0.1-17 us, where botocore's dateutil takes 50-300 us each); anything else,
    or a date without a zone, goes to botocore's own parser."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if value[:4].isdigit() else \
                parsedate_to_datetime(value)
        except (ValueError, TypeError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return parse_timestamp(value)


EXPECT_CONTINUE_MIN = 1 << 20  # bytes: below this a body goes without Expect: 100-continue


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


def make_client(settings: S3Settings) -> Any:
    if settings.addressing_style not in ("auto", "path", "virtual"):
        raise InvalidSpec(f"addressing style must be path or virtual, not "
                          f"{settings.addressing_style!r}")
    if settings.verify is False:
        # the user asked for no TLS checks: say nothing more on every request
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    # botocore directly, not boto3: boto3 adds s3transfer and its resources to every
    # start (~0.1 s), and a command that moves a file should not pay for them.
    session = botocore.session.Session(profile=settings.profile)
    session.register_component("data_loader", _loader(session))
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_timestamp)
    if settings.access_key or settings.secret_key:
        if not (settings.access_key and settings.secret_key):
            raise AccessDenied("static S3 credentials need both an access key and a secret "
                               "key", code="PartialCredentials")
        session.set_credentials(settings.access_key, settings.secret_key,
                                settings.session_token)
    s3_options: Any = {"addressing_style": settings.addressing_style,
                       "payload_signing_enabled": False}
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
    client = session.create_client("s3", endpoint_url=settings.endpoint,
                                   verify=settings.verify, config=config)
    client.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    client.meta.events.unregister("before-call.s3", add_expect_header)
    client.meta.events.register("before-call.s3", _expect_continue)
    return client


def _content_md5(request: Any, **_: Any) -> None:
    """MinIO and Ceph require Content-MD5 on DeleteObjects; botocore >= 1.36 sends a
    CRC32 instead (boto3 #4392), so set the MD5 and drop the flexible checksum."""
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    for name in list(request.headers.keys()):
        if name.lower().startswith("x-amz-checksum-") or \
                name.lower() == "x-amz-sdk-checksum-algorithm":
            del request.headers[name]
    request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()


def _body(body: Body, size: int) -> Any:
    """Bodies that already know their length and read in large chunks pass through. A
    small buffer goes as bytes: http.client then sends it in the same write as the
    headers (one segment, no Expect), where a file-like body costs a write of its own."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        if size >= EXPECT_CONTINUE_MIN:
            return _Slice(body, size)
        return body if isinstance(body, bytes) and len(body) == size else \
            bytes(memoryview(body)[:size])
    if not hasattr(body, "__len__"):
        return _Slice(body, size)
    return body


class _Slice:
    """A seekable window onto a file or buffer, read in large chunks so the HTTP layer
    makes few syscalls; botocore sees a file-like body with a length."""

    CHUNK = 1 << 20

    def __init__(self, body: Body, size: int) -> None:
        self._body: Any = body
        self._size = size
        self._pos = 0
        self._origin = body.tell() if hasattr(body, "tell") and not isinstance(
            body, (bytes, bytearray, memoryview)) else 0

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence]
        return self._pos

    def read(self, amount: int = -1) -> bytes | memoryview:
        remaining = self._size - self._pos
        if remaining <= 0:
            return b""
        count = remaining if amount is None or amount < 0 else \
            min(remaining, max(amount, self.CHUNK))
        data: bytes | memoryview
        if isinstance(self._body, (bytes, bytearray, memoryview)):
            # a view, not a copy: the hashing and the socket take any buffer, and a copy
            # per read of every streamed part cost CPU and, freed by other threads, RSS
            data = memoryview(self._body)[self._pos: self._pos + count]
        else:
            self._body.seek(self._origin + self._pos)
            data = self._body.read(count)
        self._pos += len(data)
        return data


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class S3ReadStream:
    """A GET's body. urllib3 2's `readinto` reads into a fresh bytes object and copies it
    (two extra copies of every byte); when the body is not content-encoded we read from
    the underlying `http.client` response instead, which receives straight into the
    caller's buffer. The engine checks the byte count either way.

    Once the body has been read to its end the connection goes back to the pool (urllib3
    would only do that on its own read path); a body closed early drops its connection.
    `info` describes the object as this GET's headers saw it."""

    def __init__(self, body: Any, start: int, end: int, total: int, etag: str,
                 info: ObjectInfo) -> None:
        self._body = body
        self.start, self.end, self.total, self.etag = start, end, total, etag
        self.info = info
        raw = getattr(body, "_raw_stream", None)
        self._raw = raw
        direct = getattr(raw, "_fp", None)
        encoded = raw is not None and raw.headers.get("content-encoding") not in (None, "",
                                                                                  "identity")
        self._direct = direct if direct is not None and hasattr(direct, "readinto") \
            and not encoded else None
        _acknowledge_now(getattr(getattr(raw, "_connection", None), "sock", None))

    def readinto(self, buffer: memoryview) -> int:
        try:
            if self._direct is not None:
                return int(self._direct.readinto(buffer))
            return int(self._body.readinto(buffer))
        except Exception as error:  # noqa: BLE001 - mapped, never leaked
            raise map_error(error, "reading an object") from error

    def close(self) -> None:
        finished = self._direct.isclosed() if self._direct is not None else False
        if finished and self._raw is not None:
            self._raw.release_conn()
        self._body.close()


class _Body:
    """A direct GET's urllib3 response, shaped as botocore's streaming body."""

    def __init__(self, response: Any) -> None:
        self._raw_stream = response

    def readinto(self, buffer: memoryview) -> int:
        return int(self._raw_stream.readinto(buffer))

    def close(self) -> None:
        self._raw_stream.close()


def _acknowledge_now(sock: socket.socket | None) -> None:
    """ACK what has arrived (the response's headers) without the delayed-ACK wait, so a
    server holding the rest behind Nagle's algorithm sends it at once."""
    if sock is None or _QUICKACK is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        pass


def _direct_path(client: Any, settings: S3Settings, bucket: str) -> Direct | None:
    """The botocore-free path for small PUTs and GETs, where it sends exactly what botocore
    would (see `direct.py`); None where it might not. It reads two of botocore's private
    attributes (the client's credentials and TLS setting): if a botocore release drops
    them, small PUTs simply go through botocore again."""
    if settings.encryption.mode not in ("none", "s3") or _proxied():
        return None
    signer = getattr(client, "_request_signer", None)
    credentials = getattr(signer, "_credentials", None)
    region = getattr(signer, "region_name", None)
    verify = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None),
                     "_verify", None)
    if credentials is None or not region or verify is None:
        return None
    try:
        url = client.generate_presigned_url("put_object", ExpiresIn=60,
                                            Params={"Bucket": bucket, "Key": "K"})
    except Exception:  # noqa: BLE001 - no credentials or no endpoint: botocore will say
        return None
    base = str(url).split("?", 1)[0]
    if not base.endswith("/K"):
        return None

    def frozen() -> tuple[str, str, str | None]:
        now = credentials.get_frozen_credentials()
        return now.access_key, now.secret_key, now.token

    extra = {"x-amz-server-side-encryption": "AES256"} if settings.encryption.mode == "s3" \
        else {}
    return Direct(base[:-1], Signer(region, frozen), extra=extra,
                     pool_size=settings.max_connections,
                     timeout=(settings.connect_timeout, settings.read_timeout),
                     ca_certs=verify if isinstance(verify, str) else None,
                     verify=verify is not False)


def _proxied() -> bool:
    """A proxy from the environment (botocore would use it; this path does not)."""
    from urllib.request import getproxies

    found = getproxies()
    return bool(found.get("http") or found.get("https"))


def _ascii(metadata: Mapping[str, str]) -> bool:
    return all(k.isascii() and v.isascii() for k, v in metadata.items())


def _client_error(failure: Failure, operation: str) -> bx.ClientError:
    """A refusal from the direct path, shaped as botocore's, for the one error table."""
    shape: Any = {"Error": {"Code": failure.code or str(failure.status),
                            "Message": failure.message},
                  "ResponseMetadata": {"HTTPStatusCode": failure.status}}
    return bx.ClientError(shape, operation)


class S3Driver:
    scheme = "s3"

    def __init__(self, settings: S3Settings, bucket: str, *, client: Any | None = None):
        if not bucket:
            raise InvalidSpec("an S3 URL needs a bucket: s3://BUCKET/KEY")
        self.settings = settings
        self.bucket = bucket
        self._client = client if client is not None else make_client(settings)
        self._enc = settings.encryption
        self._direct = _direct_path(self._client, settings, bucket)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except ArtifactError:
            raise
        except Exception as error:  # noqa: BLE001 - mapped through the one table
            raise map_error(error, self.url(key) if key is not None else f"s3://{self.bucket}") \
                from error

    @staticmethod
    def _info(key: str, head: Mapping[str, Any]) -> ObjectInfo:
        modified = head.get("LastModified") or datetime.now(UTC)
        return ObjectInfo(
            key=key,
            size=int(head.get("ContentLength", head.get("Size", 0))),
            etag=str(head.get("ETag", "")).strip('"'),
            modified=modified.astimezone(UTC),
            metadata={k.lower(): v for k, v in (head.get("Metadata") or {}).items()},
        )

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            head = self._client.head_object(Bucket=self.bucket, Key=key,
                                            **self._enc.customer_args())
        return self._info(key, head)

    def read(self, key: str, *, start: int = 0, end: int | None = None,
             if_match: str | None = None) -> S3ReadStream:
        if self._direct is not None and end is not None and end - start < DIRECT_MAX:
            return self._read_direct(self._direct, key, start, end, if_match)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._enc.customer_args()}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        if if_match:
            args["IfMatch"] = f'"{if_match}"'
        with self._errors(key):
            resp = self._client.get_object(**args)
        try:
            first, last, total = answered_range(resp.get("ContentRange"),
                                                int(resp["ContentLength"]), where=self.url(key))
        except IntegrityError:
            resp["Body"].close()
            raise
        etag = str(resp["ETag"]).strip('"')
        info = self._info(key, {**resp, "ContentLength": total})
        return S3ReadStream(resp["Body"], first, last, total, etag, info)

    def _read_direct(self, direct: Direct, key: str, start: int, end: int,
                     if_match: str | None) -> S3ReadStream:
        headers = {"range": f"bytes={start}-{end}"}
        if if_match:
            headers["if-match"] = f'"{if_match}"'
        try:
            answer = direct.get(key, headers)
        except urllib3.exceptions.HTTPError as error:
            raise map_error(error, self.url(key), direct.origin) from None
        if isinstance(answer, Failure):
            raise map_error(_client_error(answer, "GetObject"), self.url(key))
        head = answer.headers
        try:
            first, last, total = answered_range(head.get("Content-Range"),
                                                int(head.get("Content-Length", "0")),
                                                where=self.url(key))
        except IntegrityError:
            answer.release_conn()
            raise
        etag = str(head.get("ETag", "")).strip('"')
        modified = head.get("Last-Modified")
        info = ObjectInfo(key=key, size=total, etag=etag,
                          modified=_timestamp(modified).astimezone(UTC) if modified
                          else datetime.now(UTC),
                          metadata={k[11:].lower(): v for k, v in head.items()
                                    if k.lower().startswith("x-amz-meta-")})
        return S3ReadStream(_Body(answer), first, last, total, etag, info)

    def read_described(self, key: str, *, start: int = 0,
                       end: int | None = None) -> tuple[ObjectInfo, S3ReadStream]:
        """A ranged read whose answer also describes the object: a GET's headers carry
        the size (Content-Range), the ETag and the user metadata a HEAD would give."""
        stream = self.read(key, start=start, end=end)
        return stream.info, stream

    def put(self, key: str, body: Body, *, size: int,
            metadata: Mapping[str, str]) -> str:
        if self._direct is not None and isinstance(body, bytes) and len(body) == size \
                and size < DIRECT_MAX and _ascii(metadata):
            try:
                answer = self._direct.put(key, body, metadata)
            except urllib3.exceptions.HTTPError as error:
                raise map_error(error, self.url(key), self._direct.origin) from None
            if isinstance(answer, Failure):
                raise map_error(_client_error(answer, "PutObject"), self.url(key))
            return answer
        with self._errors(key):
            resp = self._client.put_object(Bucket=self.bucket, Key=key,
                                           Body=_body(body, size), ContentLength=size,
                                           Metadata=dict(metadata), **self._enc.write_args())
        return str(resp.get("ETag", "")).strip('"')

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str:
        with self._errors(key):
            resp = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=dict(metadata), **self._enc.write_args())
        return str(resp["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int,
                    body: Body, *, size: int) -> Part:
        with self._errors(key):
            resp = self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=_body(body, size), ContentLength=size, **self._enc.customer_args())
        return Part(number, str(resp["ETag"]).strip('"'), size)

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        with self._errors(key):
            resp = self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'}
                                           for p in parts]})
        etag = str(resp.get("ETag") or "").strip('"')
        if not etag:  # Ceph RGW 16 answers an empty ETag; HEAD has the right one
            etag = self.stat(key).etag
        return etag

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._errors(key):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        parts: list[Part] = []
        marker = 0
        with self._errors(key):
            while True:
                resp = self._client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                               PartNumberMarker=marker)
                parts += [Part(int(p["PartNumber"]), str(p["ETag"]).strip('"'), int(p["Size"]))
                          for p in resp.get("Parts", [])]
                if not resp.get("IsTruncated"):
                    return parts
                marker = int(resp["NextPartNumberMarker"])

    def list(self, prefix: str = "", *, delimiter: str | None = None,
             token: str | None = None, limit: int = 1000) -> ListPage:
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if delimiter:
            args["Delimiter"] = delimiter
        if token:
            args["ContinuationToken"] = token
        with self._errors(prefix):
            resp = self._client.list_objects_v2(**args)
        objects = [self._info(o["Key"], o) for o in resp.get("Contents", [])]
        prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        return ListPage(objects, prefixes,
                        resp.get("NextContinuationToken") if resp.get("IsTruncated") else None)

    def list_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        uploads: builtins.list[UploadInfo] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        with self._errors(prefix):
            while True:
                resp = self._client.list_multipart_uploads(**args)
                uploads += [UploadInfo(u["Key"], u["UploadId"], u["Initiated"])
                            for u in resp.get("Uploads", [])]
                if not resp.get("IsTruncated"):
                    return uploads
                args["KeyMarker"] = resp["NextKeyMarker"]
                args["UploadIdMarker"] = resp["NextUploadIdMarker"]

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        if not keys:
            return []
        if len(keys) > 1000:
            raise InvalidSpec("a batch delete takes at most 1000 keys")
        body = {"Objects": [{"Key": k} for k in keys], "Quiet": True}
        with self._errors(keys[0]):
            resp = self._client.delete_objects(Bucket=self.bucket, Delete=body)
        return [DeleteFailure(e["Key"], e.get("Code", ""), e.get("Message", ""))
                for e in resp.get("Errors", []) if e.get("Code") != "NoSuchKey"]

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *,
                         if_match: str) -> str:
        # CopySourceIfMatch is the real guard; the HEAD first also covers servers that
        # ignore the condition (moto).
        if self.stat(key).etag != if_match:
            raise PreconditionFailed(f"{self.url(key)} changed before its metadata was set")
        with self._errors(key):
            resp = self._client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=f'"{if_match}"', MetadataDirective="REPLACE",
                Metadata=dict(metadata), **self._enc.write_args(),
                **self._enc.copy_source_args())
        return str(resp.get("CopyObjectResult", {}).get("ETag", "")).strip('"')

    def create_bucket(self) -> None:
        with self._errors():
            try:
                self._client.create_bucket(Bucket=self.bucket)
            except bx.ClientError as error:
                if error.response.get("Error", {}).get("Code") not in (
                        "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

