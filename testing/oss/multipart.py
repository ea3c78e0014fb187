"""Multipart upload operations of the OSS test server, with OSS's validation rules.

Clients get multipart uploads subtly wrong in ways only a strict server shows:
parts listed out of order (InvalidPartOrder), an ETag that does not match the
uploaded part (InvalidPart), a non-final part under 100 KiB (EntityTooSmall),
a finished or aborted upload id (NoSuchUpload).  This module enforces those
rules and produces OSS-style results.  A part copied on the server from an
existing object (UploadPartCopy) is stored exactly like an uploaded one (the
MD5 ETag and CRC64 of its bytes, its size), so ListParts and Complete treat
both alike.  The object ETag is
``"<MD5 of the concatenated binary part MD5s>-<number of parts>"`` and its
``x-oss-hash-crc64ecma`` is the CRC64 of the whole content, combined from the
part CRCs.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from collections.abc import Iterator
from typing import BinaryIO

from .ops import (
    DEFAULT_CONTENT_TYPE,
    _bucket,
    _int_arg,
    _url_encoding,
    _xml_reply,
    check_copy_source_conditions,
    copy_source,
)
from .store import MAX_PARTS, MIN_PART_SIZE, PartMeta, Store, Upload
from .wire import CHUNK_SIZE, OssRequest, Reply
from .xml import (
    OssError,
    XmlChild,
    encode_name,
    iso8601,
    normalize_etag,
    parse_xml,
    quoted_etag,
)

_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def initiate_multipart_upload(store: Store, req: OssRequest) -> Reply:
    req.body.drain()
    upload = store.initiate(
        _bucket(req),
        req.key,
        req.header("content-type") or DEFAULT_CONTENT_TYPE,
        req.user_meta(),
        req.stored_headers(),
    )
    url = _url_encoding(req)
    children: list[XmlChild] = [("EncodingType", "url")] if url else []
    children += [
        ("Bucket", req.bucket),
        ("Key", encode_name(req.key, url)),
        ("UploadId", upload.upload_id),
    ]
    return _xml_reply("InitiateMultipartUploadResult", children)


def _part_number(req: OssRequest) -> int:
    number = _int_arg(req, "partNumber", 0, 1, MAX_PARTS)
    if number == 0:
        raise OssError(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000.",
            extra={"ArgumentName": "partNumber"},
        )
    return number


def upload_part(store: Store, req: OssRequest) -> Reply:
    number = _part_number(req)
    upload = store.upload(_bucket(req), req.key, req.query["uploadId"])
    expected = req.content_md5()
    received = store.receive(_bucket(req), req.body.chunks(), upload.upload_id)
    if expected is not None and received.md5 != expected:
        received.path.unlink()
        raise OssError("InvalidDigest", extra={"Content-MD5": req.header("content-md5")})
    part = PartMeta(
        number,
        received.size,
        received.md5.hex().upper(),
        received.crc64,
        time.time(),
        received.path.name,
    )
    store.commit_part(_bucket(req), upload, part)
    return Reply(
        200,
        {
            "ETag": quoted_etag(part.etag),
            "x-oss-hash-crc64ecma": str(part.crc64),
            "Content-MD5": base64.b64encode(received.md5).decode(),
        },
    )


def _copy_range(req: OssRequest, size: int) -> tuple[int, int] | None:
    """``x-oss-copy-source-range: bytes=first-last`` as (first, last); None when absent (the
    whole source). A range that is malformed or does not lie within the source is
    InvalidArgument, not clamped: unlike a GET, a copy never settles for other bytes."""
    value = req.header("x-oss-copy-source-range").strip()
    if not value:
        return None
    match = _COPY_RANGE.match(value)
    first = int(match[1]) if match else 0
    last = int(match[2]) if match and match[2] else size - 1
    if match is None or first > last or last >= size:
        raise OssError(
            "InvalidArgument",
            "The x-oss-copy-source-range is invalid.",
            extra={"ArgumentName": "x-oss-copy-source-range", "ArgumentValue": value},
        )
    return first, last


def _read_span(data: BinaryIO, first: int, length: int) -> Iterator[bytes]:
    data.seek(first)
    while length > 0:
        chunk = data.read(min(CHUNK_SIZE, length))
        if not chunk:
            raise OssError("InternalError", "source data file shorter than recorded", status=500)
        length -= len(chunk)
        yield chunk


def upload_part_copy(store: Store, req: OssRequest) -> Reply:
    """UploadPartCopy: an UploadPart whose bytes come from an existing object (all of it, or
    ``x-oss-copy-source-range``), under the ``x-oss-copy-source-if-*`` conditions."""
    number = _part_number(req)
    upload = store.upload(_bucket(req), req.key, req.query["uploadId"])
    if not req.header("x-oss-copy-source").startswith("/"):
        raise OssError(
            "InvalidArgument",
            "x-oss-copy-source is invalid, it must start with /.",
            extra={
                "ArgumentName": "x-oss-copy-source",
                "ArgumentValue": req.header("x-oss-copy-source"),
            },
        )
    req.body.drain()
    source_bucket, source_key = copy_source(req)
    # the file is opened with its metadata, so the bytes copied are the version checked
    meta, data = store.open_object(source_bucket, source_key)
    with data:
        check_copy_source_conditions(req, meta, not_modified=False)
        span = _copy_range(req, meta.size)
        first, last = span if span is not None else (0, meta.size - 1)
        received = store.receive(
            _bucket(req), _read_span(data, first, last - first + 1), upload.upload_id
        )
    part = PartMeta(
        number,
        received.size,
        received.md5.hex().upper(),
        received.crc64,
        time.time(),
        received.path.name,
    )
    store.commit_part(_bucket(req), upload, part)
    # as OSS answers it: the ETag both in the document and as a header, and the range
    # copied when one was asked for
    reply = _xml_reply(
        "CopyPartResult",
        [("LastModified", iso8601(part.last_modified)), ("ETag", quoted_etag(part.etag))],
    )
    reply.headers["ETag"] = quoted_etag(part.etag)
    if span is not None:
        reply.headers["Content-Range"] = f"bytes {first}-{last}/{meta.size}"
    return reply


def _chosen_parts(req: OssRequest, upload: Upload, body: bytes) -> list[PartMeta]:
    """The parts a CompleteMultipartUpload names, validated the way OSS validates them."""
    if req.header("x-oss-complete-all").lower() == "yes":
        if body.strip():
            raise OssError("InvalidArgument", "Body must be empty with x-oss-complete-all.")
        chosen = [upload.parts[n] for n in sorted(upload.parts)]
        if not chosen:
            raise OssError("InvalidPart", "The upload has no parts.")
    else:
        root = parse_xml(body, "CompleteMultipartUpload")
        wanted: list[tuple[int, str]] = []
        for node in root.findall("Part"):
            number_text, etag = node.findtext("PartNumber"), node.findtext("ETag")
            if number_text is None or not number_text.strip().isdigit() or etag is None:
                raise OssError("MalformedXML", "Each Part needs a PartNumber and an ETag.")
            wanted.append((int(number_text), normalize_etag(etag)))
        if not wanted:
            raise OssError("MalformedXML", "CompleteMultipartUpload lists no Part.")
        for (before, _), (after, _) in itertools.pairwise(wanted):
            if after <= before:
                raise OssError("InvalidPartOrder", extra={"PartNumber": str(after)})
        chosen = []
        for number, etag in wanted:
            part = upload.parts.get(number)
            if part is None or part.etag != etag:
                raise OssError(
                    "InvalidPart",
                    extra={
                        "PartNumber": str(number),
                        "ETag": quoted_etag(etag),
                        "UploadId": upload.upload_id,
                    },
                )
            chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise OssError(
                "EntityTooSmall",
                extra={
                    "PartNumber": str(part.number),
                    "ProposedSize": str(part.size),
                    "MinSizeAllowed": str(MIN_PART_SIZE),
                },
            )
    return chosen


def complete_multipart_upload(store: Store, req: OssRequest) -> Reply:
    upload = store.upload(_bucket(req), req.key, req.query["uploadId"])
    body = req.small_body()
    with store.lock:
        chosen = _chosen_parts(req, upload, body)
    meta = store.assemble(_bucket(req), upload, chosen)
    store.finish_upload(_bucket(req), upload, meta)
    url = _url_encoding(req)
    children: list[XmlChild] = [("EncodingType", "url")] if url else []
    children += [
        ("Location", f"http://{req.endpoint_host}/{req.bucket}/{req.key}"),
        ("Bucket", req.bucket),
        ("Key", encode_name(req.key, url)),
        ("ETag", quoted_etag(meta.etag)),
    ]
    reply = _xml_reply("CompleteMultipartUploadResult", children)
    reply.headers.update({"ETag": quoted_etag(meta.etag), "x-oss-hash-crc64ecma": str(meta.crc64)})
    return reply


def abort_multipart_upload(store: Store, req: OssRequest) -> Reply:
    store.abort(_bucket(req), store.upload(_bucket(req), req.key, req.query["uploadId"]))
    return Reply(204)


def list_parts(store: Store, req: OssRequest) -> Reply:
    upload = store.upload(_bucket(req), req.key, req.query["uploadId"])
    marker = _int_arg(req, "part-number-marker", 0, 0, MAX_PARTS)
    max_parts = _int_arg(req, "max-parts", 1000, 1, 1000)
    with store.lock:
        numbers = sorted(n for n in upload.parts if n > marker)
        page = [upload.parts[n] for n in numbers[:max_parts]]
    url = _url_encoding(req)
    children: list[XmlChild] = [("EncodingType", "url")] if url else []
    children += [
        ("Bucket", req.bucket),
        ("Key", encode_name(req.key, url)),
        ("UploadId", upload.upload_id),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page[-1].number if page else marker),
        ("MaxParts", max_parts),
        ("IsTruncated", len(numbers) > max_parts),
    ]
    children += [
        (
            "Part",
            [
                ("PartNumber", p.number),
                ("LastModified", iso8601(p.last_modified)),
                ("ETag", quoted_etag(p.etag)),
                ("HashCrc64ecma", p.crc64),
                ("Size", p.size),
            ],
        )
        for p in page
    ]
    return _xml_reply("ListPartsResult", children)


def list_multipart_uploads(store: Store, req: OssRequest) -> Reply:
    url = _url_encoding(req)
    prefix, delimiter = req.query.get("prefix", ""), req.query.get("delimiter", "")
    key_marker, id_marker = req.query.get("key-marker", ""), req.query.get("upload-id-marker", "")
    max_uploads = _int_arg(req, "max-uploads", 1000, 1, 1000)
    uploads: list[Upload] = []
    prefixes: list[str] = []
    truncated = False
    next_key = next_id = ""
    for upload in store.iter_uploads(_bucket(req)):
        after_marker = (
            not key_marker
            or upload.key > key_marker
            or (upload.key == key_marker and bool(id_marker) and upload.upload_id > id_marker)
        )
        if not upload.key.startswith(prefix) or not after_marker:
            continue
        pos = upload.key.find(delimiter, len(prefix)) if delimiter else -1
        common = upload.key[: pos + len(delimiter)] if pos >= 0 else None
        if common is not None and (common == key_marker or common in prefixes):
            continue
        if len(uploads) + len(prefixes) >= max_uploads:
            truncated = True
            break
        if common is not None:
            prefixes.append(common)
            next_key, next_id = common, ""
        else:
            uploads.append(upload)
            next_key, next_id = upload.key, upload.upload_id
    children: list[XmlChild] = [("Bucket", req.bucket)]
    if url:
        children.append(("EncodingType", "url"))
    children += [
        ("KeyMarker", encode_name(key_marker, url)),
        ("UploadIdMarker", id_marker),
        ("NextKeyMarker", encode_name(next_key if truncated else "", url)),
        ("NextUploadIdMarker", next_id if truncated else ""),
        ("Delimiter", encode_name(delimiter, url)),
        ("Prefix", encode_name(prefix, url)),
        ("MaxUploads", max_uploads),
        ("IsTruncated", truncated),
    ]
    children += [
        (
            "Upload",
            [
                ("Key", encode_name(u.key, url)),
                ("UploadId", u.upload_id),
                ("StorageClass", "Standard"),
                ("Initiated", iso8601(u.initiated)),
            ],
        )
        for u in uploads
    ]
    children += [("CommonPrefixes", [("Prefix", encode_name(p, url))]) for p in prefixes]
    return _xml_reply("ListMultipartUploadsResult", children)
