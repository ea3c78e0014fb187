"""Object requests straight over HTTP, signed here with SigV4.

Why: botocore's pipeline (parameter validation, model serialisation, some forty event
hooks, the endpoint ruleset, response parsing) costs about 1 ms of CPU per request, more
than Ceph RGW spends storing a small file. For a folder of 20,000 small files
(`archive: none`) it was nearly all of the client's cost: 1.4 ms of CPU a file against
s5cmd's 0.5, on a machine whose two cores the server needs too. Large objects and every
other operation stay on botocore, whose per-request cost is noise there. GETs of small
ranges (each file of a folder downloaded against its manifest) come this way too.

This path is taken only where it sends what botocore would, in one of two ways:
- on a static route (`route.py`: explicit endpoint, fixed keys, no shared config file),
  every object request goes this way (HEAD, GET, PUT, the multipart calls, the in-place
  metadata copy) and botocore is never loaded: a command that moves one file starts
  ~0.15 s sooner;
- otherwise, once botocore has resolved the bucket's URL (the base of a presigned URL),
  region and credentials (refreshed as botocore refreshes them), small PUTs and small
  ranged GETs come this way with those.
Both need no proxy and encryption none or SSE-S3 (one header). On a static route the
object listing (ListObjectsV2) comes this way too, so a folder download never loads
botocore (~0.15 s of a command's start, and ~20 ms of CPU per page of 1000 keys parsed
through its model); batch deletes and the rest always go through botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from argosy.artifacts.drivers.s3.wire import Pool, Response

DIRECT_MAX = 1 << 20  # bytes: bodies and ranges below this take this path
Credentials = Callable[[], tuple[str, str, str | None]]  # access key, secret, token
_UNSIGNED = "UNSIGNED-PAYLOAD"
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]{0,300})</Message>")
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]{1,1024})</UploadId>")
_ETAG = re.compile(rb"<ETag>([^<]{0,300})</ETag>")
_XML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"))


def escape(text: str) -> str:
    """XML's five entities (xml.sax.saxutils would pull in urllib.request at start)."""
    for char, entity in _XML_ESCAPES:
        text = text.replace(char, entity)
    return text


def unescape(text: str) -> str:
    for char, entity in reversed(_XML_ESCAPES):
        text = text.replace(entity, char)
    return text


@dataclass(frozen=True)
class Listed:
    """One page of ListObjectsV2: (key, size, ETag, LastModified as sent) of each object,
    the common prefixes, and the token of the next page (None: the last page)."""

    objects: list[tuple[str, int, str, str]]
    prefixes: list[str]
    next_token: str | None


_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def parse_listing(data: bytes) -> Listed:
    """A ListObjectsV2 answer asked for with `encoding-type=url`: keys and prefixes come
    URL-encoded (so any key survives XML) and are decoded as botocore decodes them
    (`unquote_plus`), but only when the answer says it encoded them. ValueError when it
    is not a listing."""
    from urllib.parse import unquote_plus
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise ValueError(f"not a listing: {error}") from None
    ns = _NS if root.tag.startswith(_NS) else ""
    if root.tag != ns + "ListBucketResult":
        raise ValueError(f"not a listing: <{root.tag}>")
    encoded = root.findtext(ns + "EncodingType") == "url"

    def name(text: str | None) -> str:
        return unquote_plus(text or "") if encoded else text or ""

    objects = [
        (
            name(item.findtext(ns + "Key")),
            int(item.findtext(ns + "Size") or 0),
            (item.findtext(ns + "ETag") or "").strip('"'),
            item.findtext(ns + "LastModified") or "",
        )
        for item in root.iterfind(ns + "Contents")
    ]
    prefixes = [name(p.findtext(ns + "Prefix")) for p in root.iterfind(ns + "CommonPrefixes")]
    truncated = (root.findtext(ns + "IsTruncated") or "").strip().lower() == "true"
    token = root.findtext(ns + "NextContinuationToken") if truncated else None
    if truncated and not token:
        raise ValueError("a truncated listing without its next continuation token")
    return Listed(objects, prefixes, token)


@dataclass(frozen=True)
class Failure:
    """A request the server refused: its status and S3 error code (empty if none)."""

    status: int
    code: str
    message: str


