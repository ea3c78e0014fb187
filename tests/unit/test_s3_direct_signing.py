"""The direct path's SigV4 signature is botocore's, byte for byte: botocore signs the same
request at the same instant and the Authorization headers must agree (moto does not check
signatures, and the test RGW issues no session tokens, so this is where tokens are
proven)."""

from __future__ import annotations

import calendar
import datetime as dt
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from argosy.artifacts.drivers.s3.direct import Direct, Signer

NOW = dt.datetime(2026, 11, 29, 10, 11, 12)


def _botocore(url: str, headers: dict[str, str], token: str | None, region: str) -> str:
    request = AWSRequest(method="PUT", url=url, headers=dict(headers), data=b"")
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "s3cr3t/key+", token), "s3", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        auth.add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzE//token+with/slashes=="])
@pytest.mark.parametrize("key", ["plain", "with space/and+plus", "ünï/ключ", "a//b", "~x%41"])
@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:9000/bucket/", "https://bucket.s3.eu-west-1.amazonaws.com/"]
)
def test_a_direct_signature_equals_botocores(token: str | None, key: str, base: str) -> None:
    region = "eu-west-1"
    signer = Signer(region, lambda: ("AKIDEXAMPLE", "s3cr3t/key+", token))
    put = Direct(
        base,
        signer,
        extra={"x-amz-server-side-encryption": "AES256"},
        pool_size=1,
        timeout=(1, 1),
        ca_certs=None,
        verify=True,
    )
    headers = {
        "x-amz-server-side-encryption": "AES256",
        "x-amz-meta-argosy-crc32c": "0a1b2c3d",
        "x-amz-meta-note": "two  spaces",
    }
    ours = dict(headers)
    host = base.split("/")[2]
    signer.sign("PUT", host, put.path(key), ours, now=calendar.timegm(NOW.timetuple()))
    theirs = _botocore(f"{base.split('/', 3)[0]}//{host}{put.path(key)}", headers, token, region)
    assert ours["authorization"] == theirs
    assert ours.get("x-amz-security-token") == token


def test_the_signing_key_is_derived_once_a_day() -> None:
    signer = Signer("us-east-1", lambda: ("a", "s", None))
    with mock.patch(
        "argosy.artifacts.drivers.s3.direct.hmac.new", wraps=__import__("hmac").new
    ) as made:
        for _ in range(3):
            signer.sign("PUT", "h", "/b/k", {}, now=0)
    assert made.call_count == 4 + 3  # the day's key chain once, then one HMAC a request


@pytest.mark.parametrize(
    "text", ['"d41d8cd98f00b204e9800998ecf8427e-3"', "a&b<c>'d'", "&amp;lt; stays literal", ""]
)
def test_xml_text_escapes_and_unescapes_to_itself(text: str) -> None:
    from argosy.artifacts.drivers.s3.direct import escape, unescape

    assert unescape(escape(text)) == text
    assert "<" not in escape(text) and '"' not in escape(text)
