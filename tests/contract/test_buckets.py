"""The optional bucket primitives (`BucketDriver`: `argosy mb`, `argosy ls s3://`), run
against every driver that has them: each of local, S3 and OSS does."""

from __future__ import annotations

import pytest

from argosy.artifacts.errors import ArtifactError, InvalidSpec, NotFound
from argosy.artifacts.protocol import BucketDriver, Driver
from tests.conftest import unique_bucket
from tests.contract.conftest import same_service


def test_every_driver_has_the_bucket_primitives(driver: Driver) -> None:
    assert isinstance(driver, BucketDriver)
    assert isinstance(same_service(driver, ""), BucketDriver)


def test_a_new_bucket_is_made_and_a_second_make_says_it_was_already_there(
    driver: Driver,
) -> None:
    fresh = same_service(driver, unique_bucket("mb"))
    with pytest.raises(NotFound):
        fresh.list("")

    assert fresh.create_bucket() is True
    assert fresh.create_bucket() is False

    fresh.put("k", b"in the new bucket", size=17, metadata={})
    assert fresh.stat("k").size == 17
    assert [o.key for o in driver.list("").objects] == []  # the first bucket saw nothing


def test_the_service_lists_the_buckets_these_credentials_own_by_name(driver: Driver) -> None:
    made = same_service(driver, unique_bucket("ls"))
    made.create_bucket()

    found = same_service(driver, "").list_buckets()

    names = [b.name for b in found]
    assert {driver.bucket, made.bucket} <= set(names)
    assert names == sorted(names)
    assert all(b.created is None or b.created.tzinfo is not None for b in found)


def test_a_driver_for_the_service_alone_refuses_every_object_request(driver: Driver) -> None:
    service = same_service(driver, "")
    for call in (
        lambda: service.stat("k"),
        lambda: service.put("k", b"x", size=1, metadata={}),
        lambda: service.list(""),
        lambda: service.create_bucket(),
    ):
        with pytest.raises(ArtifactError) as raised:
            call()
        assert isinstance(raised.value, (InvalidSpec, NotFound)), raised.value
