"""The GC's benchmark on Ceph RGW: `python -m bench.gc [--objects 100000] [--env FILE]`.

What it measures, in one run:
1. 100,000 objects of directory artifacts (`archive: none` trees: 200 workflows x 499
   files + the tree manifest) deleted by the controller itself (informers watching the
   Kubernetes test API, default workers and deleter, the namespace's ArtifactGCPolicy
   `OnWorkflowCompletion`) when all 200 workflows complete at once; against Argo's way,
   one DeleteObject request at a time in sequence. Argo's way takes ~20 minutes for
   100k here, so by default it runs on a fixed random sample of whole trees (10,000
   objects, `--argo-objects`; 0 runs all of them) and its 100k time is extrapolated from
   its rate: the table and the JSON say so. The sample is deleted in two halves, one
   before and one after the controller's run (each recreated around it), so load that
   comes and goes on the machine weighs on both ways alike.
2. The lag from a workflow's completion to its last object gone: per workflow in that
   burst (p50/p95/max), and for workflows completing one at a time.
3. The controller's RSS across 10 full resyncs (list + reconcile) of 5,000 workflows,
   in a fresh process (the test API runs in another one): each pass's RSS, max/min.

With `--delay-ms 20` every deletion (Argo's way, batch deletes alone, the controller)
goes through `bench/delay_proxy.py`, +20 ms per request (a 20 ms round trip, a real object
store's distance); creating and counting the objects go straight to RGW. `--parts scale`
runs only (1). The JSON's `cases` give, per way, `delay_ms`, objects/s and the `ratio` to
Argo's way.

Starts its own RGW with scripts/rgw.sh unless --env (or ARGOSY_RGW_ENV) names a running
one; writes bench/results/gc-<timestamp>.json. See gc_scale.py and gc_objects.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import gc_kube, gc_scale, rgw, versions

MiB = 1 << 20
RESULTS = rgw.ROOT / "bench" / "results"
RSS_TIMEOUT_S = 3600
TARGET_SPEEDUP = 10.0
TARGET_RSS_SPREAD = 1.10
TARGET_RSS_MIB = 300


def log(message: str) -> None:
    print(f"bench.gc: {message}", file=sys.stderr, flush=True)


def rss(kubeconfig: Path, workflows: int, resyncs: int) -> dict[str, Any]:
    """RSS of this process after each full pass over `workflows` workflows."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client

    from argosy.argo.kube import Kube
    from argosy.gc.controller import Controller

    kube = Kube.connect(str(kubeconfig))
    api_client = client.ApiClient(kube.configuration)  # the bench's own typed client
    custom = client.CustomObjectsApi(api_client)
    core: Any = client.CoreV1Api(api_client)  # plain dicts as bodies
    core.create_namespace({"metadata": {"name": "rss"}})

    def create(i: int) -> None:
        keys = [f"wf{i}/pod/a{j}" for j in range(3)] + [f"wf{i}/pod/main.log"]
        gc_kube.create(
            custom, "rss", gc_kube.workflow(f"wf{i}", keys, "Succeeded", strategy="Never")
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(workflows)))
    controller = Controller(kube, gc_scale.settings("rss"))
    me = psutil.Process()
    start = me.memory_info().rss
    samples, seconds = [], []
    for _ in range(resyncs):
        began = time.monotonic()
        summary = controller.run_once(sweeps=False)
        seconds.append(time.monotonic() - began)
        assert summary.workflows == workflows and not summary.failed
        samples.append(me.memory_info().rss)
    controller.close()
    return {
        "workflows": workflows,
        "resyncs": resyncs,
        "start_mib": start / MiB,
        "samples_mib": [round(s / MiB, 1) for s in samples],
        "min_mib": min(samples) / MiB,
        "max_mib": max(samples) / MiB,
        "spread": max(samples) / min(samples),
        "pass_s": statistics.median(seconds),
    }


