"""The GC at scale: directory artifacts deleted by the running controller (informers
watching the Kubernetes test API, its workers and deleter, default settings) when their
workflows complete, timed per workflow from completion to the last object gone.

Why the driver is wrapped: "gone" is the moment RGW answered the batch delete holding a
workflow's last key, known exactly and without polling RGW (polling 200 prefixes would
load the server being measured). The bucket is listed afterwards to prove it is empty.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import psutil

from bench import gc_kube, gc_objects, noise
from bench.rgw import Rgw
from bench.rgw import gc as rgw_gc

SETTLE_TIMEOUT_S = 120  # the controller's first list and pass over the running workflows
RECORD_TIMEOUT_S = 120  # every outcome annotation written after the last delete


class Recorder:
    """Every batch delete the controller's drivers make: per workflow, keys deleted and
    when the last of them went."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deleted: dict[int, int] = {}
        self.last: dict[int, float] = {}
        self.batches: list[int] = []
        self.batch_seconds = 0.0  # summed over batches: RGW's time, plus the client's
        self.drivers_built = 0  # the controller's DriverFactory decorates each one it builds

    def wrap(self, driver: Any) -> Any:
        with self.lock:
            self.drivers_built += 1
        return _Recording(driver, self)

    def total(self) -> int:
        with self.lock:
            return sum(self.deleted.values())

    def of(self, workflow: int) -> int:
        with self.lock:
            return self.deleted.get(workflow, 0)

    def note(self, keys: Sequence[str], failed: set[str], started: float, ended: float) -> None:
        with self.lock:
            self.batches.append(len(keys))
            self.batch_seconds += ended - started
            for key in keys:
                if key not in failed:
                    wf = gc_objects.workflow_of(key)
                    self.deleted[wf] = self.deleted.get(wf, 0) + 1
                    self.last[wf] = ended


class _Recording:
    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner, self._recorder = inner, recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def delete(self, keys: Sequence[str]) -> Any:
        started = time.monotonic()
        failures = self._inner.delete(keys)
        self._recorder.note(keys, {f.key for f in failures}, started, time.monotonic())
        return failures


@dataclass
class Meter:
    """Wall and CPU time of a phase: this process (and its reaped children), extra
    processes of ours (the test API), RGW's daemons, and everything else on the machine."""

    rgw: Rgw
    extra: list[int] = field(default_factory=list)
    result: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        me = psutil.Process().cpu_times()
        total = me.user + me.system + me.children_user + me.children_system
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return float(total)

    def __enter__(self) -> Meter:
        self._watch = noise.CpuWatch(noise.daemon_pids(self.rgw.state_dir))
        self._watch.start()
        self._ours, self._start = self._cpu(self.extra), time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        seconds = time.monotonic() - self._start
        ours = self._cpu(self.extra) - self._ours
        server, foreign = self._watch.stop(ours)
        self.result.update(
            seconds=seconds,
            client_cpu_s=ours,
            rgw_cpu_s=server,
            other_cpu_s=foreign,
            other_share=foreign / (seconds * (psutil.cpu_count() or 1)),
        )


def settings(*namespaces: str) -> Any:
    """The controller's defaults, without a Lease (one replica) and with long watches."""
    from argosy.gc.settings import GcSettings, WatchSettings

    return GcSettings(
        namespaces=namespaces,
        lease=None,
        watch=replace(WatchSettings(), watch_timeout=60, resync=3600),
    )


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "p50_s": statistics.median(ordered),
        "p95_s": p95,
        "max_s": ordered[-1],
        "mean_s": statistics.fmean(ordered),
    }


