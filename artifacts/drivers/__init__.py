"""artifacts/drivers: one module per storage service, behind `artifacts.protocol.Driver`."""

from __future__ import annotations

import os
import re
from urllib.parse import SplitResult, urlsplit

from argosy.artifacts.errors import InvalidSpec, carries_user_info, redact_url


def check_trust(verify: bool | str) -> None:
    """A CA bundle named but not there is bad input, whether or not the endpoint is https."""
    if isinstance(verify, str) and not os.path.isfile(verify):
        raise InvalidSpec(f"CA bundle {verify}: no such file")


def check_endpoint(endpoint: str, *, credentials: str) -> None:
    """An endpoint carrying user info (`http://AK:SECRET@host`) is refused, not used: it
    puts a secret where every error and log line naming the endpoint would show it, and the
    drivers take credentials from their settings, never from a URL. `credentials` says
    where they belong instead."""
    if carries_user_info(endpoint, endpoint=True):
        raise InvalidSpec(
            f"endpoint must not carry user info "
            f"({redact_url(endpoint, endpoint=True)}): "
            f"put credentials in {credentials}"
        )


_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_REGION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def endpoint_parts(endpoint: str, *, what: str, form: str) -> SplitResult:
    """`endpoint` split, refused as InvalidSpec (`what` is not a URL: give it as `form`)
    unless it is http(s)://HOST[:PORT] with a host name, an IPv4 or a [IPv6] address and a
    port in range: a bad one would otherwise fail deep in an SDK, with its own
    exception."""
    refused = InvalidSpec(f"{what} {endpoint!r} is not a URL: give it as {form}")
    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port
    except ValueError:  # an unclosed [IPv6, a port out of range or not a number
        raise refused from None
    if parts.scheme not in ("http", "https") or not host or port == 0:
        raise refused
    if not (_HOST.fullmatch(host) or ":" in host and parts.netloc.count("[") == 1):
        raise refused
    return parts


def check_region(region: str | None, *, what: str) -> None:
    """A region is a name (`us-east-1`, `oss-cn-hangzhou`), used in every signature."""
    if region and not _REGION.fullmatch(region):
        raise InvalidSpec(f"{what} {region!r} is not a region name (e.g. us-east-1)")
