"""A URL's user info (`http://AK:SECRET@host`) never reaches a message: endpoints that
carry it are refused, shown redacted, and other URLs are shown redacted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from argosy.argo.location import Target
from argosy.artifacts.drivers.oss import OssSettings
from argosy.artifacts.drivers.s3 import S3Settings
from argosy.artifacts.errors import InvalidSpec, redact_url
from argosy.gc.storage import DriverFactory


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://AK:SECRET@host:9000", "http://***@host:9000"),
        ("https://user@host/x?a=b", "https://***@host/x?a=b"),
        ("AK:SECRET@host:9000", "***@host:9000"),
        ("http://u@[::1]:9000/", "http://***@[::1]:9000/"),
        ("https://AK:SE/CRET@host/x", "https://***@host/x"),  # a raw '/' in the password
        ("http://AK:SE#CR@ET@host", "http://***@host"),
        ("http://host:9000", "http://host:9000"),
        ("https://registry.example/@scope/pkg.tgz", "https://registry.example/@scope/pkg.tgz"),
    ],
)
def test_a_url_is_shown_with_its_user_info_redacted_and_nothing_else_changed(
    url: str, shown: str
) -> None:
    assert redact_url(url) == shown


def test_an_endpoint_counts_everything_before_its_last_at_sign_as_user_info() -> None:
    assert redact_url("http://AK:7/x@host", endpoint=True) == "http://***@host"


S3 = "put credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
OSS = "put credentials in OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET"
ENDPOINTS: dict[str, tuple[Callable[[str], Any], str]] = {
    "s3": (lambda endpoint: S3Settings(endpoint=endpoint), S3),
    "oss": (lambda endpoint: OssSettings(endpoint=endpoint), OSS),
    "gc-s3": (
        lambda endpoint: DriverFactory(lambda ns, name: None).open(
            Target("s3", "b", "k", {"bucket": "b", "key": "k", "endpoint": endpoint}), "ns"
        ),
        S3,
    ),
    "gc-oss": (
        lambda endpoint: DriverFactory(lambda ns, name: None).open(
            Target("oss", "b", "k", {"bucket": "b", "key": "k", "endpoint": endpoint}), "ns"
        ),
        OSS,
    ),
}


@pytest.mark.parametrize(
    "endpoint, shown",
    [
        ("http://KEYID:s3cr3t@127.0.0.1:9000", "http://***@127.0.0.1:9000"),
        ("https://KEYID:s3c/r3t@host", "https://***@host"),
        ("https://KEYID:7/s3cr3t@host", "https://***@host"),
    ],
)
@pytest.mark.parametrize("where", ENDPOINTS)
def test_an_endpoint_with_user_info_is_refused_shown_redacted(
    where: str, endpoint: str, shown: str
) -> None:
    build, advice = ENDPOINTS[where]
    if where.startswith("gc-"):
        endpoint = endpoint.partition("://")[2]  # Argo's form: no scheme
        shown = shown.replace("http://", "https://")
    with pytest.raises(InvalidSpec) as refused:
        build(endpoint)
    message = str(refused.value)
    assert message.startswith(f"endpoint must not carry user info ({shown}): {advice}")
    assert "s3c" not in message and "KEYID" not in message