class Signer:
    """SigV4 for S3 with an unsigned payload; the day's signing key is derived once."""

    def __init__(self, region: str, credentials: Credentials) -> None:
        self.region = region
        self._credentials = credentials
        self._keys: dict[tuple[str, str], bytes] = {}

    def _key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # one day at a time: rotate, not grow
        return key

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        headers: dict[str, str],
        now: float | None = None,
        query: str = "",
    ) -> None:
        """Add x-amz-date, the token and Authorization to `headers` (lower-case names);
        `path` is already URI-encoded, as it goes on the wire, and `query` is canonical
        (`canonical_query`)."""
        access, secret, token = self._credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = _UNSIGNED
        if token:
            headers["x-amz-security-token"] = token
        signed = sorted(["host", *(h for h in headers if h.startswith("x-amz-"))])
        values = {**headers, "host": host}
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{h}:{' '.join(values[h].split())}\n" for h in signed),
                ";".join(signed),
                _UNSIGNED,
            ]
        )
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(
            self._key(secret, stamp[:8]), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        )


def canonical_query(params: Mapping[str, str]) -> str:
    """SigV4's canonical query string, which is also what goes on the wire."""
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )


class Direct:
    """Object requests to `base + key`, where `base` is the bucket's URL (scheme, host and
    the path up to the key). Each call answers the value asked for, or the Failure the
    server answered with; a connection that fails raises its error (`wire.py`), which the
    driver maps as it maps botocore's."""

    def __init__(
        self,
        base: str,
        signer: Signer,
        *,
        extra: Mapping[str, str],
        pool_size: int,
        timeout: tuple[float, float],
        ca_certs: str | None,
        verify: bool,
    ) -> None:
        parts = urlsplit(base)
        self._host = parts.netloc
        self._prefix = parts.path
        self._signer = signer
        self._extra = dict(extra)
        self._pool = Pool(
            parts.scheme,
            parts.netloc,
            maxsize=pool_size,
            timeout=timeout,
            ca_certs=ca_certs,
            verify=verify,
        )

    def path(self, key: str) -> str:
        return self._prefix + quote(key, safe="/~")

    @property
    def origin(self) -> str:
        return f"{self._pool.scheme}://{self._host}"

    def signed(
        self,
        method: str,
        key: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        length: int | None = None,
        bucket: bool = False,
    ) -> tuple[str, dict[str, str]]:
        """A request's target (path and query, as on the wire) and its signed headers."""
        if not key and not bucket:
            raise ValueError("an object key must not be empty")  # as botocore refuses it
        path = self.path(key)
        canonical = canonical_query(query) if query else ""
        signed = dict(headers or {})
        self._signer.sign(method, self._host, path, signed, query=canonical)
        if length is not None:
            signed["content-length"] = str(length)
        return (f"{path}?{canonical}" if canonical else path), signed

    @property
    def netloc(self) -> str:
        return self._host

    def open(self) -> socket.socket:
        """A new connection to the origin, as the pool makes them (TLS included)."""
        return self._pool.open()

    @property
    def tls(self) -> bool:
        return self._pool.scheme == "https"

    @property
    def read_timeout(self) -> float:
        """Seconds a connection may wait for the next byte of an answer."""
        return self._pool.read_timeout

    def _send(
        self,
        method: str,
        key: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        length: int | None = None,
        stream: bool = False,
        bucket: bool = False,
    ) -> Response:
        """`bucket`: a request to the bucket itself (`key` empty), not to an object."""
        target, signed = self.signed(
            method, key, query=query, headers=headers, length=length, bucket=bucket
        )
        response = self._pool.request(method, target, headers=signed, body=body)
        if not stream:
            response.data  # read now: the connection goes back to the pool  # noqa: B018
        return response

    @staticmethod
    def _failure(status: int, data: bytes) -> Failure:
        code = _CODE.search(data)
        message = _MESSAGE.search(data)
        return Failure(
            status,
            code.group(1).decode() if code else "",
            message.group(1).decode(errors="replace") if message else "",
        )

    @classmethod
    def _answer(
        cls, response: Response, pattern: re.Pattern[bytes] | None, ok: int = 200
    ) -> str | Failure:
        """The text `pattern` finds in a 200's body (or "" with no pattern); an error
        inside a 200 (S3 may answer Complete and Copy that way) is the Failure it is."""
        data = response.data or b""
        if response.status != ok:
            return cls._failure(response.status, data)
        if pattern is None:
            return ""
        found = pattern.search(data)
        if found is None:
            failure = cls._failure(500, data)
            return (
                failure
                if failure.code
                else Failure(500, "InternalError", "no answer in the response body")
            )
        return unescape(found.group(1).decode())

    def metadata_headers(self, metadata: Mapping[str, str]) -> dict[str, str]:
        return {**self._extra, **{f"x-amz-meta-{k.lower()}": v for k, v in metadata.items()}}

    def head(self, key: str, headers: Mapping[str, str] | None = None) -> Response | Failure:
        response = self._send("HEAD", key, headers=headers)
        return response if response.status == 200 else Failure(response.status, "", "")

    def get(self, key: str, headers: Mapping[str, str]) -> Response | Failure:
        """A GET whose body is left unread (200 or 206), or the Failure answered."""
        response = self._send("GET", key, headers=headers, stream=True)
        if response.status in (200, 206):
            return response
        try:
            return self._failure(response.status, response.read())
        finally:
            response.release_conn()

    def list_objects(
        self, prefix: str, *, delimiter: str | None, token: str | None, limit: int
    ) -> Listed | Failure:
        """One page of ListObjectsV2 under `prefix`, or the Failure answered."""
        query = {
            "list-type": "2",
            "prefix": prefix,
            "max-keys": str(limit),
            "encoding-type": "url",
        }
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        response = self._send("GET", "", query=query, bucket=True)
        data = response.data or b""
        if response.status != 200:
            return self._failure(response.status, data)
        try:
            return parse_listing(data)
        except ValueError as error:
            failure = self._failure(500, data)
            return failure if failure.code else Failure(500, "InternalError", str(error))

    def put(self, key: str, body: Any, length: int, metadata: Mapping[str, str]) -> str | Failure:
        """The ETag the server answered, or its Failure. `body` is bytes or a file-like
        object read to `length` bytes."""
        response = self._send(
            "PUT", key, headers=self.metadata_headers(metadata), body=body, length=length
        )
        if response.status == 200:
            return str(response.headers.get("ETag", "")).strip('"')
        return self._failure(response.status, response.data or b"")

    def create_upload(self, key: str, metadata: Mapping[str, str]) -> str | Failure:
        response = self._send(
            "POST", key, query={"uploads": ""}, headers=self.metadata_headers(metadata), length=0
        )
        return self._answer(response, _UPLOAD_ID)

    def upload_part(
        self, key: str, upload_id: str, number: int, body: Any, length: int
    ) -> str | Failure:
        response = self._send(
            "PUT",
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            body=body,
            length=length,
        )
        if response.status == 200:
            return str(response.headers.get("ETag", "")).strip('"')
        return self._failure(response.status, response.data or b"")

    def complete(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> str | Failure:
        """The ETag answered ("" if the server sent none), or the Failure."""
        body = (
            "<CompleteMultipartUpload>"
            + "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{escape(e)}&quot;</ETag></Part>"
                for n, e in parts
            )
            + "</CompleteMultipartUpload>"
        ).encode()
        response = self._send(
            "POST", key, query={"uploadId": upload_id}, body=body, length=len(body)
        )
        answer = self._answer(response, None)
        if isinstance(answer, Failure):
            return answer
        if b"<Error>" in (response.data or b"")[:300]:  # S3 may fail inside a 200
            return self._failure(500, response.data or b"")
        found = _ETAG.search(response.data or b"")
        return unescape(found.group(1).decode()).strip('"') if found else ""

    def abort(self, key: str, upload_id: str) -> str | Failure:
        return self._answer(self._send("DELETE", key, query={"uploadId": upload_id}), None, ok=204)

    def copy_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        source: str,
        start: int,
        end: int,
        if_match: str,
    ) -> str | Failure:
        """Copy bytes `start..end` of `source` (`bucket/key`), if its ETag is still
        `if_match`, into part `number` of an upload; the part's ETag or the Failure."""
        headers = {
            "x-amz-copy-source": quote(source, safe="-._~/"),
            "x-amz-copy-source-range": f"bytes={start}-{end}",
            "x-amz-copy-source-if-match": f'"{if_match}"',
        }
        response = self._send(
            "PUT",
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            headers=headers,
            length=0,
        )
        answer = self._answer(response, _ETAG)
        return answer.strip('"') if isinstance(answer, str) else answer

    def copy_in_place(
        self, key: str, source: str, metadata: Mapping[str, str], if_match: str
    ) -> str | Failure:
        """Replace the object's metadata by copying it onto itself, if its ETag is
        still `if_match`; `source` is `bucket/key` as the copy-source header takes it."""
        headers = {
            **self.metadata_headers(metadata),
            "x-amz-copy-source": quote(source, safe="-._~/"),
            "x-amz-copy-source-if-match": f'"{if_match}"',
            "x-amz-metadata-directive": "REPLACE",
        }
        answer = self._answer(self._send("PUT", key, headers=headers, length=0), _ETAG)
        return answer.strip('"') if isinstance(answer, str) else answer
