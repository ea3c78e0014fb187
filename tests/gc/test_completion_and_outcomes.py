"""Artifacts go in the first reconcile after their trigger, by the strategy the
precedence chain picks, and directories go whole, never their siblings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from argosy.artifacts.manifest import LEGACY_NAME
from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import KubeTestServer, ManualClock
from tests.gc.argo import Argo, Art
from tests.gc.conftest import NS, keys, put


@pytest.mark.usefixtures("on_completion")
def test_artifacts_are_deleted_in_the_first_reconcile_after_the_workflow_completes(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(
        team,
        "wf/pod/out.tgz",
        "wf/pod/main.log",
        "wf/pod/dir/a",
        "wf/pod/dir/sub/b",
        "wf/pod/dir.argosy-manifest.json",
        "wf/pod/dirx/c",
        "wf/pod/dirx.argosy-manifest.json",
        "wf/pod/dir.tgz",
        "other/keep",
    )
    argo.submit(
        NS,
        "wf",
        [
            Art("out", "wf/pod/out.tgz"),
            Art("main-logs", "wf/pod/main.log"),
            Art("dir", "wf/pod/dir"),
        ],
    )
    controller = make_controller()

    running = controller.run_once()
    assert (running.artifacts, running.failed) == (0, False)
    assert len(keys(team)) == 9

    argo.finish(NS, "wf", "Succeeded", clock())
    done = controller.run_once()

    # the directory went whole, its tree manifest beside it included; its siblings stayed
    assert (done.artifacts, done.objects, done.failed) == (3, 5, False)
    assert keys(team) == [
        "other/keep",
        "wf/pod/dir.tgz",
        "wf/pod/dirx.argosy-manifest.json",
        "wf/pod/dirx/c",
    ]
    record = argo.record(NS, "wf")
    assert (record["objects"], record["bytes"], len(record["done"])) == (5, 50, 3)
    assert record["deleted"] == ["wf-pod/out", "wf-pod/main-logs", "wf-pod/dir"]
    assert controller.run_once().artifacts == 0  # recorded as done: not listed again


@pytest.mark.usefixtures("on_completion")
def test_a_directory_in_the_older_layout_goes_with_the_manifest_under_it(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "wf/run1/a", f"wf/run1/{LEGACY_NAME}", "wf/run10/a", "wf/run10.argosy-manifest.json")
    argo.submit(NS, "wf", [Art("dir", "wf/run1")])
    controller = make_controller()
    argo.finish(NS, "wf", "Succeeded", clock())

    done = controller.run_once()

    assert (done.artifacts, done.objects, done.failed) == (1, 2, False)
    assert keys(team) == ["wf/run10.argosy-manifest.json", "wf/run10/a"]


def test_success_and_failure_strategies_pick_by_the_workflows_outcome(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowSuccess"})
    put(team, "ok/out", "bad/out", "bad/debug")
    argo.submit(NS, "ok", [Art("out", "ok/out")])
    argo.submit(
        NS, "bad", [Art("out", "bad/out"), Art("debug", "bad/debug", strategy="OnWorkflowFailure")]
    )
    argo.finish(NS, "ok", "Succeeded", clock())
    argo.finish(NS, "bad", "Failed", clock())

    make_controller().run_once()

    # ok succeeded: its OnWorkflowSuccess artifact goes; bad failed: its policy artifact
    # stays, and its own OnWorkflowFailure artifact goes
    assert keys(team) == ["bad/out"]


@pytest.mark.usefixtures("on_completion")
def test_the_artifacts_strategy_beats_the_workflows_which_beats_the_policy(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "a/never", "a/unset", "a/empty", "b/out", "b/own")
    argo.submit(
        NS,
        "a",
        [
            Art("never", "a/never", strategy="Never"),
            Art("unset", "a/unset"),
            Art("empty", "a/empty", strategy=""),
        ],
    )
    argo.submit(
        NS,
        "b",
        [Art("out", "b/out"), Art("own", "b/own", strategy="OnWorkflowCompletion")],
        strategy="Never",
    )
    for name in ("a", "b"):
        argo.finish(NS, name, "Succeeded", clock())

    make_controller().run_once()

    # an empty strategy is unset (the policy applies), not Never
    assert keys(team) == ["a/never", "b/out"]


def test_without_a_policy_the_cluster_default_keeps_everything(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert (summary.workflows, summary.artifacts) == (1, 0)
    assert keys(team) == ["wf/out"]


def test_a_policy_selector_limits_it_to_the_workflows_it_picks(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    argo.policy(
        NS, {"strategy": "OnWorkflowCompletion", "selector": {"matchLabels": {"gc": "yes"}}}
    )
    put(team, "picked/out", "other/out")
    argo.submit(NS, "picked", [Art("out", "picked/out")], labels={"gc": "yes"})
    argo.submit(NS, "other", [Art("out", "other/out")], labels={"gc": "no"})
    for name in ("picked", "other"):
        argo.finish(NS, name, "Succeeded", clock())

    make_controller().run_once()

    assert keys(team) == ["other/out"]


def test_an_artifact_naming_its_own_bucket_is_deleted_there(
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    moto_endpoint: str,
    make_controller: Callable[..., Controller],
) -> None:
    from tests.conftest import s3_driver, unique_bucket
    from tests.gc.argo import ACCESS, SECRET

    name = unique_bucket("own")
    own = s3_driver(moto_endpoint, ACCESS, SECRET, name)
    put(own, "x/out")
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    argo.submit(
        NS,
        "wf",
        [
            Art(
                "out",
                "x/out",
                bucket=name,
                extra={
                    "endpoint": moto_endpoint,
                    "accessKeySecret": {"name": "s3-creds", "key": "accesskey"},
                    "secretKeySecret": {"name": "s3-creds", "key": "secretkey"},
                },
            )
        ],
    )
    argo.finish(NS, "wf", "Failed", clock())

    assert make_controller().run_once().artifacts == 1
    assert keys(own) == []


@pytest.mark.usefixtures("on_completion")
def test_a_dry_run_writes_nothing_and_prints_the_plan(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "wf/out", "wf/dir/a", "del/out")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir/")])
    argo.submit(NS, "del", [Art("out", "del/out", strategy="OnWorkflowDeletion")])
    argo.finish(NS, "wf", "Succeeded", clock())
    lines: list[dict[str, object]] = []
    server.clear_requests()

    summary = make_controller(dry_run=True, sink=lines.append).run_once()

    assert {r.method for r in server.requests} == {"GET"}
    assert not summary.failed
    assert keys(team) == ["del/out", "wf/dir/a", "wf/out"]
    assert argo.finalizers(NS, "del") == [] and argo.record(NS, "wf") == {}
    deletes = sorted(
        (line["workflow"], line["artifact"], line["url"])
        for line in lines
        if line["action"] == "delete"
    )
    bucket = team.bucket
    assert deletes == [
        ("wf", "wf-pod/dir", f"s3://{bucket}/wf/dir/"),
        ("wf", "wf-pod/out", f"s3://{bucket}/wf/out"),
    ]
    assert [(line["workflow"], line["action"]) for line in lines if line["action"] != "delete"] == [
        ("del", "add-finalizer")
    ]


def test_a_policy_in_dry_run_deletes_nothing_in_its_namespace(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion", "dryRun": True})
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())
    lines: list[dict[str, object]] = []

    make_controller(sink=lines.append).run_once()

    assert keys(team) == ["wf/out"]
    assert [line["artifact"] for line in lines] == ["wf-pod/out"]


def test_a_bucket_busy_with_another_workflow_makes_the_next_wait_its_turn_in_the_same_pass(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    from dataclasses import replace

    from tests.gc.conftest import gc_settings

    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    for i in range(4):
        put(team, f"wf{i}/a", f"wf{i}/b")
        argo.submit(NS, f"wf{i}", [Art("a", f"wf{i}/a"), Art("b", f"wf{i}/b")])
        argo.finish(NS, f"wf{i}", "Succeeded", clock())
    one_lane = replace(gc_settings().delete, lanes_per_bucket=1)

    summary = make_controller(workers=4, delete=one_lane).run_once()

    assert (summary.artifacts, summary.failed) == (8, False)
    assert keys(team) == []


def test_an_oss_repository_gets_its_directory_artifacts_deleted_whole(
    argo: Argo, oss_server: Any, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, unique_bucket

    driver = oss_driver(oss_server.endpoint, unique_bucket("gc"))
    put(driver, "wf/dir/a", "wf/dir/sub/b", "wf/dir.tgz", "wf/out")
    argo.secret(NS, "oss-creds", access=OSS_ACCESS_KEY, secret=OSS_SECRET)
    argo.repositories(
        NS,
        {
            "default": {
                "oss": {
                    "bucket": driver.bucket,
                    "endpoint": oss_server.endpoint,
                    "accessKeySecret": {"name": "oss-creds", "key": "accesskey"},
                    "secretKeySecret": {"name": "oss-creds", "key": "secretkey"},
                }
            }
        },
    )
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    argo.submit(NS, "wf", [Art("dir", "wf/dir", kind="oss"), Art("out", "wf/out", kind="oss")])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert (summary.objects, summary.failed) == (3, False)
    assert keys(driver) == ["wf/dir.tgz"]
