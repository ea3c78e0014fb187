"""Alibaba Cloud OSS through oss2: the only package that imports oss2 and crcmod.

One module per concern:
- `settings`  OssSettings and Lifecycle, what a driver is built from;
- `auth`      which credentials sign (static keys, or useSDKCreds' chain), and the signer;
- `sts`       RRSA: STS AssumeRoleWithOIDC credentials, cached and refreshed;
- `client`    the oss2 Bucket: HTTP session, TLS, timeouts;
- `crc`       CRC64 (crcmod's C extension) and combining part CRCs;
- `streams`   request and response bodies CRC64'd as the bytes pass;
- `errors`    the one table from OSS codes and oss2 failures to Argosy's error tree;
- `lifecycle` Argo's lifecycleRule merged into the bucket's lifecycle document;
- `driver`    OssDriver, the storage protocol's primitives.
"""

from __future__ import annotations

from argosy.artifacts.drivers.oss.client import make_bucket
from argosy.artifacts.drivers.oss.crc import (
    crc64,
    crc64_combine,
    crc_extension_loaded,
    require_crc_extension,
)
from argosy.artifacts.drivers.oss.driver import OssDriver, OssPart
from argosy.artifacts.drivers.oss.errors import ERROR_TABLE, map_error
from argosy.artifacts.drivers.oss.lifecycle import LIFECYCLE_RULE_ID
from argosy.artifacts.drivers.oss.settings import Lifecycle, OssSettings
from argosy.artifacts.drivers.oss.streams import OssReadStream

__all__ = [
    "ERROR_TABLE",
    "LIFECYCLE_RULE_ID",
    "Lifecycle",
    "OssDriver",
    "OssPart",
    "OssReadStream",
    "OssSettings",
    "crc64",
    "crc64_combine",
    "crc_extension_loaded",
    "make_bucket",
    "map_error",
    "require_crc_extension",
]
