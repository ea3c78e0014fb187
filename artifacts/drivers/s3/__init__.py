"""The S3 driver (AWS, MinIO, Ceph RGW): `driver.py` on botocore for everything, and
`direct.py` for small whole-object PUTs and GETs without botocore's per-request
pipeline (see there why)."""

from argosy.artifacts.drivers.s3.driver import (
    ERROR_TABLE,
    EXPECT_CONTINUE_MIN,
    Encryption,
    S3Driver,
    S3ReadStream,
    S3Settings,
    _expect_continue,
    _loader,
    _timestamp,
    make_client,
    map_error,
)

__all__ = ["ERROR_TABLE", "EXPECT_CONTINUE_MIN", "Encryption", "S3Driver", "S3ReadStream",
           "S3Settings", "_expect_continue", "_loader", "_timestamp", "make_client",
           "map_error"]
