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


def _s3(bucket: str) -> Target:
    config = {
        "bucket": bucket,
        "endpoint": "127.0.0.1:9",  # never reached: opening a client sends nothing
        "insecure": True,
        "region": "us-east-1",
        "accessKeySecret": {"name": "s3", "key": "a"},
        "secretKeySecret": {"name": "s3", "key": "s"},
    }
    return Target("s3", bucket, "wf/out.tgz", config)


def test_namespaces_reaching_a_bucket_with_the_same_credentials_share_one_driver() -> None:
    secrets = {"s3": {"a": b"key", "s": b"secret"}}
    built: list[Driver] = []

    def count(driver: Driver) -> Driver:
        built.append(driver)
        return driver

    factory = DriverFactory(lambda ns, name: secrets.get(name), StorageSettings(), decorate=count)
    drivers = [factory.open(_s3("b"), f"ns-{i}") for i in range(12)]
    assert all(d is drivers[0] for d in drivers)
    assert len(built) == 1


def test_the_same_bucket_with_other_credentials_gets_its_own_driver() -> None:
    by_namespace = {
        "ns-1": {"a": b"key-1", "s": b"secret"},
        "ns-2": {"a": b"key-1", "s": b"another-secret"},  # the same key id, another secret
        "ns-3": {"a": b"key-3", "s": b"secret"},
    }
    factory = DriverFactory(lambda ns, name: by_namespace[ns], StorageSettings())
    drivers = [factory.open(_s3("b"), ns) for ns in by_namespace]
    assert len({id(d) for d in drivers}) == 3
    assert factory.open(_s3("b"), "ns-2") is drivers[1]
    assert factory.open(_s3("c"), "ns-1") is not drivers[0]
