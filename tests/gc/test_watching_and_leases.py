"""The long-running controller: it reacts to watch events, relists when its watch
expires, misses nothing across a restart, and with two replicas only the one holding the
Lease ever deletes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import KubeTestServer, ManualClock
from tests.gc.argo import FINALIZER, Argo, Art
from tests.gc.conftest import NS, change_workflow, gc_settings, keys, put
from tests.gc.running import DeleteLog, eventually, kube_as, running


@pytest.mark.usefixtures("on_completion")
def test_a_running_controller_deletes_as_soon_as_the_watch_says_a_workflow_completed(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    put(team, "wf/out", "wf/dir/a")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")])
    controller = make_controller()
    with running(controller):
        assert len(keys(team)) == 2
        argo.finish(NS, "wf", "Succeeded", clock())
        eventually(lambda: keys(team) == [], what="the artifacts to go")
    assert controller.metrics.value("argosy_gc_objects_deleted_total") == 2
    assert "argosy_gc_lag_seconds_count 2" in controller.metrics.render()


@pytest.mark.usefixtures("on_completion")
def test_an_expired_watch_is_followed_by_a_relist_and_nothing_is_missed(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "a/out", "b/out")
    argo.submit(NS, "a", [Art("out", "a/out")])
    argo.submit(NS, "b", [Art("out", "b/out")])
    controller = make_controller()
    with running(controller):
        eventually(lambda: server.open_watches == 2, what="the watches (workflows, policies)")
        server.inject_fault("GET", "/workflows", 500, times=2, watch=True)
        server.close_watches()  # reconnect: two failures, then a watch from the version
        argo.finish(NS, "a", "Succeeded", clock())
        eventually(lambda: keys(team) == ["b/out"], what="a's artifacts to go")

        # the watch is down while b completes, and that history is compacted away: the
        # version the informer resumes from is too old (410 Gone), so it lists again
        server.inject_fault("GET", "/workflows", 500, times=None, watch=True)
        server.close_watches()
        argo.finish(NS, "b", "Failed", clock())
        server.compact()
        server.clear_faults()
        eventually(lambda: keys(team) == [], what="b's artifacts to go")
    restarts = controller.metrics.render()
    assert 'argosy_gc_watch_restarts_total{reason="error",resource="workflows"}' in restarts
    assert 'argosy_gc_watch_restarts_total{reason="gone",resource="workflows"} 1' in restarts


@pytest.mark.usefixtures("on_completion")
def test_a_controller_restarted_midway_misses_nothing(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "one/out", "two/out", "three/out", "four/out")
    argo.submit(NS, "one", [Art("out", "one/out")])
    argo.submit(NS, "two", [Art("out", "two/out")])
    argo.submit(NS, "three", [Art("out", "three/out")], strategy="OnWorkflowDeletion")
    first = make_controller()
    with running(first):
        argo.finish(NS, "one", "Succeeded", clock())
        eventually(lambda: "one/out" not in keys(team), what="one's artifacts to go")
        eventually(lambda: argo.finalizers(NS, "three") == [FINALIZER], what="the finalizer")

    # while no controller runs: two completes, three is deleted, four comes and completes
    argo.finish(NS, "two", "Failed", clock())
    argo.delete(NS, "three")
    argo.submit(NS, "four", [Art("out", "four/out")])
    argo.finish(NS, "four", "Succeeded", clock())
    server.compact()

    with running(make_controller()):
        eventually(lambda: keys(team) == [], what="every artifact to go")
        eventually(lambda: argo.get(NS, "three") is None, what="three to be gone")


@pytest.mark.usefixtures("on_completion")
def test_two_controllers_at_once_never_both_delete_and_the_other_takes_over(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    deletes = DeleteLog()
    base = gc_settings().lease
    assert base is not None
    a = make_controller(
        lease=replace(base, identity="replica-a"), decorate_driver=deletes.decorator("a")
    )
    kube_b = kube_as(server, "token-b", "replica-b")
    b = make_controller(
        kube_client=kube_b,
        lease=replace(base, identity="replica-b"),
        decorate_driver=deletes.decorator("b"),
    )
    with running(a), running(b):
        eventually(lambda: a.fence() != b.fence(), what="one leader")
        leader, follower = ("a", "b") if a.fence() else ("b", "a")
        for i in range(4):
            put(team, f"wf{i}/out", f"wf{i}/dir/x")
            argo.submit(NS, f"wf{i}", [Art("out", f"wf{i}/out"), Art("dir", f"wf{i}/dir")])
            argo.finish(NS, f"wf{i}", "Succeeded", clock())
        eventually(lambda: keys(team) == [], what="the first artifacts to go")
        # a delete is logged once its call returns, a moment after the key is gone
        eventually(lambda: len(deletes.by(leader)) == 8, what="the leader's deletes logged")
        assert deletes.by(follower) == []

        # the leader can no longer renew; once the Lease is older than its duration by
        # the follower's clock, the follower takes over, and the old leader has stopped
        holder = {"a": "argosy-test", "b": "replica-b"}[leader]
        server.authorizer = lambda r: (
            not (r.user == holder and r.resource == "leases" and r.verb != "get")
        )
        clock.advance(seconds=16)
        old, new = (a, b) if leader == "a" else (b, a)
        assert not old.fence()
        eventually(new.fence, what="the follower to take the Lease")
        for i in range(4, 7):
            put(team, f"wf{i}/out")
            argo.submit(NS, f"wf{i}", [Art("out", f"wf{i}/out")])
            argo.finish(NS, f"wf{i}", "Succeeded", clock())
        eventually(lambda: keys(team) == [], what="the later artifacts to go")
        eventually(lambda: len(deletes.by(follower)) == 3, what="the new leader's deletes logged")
        assert sorted(deletes.by(follower)) == ["wf4/out", "wf5/out", "wf6/out"]
        assert not old.fence()
    assert deletes.overlapping() == []
    kube_b.close()


def test_a_workflow_that_vanished_while_the_watch_was_down_still_loses_its_artifacts(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "wf/out", "wf/never")
    argo.submit(
        NS,
        "wf",
        [Art("out", "wf/out"), Art("never", "wf/never", strategy="Never")],
        strategy="OnWorkflowDeletion",
    )
    with running(make_controller()):
        eventually(lambda: argo.finalizers(NS, "wf") == [FINALIZER], what="the finalizer")
        server.inject_fault("GET", "/workflows", 500, times=None, watch=True)
        server.close_watches()
        # someone strips the finalizer by hand and deletes the workflow: it is gone at once
        change_workflow(
            server,
            NS,
            "wf",
            lambda obj: {**obj, "metadata": {**obj["metadata"], "finalizers": []}},
        )
        argo.delete(NS, "wf")
        server.compact()
        server.clear_faults()  # 410, relist: the cached workflow is no longer listed
        eventually(lambda: keys(team) == ["wf/never"], what="the vanished workflow's artifacts")
