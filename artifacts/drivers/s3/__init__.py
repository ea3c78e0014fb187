"""The S3 driver (AWS, MinIO, Ceph RGW): `driver.py` sends object requests on the direct
path (`direct.py`) where `route.py` proves it sends what botocore would, and everything
else through botocore (`sdk.py`, loaded only when a request needs it)."""

from typing import Any

from argosy.artifacts.drivers.s3.driver import S3Driver, S3ReadStream, map_error
from argosy.artifacts.drivers.s3.errors import ERROR_TABLE
from argosy.artifacts.drivers.s3.settings import EXPECT_CONTINUE_MIN, Encryption, S3Settings

__all__ = [
    "ERROR_TABLE",
    "EXPECT_CONTINUE_MIN",
    "Encryption",
    "S3Driver",
    "S3ReadStream",
    "S3Settings",
    "make_client",
    "map_error",
]


def __getattr__(name: str) -> Any:
    if name == "make_client":  # botocore's client, loaded on demand
        from argosy.artifacts.drivers.s3.sdk import make_client

        return make_client
    raise AttributeError(name)
