"""What `create_bucket` makes of each answer a service can give, including those the
test servers cannot (a name another account holds): the S3 driver against a stubbed
botocore client, the OSS driver against a fake oss2 Bucket."""

from __future__ import annotations

from typing import Any

import oss2.exceptions as ox
import pytest
from botocore.stub import Stubber

from argosy.artifacts.drivers.oss import OssDriver, OssSettings
from argosy.artifacts.drivers.s3 import S3Driver, S3Settings, make_client
from argosy.artifacts.errors import AccessDenied, Conflict

SETTINGS = S3Settings(
    endpoint="http://127.0.0.1:9", region="us-east-1", access_key="k", secret_key="s"
)


def _s3(head: int | None, create: str | None = None) -> tuple[S3Driver, Stubber]:
    """A driver whose HEAD of the bucket answers `head` (None: 200) and whose
    CreateBucket answers the error `create` (None: 200)."""
    client = make_client(SETTINGS)
    stub = Stubber(client)
    if head is None:
        stub.add_response("head_bucket", {}, {"Bucket": "b"})
    else:
        stub.add_client_error("head_bucket", str(head), http_status_code=head)
    if head == 404:
        if create is None:
            stub.add_response("create_bucket", {}, {"Bucket": "b"})
        else:
            stub.add_client_error("create_bucket", create, http_status_code=409)
    stub.activate()
    return S3Driver(SETTINGS, "b", client=client), stub


def test_an_s3_bucket_is_made_when_missing() -> None:
    driver, stub = _s3(404)
    assert driver.create_bucket() is True
    stub.assert_no_pending_responses()


def test_an_s3_bucket_that_is_there_is_left_as_it_is_without_a_create() -> None:
    driver, stub = _s3(None)
    assert driver.create_bucket() is False
    stub.assert_no_pending_responses()


def test_an_s3_bucket_made_meanwhile_by_ourselves_is_already_ours() -> None:
    driver, _ = _s3(404, "BucketAlreadyOwnedByYou")
    assert driver.create_bucket() is False


def test_an_s3_name_another_account_holds_is_a_conflict() -> None:
    driver, _ = _s3(404, "BucketAlreadyExists")
    with pytest.raises(Conflict, match="taken by another account"):
        driver.create_bucket()


def test_an_s3_bucket_these_credentials_may_not_use_is_access_denied() -> None:
    driver, _ = _s3(403)
    with pytest.raises(AccessDenied, match="exists but these credentials may not use it"):
        driver.create_bucket()


class _FakeBucket:
    """An oss2 Bucket whose GetBucketInfo and PutBucket answer as told."""

    def __init__(self, info: int, put: str | None = None) -> None:
        self.info, self.put, self.created = info, put, 0

    @staticmethod
    def _error(status: int, code: str) -> ox.ServerError:
        return ox.ServerError(status, {}, "", {"Code": code, "Message": "m"})

    def get_bucket_info(self) -> Any:
        if self.info != 200:
            code = {404: "NoSuchBucket", 403: "AccessDenied"}[self.info]
            raise self._error(self.info, code)
        return object()

    def create_bucket(self) -> None:
        if self.put:
            raise self._error(409, self.put)
        self.created += 1


def _oss(info: int, put: str | None = None) -> tuple[OssDriver, _FakeBucket]:
    fake = _FakeBucket(info, put)
    return OssDriver(OssSettings(endpoint="http://127.0.0.1:9"), "b", client=fake), fake


def test_an_oss_bucket_is_made_when_missing_and_left_alone_when_there() -> None:
    missing, made = _oss(404)
    there, untouched = _oss(200)
    assert missing.create_bucket() is True and made.created == 1
    assert there.create_bucket() is False and untouched.created == 0


def test_an_oss_name_someone_else_holds_is_a_conflict() -> None:
    driver, _ = _oss(404, "BucketAlreadyExists")
    with pytest.raises(Conflict, match="the bucket name is taken"):
        driver.create_bucket()


def test_an_oss_bucket_these_credentials_may_not_use_is_access_denied() -> None:
    driver, _ = _oss(403)
    with pytest.raises(AccessDenied, match="exists but these credentials may not use it"):
        driver.create_bucket()