def controller_deletes(
    rgw: Rgw,
    api: gc_kube.KubeApi,
    bucket: str,
    namespace: str,
    indexes: list[int],
    per_tree: int,
    *,
    one_at_a_time: bool,
    via: Rgw | None = None,
) -> dict[str, Any]:
    """Workflows `indexes` (one directory artifact of `per_tree` objects each) are created
    Running; the controller starts watching; then they complete, all at once or each
    after the previous one's artifacts are gone. Returns times and the lags. `via`: the
    endpoint the namespace's repository names (a delay proxy in front of `rgw`)."""
    from kubernetes import client

    from argosy.argo.kube import Kube
    from argosy.gc.controller import Controller
    from argosy.gc.outcome import ANNOTATION

    kube = Kube.connect(str(api.kubeconfig))
    api_client = client.ApiClient(kube.configuration)  # the bench's own typed client
    custom = client.CustomObjectsApi(api_client)
    gc_kube.setup_namespace(
        api_client, via or rgw, bucket, namespace, policy="OnWorkflowCompletion"
    )
    names = {i: gc_objects.tree_prefix(i).split("/", 1)[0] for i in indexes}
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: gc_kube.create(
                    custom,
                    namespace,
                    gc_kube.workflow(
                        names[i], [gc_objects.tree_prefix(i)], "Running", directory=True
                    ),
                ),
                indexes,
            )
        )
    recorder = Recorder()
    controller = Controller(kube, settings(namespace), decorate_driver=recorder.wrap)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    marks: dict[int, float] = {}
    meter = Meter(rgw, [api.pid])
    rss_samples: list[float] = []
    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not (controller.ready() and len(controller.queue) == 0 and controller.queue.idle):
            if time.monotonic() > deadline:
                raise RuntimeError("the controller did not settle on the running workflows")
            time.sleep(0.05)
        time.sleep(0.5)  # let the last reconciles of the running workflows return
        total = per_tree * len(indexes)
        limit = max(300.0, total / 50)  # even at 50 objects/s, a bound
        with meter:
            for i in indexes:
                marks[i] = time.monotonic()
                gc_kube.complete(custom, namespace, names[i])
                while one_at_a_time and recorder.of(i) < per_tree:
                    if time.monotonic() - marks[i] > limit:
                        raise RuntimeError(f"{names[i]}: not deleted within {limit:.0f} s")
                    time.sleep(0.002)
            while recorder.total() < total:
                rss_samples.append(psutil.Process().memory_info().rss / (1 << 20))
                if time.monotonic() - marks[indexes[0]] > limit:
                    raise RuntimeError(
                        f"{recorder.total()} of {total} objects deleted after {limit:.0f} s"
                    )
                time.sleep(0.01)
        left = gc_objects.count(gc_objects.driver(rgw, bucket))
        deadline = time.monotonic() + RECORD_TIMEOUT_S
        while True:
            items = gc_kube.list_workflows(custom, namespace)
            recorded = sum(
                1 for wf in items if ANNOTATION in (wf["metadata"].get("annotations") or {})
            )
            if recorded == len(indexes) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        recorded_at = time.monotonic()
    finally:
        stop.set()
        thread.join(30)
        controller.close()
        kube.close()
    first, last = min(marks.values()), max(recorder.last.values())
    lags = [recorder.last[i] - marks[i] for i in indexes]
    return {
        "workflows": len(indexes),
        "objects": recorder.total(),
        "left_in_bucket": left,
        "seconds": last - first,
        "rate": recorder.total() / (last - first),
        "batches": len(recorder.batches),
        "drivers_built": recorder.drivers_built,
        "batch_seconds": recorder.batch_seconds,
        "batch_sizes": sorted(set(recorder.batches)),
        "recorded": recorded,
        "recorded_after_s": recorded_at - first,
        "completing_s": max(marks.values()) - first,
        "lag": quantiles(lags),
        "lags_s": [round(x, 4) for x in lags],
        "cpu": meter.result,
        "controller_cpu_s_per_1000_objects": 1000
        * meter.result["client_cpu_s"]
        / max(1, recorder.total()),
        "bench_rss_mib_max": max(rss_samples) if rss_samples else None,
    }


@dataclass(frozen=True)
class Scale:
    """The 100k case's settings: `trees` workflows of `objects / trees` objects each."""

    objects: int
    trees: int
    argo_objects: int
    seed: int
    fill_processes: int
    fill_threads: int


def _argo(rgw: Rgw, bucket: str, trees: list[int], log: Any, via: Rgw) -> dict[str, Any]:
    """Argo's way over `trees` (its requests to `via`), RGW's own garbage collection first."""
    rgw_gc(rgw)
    with Meter(rgw) as meter:
        done = gc_objects.argo_delete(via, bucket, [gc_objects.tree_prefix(i) for i in trees])
    target = gc_objects.driver(rgw, bucket)
    left = sum(gc_objects.count(target, gc_objects.tree_prefix(i) + "/") for i in trees)
    log(f"Argo's way: {done.objects} in {done.seconds:.1f} s ({done.rate:.0f}/s)")
    if left:
        raise RuntimeError(f"Argo's way left {left} objects")
    return {
        "trees": trees,
        "objects": done.objects,
        "seconds": done.seconds,
        "rate": done.rate,
        "cpu": meter.result,
    }


