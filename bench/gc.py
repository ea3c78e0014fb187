"""The GC's benchmark (`python -m bench.gc`, an RGW env file in ARGOSY_RGW_ENV).

Three numbers the GC issue asks for:
1. Deleting directory artifacts on Ceph RGW: the GC's batched, per-bucket-concurrent
   deletes against Argo's way (one DeleteObject request at a time, in sequence), on two
   equal halves of the same objects.
2. The lag from a workflow's completion to its artifacts being gone, with the controller
   running (watching) against the Kubernetes test API.
3. The controller's RSS across repeated full resyncs (list + reconcile) of thousands of
   workflows; the test API runs in another process so only the controller is measured.

Scale with --objects / --workflows / --resyncs; the issue's figures are 100,000 objects,
5,000 workflows and 10 resyncs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench.rgw import Rgw, from_env_file

MiB = 1 << 20


def _driver(rgw: Rgw, bucket: str) -> Any:
    from argosy.artifacts.drivers.s3 import S3Driver, S3Settings

    driver = S3Driver(S3Settings(endpoint=rgw.endpoint, region=rgw.region,
                                 access_key=rgw.access_key, secret_key=rgw.secret_key,
                                 addressing_style="path", max_connections=64), bucket)
    driver.create_bucket()
    return driver


def _fill(driver: Any, keys: list[str]) -> None:
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(lambda k: driver.put(k, b"x", size=1, metadata={}), keys))


def deletion(rgw: Rgw, objects: int, artifacts: int) -> dict[str, float]:
    """Half the objects deleted Argo's way, half by the GC's deleter: objects per second."""
    from argosy.artifacts.tree import list_all
    from argosy.gc.deleter import Deleter
    from argosy.gc.locations import Target

    bucket = f"gc-bench-{os.getpid()}-{int(time.time())}"
    driver = _driver(rgw, bucket)
    per = max(1, objects // 2 // artifacts)
    keys = [f"{half}/wf/pod/art{a}/{i // 100:03d}/f{i:05d}" for half in ("argo", "gc")
            for a in range(artifacts) for i in range(per)]
    print(f"filling {len(keys)} objects ...", file=sys.stderr, flush=True)
    _fill(driver, keys)

    start = time.monotonic()
    for a in range(artifacts):  # Argo: list the folder, then one DeleteObject per key
        for info in list(list_all(driver, f"argo/wf/pod/art{a}/")):
            driver.delete([info.key])
    argo_s = time.monotonic() - start

    deleter = Deleter()
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # the controller's workers, one artifact each
        outcomes = list(pool.map(lambda a: deleter.delete(
            driver, Target("s3", bucket, f"gc/wf/pod/art{a}", {"endpoint": rgw.endpoint}),
            f"art{a}"), range(artifacts)))
    gc_s = time.monotonic() - start
    deleter.close()
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok]
    assert not list(list_all(driver, "")), "objects left behind"
    half = per * artifacts
    return {"objects_each": half, "argo_s": argo_s, "gc_s": gc_s,
            "argo_rate": half / argo_s, "gc_rate": half / gc_s, "speedup": argo_s / gc_s}


def _kube_api(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    kubeconfig = tmp / "kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "argosy.testing.kube_api", "--kubeconfig",
                             str(kubeconfig), "--history", "100000"],
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not kubeconfig.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the Kubernetes test API did not start")
        time.sleep(0.1)
    return proc, kubeconfig


def _setup_namespace(kube: Any, rgw: Rgw, bucket: str, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(kube.api_client)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s3"}, "stringData": {
        "a": rgw.access_key, "s": rgw.secret_key}})
    entry = {"s3": {"bucket": bucket, "endpoint": rgw.endpoint, "region": rgw.region,
                    "accessKeySecret": {"name": "s3", "key": "a"},
                    "secretKeySecret": {"name": "s3", "key": "s"}}}
    core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "artifact-repositories"}, "data": {"default": yaml.safe_dump(entry)}})


def _workflow(name: str, artifacts: int, phase: str, strategy: str) -> dict[str, Any]:
    outputs = [{"name": f"a{i}", "s3": {"key": f"{name}/pod/a{i}"}} for i in range(artifacts)]
    outputs.append({"name": "main-logs", "s3": {"key": f"{name}/pod/main.log"}})
    status: dict[str, Any] = {"phase": phase, "nodes": {f"{name}-1": {
        "id": f"{name}-1", "type": "Pod", "outputs": {"artifacts": outputs}}}}
    if phase != "Running":
        status["finishedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name}, "spec": {"artifactGC": {"strategy": strategy}},
            "status": status}


def _settings(*namespaces: str) -> Any:
    from argosy.gc.settings import GcSettings, WatchSettings

    return GcSettings(namespaces=namespaces, lease=None, lookup_ttl=30.0,
                      watch=replace(WatchSettings(), watch_timeout=60, resync=3600))


def lag(rgw: Rgw, kubeconfig: Path, workflows: int) -> dict[str, float]:
    """Completion to deletion, with the controller watching: seconds per workflow."""
    from kubernetes import client

    from argosy.gc.controller import Controller
    from argosy.gc.kube import Kube

    bucket = f"gc-lag-{os.getpid()}-{int(time.time())}"
    driver = _driver(rgw, bucket)
    kube = Kube.connect(str(kubeconfig))
    _setup_namespace(kube, rgw, bucket, "lag")
    custom = client.CustomObjectsApi(kube.api_client)
    controller = Controller(kube, _settings("lag"))
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    lags = []
    try:
        for i in range(workflows):
            name = f"wf{i}"
            _fill(driver, [f"{name}/pod/a0", f"{name}/pod/main.log"])
            custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", "lag",
                                                   "workflows", _workflow(
                                                       name, 1, "Running",
                                                       "OnWorkflowCompletion"))
            done = _workflow(name, 1, "Succeeded", "OnWorkflowCompletion")
            start = time.monotonic()
            custom.patch_namespaced_custom_object(
                "argoproj.io", "v1alpha1", "lag", "workflows", name,
                {"status": done["status"]}, _content_type="application/merge-patch+json")
            while driver.list(f"{name}/").objects:
                if time.monotonic() - start > 60:
                    raise RuntimeError(f"{name}: not deleted within 60 s")
                time.sleep(0.005)
            lags.append(time.monotonic() - start)
    finally:
        stop.set()
        thread.join(30)
        controller.close()
    return {"workflows": workflows, "p50_s": statistics.median(lags),
            "max_s": max(lags), "mean_s": statistics.fmean(lags)}


def rss(kubeconfig: Path, workflows: int, resyncs: int) -> dict[str, Any]:
    """RSS of this process after each full pass over `workflows` workflows."""
    from kubernetes import client

    from argosy.gc.controller import Controller
    from argosy.gc.kube import Kube

    kube = Kube.connect(str(kubeconfig))
    custom = client.CustomObjectsApi(kube.api_client)
    client.CoreV1Api(kube.api_client).create_namespace({"metadata": {"name": "rss"}})
    print(f"creating {workflows} workflows ...", file=sys.stderr, flush=True)

    def create(i: int) -> None:
        custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", "rss", "workflows",
                                               _workflow(f"wf{i}", 3, "Succeeded", "Never"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(workflows)))
    controller = Controller(kube, _settings("rss"))
    me = psutil.Process()
    samples, seconds = [], []
    for _ in range(resyncs):
        start = time.monotonic()
        summary = controller.run_once(sweeps=False)
        seconds.append(time.monotonic() - start)
        assert summary.workflows == workflows and not summary.failed
        samples.append(me.memory_info().rss)
    controller.close()
    return {"workflows": workflows, "resyncs": resyncs, "first_mib": samples[0] / MiB,
            "last_mib": samples[-1] / MiB, "max_mib": max(samples) / MiB,
            "growth_pct": 100 * (samples[-1] - samples[0]) / samples[0],
            "pass_s": statistics.median(seconds)}


def rss_in_child(kubeconfig: Path, workflows: int, resyncs: int) -> dict[str, Any]:
    """`rss` in a fresh process: this one has grown filling buckets and deleting."""
    done = subprocess.run([sys.executable, "-m", "bench.gc", "--rss-only", str(kubeconfig),
                           "--workflows", str(workflows), "--resyncs", str(resyncs)],
                          capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the RSS run failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc")
    parser.add_argument("--rss-only", metavar="KUBECONFIG", type=Path,
                        help=argparse.SUPPRESS)  # the child process of the RSS measure
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--artifacts", type=int, default=10, help="directory artifacts")
    parser.add_argument("--lag-workflows", type=int, default=20)
    parser.add_argument("--workflows", type=int, default=5000)
    parser.add_argument("--resyncs", type=int, default=10)
    args = parser.parse_args(argv)
    if args.rss_only:
        print(json.dumps(rss(args.rss_only, args.workflows, args.resyncs)))
        return 0
    env = os.environ.get("ARGOSY_RGW_ENV")
    if not env:
        raise SystemExit("set ARGOSY_RGW_ENV to a running RGW's env file (scripts/rgw.sh)")
    rgw = from_env_file(Path(env))
    report: list[tuple[str, str]] = []

    def run(what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        print(f"== {what}", file=sys.stderr, flush=True)
        result = fn()
        print(result, file=sys.stderr, flush=True)
        return result

    d = run("deletion", lambda: deletion(rgw, args.objects, args.artifacts))
    report.append((f"delete {d['objects_each']} objects, Argo's way (1 DeleteObject at a "
                   "time)", f"{d['argo_s']:.1f} s ({d['argo_rate']:.0f} objects/s)"))
    report.append((f"delete {d['objects_each']} objects, argosy gc (batches of 1000)",
                   f"{d['gc_s']:.1f} s ({d['gc_rate']:.0f} objects/s), "
                   f"{d['speedup']:.1f}x faster"))
    with tempfile.TemporaryDirectory() as tmp:
        proc, kubeconfig = _kube_api(Path(tmp))
        try:
            lagged = run("lag", lambda: lag(rgw, kubeconfig, args.lag_workflows))
            report.append((f"lag completion -> deleted ({lagged['workflows']} workflows, "
                           "watching)", f"p50 {lagged['p50_s'] * 1000:.0f} ms, max "
                           f"{lagged['max_s'] * 1000:.0f} ms"))
            r = run("rss", lambda: rss_in_child(kubeconfig, args.workflows, args.resyncs))
            report.append((f"controller RSS over {r['resyncs']} full passes of "
                           f"{r['workflows']} workflows",
                           f"{r['first_mib']:.0f} -> {r['last_mib']:.0f} MiB (max "
                           f"{r['max_mib']:.0f}, {r['growth_pct']:+.1f}%), "
                           f"{r['pass_s']:.1f} s per pass"))
        finally:
            proc.terminate()
            proc.wait(10)
    print("| measure | result |\n|---|---|")
    for what, result in report:
        print(f"| {what} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
