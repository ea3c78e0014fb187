"""What was deleted is counted even when the workflow cannot be updated afterwards: the
`--once` summary, the metric, and (once it can be written) the outcome annotation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.main import main
from argosy.testing.kube.api import KubeTestServer, ManualClock, RequestAttributes
from tests.gc.argo import FINALIZER, Argo, Art
from tests.gc.conftest import NS, keys, put
from tests.gc.running import eventually, kube_as, running

ONCE = ["--once", "--lease-namespace", "argosy-system", "--lease-timeout", "2"]
WORKFLOW_PATCH = r"/namespaces/team-a/workflows/wf$"


@pytest.mark.usefixtures("on_completion")
def test_the_once_summary_counts_deletions_whose_workflow_refused_the_outcome_patch(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(team, "wf/out", "wf/dir/a", "wf/dir/b")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")])
    argo.finish(NS, "wf", "Succeeded", clock())
    server.inject_fault("PATCH", WORKFLOW_PATCH, 403, times=None, message="patch forbidden")
    kubeconfig = str(server.write_kubeconfig(tmp_path / "kubeconfig"))

    code = main(["gc", "--kubeconfig", kubeconfig, *ONCE])

    out = capsys.readouterr().out.splitlines()
    assert code == 1  # the outcome could not be recorded: that is an error of the pass
    assert keys(team) == []
    assert out[-1] == (
        "1 workflow(s) reconciled; deleted 2 artifact(s), 3 object(s), 30 bytes; 0 failure(s)"
    )
    assert any("outcome could not be recorded" in line and "forbidden" in line for line in out)
    assert argo.record(NS, "wf") == {}


def test_an_outcome_refused_once_is_recorded_whole_on_the_next_pass(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowDeletion"})
    put(team, "wf/out", "wf/dir/a", "wf/dir/b")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")])
    controller = make_controller()
    with running(controller):
        eventually(lambda: argo.finalizers(NS, "wf") == [FINALIZER], what="the finalizer")
        # the patch that records the outcome and removes the finalizer is refused twice
        server.inject_fault("PATCH", WORKFLOW_PATCH, 403, times=2, message="patch forbidden")
        argo.delete(NS, "wf")
        eventually(lambda: argo.get(NS, "wf") is None, what="the workflow to go", timeout=20)
    assert keys(team) == []
    assert controller.metrics.value("argosy_gc_objects_deleted_total") == 3
    assert controller.metrics.value("argosy_gc_artifacts_deleted_total") == 2


@pytest.mark.usefixtures("on_completion")
def test_an_outcome_refused_once_is_written_with_the_objects_deleted_before(
    server: KubeTestServer,
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "wf/out", "wf/dir/a", "wf/dir/b")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")])
    refused: list[str] = []

    def authorize(request: RequestAttributes) -> bool:
        if request.user == "gc" and request.verb == "patch" and request.resource == "workflows":
            refused.append(request.name)
            return len(refused) > 1  # the first outcome patch is refused
        return True

    server.authorizer = authorize
    gc_kube = kube_as(server, "token-gc", "gc")
    controller = make_controller(kube_client=gc_kube)
    with running(controller):
        argo.finish(NS, "wf", "Succeeded", clock())
        record = eventually(lambda: argo.record(NS, "wf"), what="the outcome", timeout=20)
    gc_kube.close()
    assert refused[0] == "wf"
    assert keys(team) == []
    assert record["objects"] == 3
    assert record["bytes"] == 30
    assert sorted(record["deleted"]) == ["wf-pod/dir", "wf-pod/out"]
    assert controller.metrics.value("argosy_gc_objects_deleted_total") == 3
