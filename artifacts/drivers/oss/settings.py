"""How to reach OSS: the settings an OSS driver is built from, once, at the entry point."""

from __future__ import annotations

from dataclasses import dataclass, field

from argosy.artifacts.drivers import check_endpoint, check_region, check_trust, endpoint_parts

CREDENTIALS = (
    "OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET, or the repository's "
    "accessKeySecret and secretKeySecret"
)


@dataclass(frozen=True)
class Lifecycle:
    """Argo's `lifecycleRule`: objects under `prefix` move to Infrequent Access after
    `mark_infrequent_access_after_days` and are deleted after `mark_deletion_after_days`
    (None: never). Kept as one rule, `lifecycle.LIFECYCLE_RULE_ID`, beside the bucket's
    others."""

    mark_infrequent_access_after_days: int | None = None
    mark_deletion_after_days: int | None = None
    prefix: str = ""


@dataclass(frozen=True)
class OssSettings:
    """How to reach OSS. Credentials: an access key and secret (with `security_token` for
    STS), or `use_sdk_creds` for Alibaba's default chain (see `auth.py`): OSS_ACCESS_KEY_ID /
    OSS_ACCESS_KEY_SECRET / OSS_SESSION_TOKEN (read at every request, so a rotated token is
    picked up), then ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET /
    ALIBABA_CLOUD_SECURITY_TOKEN, then RRSA: STS AssumeRoleWithOIDC with the pod's token
    (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE).

    endpoint: with scheme; without one https is assumed. Internal endpoints
        (`oss-cn-hangzhou-internal.aliyuncs.com`) work as any other.
    region: set, requests are signed with signature V4 for it; unset, V1.
    verify: False = no TLS checks; a str = a CA bundle file.
    create_bucket_if_not_present / lifecycle: applied once, before the driver's first write.
    connect_timeout / read_timeout: seconds (10: a dead endpoint fails fast; 60: a busy
        server may take that long to start answering a large Complete). STS calls use them
        too.
    max_connections: the pool size; keep it above the transfer concurrency.
    """

    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    use_sdk_creds: bool = False
    region: str | None = None
    verify: bool | str = True
    create_bucket_if_not_present: bool = False
    lifecycle: Lifecycle | None = None
    max_connections: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        check_trust(self.verify)
        if self.endpoint:  # a bare HOST means https://HOST (see make_bucket)
            check_endpoint(self.endpoint, credentials=CREDENTIALS)  # before any message names it
            endpoint_parts(
                self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}",
                what="OSS endpoint",
                form="HOST, https://HOST or http://HOST",
            )
        check_region(self.region, what="OSS region")
