"""`argosy gc` as a user runs it: a kubeconfig, `--once`, `--dry-run`, `--output json`,
and exit codes that say whether every deletion worked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from argosy.artifacts.protocol import Driver
from argosy.main import main
from argosy.testing.kube.api import KubeTestServer, ManualClock
from tests.conftest import free_port
from tests.gc.argo import Argo, Art, repository_entry
from tests.gc.conftest import NS, keys, put

ONCE = ["--once", "--lease-namespace", "argosy-system", "--lease-timeout", "2"]


@pytest.fixture
def kubeconfig(server: KubeTestServer, tmp_path: Path) -> str:
    return str(server.write_kubeconfig(tmp_path / "kubeconfig"))


def test_gc_once_deletes_what_is_due_and_exits_zero(
    argo: Argo,
    team: Driver,
    clock: ManualClock,
    kubeconfig: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    put(team, "wf/out", "wf/dir/a", "wf/dir/b")
    argo.submit(NS, "wf", [Art("out", "wf/out"), Art("dir", "wf/dir")])
    argo.finish(NS, "wf", "Succeeded", clock())

    code = main(["gc", "--kubeconfig", kubeconfig, *ONCE])

    assert code == 0
    assert keys(team) == []
    assert capsys.readouterr().out.splitlines()[-1] == (
        "1 workflow(s) reconciled; deleted 2 artifact(s), 3 object(s), 30 bytes; 0 failure(s)"
    )


def test_gc_once_exits_non_zero_when_a_deletion_failed(
    argo: Argo, clock: ManualClock, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argo.secret(NS)
    argo.repositories(NS, {"default": repository_entry("b", f"http://127.0.0.1:{free_port()}")})
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())

    code = main(["gc", "--kubeconfig", kubeconfig, *ONCE, "--output", "json"])

    assert code == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["failure"]["cause"] == "EndpointUnreachable"
    assert lines[-1]["summary"]["failures"] == 1


def test_gc_dry_run_prints_json_lines_and_sends_only_reads(
    server: KubeTestServer, argo: Argo, team: Driver, clock: ManualClock, kubeconfig: str
) -> None:
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    put(team, "wf/out")
    argo.submit(NS, "wf", [Art("out", "wf/out")])
    argo.finish(NS, "wf", "Succeeded", clock())
    server.clear_requests()

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "argosy",
            "gc",
            "--kubeconfig",
            kubeconfig,
            "--once",
            "--dry-run",
            "--output",
            "json",
            "-n",
            NS,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stderr
    plan, summary = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (plan["action"], plan["workflow"], plan["url"]) == (
        "delete",
        "wf",
        f"s3://{team.bucket}/wf/out",
    )
    assert summary["summary"]["dryRun"] is True
    assert {r.method for r in server.requests} == {"GET"}
    assert keys(team) == ["wf/out"]


def test_gc_refuses_a_bad_default_strategy_with_exit_code_2(
    kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["gc", "--kubeconfig", kubeconfig, "--once", "--default-strategy", "Sometimes"]) == 2
    )
    assert "unknown strategy 'Sometimes'" in capsys.readouterr().err


@pytest.mark.parametrize("duration", ["0", "-2", "nan"])
def test_gc_refuses_a_lease_duration_that_is_not_positive(
    kubeconfig: str, duration: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gc", "--kubeconfig", kubeconfig, "--once", "--lease-duration", duration]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"argosy: error: --lease-duration must be more than 0 seconds, not {float(duration)}"
    )


def test_gc_once_does_not_run_beside_a_replica_holding_the_lease(
    server: KubeTestServer, kubeconfig: str, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    server.create_object(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "argosy-gc", "namespace": "argosy-system"},
            "spec": {
                "holderIdentity": "the-deployment",
                "leaseDurationSeconds": 15,
                "renewTime": clock().isoformat(),
            },
        }
    )

    code = main(["gc", "--kubeconfig", kubeconfig, "--once", "--lease-timeout", "0"])

    assert code == 1
    assert "held by another replica" in capsys.readouterr().err
