"""ArtifactGCPolicies are watched, not cached: a policy created, edited or deleted
applies to the namespace's workflows at once, though nothing else happens to them and
the lookup cache would hold the old policy for an hour."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import KubeTestServer, ManualClock
from tests.gc.argo import Argo, Art
from tests.gc.conftest import NS, keys, put, reads_of
from tests.gc.running import eventually, running

HOUR = 3600.0


def test_a_policy_created_after_the_workflow_completed_deletes_its_artifacts_at_once(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "wf/out", "wf/dir/a", "other/keep")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")])
    argo.finish(NS, "wf", "Succeeded", clock())
    controller = make_controller(lookup_ttl=HOUR)
    with running(controller):
        eventually(
            lambda: controller.metrics.value("argosy_gc_reconciles_total") >= 1,
            what="a first pass under no policy (the cluster default: Never)",
        )
        assert len(keys(team)) == 3
        argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
        eventually(lambda: keys(team) == ["other/keep"], what="the artifacts to go")


def test_a_policy_edit_and_its_deletion_apply_to_planning_at_once(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion", "dryRun": True})
    put(team, "a/out", "b/out")
    argo.submit(NS, "a", [Art("out", "a/out")])
    argo.finish(NS, "a", "Succeeded", clock())
    argo.submit(NS, "b", [Art("out", "b/out")], strategy="OnWorkflowCompletion")
    argo.finish(NS, "b", "Succeeded", clock())
    controller = make_controller(lookup_ttl=HOUR)
    with running(controller):
        eventually(
            lambda: controller.metrics.value("argosy_gc_reconciles_total") >= 2,
            what="a pass in the policy's dry run",
        )
        assert keys(team) == ["a/out", "b/out"]
        # the dry run is lifted: both go, a by the policy, b by its own strategy
        argo.policy(NS, {"strategy": "Never", "dryRun": False})
        eventually(lambda: keys(team) == ["a/out"], what="b's artifacts to go")

        # the policy goes; the cluster default (Never) keeps a's artifact
        client.CustomObjectsApi(argo.custom.api_client).delete_namespaced_custom_object(
            "argosy.io", "v1alpha1", NS, "artifactgcpolicies", "default"
        )
        eventually(lambda: controller.policies.get(NS) is None, what="the deletion to be seen")
        assert keys(team) == ["a/out"]


@pytest.mark.usefixtures("on_completion")
def test_while_the_policy_watch_is_open_deletions_take_its_copy_and_read_nothing(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    controller = make_controller(lookup_ttl=HOUR)
    with running(controller):
        eventually(controller.policies.live, what="the policy watch")
        server.clear_requests()
        for name in ("a", "b", "c"):
            put(team, f"{name}/out")
            argo.submit(NS, name, [Art("out", f"{name}/out")])
            argo.finish(NS, name, "Succeeded", clock())
        eventually(lambda: keys(team) == [], what="the artifacts to go")
    assert reads_of(server, "/artifactgcpolicies/default") == 0


@pytest.mark.usefixtures("on_completion")
def test_while_the_policy_watch_is_down_an_edit_that_keeps_artifacts_is_read_before_deleting(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    controller = make_controller(lookup_ttl=HOUR)
    with running(controller):
        eventually(controller.policies.live, what="the policy watch")
        server.inject_fault("GET", "/artifactgcpolicies$", 500, times=None, watch=True)
        server.close_watches()
        eventually(lambda: not controller.policies.live(), what="the policy watch to drop")
        argo.policy(NS, {"strategy": "Never"})  # unseen by the watch
        assert controller.policies.get(NS) is not None
        before = controller.metrics.value("argosy_gc_reconciles_total")
        argo.finish(NS, "wf", "Succeeded", clock())
        eventually(
            lambda: (
                controller.metrics.value("argosy_gc_reconciles_total") > before
                and len(controller.queue) == 0
                and controller.queue.idle
            ),
            what="the workflow's reconcile to end",
        )
        assert keys(team) == ["wf/out"]
        assert reads_of(server, "/artifactgcpolicies/default") >= 1
        server.clear_faults()
