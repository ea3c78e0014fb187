"""Alibaba Cloud OSS through oss2: the only module that imports oss2 and crcmod.

Transport choices:
- oss2 never retries on its own; retries live in `retry.py`. oss2's own CRC check
  (`enable_crc`) is off because its body adapter assumes `read(n)` returns exactly n
  bytes and cannot send a memoryview; instead this driver CRC64s (OSS's
  `x-oss-hash-crc64ecma`, CRC-64/XZ) the very bytes it hands to the HTTP layer and
  compares with the server's answer for every PUT and UploadPart, combines the parts'
  CRC64s to check the whole object at Complete, and checks a GET that returns the whole
  object at its last byte. Ranged reads are left to the engine's CRC32C record: OSS
  only sends the whole object's CRC64.
- crcmod's C extension is required: the pure-Python fallback runs at ~13 MB/s. Without
  it opening a driver fails (`require_crc_extension`).
- Part bodies are read in 1 MiB chunks whatever the HTTP layer asks for, so an upload
  holds (parts in flight x 1 MiB) of data.
- GETs send `x-oss-range-behavior: standard`: by default OSS answers a range that does
  not fit the object with the whole object (200), which would read as the wrong bytes.
- Proxies come from HTTP(S)_PROXY / NO_PROXY through requests.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import logging
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import crcmod
import oss2
import oss2.exceptions as ox
import requests.adapters
import requests.exceptions as rx
import urllib3.exceptions as ux
from oss2.models import PartInfo
from requests.models import PreparedRequest, Response

from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    NotFound,
    PermanentError,
    PreconditionFailed,
    SourceChanged,
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
)

log = logging.getLogger("argosy.oss")

LIFECYCLE_RULE_ID = "argosy-artifacts"
_META = "x-oss-meta-"
_STANDARD_RANGES = {"x-oss-range-behavior": "standard"}

# One table: OSS error code -> (class, what it means to a user).
ERROR_TABLE: dict[str, tuple[type[ArtifactError], str]] = {
    "NoSuchKey": (NotFound, "no such key"),
    "NoSuchBucket": (NotFound, "no such bucket"),
    "NoSuchUpload": (NotFound, "no such multipart upload"),
    "NoSuchLifecycle": (NotFound, "the bucket has no lifecycle configuration"),
    "AccessDenied": (AccessDenied, "access denied"),
    "InvalidAccessKeyId": (AccessDenied, "unknown access key"),
    "SignatureDoesNotMatch": (AccessDenied, "signature does not match (wrong secret key?)"),
    "SecurityTokenExpired": (AccessDenied, "the STS security token has expired"),
    "InvalidSecurityToken": (AccessDenied, "invalid STS security token"),
    "RequestTimeTooSkewed": (AccessDenied, "this machine's clock is more than 15 minutes "
                                           "off the server's"),
    "PreconditionFailed": (PreconditionFailed, "the object changed while being read"),
    "InvalidRange": (IntegrityError, "requested range is outside the object"),
    "InvalidDigest": (IntegrityError, "the server computed a different Content-MD5"),
    "BadDigest": (IntegrityError, "the server computed a different checksum"),
    "InvalidPart": (InvalidSpec, "a part is missing or its ETag differs"),
    "InvalidPartOrder": (InvalidSpec, "parts are not in ascending order"),
    "EntityTooSmall": (InvalidSpec, "part too small (OSS needs >= 100 KiB but the last)"),
    "EntityTooLarge": (InvalidSpec, "object or part too large"),
    "InvalidObjectName": (InvalidSpec, "invalid object name"),
    "InvalidBucketName": (InvalidSpec, "invalid bucket name"),
    "InvalidArgument": (InvalidSpec, "invalid argument"),
    "MalformedXML": (InvalidSpec, "malformed request document"),
    "InvalidRequest": (InvalidSpec, "invalid request"),
    "BucketAlreadyExists": (PermanentError, "the bucket already exists"),
    "ServiceUnavailable": (ThrottledError, "service unavailable"),
    "SlowDown": (ThrottledError, "the server asked to slow down"),
    "QpsLimitExceeded": (ThrottledError, "request rate limit exceeded"),
    "TooManyRequests": (ThrottledError, "too many requests"),
    "RequestTimeout": (TransientError, "the server timed out reading the request"),
    "InternalError": (TransientError, "internal server error"),
}
_BY_STATUS: dict[int, tuple[type[ArtifactError], str]] = {
    403: (AccessDenied, "access denied"),
    404: (NotFound, "not found"),
    412: (PreconditionFailed, "the object changed while being read"),
    416: (IntegrityError, "requested range is outside the object"),
    429: (ThrottledError, "too many requests"),
    503: (ThrottledError, "service unavailable"),
}
_TRANSIENT = (rx.ConnectionError, rx.Timeout, rx.ChunkedEncodingError, ux.HTTPError,
              ConnectionError, TimeoutError)


def _request_error(error: ox.RequestError, where: str, endpoint: str) -> ArtifactError:
    cause = getattr(error, "exception", None)
    if isinstance(cause, rx.SSLError):
        text = str(cause)
        tls = ("certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else
               "the endpoint does not speak TLS" if "WRONG_VERSION_NUMBER" in text else
               "handshake failed")
        return PermanentError(f"{where}: TLS failed ({tls}); trust the server with "
                              "--ca-bundle FILE, or skip checks with --insecure",
                              code="TLSError")
    # requests wraps urllib3's MaxRetryError, whose reason tells a refused connection
    reason = getattr(cause.args[0], "reason", None) if cause is not None and cause.args \
        else None
    if isinstance(cause, rx.ConnectTimeout) or isinstance(reason, ux.NewConnectionError):
        return TransientError(f"{where}: cannot reach the endpoint {endpoint}".rstrip(),
                              code="EndpointUnreachable")
    name = type(cause).__name__ if cause is not None else "RequestError"
    return TransientError(f"{where}: connection failed ({name})", code=name)


def map_error(error: BaseException, where: str, endpoint: str = "") -> ArtifactError:
    """Translate one oss2 / requests failure into Argosy's tree; never leaks secrets (the
    server's details, which echo the string it signed, are left out)."""
    if isinstance(error, ArtifactError):
        return error
    if isinstance(error, ox.InconsistentError):
        return IntegrityError(f"{where}: CRC64 of the bytes sent differs from the server's",
                              code="InconsistentError")
    if isinstance(error, ox.RequestError):
        return _request_error(error, where, endpoint)
    if isinstance(error, ox.ClientError):
        text = str(getattr(error, "body", "")).removeprefix("ClientError: ")
        if "access key" in text.lower():
            return AccessDenied(f"{where}: no usable credentials ({text})", code="NoCredentials")
        return InvalidSpec(f"{where}: {text}", code="ClientError")
    if isinstance(error, ox.OssError):
        status = int(error.status or 0)
        code = str(error.code or status)
        details = getattr(error, "details", None) or {}
        if details.get("Endpoint"):  # OSS names the endpoint a bucket must be reached at
            return InvalidSpec(f"{where}: the bucket is in another region; use the endpoint "
                               f"{details['Endpoint']}", code=code)
        cls, meaning = ERROR_TABLE.get(code) or _BY_STATUS.get(status) or (
            (TransientError, f"server error {status}") if status >= 500 else
            (PermanentError, "request failed"))
        request = f", request {error.request_id}" if error.request_id else ""
        return cls(f"{where}: {meaning} ({code}{request})", code=code)
    if isinstance(error, _TRANSIENT):
        return TransientError(f"{where}: connection failed ({type(error).__name__})",
                              code=type(error).__name__)
    if isinstance(error, (ValueError, TypeError)):
        return InvalidSpec(f"{where}: {error}", code="InvalidParameter")
    if isinstance(error, OSError):
        return TransientError(f"{where}: {type(error).__name__}: {error.strerror or ''}",
                              code=type(error).__name__)
    raise error


