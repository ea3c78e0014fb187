"""`http:` inputs: a URL streamed to disk, then unpacked if it is an archive.

Argo's http artifact: `url`, `headers: [{name, value}]`, `auth.basicAuth` with its
username and password in secrets. Argosy also takes a header value from a secret
(`valueFrom: {secretKeyRef: {name, key}}`), so a token never sits in the template.
User info in the URL (`https://user:password@host/x`) is sent as Basic auth, as Argo
(Go's net/http) sends it, unless an Authorization header is already set; it is taken off
the URL that is requested and reported, and messages show the URL only redacted.
The body is streamed in fixed chunks (memory does not grow with its size) into a temp
file beside the destination; the proxy variables are honoured (urllib reads them).

Redirects are followed here, not by urllib (which sends every header to any host a
redirect names): at most 10, http(s) only, never from https down to http, and when a hop
changes origin (scheme, host, port) the credentials stay behind, as browsers and curl do:
every header whose value came from a secret, Authorization, Cookie and Proxy-Authorization.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from argosy.argo import secrets
from argosy.argo.template import Artifact
from argosy.artifacts import archive
from argosy.artifacts.archive.codecs import peek
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.checksum import crc32c, to_hex
from argosy.artifacts.errors import (
    AccessDenied,
    InvalidSpec,
    LocalIOError,
    NotFound,
    TransientError,
    redact_url,
)
from argosy.sidecar import placing
from argosy.sidecar.results import InputResult

_CHUNK = 1 << 20
TIMEOUT = 60.0  # seconds without a byte before the fetch fails
MAX_REDIRECTS = 10  # Go's http client stops there too, so Argo's does
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HttpGet:
    """An http input's request: its URL, its headers, and the (lower-cased) names of those
    that carry credentials, sent to the URL's origin and to no other."""

    url: str
    headers: Mapping[str, str]
    private: frozenset[str]


def _secret(ref: Any, secrets_dir: Path, where: str) -> str:
    value = secrets.read(secrets.FileSecrets(secrets_dir), ref, where)
    if value is None:
        raise InvalidSpec(f"{where} must name a secret and a key")
    return value


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _without_user_info(url: str, where: str) -> tuple[str, str | None]:
    """`url` without its user info, and that user info (None when there is none): urllib
    would take it for part of the host, and the URL without it can be named in messages.
    A URL whose port does not parse (a password holding a raw '/') is refused, redacted."""
    parts = urlsplit(url)
    user_info, at, host = parts.netloc.rpartition("@")
    without = parts._replace(netloc=host)
    try:
        _ = without.port
    except ValueError:
        raise InvalidSpec(f"{where}.url is not a valid URL: {redact_url(url)!r}") from None
    return (urlunsplit(without), user_info) if at else (url, None)


def request_for(config: Mapping[str, Any], secrets_dir: Path, where: str) -> HttpGet:
    given = str(config["url"])
    if not given.startswith(("http://", "https://")):
        raise InvalidSpec(f"{where}.url must be an http(s) URL, not {redact_url(given)!r}")
    url, user_info = _without_user_info(given, where)
    headers = {"User-Agent": "argosy"}
    private = set(_CREDENTIALS)
    for i, header in enumerate(config.get("headers") or []):
        if not isinstance(header, Mapping) or not header.get("name"):
            raise InvalidSpec(f"{where}.headers[{i}] needs a name")
        name = str(header["name"]).capitalize()  # as urllib spells it: one name, one header
        value = header.get("value")
        source = header.get("valueFrom")
        if isinstance(source, Mapping) and "secretKeyRef" in source:
            value = _secret(
                source["secretKeyRef"], secrets_dir, f"{where}.headers[{i}].valueFrom.secretKeyRef"
            )
            private.add(name.lower())
        headers[name] = str(value or "")
    basic = (config.get("auth") or {}).get("basicAuth")
    if basic:
        user = _secret(
            basic.get("usernameSecret"), secrets_dir, f"{where}.auth.basicAuth.usernameSecret"
        )
        password = _secret(
            basic.get("passwordSecret"), secrets_dir, f"{where}.auth.basicAuth.passwordSecret"
        )
        headers["Authorization"] = _basic(user, password)
    if user_info is not None and "Authorization" not in headers:
        user, _, password = user_info.partition(":")
        headers["Authorization"] = _basic(unquote(user), unquote(password))
    return HttpGet(url, headers, frozenset(private))


class _RedirectsAsAnswers(urllib.request.HTTPErrorProcessor):
    """Hands a redirect back as the answer, so `_open` chooses where the next hop goes
    and which headers it carries (urllib's own handler sends them all anywhere)."""

    def http_response(self, request: urllib.request.Request, response: HTTPResponse) -> Any:
        if response.status in _REDIRECTS:
            return response
        return super().http_response(request, response)

    https_response = http_response


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port), the port filled in when the URL leaves it to the scheme."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, parts.hostname or "", port or _DEFAULT_PORTS.get(parts.scheme, 0)


