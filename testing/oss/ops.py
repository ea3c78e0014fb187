"""The OSS operations of the test server: object, listing, multipart and bucket calls.

Each operation takes the :class:`~argosy.testing.oss.store.Store` and a parsed
:class:`~argosy.testing.oss.wire.OssRequest` and returns a
:class:`~argosy.testing.oss.wire.Reply` or raises
:class:`~argosy.testing.oss.xml.OssError`.  Documents, headers and error codes
follow the OSS API reference closely enough for the oss2 client to parse them
and for its CRC64 checks to pass: upper-case MD5 ETags, ``"<md5>-N"`` multipart
ETags, ``x-oss-hash-crc64ecma`` everywhere OSS sends it, ``encoding-type=url``
listings, multipart validation (InvalidPartOrder, InvalidPart, EntityTooSmall).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from urllib.parse import unquote

from .store import ObjectMeta, Store
from .wire import OssRequest, Reply
from .xml import (
    OssError,
    XmlChild,
    encode_name,
    http_date,
    iso8601,
    normalize_etag,
    parse_http_date,
    parse_xml,
    quoted_etag,
    to_xml,
)

REGION = "cn-hangzhou"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
COPY_OBJECT_LIMIT = 1_000_000_000
"""The largest source CopyObject copies: OSS copies objects smaller than 1 GB in one request
and larger ones only part by part (UploadPartCopy). Read at each request, so a test may
lower it."""
_RANGE = re.compile(r"^\s*bytes=(\d*)-(\d*)\s*$")
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}

Operation = Callable[[Store, OssRequest], Reply]


def route(
    method: str, bucket: str | None, key: str, query: dict[str, str], headers: dict[str, str]
) -> str:
    """The OSS API name of a request (used for dispatch, stats, logs and fault injection)."""
    if bucket is None:
        return "ListBuckets" if method == "GET" else "Unsupported"
    if not key:
        for sub, names in (
            (
                "lifecycle",
                {
                    "GET": "GetBucketLifecycle",
                    "PUT": "PutBucketLifecycle",
                    "DELETE": "DeleteBucketLifecycle",
                },
            ),
            ("bucketInfo", {"GET": "GetBucketInfo"}),
            ("location", {"GET": "GetBucketLocation"}),
            ("acl", {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"}),
            ("uploads", {"GET": "ListMultipartUploads"}),
            ("delete", {"POST": "DeleteMultipleObjects"}),
        ):
            if sub in query:
                return names.get(method, "Unsupported")
        if any(
            k in query
            for k in (
                "cors",
                "website",
                "referer",
                "logging",
                "policy",
                "tagging",
                "versioning",
                "versions",
                "encryption",
                "stat",
            )
        ):
            return "Unsupported"
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        return {"PUT": "PutBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
            method, "Unsupported"
        )
    if any(
        k in query
        for k in ("acl", "tagging", "symlink", "append", "restore", "x-oss-process", "versionId")
    ):
        return "Unsupported"
    if "uploadId" in query:
        if method == "PUT" and "x-oss-copy-source" in headers:
            return "UploadPartCopy"  # an UploadPart with a copy source, as oss2 sends it
        return {
            "PUT": "UploadPart",
            "POST": "CompleteMultipartUpload",
            "GET": "ListParts",
            "DELETE": "AbortMultipartUpload",
        }.get(method, "Unsupported")
    if "uploads" in query:
        return "InitiateMultipartUpload" if method == "POST" else "Unsupported"
    if method == "PUT":
        return "CopyObject" if "x-oss-copy-source" in headers else "PutObject"
    if method == "HEAD":
        return "GetObjectMeta" if "objectMeta" in query else "HeadObject"
    return {"GET": "GetObject", "DELETE": "DeleteObject"}.get(method, "Unsupported")


# -- helpers -----------------------------------------------------------------------------------
def _bucket(req: OssRequest) -> str:
    assert req.bucket is not None
    return req.bucket


def _xml_reply(root: str, children: list[XmlChild], status: int = 200) -> Reply:
    return Reply(status, {"Content-Type": "application/xml"}, to_xml(root, children))


def _int_arg(req: OssRequest, name: str, default: int, low: int, high: int) -> int:
    raw = req.query.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise OssError(
            "InvalidArgument",
            f"Argument {name} is invalid.",
            extra={"ArgumentName": name, "ArgumentValue": raw},
        )
    return int(raw)


def _url_encoding(req: OssRequest) -> bool:
    encoding = req.query.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise OssError(
            "InvalidArgument",
            "The encoding-type is invalid.",
            extra={"ArgumentName": "encoding-type", "ArgumentValue": encoding},
        )
    return encoding == "url"


def _owner(req: OssRequest) -> list[XmlChild]:
    return [("ID", req.access_key_id), ("DisplayName", req.access_key_id)]


def object_headers(meta: ObjectMeta) -> dict[str, str]:
    headers = {
        "Content-Type": meta.content_type,
        "ETag": quoted_etag(meta.etag),
        "Last-Modified": http_date(meta.last_modified),
        "Accept-Ranges": "bytes",
        "x-oss-object-type": meta.object_type,
        "x-oss-storage-class": "Standard",
        "x-oss-hash-crc64ecma": str(meta.crc64),
    }
    if meta.content_md5:
        headers["Content-MD5"] = meta.content_md5
    headers.update(meta.headers)
    headers.update(meta.user_meta)
    return headers


def _etag_listed(etag: str, header: str) -> bool:
    """Whether an If-Match / If-None-Match style header names ``etag`` (or is ``*``)."""
    return header.strip() == "*" or etag in {normalize_etag(v) for v in header.split(",")}


def check_conditions(req: OssRequest, meta: ObjectMeta) -> None:
    """If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304)."""
    modified = int(meta.last_modified)
    if_match = req.header("if-match")
    if if_match and not _etag_listed(meta.etag, if_match):
        raise OssError("PreconditionFailed", extra={"Condition": "If-Match"})
    since = parse_http_date(req.header("if-unmodified-since"))
    if since is not None and modified > since:
        raise OssError("PreconditionFailed", extra={"Condition": "If-Unmodified-Since"})
    unchanged = {"ETag": quoted_etag(meta.etag), "Last-Modified": http_date(meta.last_modified)}
    if_none = req.header("if-none-match")
    if if_none and _etag_listed(meta.etag, if_none):
        raise OssError("NotModified", headers=unchanged)
    since = parse_http_date(req.header("if-modified-since"))
    if not if_none and since is not None and modified <= since:
        raise OssError("NotModified", headers=unchanged)


def check_copy_source_conditions(req: OssRequest, meta: ObjectMeta, *, not_modified: bool) -> None:
    """The ``x-oss-copy-source-if-*`` headers, checked against the copy's source object.

    An unmet ``-if-match`` or ``-if-unmodified-since`` is 412 PreconditionFailed. An unmet
    ``-if-none-match`` or ``-if-modified-since`` is 304 for CopyObject (``not_modified``)
    but 412 for UploadPartCopy: each operation's reference says so.
    """
    modified = int(meta.last_modified)

    def unmet(header: str, skipped: bool) -> OssError:
        if skipped and not_modified:
            return OssError("NotModified", headers={"ETag": quoted_etag(meta.etag)})
        return OssError("PreconditionFailed", extra={"Condition": header})

    if_match = req.header("x-oss-copy-source-if-match")
    if if_match and not _etag_listed(meta.etag, if_match):
        raise unmet("x-oss-copy-source-if-match", False)
    since = parse_http_date(req.header("x-oss-copy-source-if-unmodified-since"))
    if since is not None and modified > since:
        raise unmet("x-oss-copy-source-if-unmodified-since", False)
    if_none = req.header("x-oss-copy-source-if-none-match")
    if if_none and _etag_listed(meta.etag, if_none):
        raise unmet("x-oss-copy-source-if-none-match", True)
    since = parse_http_date(req.header("x-oss-copy-source-if-modified-since"))
    if not if_none and since is not None and modified <= since:
        raise unmet("x-oss-copy-source-if-modified-since", True)


def copy_source(req: OssRequest) -> tuple[str, str]:
    """(bucket, key) of ``x-oss-copy-source: /bucket/key`` (the key URL-encoded)."""
    source = unquote(req.header("x-oss-copy-source")).lstrip("/")
    bucket, _, key = source.partition("/")
    return bucket, key


def parse_range(value: str, size: int, standard: bool) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (first, last); None means 'the whole object, 200'.

    OSS by default ignores a range that does not fit the object (200, whole object).
    With ``x-oss-range-behavior: standard`` it follows HTTP: a range running past the
    end is clamped (206) and one starting past the end is 416 InvalidRange.
    """
    match = _RANGE.match(value) if value else None
    if match is None or (match[1] == "" and match[2] == ""):
        return None  # absent or not understood: serve everything
    unsatisfiable = OssError("InvalidRange", headers={"Content-Range": f"bytes */{size}"})
    if match[1] == "":
        suffix = int(match[2])
        if suffix == 0 or size == 0 or (suffix > size and not standard):
            if standard:
                raise unsatisfiable
            return None
        return max(0, size - suffix), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if last < first:
        return None
    if first >= size:
        if standard:
            raise unsatisfiable
        return None
    if last >= size and not standard:
        return None
    return first, min(last, size - 1)


