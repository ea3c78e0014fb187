"""artifacts/drivers: one module per storage service, behind `artifacts.protocol.Driver`."""

from __future__ import annotations

import os

from argosy.artifacts.errors import InvalidSpec


def check_trust(verify: bool | str) -> None:
    """A CA bundle named but not there is bad input, whether or not the endpoint is https."""
    if isinstance(verify, str) and not os.path.isfile(verify):
        raise InvalidSpec(f"CA bundle {verify}: no such file")
