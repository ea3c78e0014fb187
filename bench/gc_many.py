"""Ten thousand workflows completing at once: `python -m bench.gc_many [--workflows 10000]
[--env FILE]`.

What it measures: `--workflows` workflows, each with one `archive: none` directory artifact
of 4 files and its tree manifest (5 objects), named as generateName names them (a random
suffix: `--sequential-names` gives `wf-NNN` instead, collected in name order, Ceph's worst
case, see bench/gc_objects.py), spread over namespaces as a busy cluster has them: one
namespace with 90% of them (`a-big`), one with 10 (`z-small`) and the rest in ten
namespaces between. All are Running while the controller lists and watches them; then
all complete at once (written straight into the test API's store, the big namespace's
first and the small one's last, in about a second), and the controller (default settings,
no Lease) deletes their objects on a loopback RGW.

Reported against the targets:
- lag from each workflow's completion to its last object gone: p50/p95/p99/max (p99
  <= 2 minutes); workflows never collected (none);
- fairness: how many of the big namespace's workflows were done when the small one's
  last was (fewer than 10% of them);
- the controller's RSS every second (< 300 MiB, flat) and its CPU;
- the test API's own CPU (it shares the two cores): the orchestrating process hosts it
  and otherwise only waits.

Processes: this one (the test API in threads, the orchestration), the controller in a
child (`--controller`, so its RSS is its own), RGW. `--local-root DIR` puts the objects in a
`local:` repository under DIR instead of RGW (the controller's side is the same; storage
is then a file system's, faster than RGW's). Writes bench/results/gc-many-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from bench import gc_kube, gc_objects, noise, rgw, versions

MiB = 1 << 20
RESULTS = rgw.ROOT / "bench" / "results"
FILES = 4  # per tree, plus its manifest: 5 objects a workflow
TARGET_P99_S = 120.0
TARGET_RSS_MIB = 300.0
TARGET_FAIR_SHARE = 0.10
SETTLE_TIMEOUT_S = 600
DONE_TIMEOUT_S = 3600


def log(message: str) -> None:
    print(f"bench.gc_many: {message}", file=sys.stderr, flush=True)


# -- the controller, in its own process ----------------------------------------------------
class _Recording:
    """The driver, noting when each workflow's last key went (`wf-N/...`)."""

    def __init__(self, inner: Any, done: dict[int, float], lock: threading.Lock) -> None:
        self._inner, self._done, self._lock = inner, done, lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def delete(self, keys: Sequence[str]) -> Any:
        failures = self._inner.delete(keys)
        failed = {f.key for f in failures}
        now = time.time()
        with self._lock:
            for key in keys:
                if key not in failed:
                    index = gc_objects.workflow_of(key)
                    self._done[index] = now
                    self._count[0] += 1
        return failures

    _count = [0]


def controller(
    kubeconfig: Path, status: Path, out: Path, lanes: int, trace_memory: bool = False
) -> int:
    import tracemalloc
    from dataclasses import replace

    from argosy.argo.kube import Kube
    from argosy.gc.controller import Controller
    from bench.gc_scale import settings

    if trace_memory:
        tracemalloc.start(4)
    done: dict[int, float] = {}
    lock = threading.Lock()
    kube = Kube.connect(str(kubeconfig))
    chosen = settings()
    if lanes:  # workers, and workflows and batches in flight per bucket
        chosen = replace(
            chosen,
            workers=lanes,
            delete=replace(chosen.delete, lanes_per_bucket=lanes, bucket_concurrency=lanes),
        )
    ctl = Controller(kube, chosen, decorate_driver=lambda d: _Recording(d, done, lock))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    thread.start()
    me = psutil.Process()
    rss: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []
    snapshots: dict[str, Any] = {}
    while not stop.wait(1.0):
        now = time.time()
        times = me.cpu_times()
        rss.append((now, me.memory_info().rss / MiB))
        cpu.append((now, times.user + times.system))
        with lock:
            state = {
                "at": now,
                "ready": ctl.ready(),
                "idle": len(ctl.queue) == 0 and ctl.queue.idle,
                "objects": _Recording._count[0],
                "workflows": len(done),
            }
        if trace_memory:
            # what the Python heap holds once the running workflows are listed, and later
            key = "listed" if state["ready"] and not state["objects"] else "latest"
            if key == "latest" or "listed" not in snapshots:
                snapshots[key] = tracemalloc.take_snapshot()
        status.write_text(json.dumps(state))
    thread.join(60)
    memory: dict[str, Any] = {}
    if trace_memory and snapshots:
        for key, snap in snapshots.items():
            stats = snap.statistics("lineno")
            memory[key] = {
                "traced_mib": round(sum(s.size for s in stats) / MiB, 1),
                "top": [f"{s.size / MiB:.1f} MiB {s.count} {s.traceback}" for s in stats[:12]],
            }
        if "listed" in snapshots and "latest" in snapshots:
            grown = snapshots["latest"].compare_to(snapshots["listed"], "lineno")
            memory["grown"] = [
                f"{d.size_diff / MiB:+.1f} MiB {d.count_diff:+d} {d.traceback}" for d in grown[:12]
            ]
    with lock:
        out.write_text(
            json.dumps(
                {
                    "done": {str(k): v for k, v in done.items()},
                    "rss_mib": rss,
                    "cpu_s": cpu,
                    "objects": _Recording._count[0],
                    "memory": memory,
                    "batch_deletes": ctl.deleter.requests,
                }
            )
        )
    ctl.close()
    kube.close()
    return 0


