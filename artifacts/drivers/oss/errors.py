"""One table from OSS error codes (and oss2 / requests failures) to Argosy's error tree:
no oss2 exception leaves the driver."""

from __future__ import annotations

import oss2.exceptions as ox
import requests.exceptions as rx
import urllib3.exceptions as ux

from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    Conflict,
    IntegrityError,
    InvalidSpec,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RequestStalled,
    ThrottledError,
    TransientError,
    redact_url,
)

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
    "RequestTimeTooSkewed": (
        AccessDenied,
        "this machine's clock is more than 15 minutes off the server's",
    ),
    "PreconditionFailed": (PreconditionFailed, "the object changed while being read"),
    "InvalidRange": (IntegrityError, "requested range is outside the object"),
    "InvalidDigest": (IntegrityError, "the server computed a different Content-MD5"),
    "BadDigest": (IntegrityError, "the server computed a different checksum"),
    # the engine lists the parts it was answered: never the user's input
    "InvalidPart": (PermanentError, "a part is missing or its ETag differs"),
    "InvalidPartOrder": (PermanentError, "parts are not in ascending order"),
    "EntityTooSmall": (InvalidSpec, "part too small (OSS needs >= 100 KiB but the last)"),
    "EntityTooLarge": (InvalidSpec, "object or part too large"),
    "InvalidObjectName": (InvalidSpec, "invalid object name"),
    "InvalidBucketName": (InvalidSpec, "invalid bucket name"),
    "InvalidArgument": (InvalidSpec, "invalid argument"),
    "MalformedXML": (InvalidSpec, "malformed request document"),
    "InvalidRequest": (InvalidSpec, "invalid request"),
    "BucketAlreadyExists": (Conflict, "the bucket name is taken"),
    "TooManyBuckets": (PermanentError, "the account may not create more buckets"),
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
_TRANSIENT = (
    rx.ConnectionError,
    rx.Timeout,
    rx.ChunkedEncodingError,
    ux.HTTPError,
    ConnectionError,
    TimeoutError,
)


def _request_error(
    error: ox.RequestError, where: str, endpoint: str, request: str, phase: str
) -> ArtifactError:
    cause = getattr(error, "exception", None)
    stalled = _stall_phase(cause, phase)
    if stalled is not None:
        return RequestStalled.at(where, stalled, request=request, endpoint=endpoint)
    if isinstance(cause, rx.SSLError):
        text = str(cause)
        tls = (
            "certificate verify failed"
            if "CERTIFICATE_VERIFY_FAILED" in text
            else "the endpoint does not speak TLS"
            if "WRONG_VERSION_NUMBER" in text
            else "handshake failed"
        )
        return PermanentError(
            f"{where}: TLS failed ({tls}); trust the server with "
            "--ca-bundle FILE, or skip checks with --insecure",
            code="TLSError",
        )
    # requests wraps urllib3's MaxRetryError, whose reason tells a refused connection
    reason = getattr(cause.args[0], "reason", None) if cause is not None and cause.args else None
    if isinstance(cause, rx.ConnectTimeout) or isinstance(reason, ux.NewConnectionError):
        shown = redact_url(endpoint, endpoint=True)
        return TransientError(
            f"{where}: cannot reach the endpoint {shown}".rstrip(), code="EndpointUnreachable"
        )
    name = type(cause).__name__ if cause is not None else "RequestError"
    return TransientError(f"{where}: connection failed ({name})", code=name)


def _stall_phase(error: BaseException | None, phase: str) -> str | None:
    """What a timeout waited for (None: `error` is no timeout)."""
    if isinstance(error, ux.NewConnectionError):
        return None  # refused or unknown (urllib3 files it under connect timeouts)
    if isinstance(error, (rx.ConnectTimeout, ux.ConnectTimeoutError)):
        return "connect"
    if isinstance(error, (rx.Timeout, ux.TimeoutError, TimeoutError)):
        return phase
    if isinstance(error, rx.ConnectionError) and error.args:
        reason = getattr(error.args[0], "reason", None)  # a timeout inside MaxRetryError
        return _stall_phase(reason, phase) if isinstance(reason, BaseException) else None
    return None


def map_error(
    error: BaseException,
    where: str,
    endpoint: str = "",
    *,
    request: str = "",
    phase: str = "answer",
) -> ArtifactError:
    """Translate one oss2 / requests failure into Argosy's tree; never leaks secrets (the
    server's details, which echo the string it signed, are left out). A timeout names
    `request` (the OSS operation) and, unless the failure says, `phase`."""
    if isinstance(error, ArtifactError):
        return error
    stalled = _stall_phase(error, phase)
    if stalled is not None:
        return RequestStalled.at(where, stalled, request=request, endpoint=endpoint)
    if isinstance(error, ox.InconsistentError):
        return IntegrityError(
            f"{where}: CRC64 of the bytes sent differs from the server's", code="InconsistentError"
        )
    if isinstance(error, ox.RequestError):
        return _request_error(error, where, endpoint, request, phase)
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
            return InvalidSpec(
                f"{where}: the bucket is in another region; use the endpoint {details['Endpoint']}",
                code=code,
            )
        cls, meaning = (
            ERROR_TABLE.get(code)
            or _BY_STATUS.get(status)
            or (
                (TransientError, f"server error {status}")
                if status >= 500
                else (PermanentError, "request failed")
            )
        )
        request = f", request {error.request_id}" if error.request_id else ""
        return cls(f"{where}: {meaning} ({code}{request})", code=code)
    if isinstance(error, _TRANSIENT):
        return TransientError(
            f"{where}: connection failed ({type(error).__name__})", code=type(error).__name__
        )
    if isinstance(error, (ValueError, TypeError)):
        return InvalidSpec(f"{where}: {error}", code="InvalidParameter")
    if isinstance(error, OSError):
        return TransientError(
            f"{where}: {type(error).__name__}: {error.strerror or ''}", code=type(error).__name__
        )
    raise error
