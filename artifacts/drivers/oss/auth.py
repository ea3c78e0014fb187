"""Which credentials sign OSS requests, and the oss2 signer built on them.

Static keys (the repository's secrets) sign as given. `useSDKCreds` follows Alibaba's
default chain; the first source with any of its variables set is used, and one set only
in part is an error naming what is missing (not a silent fall through to the next):

1. OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET (/ OSS_SESSION_TOKEN): oss2's own variables,
   read again at every request as oss2 does.
2. ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET
   (/ ALIBABA_CLOUD_SECURITY_TOKEN): the variables of Alibaba's other SDKs.
3. RRSA (ACK's RAM Roles for Service Accounts): ALIBABA_CLOUD_ROLE_ARN,
   ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE, traded with STS
   AssumeRoleWithOIDC for temporary credentials (`sts.py`). Optional: the session name
   (ALIBABA_CLOUD_ROLE_SESSION_NAME) and the STS endpoint (`sts_endpoint`).

The chain reads the environment it is handed once, when the driver is built, as botocore's
chain does for S3. Alibaba's `alibabacloud-credentials` package implements the same
chain but is not used: it freezes the environment at import, always calls STS over https
(no loopback test server can stand in for STS), cannot take an injected clock, and
installs a log handler and an unbounded thread pool at import.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import oss2

from argosy.artifacts.drivers.oss.settings import OssSettings
from argosy.artifacts.drivers.oss.sts import OidcRole, OidcRoleProvider
from argosy.artifacts.errors import AccessDenied

_OSS_PAIR = ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET")
_ALIBABA_PAIR = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")
_RRSA = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
)
_SESSION_NAME = re.compile(r"[^A-Za-z0-9.@_-]")


def sign_with(
    settings: OssSettings, environ: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> Any:
    """oss2's signer (V4 when a region is set, else V1) over the settings' credentials."""
    provider = credentials_provider(settings, environ, clock=clock)
    return oss2.ProviderAuthV4(provider) if settings.region else oss2.ProviderAuth(provider)


def credentials_provider(
    settings: OssSettings, environ: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> Any:
    if settings.access_key and settings.secret_key:
        return oss2.credentials.StaticCredentialsProvider(
            settings.access_key, settings.secret_key, settings.security_token or ""
        )
    if not settings.use_sdk_creds:
        raise AccessDenied(
            "OSS: no credentials: set OSS_ACCESS_KEY_ID and "
            "OSS_ACCESS_KEY_SECRET, give accessKeySecret/secretKeySecret, or "
            "useSDKCreds",
            code="NoCredentials",
        )
    env = {k: v for k, v in environ.items() if v}
    if _wants(env, _OSS_PAIR):
        return oss2.credentials.EnvironmentVariableCredentialsProvider()
    if _wants(env, _ALIBABA_PAIR):
        return oss2.credentials.StaticCredentialsProvider(
            env[_ALIBABA_PAIR[0]],
            env[_ALIBABA_PAIR[1]],
            env.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
        )
    if _wants(env, _RRSA):
        role = OidcRole(
            role_arn=env[_RRSA[0]],
            provider_arn=env[_RRSA[1]],
            token_file=env[_RRSA[2]],
            session_name=session_name(env),
            endpoint=sts_endpoint(env),
        )
        return OidcRoleProvider(
            role, timeout=(settings.connect_timeout, settings.read_timeout), clock=clock
        )
    raise AccessDenied(
        "OSS: useSDKCreds is set but no credentials were found: set "
        "OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET, ALIBABA_CLOUD_ACCESS_KEY_ID "
        "and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or for RRSA " + ", ".join(_RRSA),
        code="NoCredentials",
    )


def _wants(env: Mapping[str, str], names: tuple[str, ...]) -> bool:
    """True when all of `names` are set, False when none is; one set in part is refused."""
    missing = [name for name in names if name not in env]
    if missing and len(missing) < len(names):
        given = ", ".join(name for name in names if name in env)
        raise AccessDenied(
            f"OSS: useSDKCreds found {given} but not {', '.join(missing)}", code="NoCredentials"
        )
    return not missing


def sts_endpoint(env: Mapping[str, str]) -> str:
    """ALIBABA_CLOUD_STS_ENDPOINT as given (a scheme is allowed; none means https); else
    the region's endpoint for ALIBABA_CLOUD_STS_REGION, `sts-vpc.REGION.aliyuncs.com` when
    ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED is true; else the global `sts.aliyuncs.com` (which
    has no VPC variant), as Alibaba's credential tools resolve it."""
    if env.get("ALIBABA_CLOUD_STS_ENDPOINT"):
        return env["ALIBABA_CLOUD_STS_ENDPOINT"]
    region = env.get("ALIBABA_CLOUD_STS_REGION", "").strip()
    if not region:
        return "sts.aliyuncs.com"
    vpc = env.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "").strip().lower() == "true"
    return f"{'sts-vpc' if vpc else 'sts'}.{region}.aliyuncs.com"


def session_name(env: Mapping[str, str]) -> str:
    """ALIBABA_CLOUD_ROLE_SESSION_NAME, else `argosy-HOSTNAME` (the pod's name, so STS's
    audit log tells pods apart), cut to what STS takes: 2-64 of [A-Za-z0-9.@_-]."""
    name = env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME") or f"argosy-{socket.gethostname()}"
    return _SESSION_NAME.sub("-", name)[:64].ljust(2, "-")