# -- the orchestration ---------------------------------------------------------------------
def namespaces(workflows: int) -> dict[int, str]:
    """Workflow index -> namespace: 90% in a-big, 10 in z-small, the rest in ten others."""
    small = min(10, max(1, workflows // 100))
    big = int(workflows * 0.9)
    rest = workflows - big - small
    owner: dict[int, str] = {}
    for i in range(big):
        owner[i] = "a-big"
    for j in range(rest):
        owner[big + j] = f"m-{j % 10:02d}"
    for k in range(small):
        owner[big + rest + k] = "z-small"
    return owner


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _wait_status(status: Path, ok: Any, timeout: float, what: str, child: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        if child.poll() is not None:
            raise RuntimeError(
                f"the controller exited ({child.returncode}) while waiting for {what}"
            )
        try:
            state: dict[str, Any] = json.loads(status.read_text())
        except (OSError, ValueError):
            state = {}
        if state and ok(state):
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}: {state}")
        time.sleep(0.5)


class LocalTarget:
    """A `local:` repository's bucket folder, filled and removed like an RGW bucket."""

    def __init__(self, root: Path, bucket: str) -> None:
        from argosy.artifacts.connect import LocalStorage, open_driver

        self.root, self.bucket = root, bucket
        self.driver = open_driver(LocalStorage(str(root)), bucket)
        self.driver.create_bucket()

    def entry(self) -> dict[str, Any]:
        return {"local": {"bucket": self.bucket, "root": str(self.root)}}

    def fill(self, indexes: list[int], files: int, sequential: bool) -> gc_objects.Filled:
        from concurrent.futures import ThreadPoolExecutor

        started = time.monotonic()
        items = [item for i in indexes for item in gc_objects.tree(i, files, sequential=sequential)]
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda kv: self.driver.put(kv[0], kv[1], size=len(kv[1]), metadata={}), items
                )
            )
        return gc_objects.Filled(len(items), time.monotonic() - started)

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.root / self.bucket, ignore_errors=True)


def _local_namespace(api: Any, namespace: str, entry: dict[str, Any]) -> None:
    import yaml
    from kubernetes import client

    core: Any = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "artifact-repositories"}, "data": {"default": yaml.safe_dump(entry)}},
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "argosy.io",
        "v1alpha1",
        namespace,
        "artifactgcpolicies",
        {
            "apiVersion": "argosy.io/v1alpha1",
            "kind": "ArtifactGCPolicy",
            "metadata": {"name": "default"},
            "spec": {"strategy": "OnWorkflowCompletion"},
        },
    )


