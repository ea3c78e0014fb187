"""Small PUTs and small ranged GETs straight over HTTP, signed here with SigV4.

Why: botocore's pipeline (parameter validation, model serialisation, some forty event
hooks, the endpoint ruleset, response parsing) costs about 1 ms of CPU per request, more
than Ceph RGW spends storing a small file. For a folder of 20,000 small files
(`archive: none`) it was nearly all of the client's cost: 1.4 ms of CPU a file against
s5cmd's 0.5, on a machine whose two cores the server needs too. Large objects and every
other operation stay on botocore, whose per-request cost is noise there. GETs of small
ranges (each file of a folder downloaded against its manifest) come this way too.

This path is taken only where it sends what botocore would: the object's URL is
botocore's own (the base of a presigned URL: endpoint, region and addressing style as
botocore resolves them), the credentials are botocore's (refreshed as botocore refreshes
them), no proxy is configured, and encryption is none or SSE-S3 (one header). The driver
decides that once (`S3Driver._direct`); everything else goes through botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import urllib3

DIRECT_MAX = 1 << 20  # bytes: bodies and ranges below this take this path
Credentials = Callable[[], tuple[str, str, str | None]]  # access key, secret, token
_UNSIGNED = "UNSIGNED-PAYLOAD"
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]{0,300})</Message>")


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

    def sign(self, method: str, host: str, path: str, headers: dict[str, str],
             now: float | None = None) -> None:
        """Add x-amz-date, the token and Authorization to `headers` (lower-case names);
        `path` is already URI-encoded, as it goes on the wire."""
        access, secret, token = self._credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = _UNSIGNED
        if token:
            headers["x-amz-security-token"] = token
        signed = sorted(["host", *(h for h in headers if h.startswith("x-amz-"))])
        values = {**headers, "host": host}
        canonical = "\n".join([
            method, path, "",
            "".join(f"{h}:{' '.join(values[h].split())}\n" for h in signed),
            ";".join(signed), _UNSIGNED])
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self._key(secret, stamp[:8]), to_sign.encode(),
                             hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                    f"SignedHeaders={';'.join(signed)}, Signature={signature}")


class Direct:
    """PUTs and GETs of `base + key`, where `base` is botocore's URL for the bucket
    (scheme, host and the path up to the key)."""

    def __init__(self, base: str, signer: Signer, *, extra: Mapping[str, str],
                 pool_size: int, timeout: tuple[float, float],
                 ca_certs: str | None, verify: bool) -> None:
        parts = urlsplit(base)
        self._host = parts.netloc
        self._prefix = parts.path
        self._signer = signer
        self._extra = dict(extra)
        kwargs: dict[str, object] = {"maxsize": pool_size, "block": False, "retries": False,
                                     "timeout": urllib3.Timeout(connect=timeout[0],
                                                                read=timeout[1])}
        if parts.scheme == "https":
            kwargs.update(cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                          ca_certs=ca_certs if verify else None)
        self._pool = urllib3.connection_from_url(f"{parts.scheme}://{parts.netloc}",
                                                 **kwargs)

    def path(self, key: str) -> str:
        return self._prefix + quote(key, safe="/~")

    def get(self, key: str, headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse | Failure:
        """A GET whose body is left unread (200 or 206), or the Failure answered."""
        path = self.path(key)
        signed = dict(headers)
        self._signer.sign("GET", self._host, path, signed)
        response = self._pool.urlopen("GET", path, headers=signed, redirect=False,
                                      assert_same_host=False, preload_content=False,
                                      decode_content=False)
        if response.status in (200, 206):
            return response
        try:
            return self._failure(response.status, response.read())
        finally:
            response.release_conn()

    @staticmethod
    def _failure(status: int, data: bytes) -> Failure:
        code = _CODE.search(data)
        message = _MESSAGE.search(data)
        return Failure(status, code.group(1).decode() if code else "",
                       message.group(1).decode(errors="replace") if message else "")

    @property
    def origin(self) -> str:
        return f"{self._pool.scheme}://{self._host}"

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> str | Failure:
        """The ETag the server answered, or the Failure it answered with; a connection
        that fails raises urllib3's error."""
        path = self.path(key)
        headers = {**self._extra, **{f"x-amz-meta-{k.lower()}": v
                                     for k, v in metadata.items()}}
        self._signer.sign("PUT", self._host, path, headers)
        headers["content-length"] = str(len(body))
        # urllib3's errors go to the driver, which maps them as it maps botocore's
        response = self._pool.urlopen("PUT", path, body=body, headers=headers,
                                      redirect=False, assert_same_host=False)
        if response.status == 200:
            return str(response.headers.get("ETag", "")).strip('"')
        return self._failure(response.status, response.data or b"")
