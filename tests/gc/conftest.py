"""Fixtures for the GC's scenario tests: a Kubernetes test API server with a hand-moved
clock, the official client, moto for S3, and a controller built the way `argosy gc`
builds it, with short periods instead of sleeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from argosy.argo.kube import Kube
from argosy.artifacts.protocol import Driver
from argosy.artifacts.retry import RetryPolicy
from argosy.gc.controller import Controller
from argosy.gc.deleter import DeleteSettings
from argosy.gc.settings import GcSettings, LeaseSettings, WatchSettings
from argosy.gc.storage import StorageSettings
from argosy.testing.kube.api import KubeTestServer, ManualClock
from tests.conftest import s3_driver, unique_bucket
from tests.gc.argo import ACCESS, SECRET, Argo, repository_entry

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NS = "team-a"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[KubeTestServer]:
    with KubeTestServer(
        clock=clock, namespaces=("default", NS, "team-b", "argosy-system")
    ) as running:
        yield running


@pytest.fixture
def api(server: KubeTestServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    path = server.write_kubeconfig(tmp_path / "kubeconfig")
    with config.new_client_from_config(config_file=str(path)) as api_client:
        yield api_client


@pytest.fixture
def argo(api: client.ApiClient) -> Argo:
    return Argo(api)


@pytest.fixture
def kube(server: KubeTestServer) -> Iterator[Kube]:
    connected = Kube.from_configuration(server.client_configuration(), request_timeout=10)
    yield connected
    connected.close()


def gc_settings(**overrides: Any) -> GcSettings:
    """Production defaults, with periods shrunk to test size and no retry sleeps."""
    base = GcSettings(
        workers=2,
        lookup_ttl=0.0,
        failure_backoff=0.05,
        failure_backoff_cap=0.2,
        watch=WatchSettings(watch_timeout=5, resync=30.0, backoff_base=0.01, backoff_cap=0.05),
        lease=LeaseSettings(
            namespace="argosy-system", lease_duration=15, renew_deadline=10, retry_period=0.05
        ),
        delete=DeleteSettings(retry=RetryPolicy(attempts=2, base=0.01, cap=0.02)),
        storage=StorageSettings(connect_timeout=1.0, read_timeout=10.0),
    )
    return replace(base, **overrides)


@pytest.fixture
def make_controller(kube: Kube, clock: ManualClock) -> Iterator[Callable[..., Controller]]:
    made: list[Controller] = []

    def make(
        *,
        kube_client: Kube | None = None,
        sink: Any = None,
        decorate_driver: Callable[[Driver], Driver] = lambda d: d,
        **overrides: Any,
    ) -> Controller:
        controller = Controller(
            kube_client or kube,
            gc_settings(**overrides),
            clock=clock,
            sink=sink,
            decorate_driver=decorate_driver,
        )
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.close()


@pytest.fixture
def bucket(moto_endpoint: str) -> tuple[str, Driver]:
    name = unique_bucket("gc")
    return name, s3_driver(moto_endpoint, ACCESS, SECRET, name)


@pytest.fixture
def team(argo: Argo, bucket: tuple[str, Driver], moto_endpoint: str) -> Driver:
    """Namespace team-a with its S3 credentials and its artifact-repositories ConfigMap."""
    argo.secret(NS)
    argo.repositories(
        NS, {"default": repository_entry(bucket[0], moto_endpoint)}, default="default"
    )
    return bucket[1]


@pytest.fixture
def on_completion(argo: Argo, team: Driver) -> None:
    """team-a's workflows are collected when they complete (its ArtifactGCPolicy)."""
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})


@pytest.fixture
def runs(argo: Argo, bucket: tuple[str, Driver], moto_endpoint: str) -> Driver:
    """team-a's repository writing under runs/: a folder of its own in the bucket."""
    argo.secret(NS)
    argo.repositories(
        NS,
        {
            "default": repository_entry(
                bucket[0], moto_endpoint, key_format="runs/{{workflow.name}}/{{pod.name}}"
            )
        },
        default="default",
    )
    return bucket[1]


def change_workflow(
    server: KubeTestServer, namespace: str, name: str, change: Callable[[Any], Any]
) -> None:
    """Change a workflow in the test API's store directly, as no client could (a
    finalizer stripped while the watch is down, a burst of completions)."""
    spec = server.registry.resolve("argoproj.io", "v1alpha1", "workflows", namespaced=True)
    server.store.patch(spec, namespace, name, change)


def reads_of(server: KubeTestServer, path_end: str) -> int:
    """GET requests the test API answered whose path ends with `path_end`."""
    return sum(1 for r in server.requests if r.method == "GET" and r.path.endswith(path_end))


def put(driver: Driver, *keys: str, size: int = 10, metadata: dict[str, str] | None = None) -> None:
    for key in keys:
        driver.put(key, b"x" * size, size=size, metadata=metadata or {})


def keys(driver: Driver, prefix: str = "") -> list[str]:
    from argosy.artifacts.tree import list_all

    return sorted(o.key for o in list_all(driver, prefix))
