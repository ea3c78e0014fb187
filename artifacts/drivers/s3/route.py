"""When every request can go without botocore, and where it goes.

A route is *static* when nothing about a request depends on botocore's resolution: the
endpoint is explicit, the credentials are fixed keys (the settings' own, or the
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` pair that botocore's chain would take
first), no shared AWS config file exists to change the region, the CA bundle or the
addressing, no proxy is set, and encryption is none or SSE-S3 (one header). Then the
bucket's URL, the signing region and the TLS trust are computed here exactly as botocore
computes them (`tests/unit/test_s3_route.py` compares them for a matrix of endpoints,
buckets and styles), and the driver sends its object requests on the direct path
without ever importing botocore. Anything else returns None: botocore decides.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

from argosy.artifacts.drivers.s3.direct import Credentials
from argosy.artifacts.drivers.s3.settings import S3Settings

_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")
# environment that changes what botocore sends, beyond what is read here
_BOTOCORE_ONLY = (
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
)


@dataclass(frozen=True)
class Route:
    """Where the direct path sends a bucket's object requests, and as whom: from
    `static_route` (computed here) or from botocore's own resolution (`sdk.py`)."""

    base: str  # scheme://host/path/ up to the key
    region: str
    credentials: Credentials = field(repr=False)  # (access key, secret, token), now
    verify: bool
    ca_certs: str | None


def proxied(env: Mapping[str, str] | None = None) -> bool:
    """A proxy from the environment (botocore would use it; the direct path does not):
    HTTP_PROXY, HTTPS_PROXY or ALL_PROXY in either case, as `urllib.request` reads them
    (whose import cost ~12 ms of a command's start)."""
    env = os.environ if env is None else env
    found = {k.lower()[:-6] for k, v in env.items() if k.lower().endswith("_proxy") and v}
    return bool(found & {"http", "https", "all"})


def static_route(
    settings: S3Settings, bucket: str, env: Mapping[str, str] | None = None
) -> Route | None:
    env = os.environ if env is None else env
    if settings.encryption.mode not in ("none", "s3") or proxied(env) or settings.profile:
        return None
    if any(env.get(name) for name in _BOTOCORE_ONLY) or _shared_config(env).exists():
        return None
    keys = _keys(settings, env)
    base = _base(settings.endpoint or "", settings.addressing_style, bucket)
    if keys is None or base is None:
        return None
    trust = _trust(settings.verify, env)
    return Route(
        base,
        settings.region or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        lambda: keys,
        verify=trust is not False,
        ca_certs=trust if isinstance(trust, str) else None,
    )


def _shared_config(env: Mapping[str, str]) -> Path:
    return Path(os.path.expanduser(env.get("AWS_CONFIG_FILE") or "~/.aws/config"))


def _keys(settings: S3Settings, env: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    if settings.access_key or settings.secret_key:
        if not (settings.access_key and settings.secret_key):
            return None  # botocore's path says what is missing
        return settings.access_key, settings.secret_key, settings.session_token
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not (access and secret):
        return None  # the rest of the chain (files, web identity, roles) is botocore's
    return access, secret, env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None


def _base(endpoint: str, style: str, bucket: str) -> str | None:
    """botocore's URL for a bucket on a custom endpoint: path style unless asked for
    virtual-hosted and the bucket is a DNS label on a named host."""
    parts = urlsplit(endpoint)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or not _BUCKET.fullmatch(bucket)
    ):
        return None
    path = parts.path.rstrip("/")
    if style == "virtual":
        if "." in bucket:
            return None  # botocore's choice there depends on the scheme and the host
        if _DNS_BUCKET.fullmatch(bucket) and not _is_ip(parts.hostname):
            return f"{parts.scheme}://{bucket}.{parts.netloc}{path}/"
    elif style not in ("auto", "path"):
        return None
    return f"{parts.scheme}://{parts.netloc}{path}/{bucket}/"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _trust(verify: bool | str, env: Mapping[str, str]) -> bool | str:
    """botocore's: no checks, the given bundle, AWS_CA_BUNDLE, else certifi's bundle or
    the one botocore ships."""
    if verify is not True:
        return verify
    if env.get("AWS_CA_BUNDLE"):
        return env["AWS_CA_BUNDLE"]
    try:
        from certifi import where
    except ImportError:
        spec = find_spec("botocore")  # finds the package without importing it
        origin = spec.origin if spec else None
        return str(Path(origin).parent / "cacert.pem") if origin else True
    return str(where())
