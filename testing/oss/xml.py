"""OSS error codes, error documents and small XML/time helpers for the test server.

Real OSS answers every failure with an ``<Error>`` document whose ``Code`` the
oss2 client maps to an exception class by ``(status, code)``.  Getting the
pair right is what makes ``oss2.exceptions.NoSuchKey`` & co. appear in the
client, so the codes and statuses live in one table here.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from urllib.parse import quote

XmlValue = str | int | bool | None
XmlChild = tuple[str, "XmlValue | list[XmlChild]"]

ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "You have no right to access this object."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload smaller than the minimum allowed size."),
    "FileAlreadyExists": (
        409,
        ("The object you specified already exists and can not be overwritten."),
    ),
    "InvalidAccessKeyId": (
        403,
        ("The OSS Access Key Id you provided does not exist in our records."),
    ),
    "InvalidArgument": (400, "Invalid argument."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidObjectName": (400, "The specified object name is not valid."),
    "InvalidPart": (
        400,
        (
            "One or more of the specified parts could not be found or the "
            "specified entity tag might not have matched the part's entity tag."
        ),
    ),
    "InvalidPartOrder": (
        400,
        (
            "The list of parts was not in ascending order. Parts list must "
            "specified in order by part number."
        ),
    ),
    "InvalidRange": (416, "The requested range cannot be satisfied."),
    "InvalidSecurityToken": (403, "The security token you provided is invalid."),
    "MalformedXML": (
        400,
        (
            "The XML you provided was not well-formed or did not validate "
            "against our published schema."
        ),
    ),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchLifecycle": (404, "No Row found in Lifecycle Table."),
    "NoSuchUpload": (
        404,
        (
            "The specified upload does not exist. The upload ID may be invalid, "
            "or the upload may have been aborted or completed."
        ),
    ),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "NotModified": (304, ""),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold."),
    "RequestTimeTooSkewed": (
        403,
        ("The difference between the request time and the current time is too large."),
    ),
    "SecurityTokenExpired": (403, "The security token you provided has expired."),
    "SignatureDoesNotMatch": (
        403,
        (
            "The request signature we calculated does not match the "
            "signature you provided. Check your key and signing method."
        ),
    ),
    "TooManyBuckets": (400, "You have attempted to create more buckets than allowed."),
}


class OssError(Exception):
    """An OSS error answer: HTTP status, OSS ``Code``, message and extra elements."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        default_status, default_message = ERRORS.get(code, (500, code))
        self.code = code
        self.status = status if status is not None else default_status
        self.message = message if message is not None else default_message
        self.extra: dict[str, str] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(f"{self.status} {code}: {self.message}")


def new_request_id() -> str:
    """24 upper-case hex characters, the shape of a real ``x-oss-request-id``."""
    return secrets.token_hex(12).upper()


def _append(parent: ET.Element, children: Iterable[XmlChild]) -> None:
    for tag, value in children:
        node = ET.SubElement(parent, tag)
        if isinstance(value, list):
            _append(node, value)
        elif isinstance(value, bool):
            node.text = "true" if value else "false"
        elif value is not None:
            node.text = str(value)


def to_xml(root_tag: str, children: Iterable[XmlChild]) -> bytes:
    """Serialise ``[(tag, text-or-children), ...]`` under ``root_tag`` like OSS does."""
    root = ET.Element(root_tag)
    _append(root, children)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + document


def error_xml(error: OssError, request_id: str, host_id: str) -> bytes:
    children: list[XmlChild] = [
        ("Code", error.code),
        ("Message", error.message),
        ("RequestId", request_id),
        ("HostId", host_id),
    ]
    children.extend(error.extra.items())
    return to_xml("Error", children)


def head_error_header(body: bytes) -> str:
    """HEAD answers carry the error document base64-encoded in ``x-oss-err``."""
    return base64.b64encode(body).decode("ascii")


def parse_xml(body: bytes, root_tag: str) -> ET.Element:
    """Parse a request document, answering MalformedXML as OSS does."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise OssError("MalformedXML") from exc
    if root.tag != root_tag:
        raise OssError("MalformedXML", f"The root element must be {root_tag}.")
    return root


def iso8601(timestamp: float) -> str:
    """``2024-01-31T12:00:00.000Z``; OSS (and oss2's parser) always write ``.000``."""
    moment = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def parse_http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def quoted_etag(etag: str) -> str:
    return f'"{etag}"'


def normalize_etag(value: str) -> str:
    return value.strip().strip('"').upper()


def encode_name(value: str, url_encoding: bool) -> str:
    """Apply ``encoding-type=url`` to keys, prefixes and markers in listings."""
    return quote(value, safe="") if url_encoding else value
