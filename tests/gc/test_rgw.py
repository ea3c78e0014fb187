"""The GC against Ceph RGW, the real thing: batch deletes of directory artifacts (RGW
requires Content-MD5 on DeleteObjects), credentials that cannot delete, and a bucket that
no longer exists, each reported by its cause."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import ManualClock
from tests.conftest import s3_driver, unique_bucket
from tests.gc.argo import FINALIZER, Argo, Art, repository_entry
from tests.gc.conftest import NS, keys
from tests.gc.running import DeleteLog

pytestmark = pytest.mark.rgw


@pytest.fixture
def rgw_team(argo: Argo, rgw: dict[str, str]) -> Driver:
    name = unique_bucket("gc")
    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"], rgw["AWS_ACCESS_KEY_ID"], rgw["AWS_SECRET_ACCESS_KEY"], name
    )
    argo.secret(NS, access=rgw["AWS_ACCESS_KEY_ID"], secret=rgw["AWS_SECRET_ACCESS_KEY"])
    argo.repositories(NS, {"default": repository_entry(name, rgw["AWS_ENDPOINT_URL"])})
    return driver


def put_many(driver: Driver, keys_: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: driver.put(k, b"x", size=1, metadata={}), keys_))


def test_a_directory_artifact_of_2500_objects_goes_in_batches_of_1000_on_rgw(
    argo: Argo, rgw_team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    tree = [f"wf/pod/dir/{i // 100:02d}/f{i:04d}" for i in range(2500)]
    put_many(rgw_team, [*tree, "wf/pod/dir", "wf/pod/dirx/keep", "wf/pod/dir.tgz"])
    argo.submit(NS, "wf", [Art("dir", "wf/pod/dir")], strategy="OnWorkflowDeletion")
    deletes = DeleteLog()
    controller = make_controller(decorate_driver=deletes.decorator("gc"))
    controller.run_once()
    assert argo.finalizers(NS, "wf") == [FINALIZER]
    argo.delete(NS, "wf")

    summary = controller.run_once()

    assert (summary.objects, summary.failed, summary.finalizers) == (2501, False, {"removed": 1})
    assert keys(rgw_team) == ["wf/pod/dir.tgz", "wf/pod/dirx/keep"]
    assert sorted(len(call[3]) for call in deletes.calls) == [501, 1000, 1000]
    assert argo.get(NS, "wf") is None


def test_credentials_that_cannot_delete_are_reported_as_access_denied(
    argo: Argo, rgw: dict[str, str], clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    name = unique_bucket("gc")
    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"], rgw["AWS_ACCESS_KEY_ID"], rgw["AWS_SECRET_ACCESS_KEY"], name
    )
    driver.put("wf/out", b"x", size=1, metadata={})
    argo.secret(NS, access=rgw["AWS_ACCESS_KEY_ID"], secret="not-the-secret")
    argo.repositories(NS, {"default": repository_entry(name, rgw["AWS_ENDPOINT_URL"])})
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert [f.cause for _, f in summary.failures] == ["AccessDenied"]
    assert [e["reason"] for e in argo.events(NS, "wf")] == ["ArtifactGCAccessDenied"]
    assert keys(driver) == ["wf/out"]


def test_a_bucket_that_no_longer_exists_is_reported_as_no_such_bucket(
    argo: Argo, rgw: dict[str, str], clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.secret(NS, access=rgw["AWS_ACCESS_KEY_ID"], secret=rgw["AWS_SECRET_ACCESS_KEY"])
    argo.repositories(
        NS, {"default": repository_entry(unique_bucket("gone"), rgw["AWS_ENDPOINT_URL"])}
    )
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Failed", clock())

    summary = make_controller().run_once()

    assert [f.cause for _, f in summary.failures] == ["NoSuchBucket"]
    assert [e["reason"] for e in argo.events(NS, "wf")] == ["ArtifactGCNoSuchBucket"]
