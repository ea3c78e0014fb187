"""The main one-pass scenarios again, against kmock instead of our own test API, so the
controller is not tuned to one fake's quirks: completion, the deletion finalizer, the
way out after failed attempts, a dry run that writes nothing, and Never kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from argosy.argo.kube import Kube, KubeNotFound
from argosy.argo.resources import WORKFLOWS as WF
from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.gc.settings import FinalizerSettings
from tests.conftest import free_port
from tests.gc.argo import ACCESS, SECRET, Argo, Art, repository_entry
from tests.gc.conftest import gc_settings, keys, put
from tests.gc.kmock_server import KmockServer

NS = "team-k"
WORKFLOWS = "argoproj.io/v1alpha1/workflows"


@pytest.fixture
def fake() -> Iterator[KmockServer]:
    server = KmockServer().start()
    yield server
    server.stop()


@pytest.fixture
def kube(fake: KmockServer) -> Iterator[Kube]:
    connected = Kube.from_configuration(fake.configuration(), request_timeout=10)
    yield connected
    connected.close()


def controller(kube: Kube, **overrides: Any) -> Controller:
    # kmock has no PUT, so no Lease: one replica, as `argosy gc --no-leader-election`
    return Controller(kube, gc_settings(lease=None, **overrides), clock=lambda: datetime.now(UTC))


def repository(fake: KmockServer, bucket: str, endpoint: str) -> None:
    fake.secret(NS, "s3-creds", {"accesskey": ACCESS, "secretkey": SECRET})
    fake.put(
        "v1/configmaps",
        NS,
        "artifact-repositories",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"default": yaml.safe_dump(repository_entry(bucket, endpoint))},
        },
    )


def workflow(
    fake: KmockServer,
    name: str,
    artifacts: list[Art],
    *,
    phase: str = "Running",
    strategy: str | None = None,
) -> None:
    status = Argo._status(
        name,
        artifacts,
        phase,
        datetime.now(UTC) - timedelta(minutes=1) if phase != "Running" else None,
        None,
    )
    spec: dict[str, Any] = {"entrypoint": "main"}
    if strategy:
        spec["artifactGC"] = {"strategy": strategy}
    fake.put(
        WORKFLOWS,
        NS,
        name,
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": spec, "status": status},
    )


@pytest.fixture
def team(fake: KmockServer, bucket: tuple[str, Driver], moto_endpoint: str) -> Driver:
    repository(fake, bucket[0], moto_endpoint)
    return bucket[1]


def test_on_kmock_completed_workflows_lose_their_artifacts_and_never_stays(
    fake: KmockServer, kube: Kube, team: Driver
) -> None:
    fake.put(
        "argosy.io/v1alpha1/artifactgcpolicies",
        NS,
        "default",
        {
            "apiVersion": "argosy.io/v1alpha1",
            "kind": "ArtifactGCPolicy",
            "spec": {"strategy": "OnWorkflowCompletion"},
        },
    )
    put(team, "done/out", "done/dir/a", "done/never", "running/out", "foreign/x")
    workflow(
        fake,
        "done",
        [
            Art("out", "done/out"),
            Art("dir", "done/dir"),
            Art("never", "done/never", strategy="Never"),
        ],
        phase="Succeeded",
    )
    workflow(fake, "running", [Art("out", "running/out")])

    summary = controller(kube).run_once()

    assert (summary.artifacts, summary.failed) == (2, False)
    assert keys(team) == ["done/never", "foreign/x", "running/out"]
    assert "argosy.io/artifact-gc" in kube.get(WF, NS, "done")["metadata"]["annotations"]


def test_on_kmock_the_deletion_finalizer_holds_the_workflow_until_its_artifacts_are_gone(
    fake: KmockServer, kube: Kube, team: Driver
) -> None:
    from kubernetes import client

    put(team, "wf/out")
    workflow(fake, "wf", [Art("out", "wf/out")], strategy="OnWorkflowDeletion")
    gc = controller(kube)
    gc.run_once()
    assert kube.get(WF, NS, "wf")["metadata"]["finalizers"] == ["argosy.io/artifact-gc"]
    client.CustomObjectsApi(client.ApiClient(kube.configuration)).delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", NS, "workflows", "wf"
    )
    assert kube.get(WF, NS, "wf")["metadata"]["deletionTimestamp"]

    summary = gc.run_once()

    assert summary.finalizers == {"removed": 1} and keys(team) == []
    with pytest.raises(KubeNotFound):
        kube.get(WF, NS, "wf")


def test_on_kmock_the_finalizer_goes_after_the_last_allowed_attempt(
    fake: KmockServer, kube: Kube
) -> None:
    from kubernetes import client

    repository(fake, "b", f"http://127.0.0.1:{free_port()}")
    workflow(fake, "wf", [Art("out", "wf/out")], strategy="OnWorkflowDeletion")
    gc = controller(kube, finalizer=FinalizerSettings(max_attempts=2))
    gc.run_once()
    client.CustomObjectsApi(client.ApiClient(kube.configuration)).delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", NS, "workflows", "wf"
    )

    assert gc.run_once().failed
    last = gc.run_once()

    assert last.finalizers == {"forced": 1}
    with pytest.raises(KubeNotFound):
        kube.get(WF, NS, "wf")


def test_on_kmock_a_dry_run_sends_only_reads(fake: KmockServer, kube: Kube, team: Driver) -> None:
    fake.put(
        "argosy.io/v1alpha1/artifactgcpolicies",
        NS,
        "default",
        {
            "apiVersion": "argosy.io/v1alpha1",
            "kind": "ArtifactGCPolicy",
            "spec": {"strategy": "OnWorkflowCompletion"},
        },
    )
    put(team, "wf/out")
    workflow(fake, "wf", [Art("out", "wf/out")], phase="Failed")
    workflow(fake, "del", [], strategy="OnWorkflowDeletion")
    lines: list[dict[str, Any]] = []

    Controller(
        kube,
        gc_settings(lease=None, dry_run=True),
        sink=lines.append,
        clock=lambda: datetime.now(UTC),
    ).run_once()

    assert set(fake.methods()) == {"GET"}
    assert keys(team) == ["wf/out"]
    assert sorted(line["action"] for line in lines) == ["add-finalizer", "delete"]
