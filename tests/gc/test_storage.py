"""The GC opens one storage client per bucket, not one per artifact: a client costs
~12 MiB and ~0.1 s of CPU, and 200 workflows of one bucket must not build 200."""

from __future__ import annotations

from pathlib import Path

from argosy.argo.location import Target
from argosy.artifacts.protocol import Driver
from argosy.gc.storage import DriverFactory, StorageSettings


def _target(bucket: str, key: str, root: Path) -> Target:
    return Target("local", bucket, key, {"bucket": bucket, "key": key, "root": str(root)})


def test_artifacts_of_one_bucket_share_one_driver_and_another_bucket_gets_its_own(
    tmp_path: Path,
) -> None:
    built: list[Driver] = []

    def count(driver: Driver) -> Driver:
        built.append(driver)
        return driver

    factory = DriverFactory(lambda ns, name: None, StorageSettings(), decorate=count)
    first = factory.open(_target("b", "wf-1/pod/out.tgz", tmp_path), "ns")
    second = factory.open(_target("b", "wf-2/pod/out.tgz", tmp_path), "ns")
    other = factory.open(_target("c", "wf-1/pod/out.tgz", tmp_path), "ns")
    assert first is second
    assert other is not first
    assert len(built) == 2


def test_the_same_bucket_in_another_namespace_gets_its_own_driver(tmp_path: Path) -> None:
    factory = DriverFactory(lambda ns, name: None, StorageSettings())
    assert factory.open(_target("b", "k", tmp_path), "ns-1") is not factory.open(
        _target("b", "k", tmp_path), "ns-2"
    )