def scale(
    rgw: Rgw, api: gc_kube.KubeApi, plan: Scale, log: Any, *, via: Rgw | None = None
) -> dict[str, Any]:
    """Every deletion (Argo's way, batch deletes alone, the controller) goes to `via` (a
    delay proxy in front of `rgw`) when given; creating and counting go to `rgw`. Create
    every tree; Argo's way on half the sample, then batch deletes without the
    controller (RGW's ceiling) on the same half, recreated after each; the controller
    deletes everything; the other half recreated and deleted Argo's way. The two halves
    bracket the controller's run in time, so load that comes and goes on the machine
    weighs on both ways alike."""
    per_tree = plan.objects // plan.trees
    if per_tree < 2:
        raise SystemExit("--objects must be at least twice --trees (files + a manifest)")
    indexes = list(range(plan.trees))
    bucket = f"gc-bench-{int(time.time())}"
    target = gc_objects.driver(rgw, bucket)
    target.create_bucket()
    out: dict[str, Any] = {"bucket": bucket, "per_tree": per_tree}

    def refill(trees: list[int]) -> dict[str, float]:
        done = gc_objects.fill(
            rgw,
            bucket,
            trees,
            per_tree - 1,
            processes=plan.fill_processes,
            threads=plan.fill_threads,
        )
        return {"objects": done.objects, "seconds": done.seconds}

    try:
        log(
            f"creating {per_tree * plan.trees} objects ({plan.trees} trees of {per_tree - 1} "
            f"files + manifest), {plan.fill_processes} processes x {plan.fill_threads} threads"
        )
        with Meter(rgw) as meter:
            filled = gc_objects.fill(
                rgw,
                bucket,
                indexes,
                per_tree - 1,
                processes=plan.fill_processes,
                threads=plan.fill_threads,
            )
        listed = gc_objects.count(target)
        out["create"] = {
            "objects": filled.objects,
            "listed": listed,
            "seconds": filled.seconds,
            "rate": filled.rate,
            "processes": plan.fill_processes,
            "threads": plan.fill_threads,
            "cpu": meter.result,
        }
        log(
            f"created {filled.objects} in {filled.seconds:.1f} s ({filled.rate:.0f}/s); "
            f"listed {listed}"
        )
        if listed != per_tree * plan.trees:
            raise RuntimeError(f"{listed} objects listed, {per_tree * plan.trees} expected")

        sample = (
            plan.trees
            if plan.argo_objects <= 0
            else min(plan.trees, max(2, -(-plan.argo_objects // per_tree)))
        )
        chosen = random.Random(plan.seed).sample(indexes, sample)
        before, after = sorted(chosen[: sample // 2]), sorted(chosen[sample // 2 :])
        log(f"Argo's way, first half: {len(before)} trees ({len(before) * per_tree} objects)")
        via = via or rgw
        halves = [_argo(rgw, bucket, before, log, via)]
        out["refill_before"] = refill(before)
        rgw_gc(rgw)
        with Meter(rgw) as meter:
            raw = gc_objects.batch_delete(
                via, bucket, [gc_objects.tree_prefix(i) for i in before], concurrency=4
            )
        out["batch_alone"] = {
            "objects": raw.objects,
            "seconds": raw.seconds,
            "rate": raw.rate,
            "concurrency": 4,
            "cpu": meter.result,
        }
        log(f"batch deletes alone: {raw.objects} in {raw.seconds:.1f} s ({raw.rate:.0f}/s)")
        out["refill_batch"] = refill(before)

        rgw_gc(rgw)
        log(f"argosy gc: the controller deletes {per_tree * plan.trees} objects")
        out["gc"] = controller_deletes(
            rgw, api, bucket, "scale", indexes, per_tree, one_at_a_time=False, via=via
        )
        log(
            f"argosy gc: {out['gc']['objects']} in {out['gc']['seconds']:.1f} s; "
            f"{out['gc']['left_in_bucket']} left"
        )

        out["refill_after"] = refill(after)
        log(f"Argo's way, second half: {len(after)} trees ({len(after) * per_tree} objects)")
        halves.append(_argo(rgw, bucket, after, log, via))
        objects = sum(h["objects"] for h in halves)
        seconds = sum(h["seconds"] for h in halves)
        out["argo"] = {
            "objects": objects,
            "seconds": seconds,
            "rate": objects / seconds,
            "trees": sorted(chosen),
            "seed": plan.seed,
            "sampled": sample < plan.trees,
            "extrapolated_s": per_tree * plan.trees * seconds / objects,
            "halves": halves,
            "cpu": {
                k: sum(h["cpu"][k] for h in halves)
                for k in ("seconds", "client_cpu_s", "rgw_cpu_s", "other_cpu_s")
            },
        }
        cpu = out["argo"]["cpu"]
        cpu["other_share"] = cpu["other_cpu_s"] / (cpu["seconds"] * (psutil.cpu_count() or 1))
    finally:
        try:
            gc_objects.remove_bucket(target)
        except Exception as error:  # noqa: BLE001 - cleanup must not hide the real error
            log(f"could not remove bucket {bucket}: {error}")
    return out


def single_lag(
    rgw: Rgw, api: gc_kube.KubeApi, workflows: int, files: int, log: Any
) -> dict[str, Any]:
    """Workflows completing one at a time, each with a small directory artifact."""
    bucket = f"gc-lag-{int(time.time())}"
    target = gc_objects.driver(rgw, bucket)
    target.create_bucket()
    try:
        indexes = list(range(workflows))
        gc_objects.fill(rgw, bucket, indexes, files, processes=1, threads=16)
        log(f"lag: {workflows} workflows completing one at a time")
        result = controller_deletes(rgw, api, bucket, "lag", indexes, files + 1, one_at_a_time=True)
    finally:
        try:
            gc_objects.remove_bucket(target)
        except Exception as error:  # noqa: BLE001
            log(f"could not remove bucket {bucket}: {error}")
    return result
