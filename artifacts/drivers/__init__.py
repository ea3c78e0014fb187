"""artifacts/drivers: one module per storage service, behind `artifacts.protocol.Driver`."""

from __future__ import annotations

import os

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
