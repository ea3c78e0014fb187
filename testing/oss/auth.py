"""Request authentication for the OSS test server: signature V1, V4, presigned URLs and STS.

A fake server that accepts any ``Authorization`` header proves nothing about
the client's signing code, so this module recomputes the signature the way
OSS does (and the way ``oss2.auth`` builds it) and rejects mismatches with the
real OSS error codes:

* V1 (``Authorization: OSS AccessKeyId:Signature``): HMAC-SHA1 over the verb,
  Content-MD5, Content-Type, Date (or ``x-oss-date``), the sorted ``x-oss-*``
  headers and the canonicalized resource ``/bucket/key`` followed by the signed
  sub-resources (``oss2.auth.ProviderAuth._subresource_key_set``).
* V4 (``Authorization: OSS4-HMAC-SHA256 Credential=..., Signature=...``): the
  canonical request / scope / derived signing key scheme of ``oss2.AuthV4``.
* Presigned URLs (V1 ``OSSAccessKeyId``/``Expires``/``Signature`` and V4
  ``x-oss-signature-version=OSS4-HMAC-SHA256`` query parameters).
* STS: a request carrying ``x-oss-security-token`` is checked against the
  tokens configured on the server; an expired one answers SecurityTokenExpired.

The request time must be within ``max_skew_seconds`` (15 minutes, as OSS) or
the answer is RequestTimeTooSkewed; a request without credentials is
AccessDenied.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from .xml import OssError, parse_http_date

SIGNED_SUBRESOURCES = frozenset(
    [
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "logging",
        "response-content-encoding",
        "acl",
        "uploadId",
        "uploads",
        "partNumber",
        "group",
        "link",
        "delete",
        "website",
        "location",
        "objectInfo",
        "objectMeta",
        "response-expires",
        "response-content-disposition",
        "cors",
        "lifecycle",
        "restore",
        "qos",
        "referer",
        "stat",
        "bucketInfo",
        "append",
        "position",
        "security-token",
        "live",
        "comp",
        "status",
        "vod",
        "startTime",
        "endTime",
        "x-oss-process",
        "symlink",
        "callback",
        "callback-var",
        "tagging",
        "encryption",
        "versions",
        "versioning",
        "versionId",
        "policy",
        "requestPayment",
        "x-oss-traffic-limit",
        "qosInfo",
        "asyncFetch",
        "x-oss-request-payer",
        "sequential",
        "inventory",
        "inventoryId",
        "continuation-token",
        "worm",
        "wormId",
        "wormExtend",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "transferAcceleration",
        "cname",
        "metaQuery",
        "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask",
        "x-oss-ac-vpc-id",
        "x-oss-ac-forward-allow",
        "resourceGroup",
        "style",
        "styleName",
        "x-oss-async-process",
        "regionList",
        "x-oss-write-get-object-response",
        "bucketArchiveDirectRead",
        "httpsConfig",
        "redundancyTransition",
        "x-oss-target-redundancy-type",
        "x-oss-redundancy-transition-taskid",
        "accessPoint",
        "accessPointPolicy",
        "publicAccessBlock",
        "x-oss-access-point-name",
        "requesterQosInfo",
        "qosRequester",
        "resourcePoolInfo",
        "resourcePool",
        "resourcePoolBuckets",
    ]
)
"""The query parameters V1 signs, copied from ``oss2.auth.ProviderAuth`` (oss2 2.19)."""

V4_ALGORITHM = "OSS4-HMAC-SHA256"
_V4_DEFAULT_SIGNED = ("content-type", "content-md5")


@dataclass(frozen=True)
class StsToken:
    """Temporary credentials: a key pair valid only with its token, until ``expires_at``."""

    access_key_id: str
    access_key_secret: str
    expires_at: float


@dataclass(frozen=True)
class SigningInput:
    """What a signature covers: method, bucket, key, decoded query and lower-cased headers."""

    method: str
    bucket: str | None
    key: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


def canonical_resource(bucket: str | None, key: str, query: Mapping[str, str]) -> str:
    signed = sorted((k, v) for k, v in query.items() if k in SIGNED_SUBRESOURCES)
    resource = f"/{bucket}/{key}" if bucket else "/"
    if signed:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in signed)
    return resource


def v1_string_to_sign(req: SigningInput, date: str) -> str:
    oss_headers = sorted((k, v) for k, v in req.headers.items() if k.startswith("x-oss-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in oss_headers)
    return "\n".join(
        [
            req.method,
            req.headers.get("content-md5", ""),
            req.headers.get("content-type", ""),
            date,
            canonical_headers + canonical_resource(req.bucket, req.key, req.query),
        ]
    )


def v1_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def v4_canonical_request(req: SigningInput, additional: list[str], query: Mapping[str, str]) -> str:
    uri = quote(f"/{req.bucket}/{req.key}" if req.bucket else "/", safe="/")
    encoded = sorted((quote(k, safe=""), quote(v, safe="")) for k, v in query.items())
    canonical_query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
    signed = sorted(
        (k, v)
        for k, v in req.headers.items()
        if k.startswith("x-oss-") or k in _V4_DEFAULT_SIGNED or k in additional
    )
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in signed)
    payload = req.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return "\n".join(
        [req.method, uri, canonical_query, canonical_headers, ";".join(sorted(additional)), payload]
    )


def v4_signature(secret: str, date_time: str, scope: str, canonical_request: str) -> str:
    day, region, product, _terminal = scope.split("/")
    key = ("aliyun_v4" + secret).encode()
    for part in (day, region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    string_to_sign = "\n".join(
        [V4_ALGORITHM, date_time, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _parse_iso_basic(value: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


class Authenticator:
    """Checks a request's credentials; ``authenticate`` returns the access key id or raises."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        sts_tokens: Mapping[str, StsToken],
        *,
        max_skew_seconds: float = 900.0,
        region: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials: dict[str, str] = dict(credentials)
        self.sts_tokens: dict[str, StsToken] = dict(sts_tokens)
        self.max_skew_seconds = max_skew_seconds
        self.region = region
        self.clock = clock

    # -- key lookup ---------------------------------------------------------------------------
    def _secret_for(self, access_key_id: str, token: str | None) -> str:
        if token:
            sts = self.sts_tokens.get(token)
            if sts is None:
                raise OssError("InvalidSecurityToken")
            if sts.access_key_id != access_key_id:
                raise OssError("InvalidAccessKeyId", extra={"OSSAccessKeyId": access_key_id})
            if self.clock() >= sts.expires_at:
                raise OssError("SecurityTokenExpired")
            return sts.access_key_secret
        secret = self.credentials.get(access_key_id)
        if secret is None:
            raise OssError("InvalidAccessKeyId", extra={"OSSAccessKeyId": access_key_id})
        return secret

    def _check_skew(self, request_time: float | None) -> None:
        if request_time is None:
            raise OssError("AccessDenied", "Missing or invalid Date header.")
        if abs(self.clock() - request_time) > self.max_skew_seconds:
            raise OssError("RequestTimeTooSkewed")

    # -- entry point --------------------------------------------------------------------------
    def authenticate(self, req: SigningInput) -> str:
        authorization = req.headers.get("authorization", "")
        if authorization.startswith("OSS "):
            return self._header_v1(req, authorization[4:])
        if authorization.startswith(V4_ALGORITHM + " "):
            return self._header_v4(req, authorization[len(V4_ALGORITHM) + 1 :])
        if authorization:
            raise OssError("InvalidArgument", "Authorization header is invalid.")
        if "OSSAccessKeyId" in req.query:
            return self._url_v1(req)
        if req.query.get("x-oss-signature-version") == V4_ALGORITHM:
            return self._url_v4(req)
        raise OssError(
            "AccessDenied", "You have no right to access this object because of bucket acl."
        )

    def _compare(self, expected: str, provided: str, access_key_id: str, string: str) -> None:
        if not hmac.compare_digest(expected.encode(), provided.encode()):
            raise OssError(
                "SignatureDoesNotMatch",
                extra={
                    "StringToSign": string,
                    "SignatureProvided": provided,
                    "OSSAccessKeyId": access_key_id,
                },
            )

    def _header_v1(self, req: SigningInput, credential: str) -> str:
        access_key_id, sep, provided = credential.rpartition(":")
        if not sep or not access_key_id:
            raise OssError("InvalidArgument", "Authorization header is invalid.")
        secret = self._secret_for(access_key_id, req.headers.get("x-oss-security-token"))
        date = req.headers.get("x-oss-date") or req.headers.get("date", "")
        self._check_skew(parse_http_date(date) or _parse_iso_basic(date))
        string = v1_string_to_sign(req, date)
        self._compare(v1_signature(secret, string), provided, access_key_id, string)
        return access_key_id

    def _url_v1(self, req: SigningInput) -> str:
        access_key_id = req.query["OSSAccessKeyId"]
        expires = req.query.get("Expires", "")
        secret = self._secret_for(access_key_id, req.query.get("security-token"))
        if not expires.isdigit():
            raise OssError("InvalidArgument", "Invalid Expires.")
        if int(expires) < self.clock():
            raise OssError("AccessDenied", "Request has expired.")
        query = {
            k: v
            for k, v in req.query.items()
            if k not in ("OSSAccessKeyId", "Expires", "Signature")
        }
        unsigned = SigningInput(req.method, req.bucket, req.key, query, req.headers)
        string = v1_string_to_sign(unsigned, expires)
        self._compare(
            v1_signature(secret, string), req.query.get("Signature", ""), access_key_id, string
        )
        return access_key_id

    def _scope(self, credential: str, date_time: str) -> tuple[str, str]:
        access_key_id, _, scope = credential.partition("/")
        parts = scope.split("/")
        if len(parts) != 4 or parts[3] != "aliyun_v4_request" or parts[2] != "oss":
            raise OssError("InvalidArgument", "Invalid credential scope in request.")
        if parts[0] != date_time[:8]:
            raise OssError(
                "SignatureDoesNotMatch",
                "The date in the credential scope does not match x-oss-date.",
            )
        if self.region is not None and parts[1] != self.region:
            raise OssError("InvalidArgument", f"Invalid signing region: {parts[1]}.")
        return access_key_id, scope

    def _header_v4(self, req: SigningInput, rest: str) -> str:
        fields = dict(item.strip().partition("=")[::2] for item in rest.split(","))
        if "Credential" not in fields or "Signature" not in fields:
            raise OssError("InvalidArgument", "Authorization header is invalid.")
        date_time = req.headers.get("x-oss-date", "")
        self._check_skew(_parse_iso_basic(date_time))
        access_key_id, scope = self._scope(fields["Credential"], date_time)
        secret = self._secret_for(access_key_id, req.headers.get("x-oss-security-token"))
        additional = [
            h.strip().lower() for h in fields.get("AdditionalHeaders", "").split(";") if h.strip()
        ]
        canonical = v4_canonical_request(req, additional, req.query)
        self._compare(
            v4_signature(secret, date_time, scope, canonical),
            fields["Signature"],
            access_key_id,
            canonical,
        )
        return access_key_id

    def _url_v4(self, req: SigningInput) -> str:
        date_time = req.query.get("x-oss-date", "")
        signed_at = _parse_iso_basic(date_time)
        expires = req.query.get("x-oss-expires", "")
        if signed_at is None or not expires.isdigit():
            raise OssError("InvalidArgument", "Invalid x-oss-date or x-oss-expires.")
        if signed_at + int(expires) < self.clock():
            raise OssError("AccessDenied", "Request has expired.")
        access_key_id, scope = self._scope(req.query.get("x-oss-credential", ""), date_time)
        secret = self._secret_for(access_key_id, req.query.get("x-oss-security-token"))
        additional = [h for h in req.query.get("x-oss-additional-headers", "").split(";") if h]
        query = {k: v for k, v in req.query.items() if k != "x-oss-signature"}
        unsigned = SigningInput(
            req.method,
            req.bucket,
            req.key,
            query,
            {k: v for k, v in req.headers.items() if k != "x-oss-content-sha256"},
        )
        canonical = v4_canonical_request(unsigned, additional, query)
        self._compare(
            v4_signature(secret, date_time, scope, canonical),
            req.query.get("x-oss-signature", ""),
            access_key_id,
            canonical,
        )
        return access_key_id