def rss_in_child(kubeconfig: Path, workflows: int, resyncs: int) -> dict[str, Any]:
    """`rss` in a fresh process: this one has grown creating and deleting objects."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.gc",
            "--rss-only",
            str(kubeconfig),
            "--workflows",
            str(workflows),
            "--resyncs",
            str(resyncs),
        ],
        capture_output=True,
        text=True,
        timeout=RSS_TIMEOUT_S,
        check=False,
        cwd=rgw.ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the RSS run failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _lag(lag: dict[str, float]) -> str:
    return f"p50 {_ms(lag['p50_s'])}, p95 {_ms(lag['p95_s'])}, max {_ms(lag['max_s'])}"


@contextlib.contextmanager
def delay_proxy(gateway: rgw.Rgw, delay_ms: float) -> Iterator[rgw.Rgw]:
    """`gateway` behind `bench.delay_proxy` (+`delay_ms` per request), in its own process."""
    upstream = gateway.endpoint.removeprefix("http://").rstrip("/")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.delay_proxy",
            "--upstream",
            upstream,
            "--delay-ms",
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=rgw.ROOT,
    )
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        yield dataclasses.replace(gateway, endpoint=f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def cases(scale: dict[str, Any], delay_ms: float) -> list[dict[str, Any]]:
    """Objects/s per way, and the ratio to Argo's way, at this delay."""
    argo = scale["argo"]["rate"]
    ways = [
        ("Argo's way: one DeleteObject at a time", scale["argo"]),
        ("DeleteObjects of 1000 keys, 4 in flight, no controller", scale["batch_alone"]),
        ("argosy gc, the controller watching", scale["gc"]),
    ]
    return [
        {
            "case": name,
            "delay_ms": delay_ms,
            "objects": phase["objects"],
            "seconds": round(phase["seconds"], 2),
            "objects_per_s": round(phase["rate"], 1),
            "ratio": round(phase["rate"] / argo, 2),
        }
        for name, phase in ways
    ]


def verdicts(doc: dict[str, Any]) -> dict[str, Any]:
    s, r = doc["scale"], doc.get("rss")
    speedup = s["gc"]["rate"] / s["argo"]["rate"]
    out = {
        "speedup": speedup,
        "speedup_met": speedup >= TARGET_SPEEDUP,
        "bucket_empty": s["gc"]["left_in_bucket"] == 0,
    }
    if r is not None:
        out["rss_spread_met"] = r["spread"] <= TARGET_RSS_SPREAD
        out["rss_under_limit"] = r["max_mib"] < TARGET_RSS_MIB
    return out


def scale_table(doc: dict[str, Any]) -> str:
    lines = ["| way | delay | objects | seconds | objects/s | ratio to Argo's way |"]
    lines.append("|---|---|---|---|---|---|")
    for c in doc["cases"]:
        lines.append(
            f"| {c['case']} | {c['delay_ms']:g} ms | {c['objects']:,} | {c['seconds']:,.1f} | "
            f"{c['objects_per_s']:,.0f} | {c['ratio']:.1f}x |"
        )
    g = doc["scale"]["gc"]
    lines.append(
        f"controller CPU {g['controller_cpu_s_per_1000_objects']:.2f} s per 1,000 objects "
        f"(this process: the controller and the bench's light polling); "
        f"{g['left_in_bucket']} left in the bucket"
    )
    return "\n".join(lines)


