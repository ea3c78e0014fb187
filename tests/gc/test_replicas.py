"""Real `argosy gc` processes against the Kubernetes test API (real time, a 2-second
Lease) and a bucket whose batch deletes are slowed: the leader killed with SIGKILL in the
middle of deleting is replaced by the other replica, which finishes; a watch that the API
server ends and whose history it compacts (410 Gone) is relisted, missing nothing. In both,
every artifact goes, every outcome is recorded, and no finalizer of ours is left."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from argosy.argo.kube import Kube
from argosy.argo.resources import LEASES
from argosy.artifacts.protocol import Driver
from argosy.testing.faults.proxy import FaultProxy
from argosy.testing.faults.rules import Delay, Rule
from argosy.testing.kube.api import KubeTestServer
from tests.conftest import free_port
from tests.gc.argo import Argo, Art, repository_entry
from tests.gc.conftest import NS, keys, put
from tests.gc.running import eventually

LEASE_S = "2"
BATCH_DELAY_S = 0.3  # every DeleteObjects request waits this long at the proxy
FILES = 4  # per workflow's directory artifact


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """Real time: the processes' Lease clocks and the API server's must agree."""
    return lambda: datetime.now(UTC)


@pytest.fixture
def slow_bucket(
    bucket: tuple[str, Driver], moto_endpoint: str, argo: Argo
) -> Iterator[tuple[Driver, FaultProxy]]:
    """team-a's repository, reached by the controllers through a proxy that slows every
    batch delete (the test itself writes and lists the bucket directly)."""
    name, driver = bucket
    with FaultProxy(
        moto_endpoint, [Rule(Delay(head=BATCH_DELAY_S), method="POST", query="delete", times=None)]
    ) as proxy:
        argo.secret(NS)
        argo.repositories(NS, {"default": repository_entry(name, proxy.url)}, default="default")
        argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
        yield driver, proxy


@contextmanager
def gc_process(kubeconfig: Path, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "argosy",
                "gc",
                "--kubeconfig",
                str(kubeconfig),
                "--lease-duration",
                LEASE_S,
                "--workers",
                "2",
                "-v",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def holder(kube: Kube) -> str:
    lease = kube.find(LEASES, "argosy-system", "argosy-gc")
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


def deletes(proxy: FaultProxy) -> int:
    return len(proxy.hits)


def workflows(argo: Argo, count: int, driver: Driver, *, prefix: str = "wf") -> list[str]:
    names = []
    for i in range(count):
        name = f"{prefix}{i:02d}"
        put(driver, *(f"{name}/pod/dir/f{j}" for j in range(FILES)))
        put(driver, f"{name}/pod/out.tgz")
        argo.submit(NS, name, [Art("dir", f"{name}/pod/dir"), Art("out", f"{name}/pod/out.tgz")])
        names.append(name)
    return names


def assert_all_collected(argo: Argo, driver: Driver, finished: list[str]) -> None:
    assert keys(driver) == ["keep/me"]
    for name in finished:
        wf = argo.get(NS, name)
        assert wf is not None, name
        assert "argosy.io/artifact-gc" not in (wf["metadata"].get("finalizers") or [])
        record = argo.record(NS, name)
        assert sorted(record["deleted"]) == [f"{name}-pod/dir", f"{name}-pod/out"], name
        assert len(record["done"]) == 2
        assert "failures" not in record, record


def test_the_leader_killed_mid_deletion_is_replaced_and_nothing_is_missed(
    server: KubeTestServer,
    argo: Argo,
    kube: Kube,
    slow_bucket: tuple[Driver, FaultProxy],
    clock: Callable[[], datetime],
    tmp_path: Path,
) -> None:
    driver, proxy = slow_bucket
    put(driver, "keep/me")
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    finished = workflows(argo, 16, driver)
    # two more wait for their deletion, held by our finalizer
    for name in ("del0", "del1"):
        put(driver, f"{name}/pod/out.tgz")
        argo.submit(NS, name, [Art("out", f"{name}/pod/out.tgz")], strategy="OnWorkflowDeletion")

    with gc_process(kubeconfig, tmp_path / "a.log") as a:
        eventually(lambda: holder(kube), what="replica a to take the Lease", timeout=30)
        first = holder(kube)
        with gc_process(kubeconfig, tmp_path / "b.log") as b:
            eventually(
                lambda: all(
                    argo.finalizers(NS, n) == ["argosy.io/artifact-gc"] for n in ("del0", "del1")
                ),
                what="the finalizers",
                timeout=30,
            )
            for name in finished:
                argo.finish(NS, name, "Succeeded", clock())
            argo.delete(NS, "del0")
            argo.delete(NS, "del1")
            eventually(lambda: deletes(proxy) >= 6, what="a's first batch deletes", timeout=30)
            a.send_signal(signal.SIGKILL)
            a.wait(timeout=10)
            left = len(keys(driver))
            assert left > 1 + FILES, "the leader was not killed mid-deletion"

            eventually(
                lambda: holder(kube) not in ("", first), what="b to take the Lease", timeout=30
            )
            eventually(lambda: keys(driver) == ["keep/me"], what="b to finish", timeout=60)
            eventually(
                lambda: argo.get(NS, "del0") is None and argo.get(NS, "del1") is None,
                what="the deleted workflows to go",
                timeout=30,
            )
            eventually(
                lambda: all(len(argo.record(NS, n).get("done", [])) == 2 for n in finished),
                what="every outcome",
                timeout=30,
            )
            assert b.poll() is None, (tmp_path / "b.log").read_text()
    assert_all_collected(argo, driver, finished)
    assert a.returncode == -signal.SIGKILL


def _metric(port: int, line: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for text in answer.read().decode().splitlines():
            if text.startswith(line + " "):
                return float(text.split()[-1])
    return 0.0


def test_a_watch_dropped_with_its_history_compacted_mid_run_is_relisted_and_nothing_is_missed(
    server: KubeTestServer,
    argo: Argo,
    kube: Kube,
    slow_bucket: tuple[Driver, FaultProxy],
    clock: Callable[[], datetime],
    tmp_path: Path,
) -> None:
    driver, proxy = slow_bucket
    put(driver, "keep/me")
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    early = workflows(argo, 8, driver, prefix="early")
    late = workflows(argo, 8, driver, prefix="late")
    port = free_port()
    gone = 'argosy_gc_watch_restarts_total{reason="gone",resource="workflows"}'
    with gc_process(kubeconfig, tmp_path / "gc.log", "--metrics-port", str(port)) as proc:
        eventually(lambda: holder(kube), what="the Lease", timeout=30)
        eventually(lambda: server.open_watches == 2, what="the watches", timeout=30)
        for name in early:
            argo.finish(NS, name, "Succeeded", clock())
        eventually(lambda: deletes(proxy) >= 2, what="the first batch deletes", timeout=30)

        # mid-run the API server ends every watch and refuses new ones; the late workflows
        # complete meanwhile and that history is compacted away: the resumed watch is 410
        server.inject_fault("GET", "/workflows", 500, times=None, watch=True)
        server.close_watches()
        for name in late:
            argo.finish(NS, name, "Failed", clock())
        server.compact()
        assert len(keys(driver)) > 1
        server.clear_faults()

        eventually(lambda: _metric(port, gone) >= 1, what="the relist after 410", timeout=30)
        eventually(lambda: keys(driver) == ["keep/me"], what="every artifact", timeout=60)
        eventually(
            lambda: all(len(argo.record(NS, n).get("done", [])) == 2 for n in early + late),
            what="every outcome",
            timeout=30,
        )
        assert proc.poll() is None, (tmp_path / "gc.log").read_text()
    assert_all_collected(argo, driver, early + late)