# -- objects -----------------------------------------------------------------------------------
def put_object(store: Store, req: OssRequest) -> Reply:
    expected = req.content_md5()
    received = store.receive(_bucket(req), req.body.chunks())
    if expected is not None and received.md5 != expected:
        received.path.unlink()
        raise OssError("InvalidDigest", extra={"Content-MD5": req.header("content-md5")})
    md5_b64 = base64.b64encode(received.md5).decode()
    meta = ObjectMeta(
        req.key,
        received.size,
        received.md5.hex().upper(),
        received.crc64,
        req.header("content-type") or DEFAULT_CONTENT_TYPE,
        time.time(),
        "Normal",
        received.path.name,
        md5_b64,
        req.user_meta(),
        req.stored_headers(),
    )
    store.commit_object(_bucket(req), meta, req.header("x-oss-forbid-overwrite") == "true")
    return Reply(
        200,
        {
            "ETag": quoted_etag(meta.etag),
            "x-oss-hash-crc64ecma": str(meta.crc64),
            "Content-MD5": md5_b64,
        },
    )


def copy_object(store: Store, req: OssRequest) -> Reply:
    source_bucket, source_key = copy_source(req)
    req.body.drain()
    with store.lock:
        meta = store.head(source_bucket, source_key)
        check_copy_source_conditions(req, meta, not_modified=True)
        if meta.size > COPY_OBJECT_LIMIT:
            # Code and message as Alibaba's HTTP 400 error reference gives them for a copy
            # source over the limit (EntityTooLarge, "Source object Length exceeds ...");
            # not checked against a live OSS. Larger objects need UploadPartCopy.
            raise OssError(
                "EntityTooLarge", "Source object Length exceeds the maximum allowed size."
            )
        data_file = store.link_copy(source_bucket, meta, _bucket(req))
    replace = req.header("x-oss-metadata-directive").upper() == "REPLACE"
    copied = ObjectMeta(
        req.key,
        meta.size,
        meta.etag,
        meta.crc64,
        (req.header("content-type") or DEFAULT_CONTENT_TYPE) if replace else meta.content_type,
        time.time(),
        meta.object_type,
        data_file,
        meta.content_md5,
        req.user_meta() if replace else dict(meta.user_meta),
        req.stored_headers() if replace else dict(meta.headers),
    )
    store.commit_object(_bucket(req), copied, req.header("x-oss-forbid-overwrite") == "true")
    reply = _xml_reply(
        "CopyObjectResult",
        [("ETag", quoted_etag(copied.etag)), ("LastModified", iso8601(copied.last_modified))],
    )
    reply.headers["x-oss-hash-crc64ecma"] = str(copied.crc64)
    return reply


