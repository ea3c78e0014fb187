"""A static route sends object requests where botocore would send them, signed for the
region botocore would sign for, trusting what botocore would trust; where that cannot
be known without botocore, there is no static route."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TypedDict

import pytest
from botocore.httpsession import get_cert_path

from argosy.artifacts.drivers.s3 import Encryption, S3Settings
from argosy.artifacts.drivers.s3.route import static_route
from argosy.artifacts.drivers.s3.sdk import make_client

ENDPOINTS = [
    "http://127.0.0.1:9000",
    "http://localhost:9000",
    "https://minio.example.com",
    "https://s3.example.com/prefix/",
    "http://[::1]:7480",
    "https://s3.us-west-2.amazonaws.com",
    "http://rgw.svc.cluster.local:7480/",
]
BUCKETS = ["bucket", "my.bucket", "Bad_Bucket", "ab", "a-b-c-1"]


class Keys(TypedDict):
    access_key: str
    secret_key: str


KEYS = Keys(access_key="AKID", secret_key="secret")


def _botocore_base(settings: S3Settings, bucket: str) -> str:
    url = make_client(settings).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "K"}
    )
    return str(url).split("?", 1)[0][:-1]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("style", ["auto", "path", "virtual"])
@pytest.mark.parametrize("bucket", BUCKETS)
def test_the_bucket_url_is_botocores_or_there_is_no_static_route(
    endpoint: str, style: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    settings = S3Settings(endpoint=endpoint, region="eu-west-1", addressing_style=style, **KEYS)
    route = static_route(settings, bucket, env={"AWS_CONFIG_FILE": "/nonexistent"})
    if route is None:
        assert style == "virtual" and "." in bucket  # the one case left to botocore
        return
    assert route.base == _botocore_base(settings, bucket)
    assert route.region == "eu-west-1"


def test_region_defaults_as_botocores_do() -> None:
    env = {"AWS_CONFIG_FILE": "/nonexistent"}
    settings = S3Settings(endpoint="http://h:1", **KEYS)
    assert static_route(settings, "b", env=env).region == "us-east-1"  # type: ignore[union-attr]
    with_default = {**env, "AWS_DEFAULT_REGION": "ap-south-1"}
    assert static_route(settings, "b", env=with_default).region == "ap-south-1"  # type: ignore[union-attr]


def test_keys_come_from_the_settings_else_the_environment_as_botocores_chain_takes_them() -> None:
    env = {
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_ACCESS_KEY_ID": "ENVKEY",
        "AWS_SECRET_ACCESS_KEY": "envsecret",
        "AWS_SESSION_TOKEN": "session",
        "AWS_SECURITY_TOKEN": "legacy",
    }
    from_settings = static_route(S3Settings(endpoint="http://h:1", **KEYS), "b", env=env)
    assert from_settings is not None
    assert from_settings.credentials() == ("AKID", "secret", None)
    from_env = static_route(S3Settings(endpoint="http://h:1"), "b", env=env)
    assert from_env is not None  # botocore reads AWS_SECURITY_TOKEN before the other
    assert from_env.credentials() == ("ENVKEY", "envsecret", "legacy")


@pytest.mark.parametrize(
    "case",
    [
        "no endpoint",
        "no keys",
        "half the keys",
        "a profile",
        "sse-kms",
        "sse-c",
        "a proxy",
        "a proxy for all",
        "expiring keys",
        "fips",
        "a shared config file",
    ],
)
def test_whatever_botocore_would_resolve_itself_gets_no_static_route(
    case: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    env = {"AWS_CONFIG_FILE": str(config)}
    fields: dict[str, object] = {"endpoint": "http://h:1", **KEYS}
    if case == "no endpoint":
        fields.pop("endpoint")
    elif case == "no keys":
        fields = {"endpoint": "http://h:1"}
    elif case == "half the keys":
        fields.pop("secret_key")
    elif case == "a profile":
        fields["profile"] = "dev"
    elif case == "sse-kms":
        fields["encryption"] = Encryption(mode="kms", kms_key_id="k")
    elif case == "sse-c":
        fields["encryption"] = Encryption(mode="c", customer_key=b"k" * 32)
    elif case == "a proxy":
        env["HTTPS_PROXY"] = "http://proxy:3128"
    elif case == "a proxy for all":
        env["all_proxy"] = "socks5://proxy:1080"
    elif case == "expiring keys":
        env["AWS_CREDENTIAL_EXPIRATION"] = "2030-01-01T00:00:00Z"
    elif case == "fips":
        env["AWS_USE_FIPS_ENDPOINT"] = "true"
    else:
        config.write_text("[default]\nregion = eu-north-1\n")
    assert static_route(S3Settings(**fields), "b", env=env) is None  # type: ignore[arg-type]
    assert (
        static_route(
            S3Settings(endpoint="http://h:1", **KEYS),
            "b",
            env={"AWS_CONFIG_FILE": str(tmp_path / "none")},
        )
        is not None
    )


def test_tls_trust_is_botocores(tmp_path: Path) -> None:
    env = {"AWS_CONFIG_FILE": "/nonexistent"}
    https = S3Settings(endpoint="https://h:1", **KEYS)
    insecure = static_route(replace(https, verify=False), "b", env=env)
    assert insecure is not None and not insecure.verify
    (tmp_path / "ca.pem").write_text("a bundle")
    ca = str(tmp_path / "ca.pem")
    bundle = static_route(replace(https, verify=ca), "b", env=env)
    assert bundle is not None and bundle.ca_certs == ca
    from_env = static_route(https, "b", env={**env, "AWS_CA_BUNDLE": "/env-ca.pem"})
    assert from_env is not None and from_env.ca_certs == "/env-ca.pem"
    default = static_route(https, "b", env=env)
    assert default is not None and default.verify
    assert default.ca_certs == get_cert_path(True)  # the bundle botocore's pool loads
