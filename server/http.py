"""HTTP's rules for serving a file, as pure functions: ranges (RFC 9110 §14), conditional
requests (§13), Content-Type by extension, Content-Disposition (RFC 6266 with RFC 5987's
`filename*`), and the sandboxing headers every artifact carries.

Argo Server sends none of Content-Length, Range, ETag or Last-Modified, answers HEAD as
GET, and names files with a bare `filename=`; scripts resuming downloads and browsers
deciding between showing and saving need all of them.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar.zst", ".tzst", ".zip", ".tar")
_TYPES = {
    ".tgz": "application/gzip",
    ".tar.gz": "application/gzip",
    ".tar.zst": "application/zstd",
    ".tzst": "application/zstd",
    ".zst": "application/zstd",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".json": "application/json",
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
}
MAX_RANGES = 64  # more is a way to make the server read one object many times over


class Unsatisfiable(Exception):
    """No range of the request overlaps the object: 416."""


@dataclass(frozen=True)
class ObjectMeta:
    size: int
    etag: str  # the validator, quoted: '"abc"'
    modified: datetime

    @property
    def last_modified(self) -> str:
        return http_date(self.modified)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def quoted(etag: str) -> str:
    return etag if etag.startswith(('"', 'W/"')) else f'"{etag}"'


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges asked for (inclusive, clipped to the object, in the order given),
    or None to send the whole object (no header, or one this server ignores as RFC 9110
    allows: another unit, bad syntax, too many ranges). Unsatisfiable when none overlaps."""
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not sep:
        return None
    found: list[tuple[int, int]] = []
    pieces = [p.strip() for p in spec.split(",")]
    if len(pieces) > MAX_RANGES:
        return None
    for piece in pieces:
        first, dash, last = piece.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        if not first:
            if not last:
                return None
            length = int(last)
            if length == 0 or size == 0:
                continue
            found.append((max(0, size - length), size - 1))
            continue
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None
        if start >= size:
            continue
        found.append((start, min(end, size - 1)))
    if not found:
        raise Unsatisfiable()
    return found


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def not_modified(headers: Mapping[str, str], meta: ObjectMeta) -> bool:
    """If-None-Match (weak comparison), else If-Modified-Since: 304 for GET and HEAD."""
    none_match = headers.get("If-None-Match")
    if none_match is not None:
        tags = _tags(none_match)
        return "*" in tags or any(_weak_match(t, meta.etag) for t in tags)
    since = _date(headers.get("If-Modified-Since"))
    return since is not None and meta.modified.replace(microsecond=0) <= since


def range_applies(headers: Mapping[str, str], meta: ObjectMeta) -> bool:
    """If-Range: the range only when the validator still matches (strong ETag, or a date
    equal to Last-Modified); otherwise the whole object is sent."""
    condition = headers.get("If-Range")
    if not condition:
        return True
    condition = condition.strip()
    if condition.startswith(('"', "W/")):
        return not condition.startswith("W/") and condition == meta.etag
    moment = _date(condition)
    return moment is not None and moment == meta.modified.replace(microsecond=0)


def content_type(name: str) -> str:
    lower = name.lower()
    for suffix, kind in _TYPES.items():
        if lower.endswith(suffix):
            return kind
    guessed, encoding = mimetypes.guess_type(lower, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") and "charset" not in guessed:
        return f"{guessed}; charset=utf-8"
    return guessed


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def disposition(name: str, mode: str | None) -> str:
    """`?mode=download` attachment, `?mode=inline` inline; by default archives are
    downloaded (a .tgz shown as text helps nobody) and everything else inline. The name
    goes as an ASCII `filename` and, when it is not plain ASCII, RFC 5987's
    `filename*=UTF-8''...` that browsers prefer."""
    kind = (
        "attachment" if mode == "download" or (mode != "inline" and is_archive(name)) else "inline"
    )
    base = name.rsplit("/", 1)[-1] or "artifact"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in base)
    value = f'{kind}; filename="{ascii_name}"'
    if ascii_name != base:
        value += f"; filename*=UTF-8''{quote(base, safe='')}"
    return value


# What a 304 repeats of the full answer: its validators and its sandboxing.
KEPT_ON_304 = (
    "ETag",
    "Last-Modified",
    "X-Content-Type-Options",
    "Content-Security-Policy",
    "X-Frame-Options",
)


def not_modified_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a 304 for an answer that would have carried `headers`."""
    return {k: headers[k] for k in KEPT_ON_304 if k in headers}


def unsatisfiable_headers(headers: Mapping[str, str], size: int) -> dict[str, str]:
    """The headers of a 416 for a file of `size` bytes that would have carried `headers`:
    the size in `Content-Range`, and no file name (there is no file in it)."""
    kept = {k: v for k, v in headers.items() if k != "Content-Disposition"}
    kept["Content-Range"] = f"bytes */{size}"
    return kept


def security_headers(csp: str, frame_options: str) -> dict[str, str]:
    """What every artifact response carries: the cookie authenticates, so an HTML
    artifact must not run scripts on the server's origin. An empty value leaves its
    header out."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if frame_options:
        headers["X-Frame-Options"] = frame_options
    if csp:
        headers["Content-Security-Policy"] = csp
    return headers
