"""S3 options a user configures: encryption, credentials, addressing, TLS, and the
failures around them. What Ceph RGW 16 lacks (SSE-S3, SSE-KMS, web identity) is proven
on moto, and the test names say so."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from argosy.artifacts import download, upload
from argosy.artifacts.drivers.s3 import Encryption, S3Driver, S3Settings, make_client
from argosy.artifacts.errors import AccessDenied, ArtifactError
from argosy.artifacts.settings import TransferSettings
from tests.conftest import unique_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

MiB = 1 << 20
SETTINGS = TransferSettings(part_size=5 * MiB, multipart_threshold=5 * MiB, concurrency=2)


def _driver(endpoint: str, bucket: str, **kwargs) -> S3Driver:
    settings = S3Settings(
        endpoint=endpoint,
        region="us-east-1",
        access_key="k",
        secret_key="s",
        addressing_style="path",
        **kwargs,
    )
    driver = S3Driver(settings, bucket)
    driver.create_bucket()
    return driver


def _head(endpoint: str, bucket: str, key: str, **extra) -> HeadObjectOutputTypeDef:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    return client.head_object(Bucket=bucket, Key=key, **extra)


def test_sse_s3_on_moto_since_rgw16_lacks_it(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = unique_bucket()
    driver = _driver(moto_endpoint, bucket, encryption=Encryption(mode="s3"))
    (tmp_path / "f").write_bytes(os.urandom(7 * MiB))
    upload.upload_file(driver, "f", tmp_path / "f", settings=SETTINGS)
    assert _head(moto_endpoint, bucket, "f")["ServerSideEncryption"] == "AES256"


def test_sse_kms_on_moto_since_rgw16_lacks_it(moto_endpoint: str, tmp_path: Path) -> None:
    kms = boto3.client(
        "kms",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    bucket = unique_bucket()
    driver = _driver(moto_endpoint, bucket, encryption=Encryption(mode="kms", kms_key_id=key_id))
    (tmp_path / "f").write_bytes(b"secret payload")
    upload.upload_file(driver, "f", tmp_path / "f", settings=SETTINGS)
    head = _head(moto_endpoint, bucket, "f")
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]


@pytest.mark.rgw
def test_sse_c_objects_round_trip_with_their_key_and_refuse_readers_without_it_on_rgw(
    rgw, tmp_path: Path
) -> None:
    key = b"k" * 32
    settings = S3Settings(
        endpoint=rgw["AWS_ENDPOINT_URL"],
        region="us-east-1",
        access_key=rgw["AWS_ACCESS_KEY_ID"],
        secret_key=rgw["AWS_SECRET_ACCESS_KEY"],
        addressing_style="path",
    )
    bucket = unique_bucket()
    with_key = S3Driver(
        S3Settings(**{**settings.__dict__, "encryption": Encryption(mode="c", customer_key=key)}),
        bucket,
    )
    with_key.create_bucket()
    small = os.urandom(1 * MiB)
    (tmp_path / "small").write_bytes(small)
    assert (
        upload.upload_file(with_key, "small", tmp_path / "small", settings=SETTINGS).record
        is not None
    )
    got = download.download_file(with_key, "small", tmp_path / "small.back", settings=SETTINGS)
    assert got.verified and (tmp_path / "small.back").read_bytes() == small
    with pytest.raises(ArtifactError):
        S3Driver(settings, bucket).read("small").close()


@pytest.mark.rgw
def test_a_multipart_sse_c_object_on_rgw16_stays_honestly_unverified(rgw, tmp_path: Path) -> None:
    # RGW 16 answers 501 to a copy of an SSE-C object, so the record cannot be added
    # after Complete: the object must read as unverified, never as verified.
    settings = S3Settings(
        endpoint=rgw["AWS_ENDPOINT_URL"],
        region="us-east-1",
        access_key=rgw["AWS_ACCESS_KEY_ID"],
        secret_key=rgw["AWS_SECRET_ACCESS_KEY"],
        addressing_style="path",
        encryption=Encryption(mode="c", customer_key=b"k" * 32),
    )
    driver = S3Driver(settings, unique_bucket())
    driver.create_bucket()
    data = os.urandom(6 * MiB)
    (tmp_path / "f").write_bytes(data)
    result = upload.upload_file(driver, "f", tmp_path / "f", settings=SETTINGS)
    assert result.record is None and "unverified" in result.note
    got = download.download_file(driver, "f", tmp_path / "back", settings=SETTINGS)
    assert not got.verified and (tmp_path / "back").read_bytes() == data


def test_web_identity_irsa_credentials_on_moto_since_rgw16_lacks_sts(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = unique_bucket()
    _driver(moto_endpoint, bucket)
    (tmp_path / "token").write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    (tmp_path / "f").write_bytes(b"from a pod with IRSA")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/argosy",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    run = subprocess.run(
        [sys.executable, "-m", "argosy", "cp", "-q", str(tmp_path / "f"), f"s3://{bucket}/irsa"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert _head(moto_endpoint, bucket, "irsa")["ContentLength"] == 20


def test_no_credentials_at_all_is_access_denied_not_a_crash(
    moto_endpoint: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    run = subprocess.run(
        [sys.executable, "-m", "argosy", "ls", "s3://b/"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 5 and "no usable credentials" in run.stderr


_EMPTY_LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
    b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name>'
    b"<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *_args, **_kwargs):
        yield self.body


def _captured_url(settings: S3Settings, bucket: str) -> tuple[str, dict]:
    client = make_client(settings)
    seen: dict = {}

    def capture(request, **_):
        seen["url"] = request.url
        seen["headers"] = dict(request.headers)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Raw(_EMPTY_LISTING))

    client.meta.events.register("before-send.s3", capture)
    S3Driver(settings, bucket, client=client).list("p/")
    return seen["url"], seen["headers"]


def test_virtual_hosted_and_path_addressing_are_honoured() -> None:
    base = S3Settings(
        endpoint="http://s3.example.test:9000", region="us-east-1", access_key="k", secret_key="s"
    )
    virtual, _ = _captured_url(replace(base, addressing_style="virtual"), "bkt")
    path, _ = _captured_url(replace(base, addressing_style="path"), "bkt")
    assert virtual.startswith("http://bkt.s3.example.test:9000/")
    assert path.startswith("http://s3.example.test:9000/bkt")


def test_a_session_token_is_sent_with_static_keys() -> None:
    _, headers = _captured_url(
        S3Settings(
            endpoint="http://s3.example.test",
            region="us-east-1",
            access_key="k",
            secret_key="s",
            session_token="tok123",
        ),
        "bkt",
    )
    assert headers.get("X-Amz-Security-Token") == b"tok123"


@pytest.fixture(scope="module")
def tls_moto(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory):
    from tests.tls_proxy import TlsProxy, make_cert

    folder = tmp_path_factory.mktemp("tls")
    cert, key = make_cert(folder)
    proxy = TlsProxy(int(moto_endpoint.rsplit(":", 1)[1]), cert, key)
    yield f"https://127.0.0.1:{proxy.port}", cert
    proxy.close()


def test_tls_with_a_custom_ca_bundle_works_and_without_it_fails_clearly(tls_moto) -> None:
    endpoint, cert = tls_moto
    bucket = unique_bucket()
    trusted = _driver(endpoint, bucket, verify=str(cert))
    trusted.put("x", b"over tls", size=8, metadata={})
    untrusted = S3Driver(
        S3Settings(
            endpoint=endpoint,
            region="us-east-1",
            access_key="k",
            secret_key="s",
            addressing_style="path",
        ),
        bucket,
    )
    with pytest.raises(ArtifactError, match="certificate"):
        untrusted.stat("x")
    insecure = S3Driver(
        S3Settings(
            endpoint=endpoint,
            region="us-east-1",
            access_key="k",
            secret_key="s",
            addressing_style="path",
            verify=False,
        ),
        bucket,
    )
    assert insecure.stat("x").size == 8


@pytest.mark.rgw
def test_a_wrong_secret_on_rgw_is_access_denied_through_the_driver(rgw) -> None:
    driver = S3Driver(
        S3Settings(
            endpoint=rgw["AWS_ENDPOINT_URL"],
            region="us-east-1",
            access_key=rgw["AWS_ACCESS_KEY_ID"],
            secret_key="wrong",
            addressing_style="path",
        ),
        "any",
    )
    with pytest.raises(AccessDenied):
        driver.list("")