def get_object(store: Store, req: OssRequest) -> Reply:
    meta, data = store.open_object(_bucket(req), req.key)
    try:
        check_conditions(req, meta)
        headers = object_headers(meta)
        standard = req.standard_ranges or req.header("x-oss-range-behavior").lower() == "standard"
        span = parse_range(req.header("range"), meta.size, standard)
        first, last, status = 0, meta.size - 1, 200
        if span is not None:
            (first, last), status = span, 206
            headers["Content-Range"] = f"bytes {first}-{last}/{meta.size}"
            headers.pop("Content-MD5", None)
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in req.query:
                headers[header] = req.query[param]
        return Reply(
            status,
            headers,
            file=data,
            offset=first,
            length=last - first + 1,
            corrupt=req.corrupt_body,
        )
    except BaseException:
        data.close()
        raise


def head_object(store: Store, req: OssRequest) -> Reply:
    meta = store.head(_bucket(req), req.key)
    check_conditions(req, meta)
    headers = object_headers(meta)
    headers["Content-Length"] = str(meta.size)
    return Reply(200, headers)


def get_object_meta(store: Store, req: OssRequest) -> Reply:
    meta = store.head(_bucket(req), req.key)
    return Reply(
        200,
        {
            "ETag": quoted_etag(meta.etag),
            "Content-Length": str(meta.size),
            "Last-Modified": http_date(meta.last_modified),
            "x-oss-hash-crc64ecma": str(meta.crc64),
        },
    )