def _next_hop(url: str, response: Any, name: str) -> str:
    """Where a redirect answer points, refused unless it stays http(s) and never steps
    down from https to http (the credentials and the bytes would travel in clear)."""
    location = str(response.headers.get("Location") or "")
    if not location:
        raise InvalidSpec(f"input {name}: {url} answered {response.status} without a Location")
    target = urllib.parse.urljoin(url, location)
    scheme = urllib.parse.urlsplit(target).scheme
    if scheme not in ("http", "https"):
        raise InvalidSpec(
            f"input {name}: {url} redirects to {redact_url(target)}, not an http(s) URL"
        )
    if scheme == "http" and urllib.parse.urlsplit(url).scheme == "https":
        raise InvalidSpec(
            f"input {name}: refusing the redirect from https to http: {url} -> {redact_url(target)}"
        )
    return _without_user_info(target, f"input {name}: redirect")[0]  # never sent on


def _open(get: HttpGet, name: str) -> Any:
    """The answer to a GET, redirects followed: every one (301, 302, 303, 307, 308) is
    another GET without a body; the credentials are dropped for good at the first hop to
    another origin."""
    opener = urllib.request.build_opener(_RedirectsAsAnswers)
    url, headers = get.url, dict(get.headers)
    for _ in range(MAX_REDIRECTS + 1):
        response = _send(opener, url, headers, name)
        if response.status not in _REDIRECTS:
            return response
        try:
            target = _next_hop(url, response, name)
        finally:
            response.close()
        if _origin(target) != _origin(url):
            headers = {k: v for k, v in headers.items() if k.lower() not in get.private}
        url = target
    raise InvalidSpec(
        f"input {name}: more than {MAX_REDIRECTS} redirects from {get.url} (the last to {url})"
    )


def _send(
    opener: urllib.request.OpenerDirector, url: str, headers: Mapping[str, str], name: str
) -> Any:
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        return opener.open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        what = f"input {name}: {url} answered {error.code} {error.reason}"
        if error.code == 404:
            raise NotFound(what) from None
        if error.code in (401, 403):
            raise AccessDenied(what) from None
        if error.code >= 500 or error.code == 429:
            raise TransientError(what) from None
        raise InvalidSpec(what) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TransientError(f"input {name}: cannot reach {url}: {reason}") from None


class _Body:
    """The response's bytes once, in order, counted and CRC'd as they pass; the length
    is checked against Content-Length at the end."""

    def __init__(self, response: Any, what: str) -> None:
        self.response, self.what = response, what
        self.size = self.crc = 0

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.response.read(_CHUNK):
            self.crc = crc32c(chunk, self.crc)
            self.size += len(chunk)
            yield chunk
        declared = self.response.headers.get("Content-Length")
        if declared is not None and int(declared) != self.size:
            raise TransientError(f"{self.what} sent {self.size} of {declared} bytes")


def fetch_http(
    artifact: Artifact,
    dest: Path,
    *,
    secrets_dir: Path,
    include: Sequence[str],
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> InputResult:
    """Stream the body straight into the extractor when its first bytes say it is a tar
    (gzip, zstd or plain), else into a temp file renamed into place: one pass either way."""
    assert artifact.location is not None
    get = request_for(artifact.location.config, secrets_dir, f"{artifact.where}.http")
    response = _open(get, artifact.name)
    body = _Body(response, f"input {artifact.name}: {get.url}")
    try:
        head, stream = peek(body.chunks(), 512)
        found = (
            None if artifact.archive and artifact.archive.fmt == "none" else archive.detect(head)
        )
        if found in ("gzip", "zstd", "tar"):
            stage = placing.staging(dest)
            try:
                archive.extract_tar(stream, stage / "x", include=include, limits=limits)
                placing.place(
                    stage / "x", dest, name=artifact.name, sub_path=artifact.sub_path, unwrap=True
                )
            finally:
                placing.discard(stage)
            fmt = {"gzip": "tar.gz", "zstd": "tar.zst"}.get(found, found)
        else:
            _write(stream, dest, artifact.name)
            fmt = "none"
    finally:
        response.close()
    return InputResult(
        artifact.name,
        "downloaded",
        str(dest),
        get.url,
        body.size,
        f"crc32c:{to_hex(body.crc)}",
        fmt,
    )


def _write(chunks: Iterator[bytes], dest: Path, name: str) -> None:
    temp = dest.with_name(f".{dest.name}.argosy-http")
    try:
        with open(temp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(temp, dest)
    except OSError as error:
        raise LocalIOError(
            f"input {name}: cannot write {temp}: {error.strerror or error}"
        ) from None
    finally:
        temp.unlink(missing_ok=True)