def run(
    gateway: rgw.Rgw | None,
    workflows: int,
    work: Path,
    fill: tuple[int, int],
    lanes: int,
    local_root: Path | None = None,
    trace_memory: bool = False,
    sequential: bool = False,
) -> dict[str, Any]:
    from kubernetes import config

    from argosy.testing.kube.api import KubeTestServer

    owner = namespaces(workflows)
    bucket = f"gc-many-{int(time.time())}"
    local = LocalTarget(local_root, bucket) if local_root is not None else None
    target = None
    if local is None:
        assert gateway is not None
        target = gc_objects.driver(gateway, bucket)
        target.create_bucket()
    result: dict[str, Any] = {
        "bucket": bucket,
        "workflows": workflows,
        "storage": "local" if local is not None else "rgw",
        "names": "sequential" if sequential else "generated",
    }
    try:
        log(f"creating {workflows * (FILES + 1)} objects ({workflows} trees)")
        began = time.monotonic()
        if local is not None:
            filled = local.fill(list(range(workflows)), FILES, sequential)
        else:
            assert gateway is not None
            filled = gc_objects.fill(
                gateway,
                bucket,
                list(range(workflows)),
                FILES,
                processes=fill[0],
                threads=fill[1],
                sequential=sequential,
            )
        result["create"] = {"objects": filled.objects, "seconds": round(filled.seconds, 1)}
        log(f"created {filled.objects} in {filled.seconds:.0f} s")

        with KubeTestServer(history_limit=4 * workflows + 1000) as server:
            kubeconfig = server.write_kubeconfig(work / "kubeconfig")
            api = config.new_client_from_config(config_file=str(kubeconfig))
            for namespace in sorted(set(owner.values())):
                if local is not None:
                    _local_namespace(api, namespace, local.entry())
                else:
                    assert gateway is not None
                    gc_kube.setup_namespace(
                        api, gateway, bucket, namespace, policy="OnWorkflowCompletion"
                    )
            for i, namespace in owner.items():
                body = gc_kube.workflow(
                    gc_objects.workflow_name(i, sequential=sequential),
                    [gc_objects.tree_prefix(i, sequential=sequential)],
                    "Running",
                    directory=True,
                )
                body["metadata"]["namespace"] = namespace
                if local is not None:  # key-only artifacts of the local repository
                    for node in body["status"]["nodes"].values():
                        for art in (node.get("outputs") or {}).get("artifacts") or []:
                            art["local"] = art.pop("s3")
                server.create_object(body, plural="workflows")
            log(f"{workflows} workflows Running in {len(set(owner.values()))} namespaces")

            status, out = work / "status.json", work / "controller.json"
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.gc_many",
                    "--controller",
                    str(kubeconfig),
                    "--status",
                    str(status),
                    "--out",
                    str(out),
                    "--lanes",
                    str(lanes),
                    *(["--trace-memory"] if trace_memory else []),
                ],
                cwd=rgw.ROOT,
            )
            try:
                _wait_status(
                    status,
                    lambda s: s["ready"] and s["idle"],
                    SETTLE_TIMEOUT_S,
                    "the controller to list and plan the running workflows",
                    child,
                )
                time.sleep(2.0)
                spec = server.registry.resolve(
                    gc_kube.GROUP, gc_kube.VERSION, "workflows", namespaced=True
                )
                me = psutil.Process()
                cpu_before = me.cpu_times()
                child_cpu = psutil.Process(child.pid)
                ctl_before = child_cpu.cpu_times()
                machine = noise.CpuWatch(
                    noise.daemon_pids(gateway.state_dir) if gateway is not None else []
                )
                machine.start()
                completed: dict[int, float] = {}
                stamp = gc_kube.now_stamp()

                def finish(obj: dict[str, Any]) -> dict[str, Any]:
                    meta = obj["metadata"]
                    labels = {
                        **(meta.get("labels") or {}),
                        "workflows.argoproj.io/completed": "true",
                    }
                    status_ = {**obj["status"], "phase": "Succeeded", "finishedAt": stamp}
                    return {**obj, "metadata": {**meta, "labels": labels}, "status": status_}

                log("completing every workflow at once")
                for i in sorted(owner, key=lambda i: (owner[i], i)):  # a-big first, z-small last
                    completed[i] = time.time()
                    server.store.patch(
                        spec, owner[i], gc_objects.workflow_name(i, sequential=sequential), finish
                    )
                span = max(completed.values()) - min(completed.values())
                log(f"completed {workflows} in {span:.1f} s")
                final = _wait_status(
                    status,
                    lambda s: s["objects"] >= workflows * (FILES + 1),
                    DONE_TIMEOUT_S,
                    "every object to go",
                    child,
                )
                cpu_after = me.cpu_times()
                ctl_after = child_cpu.cpu_times()
                ours = sum(
                    (a.user + a.system) - (b.user + b.system)
                    for a, b in ((cpu_after, cpu_before), (ctl_after, ctl_before))
                )
                rgw_cpu, foreign_cpu = machine.stop(ours)
                elapsed = time.time() - min(completed.values())
                time.sleep(1.5)
            finally:
                child.send_signal(signal.SIGTERM)
                child.wait(120)
            measured = json.loads(out.read_text())
            api.close()

        done = {int(k): v for k, v in measured["done"].items()}
        missed = sorted(set(owner) - set(done))
        lags = sorted(done[i] - completed[i] for i in done)
        small = [i for i in owner if owner[i] == "z-small"]
        big = [i for i in owner if owner[i] == "a-big"]
        small_last = max(done[i] for i in small)
        big_before = sum(1 for i in big if done[i] <= small_last)
        rss = [m for _, m in measured["rss_mib"]]
        cpu = measured["cpu_s"]
        t0 = min(completed.values())
        during = [m for t, m in measured["rss_mib"] if t >= t0]
        api_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        ctl_cpu = next(c for t, c in reversed(cpu) if t <= final["at"] + 1) - next(
            (c for t, c in cpu if t >= t0), cpu[0][1]
        )
        result.update(
            completing_s=round(span, 2),
            objects=measured["objects"],
            deleted_all_s=round(max(done.values()) - t0, 1),
            missed=len(missed),
            lag={
                "p50_s": round(statistics.median(lags), 2),
                "p95_s": round(_quantile(lags, 0.95), 2),
                "p99_s": round(_quantile(lags, 0.99), 2),
                "max_s": round(lags[-1], 2),
            },
            fairness={
                "small_namespace": len(small),
                "big_namespace": len(big),
                "small_last_done_s": round(small_last - t0, 2),
                "big_done_by_then": big_before,
                "big_share_by_then": round(big_before / len(big), 4),
            },
            controller={
                "rss_mib_samples": [round(m, 1) for m in rss],
                "rss_mib_max": round(max(rss), 1),
                "rss_mib_first_during": round(during[0], 1) if during else None,
                "rss_mib_last": round(rss[-1], 1),
                "cpu_s_during": round(ctl_cpu, 1),
                "cpu_s_per_1000_objects": round(1000 * ctl_cpu / max(1, measured["objects"]), 3),
            },
            test_api={"cpu_s_during": round(api_cpu, 1), "seconds": round(elapsed, 1)},
            rgw_cpu_s_during=round(rgw_cpu, 1) if gateway is not None else None,
            foreign_cpu_s_during=round(foreign_cpu, 1),
            batch_deletes=measured.get("batch_deletes"),
            memory=measured.get("memory") or None,
            seconds=round(time.monotonic() - began, 1),
        )
        result["verdicts"] = {
            "p99_met": result["lag"]["p99_s"] <= TARGET_P99_S,
            "none_missed": not missed,
            "rss_met": result["controller"]["rss_mib_max"] < TARGET_RSS_MIB,
            "fair_met": result["fairness"]["big_share_by_then"] < TARGET_FAIR_SHARE,
        }
    finally:
        try:
            if local is not None:
                local.remove()
            elif target is not None:
                gc_objects.remove_bucket(target)
        except Exception as error:  # noqa: BLE001 - cleanup must not hide the real error
            log(f"could not remove bucket {bucket}: {error}")
    return result


