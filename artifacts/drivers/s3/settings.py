"""How to reach one S3 service, and how its objects are encrypted."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from argosy.artifacts.drivers import check_endpoint, check_region, check_trust, endpoint_parts
from argosy.artifacts.errors import InvalidSpec

EXPECT_CONTINUE_MIN = 1 << 20  # bytes: smaller bodies go without Expect: 100-continue
CREDENTIALS = (
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or the repository's "
    "accessKeySecret and secretKeySecret"
)


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption: mode is none, s3 (SSE-S3), kms (SSE-KMS) or c (SSE-C)."""

    mode: str = "none"
    kms_key_id: str | None = None
    kms_context: str | None = None  # JSON, as S3 takes it
    customer_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("none", "s3", "kms", "c"):
            raise InvalidSpec(f"unknown server-side encryption {self.mode!r} (none, s3, kms or c)")
        if self.mode == "c" and (self.customer_key is None or len(self.customer_key) != 32):
            got = "none" if self.customer_key is None else f"{len(self.customer_key)} bytes"
            raise InvalidSpec(
                f"SSE-C needs a 32-byte customer key (--sse-c-key-file, or the "
                f"repository's serverSideCustomerKeySecret); got {got}"
            )

    def write_args(self) -> dict[str, Any]:
        if self.mode == "s3":
            return {"ServerSideEncryption": "AES256"}
        if self.mode == "kms":
            args: dict[str, Any] = {"ServerSideEncryption": "aws:kms"}
            if self.kms_key_id:
                args["SSEKMSKeyId"] = self.kms_key_id
            if self.kms_context:
                args["SSEKMSEncryptionContext"] = base64.b64encode(
                    self.kms_context.encode()
                ).decode()
            return args
        return self.customer_args()

    def customer_args(self) -> dict[str, Any]:
        if self.mode != "c" or not self.customer_key:
            return {}
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": self.customer_key}

    def copy_source_args(self) -> dict[str, Any]:
        if self.mode != "c" or not self.customer_key:
            return {}
        return {
            "CopySourceSSECustomerAlgorithm": "AES256",
            "CopySourceSSECustomerKey": self.customer_key,
        }


@dataclass(frozen=True)
class S3Settings:
    """How to reach one S3 service. Unset credentials fall back to the AWS default chain
    (environment, shared files, web identity / IRSA, container and instance roles)."""

    endpoint: str | None = None
    region: str | None = None
    addressing_style: str = "auto"  # path | virtual | auto
    verify: bool | str = True  # False = insecure; str = a CA bundle file
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    encryption: Encryption = field(default_factory=Encryption)
    max_connections: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        check_trust(self.verify)
        if self.endpoint is not None:
            check_endpoint(self.endpoint, credentials=CREDENTIALS)  # before any message names it
            endpoint_parts(
                self.endpoint,
                what="S3 endpoint",
                form="http://HOST[:PORT] or https://HOST[:PORT]",
            )
        check_region(self.region, what="S3 region")
