"""The botocore client the S3 driver builds: what it skips at start, and what it keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader
from botocore.utils import parse_timestamp

from argosy.artifacts.drivers.s3 import EXPECT_CONTINUE_MIN, S3Driver, S3Settings
from argosy.artifacts.drivers.s3.sdk import _expect_continue, _loader, make_client
from argosy.artifacts.drivers.s3.sdk import timestamp as _timestamp


def test_the_cheaper_service_list_still_names_every_service_botocore_ships() -> None:
    session = botocore.session.Session()
    ours = set(_loader(session).list_available_services("service-2"))
    theirs = set(Loader().list_available_services("service-2"))
    assert theirs <= ours and {"s3", "sts", "sso", "sso-oidc"} <= ours


def test_a_client_for_the_credential_chain_can_still_be_made_from_the_session() -> None:
    session = botocore.session.Session()
    session.register_component("data_loader", _loader(session))
    sts = session.create_client(
        "sts", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    assert sts.meta.service_model.service_name == "sts"
    with pytest.raises(DataNotFoundError):
        session.create_client("no-such-service", region_name="us-east-1")


def test_the_driver_client_answers_to_s3_with_path_addressing() -> None:
    client = make_client(
        S3Settings(
            endpoint="http://127.0.0.1:9",
            region="us-east-1",
            access_key="k",
            secret_key="s",
            addressing_style="path",
        )
    )
    assert client.meta.service_model.service_name == "s3"
    assert client.meta.config.s3["addressing_style"] == "path"


class _Model:
    def __init__(self, method: str) -> None:
        self.http = {"method": method}


class _Body:
    def read(self, amount: int = -1) -> bytes:
        return b""


@pytest.mark.parametrize(
    ("method", "length", "expect"),
    [
        ("PUT", EXPECT_CONTINUE_MIN - 1, False),
        ("PUT", EXPECT_CONTINUE_MIN, True),
        ("POST", EXPECT_CONTINUE_MIN * 8, True),
        ("GET", EXPECT_CONTINUE_MIN * 8, False),
    ],
)
def test_expect_100_continue_is_asked_only_for_large_uploads(
    method: str, length: int, expect: bool
) -> None:
    params: dict[str, Any] = {"body": _Body(), "headers": {"Content-Length": str(length)}}
    _expect_continue(_Model(method), params)
    assert ("Expect" in params["headers"]) is expect


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 29 Nov 2026 06:11:29 GMT",  # headers (RFC 1123)
        "2026-11-29T06:11:29.000Z",  # XML bodies (ISO 8601)
        "2026-11-29T06:11:29Z",
        "2026-11-29T07:11:29+01:00",
        1795760000,  # epoch seconds
        "Sun, 29 Nov 2026 06:11:29 -0000",  # no zone stated: botocore decides
        "Sun, 29 Nov 2026 07:11:29 +0100",  # RFC 2822 forms other than HTTP's
        "Sun, 29 Nov 2026 06:11:29 UTC",
        "Sunday, 29-Nov-26 06:11:29 GMT",  # RFC 850
        "2026-11-29T06:11:29",
    ],
)
def test_timestamps_parse_as_botocore_parses_them(value: str | int) -> None:
    # botocore parses epoch numbers too, though its stubs say str
    ours, theirs = _timestamp(value), parse_timestamp(value)  # type: ignore[arg-type]
    assert ours == theirs and (ours.tzinfo is None) == (theirs.tzinfo is None)


def test_a_header_date_is_an_aware_utc_moment() -> None:
    assert _timestamp("Sun, 29 Nov 2026 06:11:29 GMT") == datetime(
        2026, 11, 29, 6, 11, 29, tzinfo=UTC
    )


def test_a_last_modified_in_an_odd_form_still_parses_on_the_direct_path() -> None:
    odd = "Sunday, 29-Nov-26 06:11:29 GMT"  # RFC 850: botocore's parser reads it
    info = S3Driver._info_from_headers("k", 1, {"Last-Modified": odd})
    assert info.modified == parse_timestamp(odd) == datetime(2026, 11, 29, 6, 11, 29, tzinfo=UTC)
