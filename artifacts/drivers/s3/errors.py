"""The S3 driver's one error table, and the mapping of failures into Argosy's tree.

Refusals (an S3 error code and an HTTP status) map through `ERROR_TABLE`, whichever path
sent the request: botocore's (`sdk.py` hands its ClientError here) or the direct one.
Transport failures of the direct path (`wire.py`), of urllib3 and http.client under
botocore, and of the socket map here too (`map_transport`); the modules of the latter
are looked up only if loaded (importing them cost ~50 ms of a command's start).
botocore's own exceptions are mapped in `sdk.py`, the one module that imports botocore;
`driver.map_error` sends each failure to the right one. Nothing of the server's message
is repeated but the code: messages may quote a string-to-sign.
"""

from __future__ import annotations

import sys
from typing import Any

from argosy.artifacts.drivers.s3.wire import ConnectFailed, Stall
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
    "AuthorizationHeaderMalformed": (
        AccessDenied,
        "authorization header malformed (wrong region?)",
    ),
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
    # the engine lists the parts it was answered: never the user's input
    "InvalidPart": (PermanentError, "a part is missing or its ETag differs"),
    "InvalidPartOrder": (PermanentError, "parts are not in ascending order"),
    "InvalidBucketName": (InvalidSpec, "invalid bucket name"),
    "BucketAlreadyExists": (Conflict, "the bucket name is taken by another account"),
    "BucketAlreadyOwnedByYou": (Conflict, "the bucket already exists and is yours"),
    "TooManyBuckets": (PermanentError, "the account may not create more buckets"),
    "InvalidLocationConstraint": (InvalidSpec, "invalid location constraint (region)"),
    "IllegalLocationConstraintException": (InvalidSpec, "the region does not match the endpoint"),
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


def refused(code: str, status: int, message: str, where: str) -> ArtifactError:
    """The error for a server's refusal: by its code, else by its status."""
    code = code or str(status or "unknown")
    cls, meaning = ERROR_TABLE.get(code, (None, ""))
    if cls is None:
        if status >= 500:
            cls, meaning = TransientError, f"server error {status}"
        elif status == 404:
            cls, meaning = NotFound, "not found"
        elif status == 403:
            cls, meaning = AccessDenied, "access denied"
        else:
            cls, meaning = PermanentError, message or "request failed"
    return cls(f"{where}: {meaning} ({code})", code=code)


def tls_failed(error: BaseException, where: str) -> ArtifactError:
    text = str(error)
    reason = (
        "certificate verify failed"
        if "CERTIFICATE_VERIFY_FAILED" in text
        else "the endpoint does not speak TLS"
        if "WRONG_VERSION_NUMBER" in text
        else "handshake failed"
    )
    return PermanentError(
        f"{where}: TLS failed ({reason}); trust the server "
        "with --ca-bundle FILE, or skip checks with --insecure",
        code="TLSError",
    )


def map_transport(
    error: BaseException,
    where: str,
    endpoint: str = "",
    *,
    request: str = "",
    phase: str = "answer",
) -> ArtifactError:
    """Translate one failure of the direct path (`wire.py`), of urllib3 and http.client
    under botocore and a GET's body, or of the socket, into Argosy's tree; never leaks
    secrets. `endpoint` names the server for failures that do not carry it (urllib3's);
    a timeout names `request` (`UploadPart 3`) and, unless the failure says, `phase`
    (what it waited for: see `RequestStalled.at`)."""
    if isinstance(error, ArtifactError):
        return error
    ssl, urllib3 = sys.modules.get("ssl"), sys.modules.get("urllib3")
    client = sys.modules.get("http.client")
    stalled = _stall_phase(error, phase, urllib3)
    if stalled is not None:
        return RequestStalled.at(where, stalled, request=request, endpoint=endpoint)
    if (
        ssl is not None
        and isinstance(error, ssl.SSLError)
        or urllib3 is not None
        and isinstance(error, urllib3.exceptions.SSLError)
    ):
        return tls_failed(error, where)
    if (
        isinstance(error, ConnectFailed)
        or urllib3 is not None
        and isinstance(
            error, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
        )
    ):
        return TransientError(
            f"{where}: cannot reach the endpoint ({redact_url(endpoint, endpoint=True)})",
            code="EndpointUnreachable",
        )
    if (
        isinstance(error, (ConnectionError, TimeoutError))
        or urllib3 is not None
        and isinstance(error, urllib3.exceptions.HTTPError)
        or client is not None
        and isinstance(error, client.HTTPException)
    ):
        return TransientError(
            f"{where}: connection failed ({type(error).__name__})", code=type(error).__name__
        )
    if isinstance(error, ValueError):
        return InvalidSpec(f"{where}: {error}", code="InvalidParameter")
    if isinstance(error, OSError):
        return TransientError(
            f"{where}: {type(error).__name__}: {error.strerror or ''}", code=type(error).__name__
        )
    raise error


def _stall_phase(error: BaseException, phase: str, urllib3: Any) -> str | None:
    """What a timeout waited for (None: `error` is no timeout): the direct path's own
    phase; connecting, for a connection that timed out; else `phase`."""
    if isinstance(error, Stall):
        return error.phase
    if isinstance(error, ConnectFailed):
        return "connect" if error.timed_out else None
    if urllib3 is not None:
        if isinstance(error, urllib3.exceptions.NewConnectionError):
            return None  # refused or unknown (urllib3 files it under connect timeouts)
        if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
            return "connect"
    if isinstance(error, TimeoutError) or (
        urllib3 is not None and isinstance(error, urllib3.exceptions.TimeoutError)
    ):
        return phase
    return None