def table(r: dict[str, Any]) -> str:
    ok = {True: "met", False: "NOT MET"}
    v, lag, fair, ctl = r["verdicts"], r["lag"], r["fairness"], r["controller"]
    rows = [
        (
            f"lag completion -> objects gone, {r['workflows']:,} workflows x 5 objects "
            f"(completed within {r['completing_s']:.1f} s)",
            f"p50 {lag['p50_s']:.1f} s, p95 {lag['p95_s']:.1f} s, p99 {lag['p99_s']:.1f} s, "
            f"max {lag['max_s']:.1f} s",
            f"p99 <= {TARGET_P99_S:.0f} s: {ok[v['p99_met']]}",
        ),
        ("workflows never collected", str(r["missed"]), f"none: {ok[v['none_missed']]}"),
        (
            f"fairness: the {fair['small_namespace']}-workflow namespace's last done at "
            f"{fair['small_last_done_s']:.1f} s",
            f"{fair['big_done_by_then']:,} of the {fair['big_namespace']:,}-workflow "
            f"namespace's done by then ({100 * fair['big_share_by_then']:.1f}%)",
            f"< 10%: {ok[v['fair_met']]}",
        ),
        (
            "controller RSS, every second",
            f"max {ctl['rss_mib_max']:.0f} MiB (at completion {ctl['rss_mib_first_during']} "
            f"MiB, at the end {ctl['rss_mib_last']:.0f} MiB)",
            f"< {TARGET_RSS_MIB:.0f} MiB, flat: {ok[v['rss_met']]}",
        ),
        (
            "controller CPU",
            f"{ctl['cpu_s_during']:.0f} s ({ctl['cpu_s_per_1000_objects']:.2f} s per 1,000 "
            "objects)",
            "reported",
        ),
        (
            "the test API's CPU over the same time",
            f"{r['test_api']['cpu_s_during']:.0f} s in {r['test_api']['seconds']:.0f} s",
            "reported",
        ),
        (
            "RGW's CPU (mon, osd, radosgw), and other work's, over the same time",
            f"{r.get('rgw_cpu_s_during')} s; other work {r.get('foreign_cpu_s_during')} s; "
            f"{r.get('batch_deletes')} batch deletes",
            "reported",
        ),
    ]
    lines = ["| measure | result | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gc_many",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--controller", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--status", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--env",
        type=Path,
        default=os.environ.get("ARGOSY_RGW_ENV") or None,
        help="a running RGW's env file",
    )
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--fill-processes", type=int, default=2)
    parser.add_argument("--fill-threads", type=int, default=32)
    parser.add_argument("--tmp", type=Path, default=None, help="parent of its work folder")
    parser.add_argument(
        "--local-root",
        type=Path,
        default=None,
        help="objects in a local: repository under this folder instead of RGW",
    )
    parser.add_argument(
        "--lanes",
        type=int,
        default=0,
        help="workers and per-bucket lanes and batches in flight (0: the defaults)",
    )
    parser.add_argument(
        "--sequential-names",
        action="store_true",
        help="name workflows wf-NNN, collected in name order (Ceph's worst case), instead of "
        "with generateName's random suffixes",
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="trace the controller's Python allocations (slower): what it holds, and grew",
    )
    args = parser.parse_args(argv)
    if args.controller:
        return controller(args.controller, args.status, args.out, args.lanes, args.trace_memory)
    if args.env is None and args.local_root is None:
        print(
            "bench.gc_many: give --env FILE (or ARGOSY_RGW_ENV) of a running RGW, "
            "or --local-root DIR",
            file=sys.stderr,
        )
        return 2
    if args.workflows < 20:
        print("bench.gc_many: --workflows must be at least 20", file=sys.stderr)
        return 2
    gateway = rgw.from_env_file(args.env) if args.local_root is None else None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    meta = {
        "started_utc": stamp,
        "endpoint": gateway.endpoint if gateway is not None else f"local:{args.local_root}",
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "versions": versions.git(),
    }
    with tempfile.TemporaryDirectory(prefix="argosy-bench-gc-many-", dir=args.tmp) as folder:
        result = run(
            gateway,
            args.workflows,
            Path(folder),
            (args.fill_processes, args.fill_threads),
            args.lanes,
            args.local_root,
            args.trace_memory,
            args.sequential_names,
        )
    meta["lanes"] = args.lanes or "defaults"
    meta["loadavg_end"] = os.getloadavg()
    doc = {"meta": meta, **result}
    print(table(doc))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"gc-many-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {path}")
    return 0 if all(doc["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
