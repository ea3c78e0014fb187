"""`http:` inputs: a URL streamed to disk, then unpacked if it is an archive.

Argo's http artifact: `url`, `headers: [{name, value}]`, `auth.basicAuth` with its
username and password in secrets. Argosy also takes a header value from a secret
(`valueFrom: {secretKeyRef: {name, key}}`), so a token never sits in the template.
The body is streamed in fixed chunks (memory does not grow with its size) into a temp
file beside the destination; the proxy variables are honoured (urllib reads them).
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argosy.artifacts import archive
from argosy.artifacts.archive.codecs import peek
from argosy.artifacts.checksum import crc32c, to_hex
from argosy.artifacts.errors import (
    AccessDenied,
    InvalidSpec,
    LocalIOError,
    NotFound,
    TransientError,
)
from argosy.artifacts.repository import read_secret
from argosy.sidecar import placing

if TYPE_CHECKING:
    from argosy.sidecar.inputs import InputResult
    from argosy.sidecar.template import Artifact

_CHUNK = 1 << 20
TIMEOUT = 60.0  # seconds without a byte before the fetch fails


def _secret(ref: Any, secrets_dir: Path, where: str) -> str:
    value = read_secret(ref, secrets_dir, where)
    if value is None:
        raise InvalidSpec(f"{where} must name a secret and a key")
    return value


def request_for(config: Mapping[str, Any], secrets_dir: Path,
                where: str) -> urllib.request.Request:
    url = str(config["url"])
    if not url.startswith(("http://", "https://")):
        raise InvalidSpec(f"{where}.url must be an http(s) URL, not {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "argosy"})
    for i, header in enumerate(config.get("headers") or []):
        if not isinstance(header, Mapping) or not header.get("name"):
            raise InvalidSpec(f"{where}.headers[{i}] needs a name")
        value = header.get("value")
        source = header.get("valueFrom")
        if isinstance(source, Mapping) and "secretKeyRef" in source:
            value = _secret(source["secretKeyRef"], secrets_dir,
                            f"{where}.headers[{i}].valueFrom")
        request.add_header(str(header["name"]), str(value or ""))
    basic = (config.get("auth") or {}).get("basicAuth")
    if basic:
        user = _secret(basic.get("usernameSecret"), secrets_dir,
                       f"{where}.auth.basicAuth.usernameSecret")
        password = _secret(basic.get("passwordSecret"), secrets_dir,
                           f"{where}.auth.basicAuth.passwordSecret")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def _open(request: urllib.request.Request, name: str) -> Any:
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 (checked)
    except urllib.error.HTTPError as error:
        what = f"input {name}: {request.full_url} answered {error.code} {error.reason}"
        if error.code == 404:
            raise NotFound(what) from None
        if error.code in (401, 403):
            raise AccessDenied(what) from None
        if error.code >= 500 or error.code == 429:
            raise TransientError(what) from None
        raise InvalidSpec(what) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TransientError(f"input {name}: cannot reach {request.full_url}: "
                             f"{reason}") from None


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


def fetch_http(artifact: Artifact, dest: Path, *, secrets_dir: Path,
               include: Sequence[str]) -> InputResult:
    """Stream the body straight into the extractor when its first bytes say it is a tar
    (gzip, zstd or plain), else into a temp file renamed into place: one pass either way."""
    from argosy.sidecar.inputs import InputResult

    assert artifact.location is not None
    request = request_for(artifact.location.config, secrets_dir, f"{artifact.where}.http")
    response = _open(request, artifact.name)
    body = _Body(response, f"input {artifact.name}: {request.full_url}")
    try:
        head, stream = peek(body.chunks(), 512)
        found = None if artifact.archive and artifact.archive.fmt == "none" else \
            archive.detect(head)
        if found in ("gzip", "zstd", "tar"):
            stage = placing.staging(dest)
            try:
                archive.extract_tar(stream, stage / "x", include=include)
                placing.place(stage / "x", dest, name=artifact.name,
                              sub_path=artifact.sub_path, unwrap=True)
            finally:
                placing.discard(stage)
            fmt = {"gzip": "tar.gz", "zstd": "tar.zst"}.get(found, found)
        else:
            _write(stream, dest, artifact.name)
            fmt = "none"
    finally:
        response.close()
    return InputResult(artifact.name, "downloaded", str(dest), request.full_url, body.size,
                       f"crc32c:{to_hex(body.crc)}", fmt)


def _write(chunks: Iterator[bytes], dest: Path, name: str) -> None:
    temp = dest.with_name(f".{dest.name}.argosy-http")
    try:
        with open(temp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(temp, dest)
    except OSError as error:
        raise LocalIOError(f"input {name}: cannot write {temp}: "
                           f"{error.strerror or error}") from None
    finally:
        temp.unlink(missing_ok=True)
