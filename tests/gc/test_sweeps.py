"""Opt-in sweeps: stale multipart uploads are aborted, and objects Argosy wrote for a
workflow that is gone are deleted when their recorded strategy allows it. Never,
foreign objects and objects of live workflows stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from argosy.artifacts.protocol import Driver
from argosy.artifacts.provenance import Provenance
from argosy.gc.controller import Controller
from argosy.testing.kube.api import ManualClock
from tests.gc.argo import Argo
from tests.gc.conftest import NS, keys, put


def owned(uid: str, strategy: str, namespace: str = NS) -> dict[str, str]:
    return Provenance(uid, namespace, "some-workflow", strategy).metadata()


def test_orphans_of_deleted_workflows_are_swept_and_nothing_else(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    live = argo.submit(NS, "live")["metadata"]["uid"]
    put(team, "gone/deletion", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    put(team, "gone/completion", metadata=owned("uid-gone", "OnWorkflowCompletion"))
    put(team, "gone/never", metadata=owned("uid-gone", "Never"))
    put(team, "gone/success", metadata=owned("uid-gone", "OnWorkflowSuccess"))
    put(team, "gone/other-namespace", metadata=owned("uid-gone", "OnWorkflowDeletion", "team-b"))
    put(team, "live/out", metadata=owned(live, "OnWorkflowDeletion"))
    put(team, "foreign/file")
    argo.policy(NS, {"sweeps": {"orphansAfter": "1h"}})
    controller = make_controller()

    controller.run_once()  # the objects are minutes old: within the grace period
    assert len(keys(team)) == 7
    clock.set(clock().replace(year=2099))  # moto stamps real time; jump past it
    summary = controller.run_once()

    [report] = summary.sweeps
    assert (report.orphans_deleted, report.kept, report.errors) == (2, 5, [])
    assert keys(team) == [
        "foreign/file",
        "gone/never",
        "gone/other-namespace",
        "gone/success",
        "live/out",
    ]


def test_incomplete_uploads_older_than_the_limit_are_aborted(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    team.create_upload("wf/big", metadata={})
    [upload] = team.list_uploads("")
    argo.policy(NS, {"sweeps": {"incompleteUploadsAfter": "24h"}})
    controller = make_controller()
    clock.set(upload.initiated + timedelta(hours=23))  # moto stamps a fixed date

    controller.run_once()
    assert len(team.list_uploads("")) == 1
    clock.advance(seconds=3600)
    [report] = controller.run_once().sweeps

    assert report.uploads_aborted == 1 and team.list_uploads("") == []


def test_a_dry_run_sweep_only_reports(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "gone/out", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    argo.policy(NS, {"sweeps": {"orphansAfter": "1h"}})
    clock.set(clock().replace(year=2099))

    [report] = make_controller(dry_run=True).run_once().sweeps

    assert report.plan == [
        f"delete orphan s3://{team.bucket}/gone/out (workflow {NS}/some-workflow uid-gone is gone)"
    ]
    assert keys(team) == ["gone/out"]