def delete_object(store: Store, req: OssRequest) -> Reply:
    store.delete(_bucket(req), req.key)
    return Reply(204)


def delete_multiple_objects(store: Store, req: OssRequest) -> Reply:
    if "content-md5" not in req.headers:
        raise OssError("InvalidDigest", "Missing required header for this request: Content-MD5.")
    root = parse_xml(req.small_body(), "Delete")
    keys = [node.findtext("Key") for node in root.findall("Object")]
    if not keys or len(keys) > 1000 or any(k is None or k == "" for k in keys):
        raise OssError("MalformedXML", "Delete needs 1 to 1000 Object elements with a Key.")
    url = _url_encoding(req)
    for key in keys:
        store.delete(_bucket(req), str(key))
    if (root.findtext("Quiet") or "false").strip().lower() == "true":
        return Reply(200, {"Content-Type": "application/xml"})
    children: list[XmlChild] = [("EncodingType", "url")] if url else []
    children += [("Deleted", [("Key", encode_name(str(k), url))]) for k in keys]
    return _xml_reply("DeleteResult", children)


# -- listings ----------------------------------------------------------------------------------
def _contents(req: OssRequest, meta: ObjectMeta, url: bool, owner: bool) -> XmlChild:
    children: list[XmlChild] = [
        ("Key", encode_name(meta.key, url)),
        ("LastModified", iso8601(meta.last_modified)),
        ("ETag", quoted_etag(meta.etag)),
        ("Type", meta.object_type),
        ("Size", meta.size),
        ("StorageClass", "Standard"),
    ]
    if owner:
        children.append(("Owner", _owner(req)))
    return ("Contents", children)


def list_objects(store: Store, req: OssRequest) -> Reply:
    url = _url_encoding(req)
    prefix, delimiter = req.query.get("prefix", ""), req.query.get("delimiter", "")
    marker = req.query.get("marker", "")
    max_keys = _int_arg(req, "max-keys", 100, 0, 1000)
    page = store.list_keys(_bucket(req), prefix, delimiter, marker, max_keys)
    children: list[XmlChild] = [
        ("Name", req.bucket),
        ("Prefix", encode_name(prefix, url)),
        ("Marker", encode_name(marker, url)),
        ("MaxKeys", max_keys),
        ("Delimiter", encode_name(delimiter, url)),
        ("IsTruncated", page.truncated),
    ]
    if url:
        children.append(("EncodingType", "url"))
    if page.truncated:
        children.append(("NextMarker", encode_name(page.next_marker, url)))
    children += [_contents(req, meta, url, True) for meta in page.entries]
    children += [("CommonPrefixes", [("Prefix", encode_name(p, url))]) for p in page.prefixes]
    return _xml_reply("ListBucketResult", children)


def list_objects_v2(store: Store, req: OssRequest) -> Reply:
    url = _url_encoding(req)
    prefix, delimiter = req.query.get("prefix", ""), req.query.get("delimiter", "")
    token, start_after = req.query.get("continuation-token", ""), req.query.get("start-after", "")
    max_keys = _int_arg(req, "max-keys", 100, 0, 1000)
    marker = start_after
    if token:
        try:
            marker = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OssError(
                "InvalidArgument",
                "The continuation token is invalid.",
                extra={"ArgumentName": "continuation-token"},
            ) from exc
    page = store.list_keys(_bucket(req), prefix, delimiter, marker, max_keys)
    children: list[XmlChild] = [("Name", req.bucket), ("Prefix", encode_name(prefix, url))]
    if start_after:
        children.append(("StartAfter", encode_name(start_after, url)))
    if token:
        children.append(("ContinuationToken", token))
    children += [("MaxKeys", max_keys), ("Delimiter", encode_name(delimiter, url))]
    if url:
        children.append(("EncodingType", "url"))
    children.append(("IsTruncated", page.truncated))
    if page.truncated:
        next_token = base64.urlsafe_b64encode(page.next_marker.encode()).decode().rstrip("=")
        children.append(("NextContinuationToken", next_token))
    children.append(("KeyCount", len(page.entries) + len(page.prefixes)))
    owner = req.query.get("fetch-owner", "false").lower() == "true"
    children += [_contents(req, meta, url, owner) for meta in page.entries]
    children += [("CommonPrefixes", [("Prefix", encode_name(p, url))]) for p in page.prefixes]
    return _xml_reply("ListBucketResult", children)