# -- CRC64 -------------------------------------------------------------------------------------
_CRC64_POLY = 0x142F0E1EBA9EA3693
_CRC64_REFLECTED = 0xC96C5795D7870F42
_MASK64 = (1 << 64) - 1
_crc64_fn: Any = crcmod.mkCrcFun(_CRC64_POLY, initCrc=0, xorOut=_MASK64, rev=True)


def crc_extension_loaded() -> bool:
    return bool(getattr(importlib.import_module("crcmod.crcmod"), "_usingExtension", False))


def require_crc_extension() -> None:
    if not crc_extension_loaded():
        raise InvalidSpec(
            "the OSS driver needs crcmod's C extension (CRC64 in pure Python runs at ~13 MB/s)"
            ": install a C compiler and Python headers (e.g. apt-get install gcc python3-dev), "
            "then pip install --force-reinstall --no-binary crcmod crcmod",
            code="CrcmodExtensionMissing")


def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-64/XZ of `data` (OSS's x-oss-hash-crc64ecma), continuing from `crc`."""
    return int(_crc64_fn(data, crc))


def _gf2_times(matrix: tuple[int, ...], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_then(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_gf2_times(second, column) for column in first)


@functools.lru_cache(maxsize=64)
def _zeros_pow2(exponent: int) -> tuple[int, ...]:
    """The operator appending 2**exponent zero bytes to a CRC64 register."""
    if exponent == 0:
        op = (_CRC64_REFLECTED,) + tuple(1 << n for n in range(63))  # one zero bit
        for _ in range(3):
            op = _gf2_then(op, op)
        return op
    half = _zeros_pow2(exponent - 1)
    return _gf2_then(half, half)


@functools.lru_cache(maxsize=128)
def _zeros(length: int) -> tuple[int, ...]:
    """The operator appending `length` zero bytes (cached: parts mostly share one size)."""
    op: tuple[int, ...] | None = None
    exponent = 0
    while length:
        if length & 1:
            op = _zeros_pow2(exponent) if op is None else _gf2_then(op, _zeros_pow2(exponent))
        length >>= 1
        exponent += 1
    assert op is not None
    return op


def crc64_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC64 of A+B from crc64(A), crc64(B) and len(B) (zlib's crc32_combine method;
    oss2's own combine rebuilds its matrices every call, ~8 ms a part)."""
    return crc1 if len2 <= 0 else _gf2_times(_zeros(len2), crc1) ^ crc2


# -- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lifecycle:
    """Argo's `lifecycleRule`: objects under `prefix` move to Infrequent Access after
    `mark_infrequent_access_after_days` and are deleted after `mark_deletion_after_days`
    (None: never). Kept as one rule, `LIFECYCLE_RULE_ID`, beside the bucket's others."""

    mark_infrequent_access_after_days: int | None = None
    mark_deletion_after_days: int | None = None
    prefix: str = ""


@dataclass(frozen=True)
class OssSettings:
    """How to reach OSS. Credentials: an access key and secret (with `security_token` for
    STS), or `use_sdk_creds` for oss2's environment provider (OSS_ACCESS_KEY_ID,
    OSS_ACCESS_KEY_SECRET, OSS_SESSION_TOKEN, read at every request so a rotated token
    is picked up).

    endpoint: with scheme; without one https is assumed. Internal endpoints
        (`oss-cn-hangzhou-internal.aliyuncs.com`) work as any other.
    region: set, requests are signed with signature V4 for it; unset, V1.
    verify: False = no TLS checks; a str = a CA bundle file.
    create_bucket_if_not_present / lifecycle: applied once, before the driver's first write.
    connect_timeout / read_timeout: seconds (10: a dead endpoint fails fast; 60: a busy
        server may take that long to start answering a large Complete).
    max_connections: the pool size; keep it above the transfer concurrency.
    """

    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    use_sdk_creds: bool = False
    region: str | None = None
    verify: bool | str = True
    create_bucket_if_not_present: bool = False
    lifecycle: Lifecycle | None = None
    max_connections: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def _auth(settings: OssSettings) -> Any:
    if settings.access_key and settings.secret_key:
        provider = oss2.credentials.StaticCredentialsProvider(
            settings.access_key, settings.secret_key, settings.security_token or "")
    elif settings.use_sdk_creds:
        provider = oss2.credentials.EnvironmentVariableCredentialsProvider()
        try:
            provider.get_credentials()
        except ox.ClientError:
            raise AccessDenied("OSS: useSDKCreds is set but OSS_ACCESS_KEY_ID and "
                               "OSS_ACCESS_KEY_SECRET are not", code="NoCredentials") from None
    else:
        raise AccessDenied("OSS: no credentials: set OSS_ACCESS_KEY_ID and "
                           "OSS_ACCESS_KEY_SECRET, give accessKeySecret/secretKeySecret, or "
                           "useSDKCreds", code="NoCredentials")
    if settings.region:
        return oss2.ProviderAuthV4(provider)
    return oss2.ProviderAuth(provider)


class _VerifyAdapter(requests.adapters.HTTPAdapter):
    """Applies --insecure / --ca-bundle to every request: oss2 passes no `verify` per
    request, and requests then lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the
    session's."""

    def __init__(self, verify: bool | str, pool_size: int) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size)
        self._verify = verify

    def send(self, request: PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None,
             verify: bool | str = True, cert: str | tuple[str, str] | None = None,
             proxies: dict[str, str] | None = None) -> Response:
        return super().send(request, stream=stream, timeout=timeout, verify=self._verify,
                            cert=cert, proxies=proxies)


def make_bucket(settings: OssSettings, bucket: str) -> Any:
    if not settings.endpoint:
        raise InvalidSpec("OSS needs an endpoint (--endpoint, OSS_ENDPOINT or the "
                          "repository's endpoint)")
    endpoint = settings.endpoint if "://" in settings.endpoint else \
        f"https://{settings.endpoint}"
    if settings.verify is False:
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    adapter = None if settings.verify is True else \
        _VerifyAdapter(settings.verify, settings.max_connections)
    session = oss2.Session(pool_size=settings.max_connections, adapter=adapter)
    return oss2.Bucket(_auth(settings), endpoint, bucket, session=session,
                       connect_timeout=(settings.connect_timeout, settings.read_timeout),
                       enable_crc=False, region=settings.region)


# -- bodies and streams ------------------------------------------------------------------------
class _Crc64Body:
    """What requests sends: the caller's body handed out in 1 MiB chunks (whatever size
    the HTTP layer asks for), CRC64 computed over exactly those bytes. Buffers are sent
    as memoryview slices, without copies."""

    CHUNK = 1 << 20

    def __init__(self, body: Body, size: int) -> None:
        self._buffer = memoryview(body).cast("B") if isinstance(
            body, (bytes, bytearray, memoryview)) else None
        self._body: Any = body
        self._size = size
        self._pos = 0
        self.crc = 0

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        target = {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence]
        if target != self._pos:
            if target != 0:
                raise ValueError("a request body only rewinds to its start")
            if self._buffer is None:
                self._body.seek(0)
            self._pos, self.crc = 0, 0
        return self._pos

    def read(self, amount: int | None = -1) -> bytes | memoryview:
        remaining = self._size - self._pos
        if remaining <= 0:
            return b""
        count = remaining if amount is None or amount < 0 else \
            min(remaining, max(amount, self.CHUNK))
        data = self._buffer[self._pos:self._pos + count] if self._buffer is not None \
            else self._body.read(count)
        if not data:
            raise SourceChanged(f"the body ended at byte {self._pos} of {self._size}")
        self.crc = crc64(data, self.crc)
        self._pos += len(data)
        return data


@dataclass(frozen=True)
class OssPart(Part):
    """A part as this driver uploaded it: with the CRC64 the server confirmed, so Complete
    can check the whole object. Parts listed from the server carry none."""

    crc64: int | None = None


class OssReadStream:
    """One GET's bytes; when they are the whole object, their CRC64 is checked against the
    server's at the last byte, before that byte is handed over."""

    def __init__(self, result: Any, start: int, end: int, total: int, etag: str,
                 whole_crc: int | None, where: str) -> None:
        self._result = result
        self._raw = result.resp.response.raw  # exact stored bytes: no content decoding
        self.start, self.end, self.total, self.etag = start, end, total, etag
        self._expected = whole_crc
        self._left = end - start + 1
        self._crc = 0
        self._where = where

    def readinto(self, buffer: memoryview) -> int:
        try:
            n = int(self._raw.readinto(buffer))
        except Exception as error:  # noqa: BLE001 - mapped, never leaked
            raise map_error(error, self._where) from error
        if self._expected is not None and n:
            self._crc = crc64(buffer[:n], self._crc)
            self._left -= n
            if self._left <= 0 and self._crc != self._expected:
                raise IntegrityError(f"{self._where}: CRC64 mismatch: the server records "
                                     f"{self._expected:016x}, the bytes read have "
                                     f"{self._crc:016x}", code="Crc64Mismatch")
        return n

    def close(self) -> None:
        self._result.resp.response.close()


def _parse_content_range(value: str | None, size: int) -> tuple[int, int, int]:
    if not value:
        return 0, size - 1, size
    _, _, spec = value.partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    return int(first), int(last), int(total)


def _when(unix: int | float | None) -> datetime:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else datetime.now(UTC)


def _meta_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    return {_META + k.lower(): v for k, v in metadata.items()}


# -- the driver --------------------------------------------------------------------------------
class OssDriver:
    scheme = "oss"

    def __init__(self, settings: OssSettings, bucket: str, *, client: Any | None = None):
        if not bucket:
            raise InvalidSpec("an OSS URL needs a bucket: oss://BUCKET/KEY")
        require_crc_extension()
        self.settings = settings
        self.bucket = bucket
        self._client = client if client is not None else make_bucket(settings, bucket)
        self._prepared = False
        self._prepare_lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"oss://{self.bucket}/{key}"

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except ArtifactError:
            raise
        except Exception as error:  # noqa: BLE001 - mapped through the one table
            where = self.url(key) if key is not None else f"oss://{self.bucket}"
            raise map_error(error, where, self.settings.endpoint or "") from error

    def _before_write(self) -> None:
        """createBucketIfNotPresent and the lifecycle rule, once per driver."""
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            if self.settings.create_bucket_if_not_present:
                self.create_bucket()
            rule = self.settings.lifecycle
            if rule is not None:
                self.merge_lifecycle(rule.mark_infrequent_access_after_days,
                                     rule.mark_deletion_after_days, prefix=rule.prefix)
            self._prepared = True

    def _check_crc(self, key: str, what: str, sent: int, result: Any) -> None:
        if result.crc is not None and int(result.crc) != sent:
            raise IntegrityError(f"{self.url(key)}: {what}: CRC64 of the bytes sent "
                                 f"({sent:016x}) differs from the server's "
                                 f"({int(result.crc):016x})", code="Crc64Mismatch")

    def _discard_corrupt(self, key: str, error: IntegrityError) -> IntegrityError:
        """An object whose bytes are known wrong is not left under its key."""
        try:
            with self._errors(key):
                self._client.delete_object(key)
            return IntegrityError(f"{error}; the object was deleted", code=error.code)
        except ArtifactError as delete_error:
            return IntegrityError(f"{error}; deleting it failed too ({delete_error})",
                                  code=error.code)

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            head = self._client.head_object(key)
        return ObjectInfo(
            key=key, size=int(head.content_length or 0), etag=str(head.etag or "").strip('"'),
            modified=_when(head.last_modified),
            metadata={k.lower()[len(_META):]: v for k, v in head.headers.items()
                      if k.lower().startswith(_META)})

    def read(self, key: str, *, start: int = 0, end: int | None = None,
             if_match: str | None = None) -> OssReadStream:
        headers = dict(_STANDARD_RANGES)
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        byte_range = (start, end) if start or end is not None else None
        with self._errors(key):
            result = self._client.get_object(key, byte_range=byte_range, headers=headers)
        length = int(result.content_length or 0)
        first, last, total = _parse_content_range(result.content_range, length)
        if last - first + 1 != length and length:
            result.resp.response.close()
            raise IntegrityError(f"{self.url(key)}: Content-Range {result.content_range} "
                                 f"disagrees with Content-Length {length}")
        whole = first == 0 and last == total - 1
        server_crc = result.headers.get("x-oss-hash-crc64ecma")
        return OssReadStream(result, first, last, total, str(result.etag or "").strip('"'),
                             int(server_crc) if whole and server_crc else None, self.url(key))

    def put(self, key: str, body: Body, *, size: int, metadata: Mapping[str, str]) -> str:
        self._before_write()
        sent = _Crc64Body(body, size)
        with self._errors(key):
            result = self._client.put_object(key, sent, headers=_meta_headers(metadata))
        try:
            self._check_crc(key, "put", sent.crc, result)
        except IntegrityError as error:
            raise self._discard_corrupt(key, error) from None
        return str(result.etag or "").strip('"')

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str:
        self._before_write()
        with self._errors(key):
            result = self._client.init_multipart_upload(key, headers=_meta_headers(metadata))
        return str(result.upload_id)

    def upload_part(self, key: str, upload_id: str, number: int,
                    body: Body, *, size: int) -> OssPart:
        sent = _Crc64Body(body, size)
        with self._errors(key):
            result = self._client.upload_part(key, upload_id, number, sent)
        self._check_crc(key, f"part {number}", sent.crc, result)
        return OssPart(number, str(result.etag).strip('"'), size, crc64=sent.crc)

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        with self._errors(key):
            result = self._client.complete_multipart_upload(
                key, upload_id, [PartInfo(p.number, p.etag) for p in parts])
        crcs = [p.crc64 for p in parts if isinstance(p, OssPart)]
        if len(crcs) == len(parts) and all(c is not None for c in crcs):
            whole = 0
            for part in sorted(parts, key=lambda p: p.number):
                whole = crc64_combine(whole, part.crc64, part.size)  # type: ignore[attr-defined]
            try:
                self._check_crc(key, "complete", whole, result)
            except IntegrityError as error:
                raise self._discard_corrupt(key, error) from None
        return str(result.etag or "").strip('"') or self.stat(key).etag

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._errors(key):
            self._client.abort_multipart_upload(key, upload_id)

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """The server's parts, with the CRC64 it lists for each (oss2's own ListParts drops
        it), so that a resumed upload is still checked whole at Complete."""
        parts: list[Part] = []
        marker = "0"
        with self._errors(key):
            while True:
                answer = self._client._do("GET", self.bucket, key, params={
                    "uploadId": upload_id, "part-number-marker": marker, "max-parts": "1000"})
                root = ET.fromstring(answer.read())
                for node in root.findall("Part"):
                    crc = node.findtext("HashCrc64ecma")
                    parts.append(OssPart(int(node.findtext("PartNumber") or 0),
                                         (node.findtext("ETag") or "").strip('"'),
                                         int(node.findtext("Size") or 0),
                                         crc64=int(crc) if crc else None))
                if (root.findtext("IsTruncated") or "").strip().lower() != "true":
                    return parts
                marker = root.findtext("NextPartNumberMarker") or ""

    def list(self, prefix: str = "", *, delimiter: str | None = None,
             token: str | None = None, limit: int = 1000) -> ListPage:
        with self._errors(prefix):
            result = self._client.list_objects_v2(prefix=prefix, delimiter=delimiter or "",
                                                  continuation_token=token or "",
                                                  max_keys=limit)
        objects = [ObjectInfo(o.key, int(o.size), str(o.etag).strip('"'),
                              _when(o.last_modified)) for o in result.object_list]
        token = result.next_continuation_token if result.is_truncated else None
        return ListPage(objects, list(result.prefix_list), token or None)

    def list_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        uploads: builtins.list[UploadInfo] = []
        key_marker = upload_marker = ""
        with self._errors(prefix):
            while True:
                result = self._client.list_multipart_uploads(
                    prefix=prefix, key_marker=key_marker, upload_id_marker=upload_marker)
                uploads += [UploadInfo(u.key, u.upload_id, _when(u.initiation_date))
                            for u in result.upload_list]
                if not result.is_truncated:
                    return uploads
                key_marker = result.next_key_marker
                upload_marker = result.next_upload_id_marker

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        if not keys:
            return []
        if len(keys) > 1000:
            raise InvalidSpec("a batch delete takes at most 1000 keys")
        with self._errors(keys[0]):
            result = self._client.batch_delete_objects(builtins.list(keys))
        # OSS lists every key it was asked to delete, missing ones included
        deleted = set(result.deleted_keys)
        return [DeleteFailure(k, "NotDeleted", "the server did not report it deleted")
                for k in keys if k not in deleted]

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *,
                         if_match: str) -> str:
        # x-oss-copy-source-if-match is the real guard; the HEAD first also covers servers
        # that ignore the condition, and gives the Content-Type to keep.
        with self._errors(key):
            head = self._client.head_object(key)
        if str(head.etag or "").strip('"') != if_match:
            raise PreconditionFailed(f"{self.url(key)} changed before its metadata was set")
        headers = {"x-oss-metadata-directive": "REPLACE",
                   "x-oss-copy-source-if-match": f'"{if_match}"', **_meta_headers(metadata)}
        if head.content_type:
            headers["Content-Type"] = head.content_type
        with self._errors(key):
            result = self._client.copy_object(self.bucket, key, key, headers=headers)
            body = result.resp.read()  # CopyObjectResult; reading it frees the connection
        etag = result.etag or (ET.fromstring(body).findtext("ETag") if body else None)
        return str(etag or "").strip('"')

    def create_bucket(self) -> None:
        """Create the bucket if it is missing. Refused for lack of permission is not an
        error here: the write that follows tells whether the bucket exists."""
        with self._errors():
            try:
                self._client.create_bucket()
            except ox.ServerError as error:
                if error.code in ("BucketAlreadyExists", "AccessDenied"):
                    log.debug("create bucket %s: %s", self.bucket, error.code)
                    return
                raise

    def merge_lifecycle(self, mark_infrequent_access_after_days: int | None,
                        mark_deletion_after_days: int | None, *, prefix: str = "") -> None:
        """Set Argosy's own lifecycle rule (`LIFECYCLE_RULE_ID`), keeping every other rule
        of the bucket as it was (Argo replaces them all). Both None removes the rule."""
        ia, expire = mark_infrequent_access_after_days, mark_deletion_after_days
        for name, days in (("markInfrequentAccessAfterDays", ia),
                           ("markDeletionAfterDays", expire)):
            if days is not None and (not isinstance(days, int) or days <= 0):
                raise InvalidSpec(f"lifecycleRule.{name} must be a positive number of days")
        if ia is not None and expire is not None and ia >= expire:
            raise InvalidSpec("lifecycleRule.markInfrequentAccessAfterDays must be less than "
                              "markDeletionAfterDays")
        with self._errors():
            try:
                current = self._client._do("GET", self.bucket, "",
                                           params={"lifecycle": ""}).read()
                root = ET.fromstring(current)
            except ox.NoSuchLifecycle:
                root = ET.Element("LifecycleConfiguration")
            for rule in root.findall("Rule"):
                if (rule.findtext("ID") or "").strip() == LIFECYCLE_RULE_ID:
                    root.remove(rule)
            if ia is not None or expire is not None:
                root.append(_lifecycle_rule(prefix, ia, expire))
            if root.findall("Rule"):
                self._client.put_bucket_lifecycle(ET.tostring(root, encoding="utf-8"))
            else:
                self._client.delete_bucket_lifecycle()


def _lifecycle_rule(prefix: str, ia: int | None, expire: int | None) -> ET.Element:
    rule = ET.Element("Rule")
    for tag, text in (("ID", LIFECYCLE_RULE_ID), ("Prefix", prefix), ("Status", "Enabled")):
        ET.SubElement(rule, tag).text = text
    if expire is not None:
        ET.SubElement(ET.SubElement(rule, "Expiration"), "Days").text = str(expire)
    if ia is not None:
        transition = ET.SubElement(rule, "Transition")
        ET.SubElement(transition, "Days").text = str(ia)
        ET.SubElement(transition, "StorageClass").text = "IA"
    return rule
