"""OnWorkflowDeletion holds the workflow with Argosy's finalizer until its artifacts are
gone, expiry deletes while the workflow stays, and a broken bucket never wedges a
deletion: after the deadline the finalizer goes anyway, with a Warning and the leaks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.gc.settings import FinalizerSettings
from argosy.testing.kube.api import ManualClock
from tests.conftest import free_port
from tests.gc.argo import ARGO_FINALIZER, FINALIZER, Argo, Art, repository_entry
from tests.gc.conftest import NS, keys, put


def test_deleting_a_workflow_deletes_its_artifacts_then_drops_the_finalizer_then_it_is_gone(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "wf/out", "wf/dir/a", "wf/dir/b", "wf/kept")
    argo.submit(
        NS,
        "wf",
        [Art("out", "wf/out"), Art("dir", "wf/dir"), Art("kept", "wf/kept", strategy="Never")],
        strategy="OnWorkflowDeletion",
    )
    controller = make_controller()

    first = controller.run_once()
    assert first.finalizers == {"added": 1}
    assert argo.finalizers(NS, "wf") == [FINALIZER]
    argo.finish(NS, "wf", "Succeeded", clock())
    controller.run_once()
    assert len(keys(team)) == 4  # completion is not deletion

    argo.delete(NS, "wf")
    assert argo.get(NS, "wf") is not None  # held by the finalizer
    second = controller.run_once()

    assert (second.artifacts, second.objects, second.finalizers) == (2, 3, {"removed": 1})
    assert argo.get(NS, "wf") is None
    assert keys(team) == ["wf/kept"]


def test_argos_own_finalizer_is_never_touched(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "wf/out")
    argo.submit(
        NS, "wf", [Art("out", "wf/out")], strategy="OnWorkflowDeletion", argo_finalizer=True
    )
    controller = make_controller()
    controller.run_once()
    assert argo.finalizers(NS, "wf") == [ARGO_FINALIZER, FINALIZER]

    argo.delete(NS, "wf")
    controller.run_once()

    assert keys(team) == []
    assert argo.finalizers(NS, "wf") == [ARGO_FINALIZER]
    argo.drop_argo_finalizer(NS, "wf")
    assert argo.get(NS, "wf") is None


def test_the_finalizer_is_added_while_running_when_templates_or_the_policy_ask_for_deletion(
    argo: Argo, team: Driver, make_controller: Callable[..., Controller]
) -> None:
    argo.submit(
        NS,
        "by-template",
        templates=[
            {
                "name": "main",
                "outputs": {
                    "artifacts": [
                        {
                            "name": "out",
                            "path": "/tmp/out",
                            "artifactGC": {"strategy": "OnWorkflowDeletion"},
                        }
                    ]
                },
            }
        ],
    )
    argo.submit(NS, "plain")
    argo.policy("team-b", {"strategy": "OnWorkflowDeletion"})
    argo.submit("team-b", "by-policy")

    make_controller().run_once()

    assert argo.finalizers(NS, "by-template") == [FINALIZER]
    assert argo.finalizers(NS, "plain") == []
    assert argo.finalizers("team-b", "by-policy") == [FINALIZER]


def test_expired_artifacts_are_deleted_while_the_workflow_stays(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowDeletion", "expireAfter": "2h"})
    put(team, "wf/out", "wf/never")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("never", "wf/never", strategy="Never")])
    controller = make_controller()
    controller.run_once()
    argo.finish(NS, "wf", "Failed", clock())

    clock.advance(seconds=2 * 3600 - 1)
    assert controller.run_once().artifacts == 0
    assert keys(team) == ["wf/never", "wf/out"]

    clock.advance(seconds=1)
    expired = controller.run_once()

    assert expired.artifacts == 1
    assert keys(team) == ["wf/never"]
    # nothing left for deletion to do: the finalizer is dropped and the workflow stays
    assert expired.finalizers == {"removed": 1}
    assert argo.get(NS, "wf") is not None and argo.finalizers(NS, "wf") == []


def test_a_storage_outage_is_retried_and_after_the_deadline_the_finalizer_goes_with_a_warning(
    argo: Argo, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    argo.secret(NS)
    argo.repositories(NS, {"default": repository_entry("gone-bucket", dead)})
    argo.submit(
        NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")], strategy="OnWorkflowDeletion"
    )
    controller = make_controller(finalizer=FinalizerSettings(max_attempts=10))
    controller.run_once()
    argo.finish(NS, "wf", "Succeeded", clock())
    argo.delete(NS, "wf")

    first = controller.run_once()
    assert first.failed and {f.cause for _, f in first.failures} == {"EndpointUnreachable"}
    assert argo.finalizers(NS, "wf") == [FINALIZER]
    assert argo.record(NS, "wf")["attempts"] == 1
    clock.advance(seconds=600)
    assert controller.run_once().failed
    assert argo.record(NS, "wf")["attempts"] == 2

    clock.advance(seconds=3000)  # an hour after the deletion
    last = controller.run_once()

    assert last.failed and last.finalizers == {"forced": 1}
    assert argo.get(NS, "wf") is None
    events = argo.events(NS, "wf")
    assert {e["type"] for e in events} == {"Warning"}
    # one event per cause per 10 minutes, not one per retry
    assert sorted(e["reason"] for e in events) == ["ArtifactGCEndpointUnreachable"] * 3 + [
        "ArtifactGCFinalizerForced"
    ]
    forced = next(e["message"] for e in events if e["reason"] == "ArtifactGCFinalizerForced")
    assert "after 3 failed attempt(s)" in forced
    assert (
        "s3://gone-bucket/wf/out and s3://gone-bucket/wf/out/: ? object(s) "
        "(EndpointUnreachable)" in forced
    )
    assert "s3://gone-bucket/wf/dir and s3://gone-bucket/wf/dir/" in forced


def test_after_the_last_allowed_attempt_the_finalizer_goes_even_before_the_deadline(
    argo: Argo, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.secret(NS)
    argo.repositories(NS, {"default": repository_entry("b", f"http://127.0.0.1:{free_port()}")})
    argo.submit(NS, "wf", [Art("out", "wf/out")], strategy="OnWorkflowDeletion")
    controller = make_controller(finalizer=FinalizerSettings(max_attempts=2))
    controller.run_once()
    argo.delete(NS, "wf")

    assert controller.run_once().finalizers == {}
    assert controller.run_once().finalizers == {"forced": 1}
    assert argo.get(NS, "wf") is None


@pytest.mark.usefixtures("on_completion")
def test_a_missing_bucket_and_a_missing_repository_are_reported_as_events(
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    moto_endpoint: str,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "fine/out")
    argo.submit(NS, "fine", [Art("out", "fine/out")])
    argo.submit(
        NS,
        "nobucket",
        [Art("out", "x/out")],
        repository=repository_entry("no-such-bucket-here", moto_endpoint),
    )
    argo.policy("team-b", {"strategy": "OnWorkflowCompletion"})
    argo.submit("team-b", "norepo", [Art("out", "y/out")])
    for ns, name in ((NS, "fine"), (NS, "nobucket"), ("team-b", "norepo")):
        argo.finish(ns, name, "Succeeded", clock())

    summary = make_controller().run_once()

    assert summary.artifacts == 1 and keys(team) == []
    assert sorted(f.cause for _, f in summary.failures) == ["NoSuchBucket", "RepositoryMissing"]
    assert [e["reason"] for e in argo.events(NS, "nobucket")] == ["ArtifactGCNoSuchBucket"]
    [event] = argo.events("team-b", "norepo")
    assert event["reason"] == "ArtifactGCRepositoryMissing"
    assert "ConfigMap team-b/artifact-repositories not found" in event["message"]


def test_a_secret_that_is_missing_is_named_in_the_event(
    argo: Argo,
    bucket: tuple[str, Driver],
    clock: ManualClock,
    moto_endpoint: str,
    make_controller: Callable[..., Controller],
) -> None:
    argo.repositories(
        NS, {"default": repository_entry(bucket[0], moto_endpoint, secret="not-there")}
    )
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert [f.cause for _, f in summary.failures] == ["SecretNotFound"]
    [event] = argo.events(NS, "wf")
    assert "Secret team-a/not-there not found" in event["message"]
