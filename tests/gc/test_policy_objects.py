"""The ArtifactGCPolicy object: accepted or rejected with a clear status, a rejected
edit keeps the previous policy in force, and nothing a policy keeps is deleted."""

from __future__ import annotations

from collections.abc import Callable

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import KubeTestServer, ManualClock
from tests.gc.argo import Argo, Art
from tests.gc.conftest import NS, keys, put


def accepted(argo: Argo) -> dict[str, str]:
    [condition] = argo.get_policy(NS)["status"]["conditions"]
    return condition


def test_a_valid_policy_is_marked_accepted_with_what_it_says(
    argo: Argo, team: Driver, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion", "expireAfter": "720h"})
    argo.submit(NS, "wf")

    make_controller().run_once()

    condition = accepted(argo)
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Accepted",
        "True",
        "Valid",
    )
    assert condition["message"] == "accepted: strategy OnWorkflowCompletion, expireAfter 720h"
    assert argo.get_policy(NS)["status"]["acceptedSpec"]["expireAfter"] == "720h"


def test_a_rejected_edit_keeps_the_previous_policy_in_force(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    controller = make_controller()
    controller.run_once()
    argo.policy(NS, {"strategy": "WhenIFeelLikeIt"})
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    # a new controller too: the accepted spec survives in the policy's status
    make_controller().run_once()

    condition = accepted(argo)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
    assert "unknown strategy 'WhenIFeelLikeIt'" in condition["message"]
    assert "the previously accepted spec stays in force" in condition["message"]
    assert keys(team) == []
    [event] = [e for e in argo.events(NS) if e["object"] == "default"]
    assert (event["reason"], event["type"]) == ("InvalidPolicy", "Warning")


def test_a_negative_duration_is_rejected_and_with_no_previous_policy_nothing_is_deleted(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion", "expireAfter": "-1h"})
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert not summary.failed and keys(team) == ["wf/out"]
    condition = accepted(argo)
    assert condition["status"] == "False"
    assert "spec.expireAfter: a duration cannot be negative: '-1h'" in condition["message"]
    assert "no policy applies (Never)" in condition["message"]


def test_an_unchanged_policy_status_is_not_written_again(
    server: object, argo: Argo, team: Driver, make_controller: Callable[..., Controller]
) -> None:
    from argosy.testing.kube.api import KubeTestServer

    assert isinstance(server, KubeTestServer)
    argo.policy(NS, {"strategy": "Never"})
    controller = make_controller()
    controller.run_once()
    server.clear_requests()

    controller.run_once()

    writes = [r.path for r in server.requests if r.method != "GET"]
    assert writes and all("/leases/" in path for path in writes)  # only the Lease


def test_an_edit_that_keeps_artifacts_holds_at_once_not_when_the_cached_copy_expires(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    controller = make_controller(lookup_ttl=3600.0)
    controller.run_once()  # the policy is read and cached for an hour
    argo.policy(NS, {"strategy": "Never"})
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    controller.run_once()

    assert keys(team) == ["wf/out"]
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})  # and back: deleted once due
    controller.policies.invalidate()
    controller.run_once()
    assert keys(team) == []


def test_when_the_policy_cannot_be_read_afresh_nothing_is_deleted_and_it_is_tried_again(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    controller = make_controller(lookup_ttl=3600.0)
    controller.run_once()
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())
    server.inject_fault("GET", "/artifactgcpolicies/default", 503, times=None)

    controller.run_once()

    assert keys(team) == ["wf/out"]
    assert any(
        r.path.endswith("/artifactgcpolicies/default") and r.method == "GET" and r.status == 503
        for r in server.requests
    )
    server.clear_faults()
    controller.run_once()
    assert keys(team) == []
