"""useSDKCreds' chain for OSS, from the environment it is handed: which source wins, the STS
endpoint it picks, and the one-line errors when the environment names no usable source."""

from __future__ import annotations

import oss2
import pytest

from argosy.artifacts.drivers.oss.auth import (
    credentials_provider,
    session_name,
    sign_with,
    sts_endpoint,
)
from argosy.artifacts.drivers.oss.settings import OssSettings
from argosy.artifacts.drivers.oss.sts import OidcRoleProvider
from argosy.artifacts.errors import AccessDenied

SDK = OssSettings(endpoint="http://127.0.0.1:1", use_sdk_creds=True)
OSS_ENV = {"OSS_ACCESS_KEY_ID": "oss-id", "OSS_ACCESS_KEY_SECRET": "oss-secret"}
ALIBABA_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "ali-id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ali-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "ali-token",
}
RRSA_ENV = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/r",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/p",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/rrsa-tokens/token",
}


def test_the_oss_variables_win_over_every_other_source() -> None:
    provider = credentials_provider(SDK, {**OSS_ENV, **ALIBABA_ENV, **RRSA_ENV})
    assert isinstance(provider, oss2.credentials.EnvironmentVariableCredentialsProvider)


def test_the_alibaba_cloud_key_pair_wins_over_rrsa() -> None:
    credentials = credentials_provider(SDK, {**ALIBABA_ENV, **RRSA_ENV}).get_credentials()
    assert (
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    ) == ("ali-id", "ali-secret", "ali-token")


def test_rrsa_alone_assumes_the_role_with_the_token_file_through_sts() -> None:
    provider = credentials_provider(SDK, {**RRSA_ENV, "ALIBABA_CLOUD_ROLE_SESSION_NAME": "wf-1"})
    assert isinstance(provider, OidcRoleProvider)
    role = provider.role
    assert (role.role_arn, role.provider_arn, role.token_file, role.session_name) == (
        *RRSA_ENV.values(),
        "wf-1",
    )
    assert role.url == "https://sts.aliyuncs.com"


def test_repository_keys_win_over_use_sdk_creds() -> None:
    settings = OssSettings(access_key="k", secret_key="s", use_sdk_creds=True)
    assert credentials_provider(settings, OSS_ENV).get_credentials().access_key_id == "k"


def test_a_region_signs_with_v4_and_none_with_v1() -> None:
    assert isinstance(
        sign_with(OssSettings(access_key="k", secret_key="s", region="cn-beijing"), {}),
        oss2.ProviderAuthV4,
    )
    assert type(sign_with(OssSettings(access_key="k", secret_key="s"), {})) is oss2.ProviderAuth


@pytest.mark.parametrize(
    "env, endpoint",
    [
        ({}, "sts.aliyuncs.com"),
        ({"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"}, "sts.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_REGION": "cn-hangzhou"}, "sts.cn-hangzhou.aliyuncs.com"),
        (
            {
                "ALIBABA_CLOUD_STS_REGION": "cn-hangzhou",
                "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "TRUE",
            },
            "sts-vpc.cn-hangzhou.aliyuncs.com",
        ),
        (
            {
                "ALIBABA_CLOUD_STS_REGION": "cn-hangzhou",
                "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "false",
            },
            "sts.cn-hangzhou.aliyuncs.com",
        ),
        (
            {
                "ALIBABA_CLOUD_STS_ENDPOINT": "sts-vpc.cn-beijing.aliyuncs.com",
                "ALIBABA_CLOUD_STS_REGION": "cn-hangzhou",
            },
            "sts-vpc.cn-beijing.aliyuncs.com",
        ),
        ({"ALIBABA_CLOUD_STS_ENDPOINT": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080"),
    ],
)
def test_the_sts_endpoint_follows_alibabas_rules(env: dict[str, str], endpoint: str) -> None:
    assert sts_endpoint(env) == endpoint


def test_the_default_session_name_is_cut_to_what_sts_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "wf pod/" + "x" * 80)
    name = session_name({})
    assert name.startswith("argosy-wf-pod-x") and len(name) == 64
    assert session_name({"ALIBABA_CLOUD_ROLE_SESSION_NAME": "mine"}) == "mine"


def test_no_source_at_all_names_every_variable_to_set() -> None:
    with pytest.raises(AccessDenied) as error:
        credentials_provider(SDK, {"OSS_SESSION_TOKEN": "alone", "ALIBABA_CLOUD_ROLE_ARN": ""})
    message = str(error.value)
    for name in ("OSS_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID", *RRSA_ENV):
        assert name in message
    assert error.value.code == "NoCredentials" and len(message.splitlines()) == 1


@pytest.mark.parametrize(
    "env, missing",
    [
        ({"OSS_ACCESS_KEY_ID": "id"}, "OSS_ACCESS_KEY_SECRET"),
        ({"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s", **RRSA_ENV}, "ALIBABA_CLOUD_ACCESS_KEY_ID"),
        (
            {k: v for k, v in RRSA_ENV.items() if k != "ALIBABA_CLOUD_OIDC_TOKEN_FILE"},
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        ),
    ],
)
def test_a_source_set_only_in_part_names_what_is_missing(env: dict[str, str], missing: str) -> None:
    with pytest.raises(AccessDenied, match=f"but not {missing}$"):
        credentials_provider(SDK, env)