def table(doc: dict[str, Any]) -> str:
    if not {"rss", "lag_single"} <= doc.keys():
        return scale_table(doc)
    s, lag1, r, v = doc["scale"], doc["lag_single"], doc["rss"], doc["verdicts"]
    c, a, b, g = s["create"], s["argo"], s["batch_alone"], s["gc"]
    total = c["objects"]
    ok = {True: "met", False: "NOT MET"}
    argo_what = (
        f"{a['objects']:,} objects ({len(a['trees'])} random trees, seed {a['seed']})"
        f"; {total:,} EXTRAPOLATED"
        if a["sampled"]
        else f"all {a['objects']:,} objects"
    )
    halves = " and ".join(f"{h['rate']:,.0f}" for h in a["halves"])
    rows = [
        (
            "create " + f"{total:,} objects ({s['per_tree'] - 1} files + manifest x "
            f"{len(s['gc']['lags_s'])} trees), {c['processes']} processes x {c['threads']} "
            "threads",
            f"{c['seconds']:,.1f} s ({c['rate']:,.0f} objects/s)",
            "as fast as possible",
        ),
        (
            f"Argo's way, 1 DeleteObject at a time: {argo_what}",
            f"{a['seconds']:,.1f} s ({a['rate']:,.0f} objects/s; halves before and after "
            f"the GC run: {halves}/s)"
            + (
                f"; {total:,} in ~{a['extrapolated_s']:,.0f} s (extrapolated)"
                if a["sampled"]
                else ""
            ),
            "the baseline",
        ),
        (
            f"DeleteObjects of 1000 keys, {b['concurrency']} in flight, no controller: "
            f"{b['objects']:,} objects (the first half of that sample)",
            f"{b['seconds']:,.1f} s ({b['rate']:,.0f} objects/s), {b['rate'] / a['rate']:.1f}x "
            "Argo's way",
            "reference: RGW alone",
        ),
        (
            f"argosy gc (the controller, watching): {g['objects']:,} objects of "
            f"{g['workflows']} workflows completed at once",
            f"{g['seconds']:,.1f} s ({g['rate']:,.0f} objects/s), {g['left_in_bucket']} left "
            f"in the bucket",
            f">= {TARGET_SPEEDUP:.0f}x Argo's way: {v['speedup']:.1f}x, "
            f"{ok[v['speedup_met'] and v['bucket_empty']]}",
        ),
        (
            f"lag completion -> last object deleted, {g['workflows']} completing at once",
            _lag(g["lag"]),
            "reported",
        ),
        (
            f"lag completion -> last object deleted, {lag1['workflows']} completing one at a "
            f"time ({lag1['objects'] // lag1['workflows']} objects each)",
            _lag(lag1["lag"]),
            "reported",
        ),
        (
            f"controller RSS after each of {r['resyncs']} full resyncs of {r['workflows']:,} "
            "workflows",
            f"{r['min_mib']:.0f}-{r['max_mib']:.0f} MiB (max/min "
            f"{r['spread']:.3f}), {r['pass_s']:.1f} s per pass",
            f"within 10%, < {TARGET_RSS_MIB} MiB: "
            f"{ok[v['rss_spread_met'] and v['rss_under_limit']]}",
        ),
    ]
    lines = ["| measure | result | target |", "|---|---|---|"]
    lines += [f"| {what} | {result} | {target} |" for what, result, target in rows]
    lines.append("")
    lines.append(
        "RSS per resync (MiB): "
        + ", ".join(f"{x:.0f}" for x in r["samples_mib"])
        + f" (before the first: {r['start_mib']:.0f})"
    )
    lines.append(
        f"argosy gc: {g['batches']} batch deletes (sizes {g['batch_sizes']}, "
        f"{g['batch_seconds'] / g['batches']:.2f} s each on average, "
        f"{g['batch_seconds'] / g['seconds']:.1f} in flight on average), "
        f"{g['drivers_built']} S3 clients built for {g['workflows']} artifacts, "
        f"outcomes recorded on {g['recorded']} workflows "
        f"{g['recorded_after_s']:,.1f} s after the first completion"
    )
    for name, phase in (
        ("create", c),
        ("Argo's way", a),
        ("batch deletes alone", b),
        ("argosy gc", g),
    ):
        cpu = phase["cpu"]
        lines.append(
            f"{name}: client CPU {cpu['client_cpu_s']:.0f} s, RGW CPU "
            f"{cpu['rgw_cpu_s']:.0f} s, other work on the machine "
            f"{100 * cpu['other_share']:.0f}% of its CPU"
        )
    meta = doc["meta"]
    lines.append(
        f"load average at start {meta['loadavg_start'][0]:.1f}, end "
        f"{meta['loadavg_end'][0]:.1f} ({meta['cpus']} CPUs; RGW shares them); "
        f"whole run {meta['seconds']:,.0f} s"
    )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rss-only", metavar="KUBECONFIG", type=Path, help=argparse.SUPPRESS
    )  # the child process of the RSS measure
    parser.add_argument(
        "--env",
        type=Path,
        default=os.environ.get("ARGOSY_RGW_ENV") or None,
        help="a running RGW's env file (default: start one)",
    )
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument(
        "--trees", type=int, default=200, help="workflows, one directory artifact each"
    )
    parser.add_argument(
        "--argo-objects",
        type=int,
        default=10_000,
        help="Argo's way on a random sample of about this many objects "
        "(whole trees); 0: all of them",
    )
    parser.add_argument("--seed", type=int, default=20261129, help="of that sample")
    parser.add_argument("--fill-processes", type=int, default=2)
    parser.add_argument("--fill-threads", type=int, default=32)
    parser.add_argument("--lag-workflows", type=int, default=20)
    parser.add_argument("--lag-files", type=int, default=10)
    parser.add_argument("--workflows", type=int, default=5000, help="for the RSS measure")
    parser.add_argument("--resyncs", type=int, default=10)
    parser.add_argument("--tmp", type=Path, default=None)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="deletions through bench.delay_proxy with this delay per request (0: none)",
    )
    parser.add_argument(
        "--parts",
        default="lag,scale,rss",
        help="what to run, of lag, scale, rss (comma-separated)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.rss_only:
        print(json.dumps(rss(args.rss_only, args.workflows, args.resyncs)))
        return 0
    began, stamp = time.monotonic(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="argosy-bench-gc-", dir=args.tmp))
    state = work / "rgw"
    try:
        if args.env:
            gateway = rgw.from_env_file(args.env)
            log(f"using the RGW at {gateway.endpoint} ({args.env})")
        else:
            log(f"starting Ceph RGW in {state}")
            gateway = rgw.start(state)
        meta: dict[str, Any] = {
            "started_utc": stamp,
            "endpoint": gateway.endpoint,
            "own_rgw": not args.env,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "versions": versions.git(),
        }
        plan = gc_scale.Scale(
            args.objects,
            args.trees,
            args.argo_objects,
            args.seed,
            args.fill_processes,
            args.fill_threads,
        )
        parts = {p.strip() for p in args.parts.split(",") if p.strip()}
        meta["delay_ms"] = args.delay_ms
        doc: dict[str, Any] = {"meta": meta}
        with contextlib.ExitStack() as stack:
            api = stack.enter_context(gc_kube.KubeApi(work))
            via = (
                stack.enter_context(delay_proxy(gateway, args.delay_ms))
                if args.delay_ms > 0
                else None
            )
            if "lag" in parts:
                doc["lag_single"] = gc_scale.single_lag(
                    gateway, api, args.lag_workflows, args.lag_files, log
                )
            doc["scale"] = gc_scale.scale(gateway, api, plan, log, via=via)
            if "rss" in parts:
                log(f"RSS: {args.resyncs} resyncs of {args.workflows} workflows")
                doc["rss"] = rss_in_child(api.kubeconfig, args.workflows, args.resyncs)
        meta.update(loadavg_end=os.getloadavg(), seconds=round(time.monotonic() - began, 1))
        doc["cases"] = cases(doc["scale"], args.delay_ms)
        doc["verdicts"] = verdicts(doc)
        print(table(doc))
        if "rss" in doc and "lag_single" in doc:
            print(scale_table(doc))
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"gc-{stamp}.json"
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"results: {out}")
        v = doc["verdicts"]
        return 0 if all(bool(x) for k, x in v.items() if k != "speedup") else 1
    finally:
        if not args.env:
            rgw.stop(state)
            log("RGW stopped")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
