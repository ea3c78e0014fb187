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
    argo: Argo,
    runs: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    live = argo.submit(NS, "live")["metadata"]["uid"]
    put(runs, "runs/gone/deletion", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    put(runs, "runs/gone/completion", metadata=owned("uid-gone", "OnWorkflowCompletion"))
    put(runs, "runs/gone/never", metadata=owned("uid-gone", "Never"))
    put(runs, "runs/gone/success", metadata=owned("uid-gone", "OnWorkflowSuccess"))
    put(
        runs,
        "runs/gone/other-namespace",
        metadata=owned("uid-gone", "OnWorkflowDeletion", "team-b"),
    )
    put(runs, "runs/live/out", metadata=owned(live, "OnWorkflowDeletion"))
    put(runs, "runs/foreign/file")
    put(runs, "outside/file", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    argo.policy(NS, {"sweeps": {"orphansAfter": "1h"}})
    controller = make_controller()

    controller.run_once()  # the objects are minutes old: within the grace period
    assert len(keys(runs)) == 8
    clock.set(clock().replace(year=2099))  # moto stamps real time; jump past it
    summary = controller.run_once()

    [report] = summary.sweeps
    assert (report.orphans_deleted, report.kept, report.errors) == (2, 5, [])
    assert keys(runs) == [
        "outside/file",
        "runs/foreign/file",
        "runs/gone/never",
        "runs/gone/other-namespace",
        "runs/gone/success",
        "runs/live/out",
    ]


def test_only_stale_uploads_in_the_folder_of_a_finished_workflow_are_aborted(
    argo: Argo,
    runs: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    argo.submit(NS, "done")
    argo.finish(NS, "done", "Succeeded", clock())
    argo.submit(NS, "busy")  # still running: its pods may be uploading
    for key in (
        "runs/done/pod/big",
        "runs/busy/pod/big",
        "runs/gone/pod/big",
        "elsewhere/big",
        "runs/done-2/pod/big",
    ):
        runs.create_upload(key, metadata={})
    started = min(u.initiated for u in runs.list_uploads(""))
    argo.policy(NS, {"sweeps": {"incompleteUploadsAfter": "24h"}})
    controller = make_controller()
    clock.set(started + timedelta(hours=23))  # moto stamps a fixed date

    controller.run_once()
    assert len(runs.list_uploads("")) == 5
    clock.advance(seconds=3600)
    [report] = controller.run_once().sweeps

    assert report.uploads_aborted == 1 and report.errors == []
    assert sorted(u.key for u in runs.list_uploads("")) == [
        "elsewhere/big",
        "runs/busy/pod/big",
        "runs/done-2/pod/big",
        "runs/gone/pod/big",
    ]


def test_a_repository_whose_keys_have_no_common_folder_is_not_swept_without_a_prefix(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.submit(NS, "wf")
    argo.finish(NS, "wf", "Succeeded", clock())
    team.create_upload("wf/pod/big", metadata={})
    team.create_upload("another-tool/upload", metadata={})
    put(team, "gone/out", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    argo.policy(NS, {"sweeps": {"incompleteUploadsAfter": "1h", "orphansAfter": "1h"}})
    clock.set(clock().replace(year=2099))

    [report] = make_controller().run_once().sweeps

    assert "set spec.sweeps.prefix" in report.errors[0]
    assert (report.uploads_aborted, report.orphans_deleted) == (0, 0)
    assert len(team.list_uploads("")) == 2 and keys(team) == ["gone/out"]
    [swept] = [c for c in argo.get_policy(NS)["status"]["conditions"] if c["type"] == "Swept"]
    assert (swept["status"], swept["reason"]) == ("False", "NoKeyPrefix")
    assert "set spec.sweeps.prefix" in swept["message"]


def test_an_explicit_prefix_confines_the_sweeps_to_it(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.submit(NS, "wf")
    argo.finish(NS, "wf", "Succeeded", clock())
    team.create_upload("wf/pod/big", metadata={})
    team.create_upload("another-tool/upload", metadata={})
    put(team, "wf2/out", "other/out", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    argo.policy(
        NS, {"sweeps": {"incompleteUploadsAfter": "1h", "orphansAfter": "1h", "prefix": "wf"}}
    )
    clock.set(clock().replace(year=2099))

    [report] = make_controller().run_once().sweeps

    assert (report.uploads_aborted, report.orphans_deleted, report.errors) == (1, 0, [])
    assert [u.key for u in team.list_uploads("")] == ["another-tool/upload"]
    assert keys(team) == ["other/out", "wf2/out"]  # wf2/ is not under wf/
    [swept] = [c for c in argo.get_policy(NS)["status"]["conditions"] if c["type"] == "Swept"]
    assert swept["status"] == "True"


def test_a_dry_run_sweep_only_reports(
    argo: Argo,
    runs: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(runs, "runs/gone/out", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    argo.policy(NS, {"sweeps": {"orphansAfter": "1h"}})
    clock.set(clock().replace(year=2099))

    [report] = make_controller(dry_run=True).run_once().sweeps

    assert report.plan == [
        f"delete orphan s3://{runs.bucket}/runs/gone/out (workflow {NS}/some-workflow uid-gone "
        "is gone)"
    ]
    assert keys(runs) == ["runs/gone/out"]


def test_a_repository_entry_nested_too_deeply_is_reported_and_the_others_are_swept(
    argo: Argo,
    bucket: tuple[str, Driver],
    moto_endpoint: str,
    runs: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    from kubernetes import client

    argo.core.patch_namespaced_config_map(
        "artifact-repositories",
        NS,
        client.V1ConfigMap(data={"deep": "[" * 10_000 + "]" * 10_000}),
    )
    put(runs, "runs/gone/out", metadata=owned("uid-gone", "OnWorkflowDeletion"))
    argo.policy(NS, {"sweeps": {"orphansAfter": "1h"}})
    clock.set(clock().replace(year=2099))

    reports = {r.repository: r for r in make_controller().run_once().sweeps}

    deep = reports[f"{NS}/artifact-repositories[deep]"]
    assert deep.errors == [
        f"{NS}/artifact-repositories[deep]: no s3/oss/local repository with a bucket"
    ]
    [default] = [r for name, r in reports.items() if name.endswith("/runs/")]
    assert default.orphans_deleted == 1
    assert keys(runs) == []
