"""The controller: wires the pieces together and runs them, either as one pass (`--once`:
list everything, reconcile everything, exit) or as the long-running loop (informers
watching, workers reconciling, a periodic resync, sweeps, all behind the Lease).

Both modes share the queue and the workers, so the pass a test drives is the code the
Deployment runs. Leadership gates every write to storage (the deleter's fence) and the
work itself: a replica that does not hold the Lease keeps its caches warm and waits.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from argosy.argo import yamlpos
from argosy.argo.keys import workflow_prefix
from argosy.argo.kube import Kube, KubeError
from argosy.argo.location import Target
from argosy.argo.names import DEFAULT_KEY_FORMAT
from argosy.argo.names import REPOSITORIES_CONFIGMAP as DEFAULT_CONFIGMAP
from argosy.argo.resources import WORKFLOWS
from argosy.argo.workflow import Workflow, parse_workflow, recorded_repository
from argosy.artifacts.errors import ArtifactError
from argosy.artifacts.protocol import Driver
from argosy.gc.deleter import Deleter
from argosy.gc.events import EventRecorder
from argosy.gc.informer import Informer, PolicyObject, parse_policy_object
from argosy.gc.leader import LeaderElector
from argosy.gc.lookups import ClusterReader, PolicyBook
from argosy.gc.metrics import Metrics
from argosy.gc.outcome import Failure
from argosy.gc.policy import POLICIES, POLICY_NAME, SweepPolicy, sweep_condition
from argosy.gc.reconciler import PlanSink, Reconciler, ReconcileResult
from argosy.gc.settings import GcSettings
from argosy.gc.storage import DriverFactory
from argosy.gc.sweep import (
    SweepRefused,
    SweepReport,
    repository_target,
    run_sweeps,
    sweep_scope,
)
from argosy.gc.workqueue import FairQueue, Key

log = logging.getLogger("argosy.gc")


def utc_now() -> datetime:
    return datetime.now(UTC)


class NotLeader(Exception):
    """Another replica holds the Lease; a one-off pass refuses to run beside it."""


@dataclass
class PassSummary:
    workflows: int = 0
    artifacts: int = 0
    objects: int = 0
    bytes: int = 0
    failures: list[tuple[str, Failure]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # reconciles that raised
    finalizers: dict[str, int] = field(default_factory=dict)
    sweeps: list[SweepReport] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.errors or any(s.errors for s in self.sweeps))


class Controller:
    def __init__(
        self,
        kube: Kube,
        settings: GcSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        sink: PlanSink | None = None,
        metrics: Metrics | None = None,
        decorate_driver: Callable[[Driver], Driver] = lambda driver: driver,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.kube, self.settings, self.clock = kube, settings, clock
        self.metrics = metrics or Metrics()
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        write = not settings.dry_run
        self.events = EventRecorder(
            kube, clock=clock, interval=settings.event_interval, write=write
        )
        self.reader = ClusterReader(kube, ttl=settings.lookup_ttl, monotonic=monotonic)
        self.policies = PolicyBook(
            kube,
            clock=clock,
            ttl=settings.lookup_ttl,
            write=write,
            events=self.events,
            monotonic=monotonic,
        )
        self.elector = (
            LeaderElector(kube, settings.lease, clock=clock)
            if settings.lease is not None and write
            else None
        )
        self.fence: Callable[[], bool] = self.elector.is_leader if self.elector else (lambda: True)
        self.deleter = Deleter(settings.delete, fence=self.fence)
        self.drivers = DriverFactory(self.reader.secret, settings.storage, decorate=decorate_driver)
        self.reconciler = Reconciler(
            kube=kube,
            reader=self.reader,
            policies=self.policies,
            drivers=self.drivers,
            deleter=self.deleter,
            events=self.events,
            metrics=self.metrics,
            settings=settings,
            clock=clock,
            fence=self.fence,
            sink=sink,
        )
        self.queue = FairQueue(settings.queue_capacity, monotonic)
        scopes: list[str | None] = list(settings.namespaces) or [None]
        self.informers: list[Informer[Workflow]] = [
            Informer(
                kube,
                ns,
                on_change=self._changed,
                settings=settings.watch,
                metrics=self.metrics,
                rng=self.rng,
            )
            for ns in scopes
        ]
        # policies are watched too: an edit applies to planning at once, not after a TTL
        self.policy_informers: list[Informer[PolicyObject]] = [
            Informer(
                kube,
                ns,
                on_change=self._policy_changed,
                settings=settings.watch,
                metrics=self.metrics,
                rng=self.rng,
                resource=POLICIES,
                parse=parse_policy_object,
                on_synced=self._policies_synced,
            )
            for ns in scopes
        ]
        self.policies.live = lambda: all(i.watching for i in self.policy_informers)
        self._gone: dict[Key, Workflow] = {}
        self._lock = threading.Lock()
        self._summary = PassSummary()
        self._last_sweep: float | None = None
        self.metrics.gauges["argosy_gc_queue_depth"] = lambda: float(len(self.queue))
        self.metrics.gauges["argosy_gc_leader"] = lambda: float(self.fence())
        self.heartbeat = monotonic()

    # -- events from the informers -------------------------------------------------------
    def _changed(self, wf: Workflow) -> None:
        if wf.gone:
            with self._lock:
                self._gone[wf.key] = wf
        else:
            with self._lock:
                self._gone.pop(wf.key, None)
        self.queue.add(wf.key)

    def _policy_changed(self, obj: PolicyObject) -> None:
        if obj.name != POLICY_NAME:
            return
        try:
            changed = self.policies.observe(obj.namespace, None if obj.gone else obj.raw)
        except Exception:  # noqa: BLE001 - a bad policy is reported by its status, never fatal
            log.exception("judging ArtifactGCPolicy %s/%s", obj.namespace, obj.name)
            return
        if changed and self.policies.watched.is_set():
            # plan the namespace's workflows again under the policy as it is now
            for informer in self.informers:
                for key in informer.keys():
                    if key[0] == obj.namespace:
                        self.queue.add(key)

    def _policies_synced(self) -> None:
        if all(i.synced.is_set() for i in self.policy_informers):
            self.policies.watched.set()

    def _lookup(self, key: Key) -> Workflow | None:
        with self._lock:
            gone = self._gone.pop(key, None)
        if gone is not None:
            return gone
        for informer in self.informers:
            wf = informer.get(key)
            if wf is not None:
                return wf
        return None

    # -- workers -------------------------------------------------------------------------
    def _backoff(self, attempts: int) -> float:
        window = min(
            self.settings.failure_backoff_cap,
            self.settings.failure_backoff * 2 ** max(0, attempts - 1),
        )
        return self.rng.uniform(window / 2, window)

    def _schedule(self, key: Key, result: ReconcileResult, once: bool) -> None:
        if result.busy:
            self.queue.add_after(key, 0.2)
        elif once:
            return
        elif result.interrupted:
            self.queue.add_after(key, 1.0)
        elif result.retry:
            self.queue.add_after(key, self._backoff(max(1, result.attempts)))
        elif result.requeue_at is not None:
            wait = (result.requeue_at - self.clock()).total_seconds()
            self.queue.add_after(key, max(1.0, min(wait, self.settings.watch.resync)))

    def _account(self, key: Key, result: ReconcileResult) -> None:
        with self._lock:
            s = self._summary
            s.workflows += 1
            s.artifacts += result.deleted
            s.objects += result.objects
            s.bytes += result.bytes
            s.failures += [(f"{key[0]}/{key[1]}", f) for f in result.failures]
            if result.finalizer:
                s.finalizers[result.finalizer] = s.finalizers.get(result.finalizer, 0) + 1
            if result.error:
                s.errors.append(f"{key[0]}/{key[1]}: {result.error}")

    def _work_one(self, key: Key, once: bool) -> None:
        try:
            if self.elector is not None and not self.elector.is_leader():
                if not once:
                    self.queue.add_after(
                        key, self.settings.lease.retry_period if self.settings.lease else 1.0
                    )
                return
            wf = self._lookup(key)
            if wf is None:
                return
            result = self.reconciler.reconcile(wf)
            self._account(key, result)
            self._schedule(key, result, once)
        except KubeError as error:  # e.g. RBAC refused a patch: say so, retry later
            log.warning("reconciling %s/%s: Kubernetes API: %s", *key, error)
            with self._lock:
                self._summary.errors.append(f"{key[0]}/{key[1]}: {error}")
            if not once:
                self.queue.add_after(key, self._backoff(1))
        except Exception as error:  # noqa: BLE001 - one workflow never stops the controller
            log.exception("reconciling %s/%s failed", *key)
            with self._lock:
                self._summary.errors.append(f"{key[0]}/{key[1]}: {error}")
            if not once:
                self.queue.add_after(key, self._backoff(1))
        finally:
            self.queue.done(key)

    def _worker(self, stop: threading.Event, once: bool) -> None:
        while not stop.is_set():
            self.heartbeat = self.monotonic()
            if not once and self.elector is not None and not self.elector.is_leader():
                stop.wait(0.2)  # a follower keeps its queue and waits, it does not spin
                continue
            key = self.queue.get(timeout=0.02 if once else 0.2)
            if key is None:
                if once and len(self.queue) == 0 and self.queue.idle:
                    return
                continue
            self._work_one(key, once)

    def _run_workers(self, stop: threading.Event, once: bool) -> list[threading.Thread]:
        threads = [
            threading.Thread(
                target=self._worker, args=(stop, once), daemon=True, name=f"argosy-gc-worker-{i}"
            )
            for i in range(max(1, self.settings.workers))
        ]
        for thread in threads:
            thread.start()
        return threads

    # -- one pass ------------------------------------------------------------------------
    def acquire(self, timeout: float, *, wait: Callable[[float], Any] = time.sleep) -> None:
        """Take the Lease for a one-off pass, waiting up to `timeout` seconds for it."""
        if self.elector is None:
            return
        lease = self.elector.settings
        end = self.monotonic() + timeout
        while not self.elector.try_acquire_or_renew():
            if self.monotonic() >= end:
                why = self.elector.last_error
                raise NotLeader(
                    f"could not take the Lease {lease.namespace}/{lease.name}: "
                    + (why if why else "it is held by another replica; not running beside it")
                )
            wait(min(1.0, lease.retry_period))

    def run_once(self, *, lease_timeout: float = 0.0, sweeps: bool = True) -> PassSummary:
        """List every workflow in scope and reconcile each once; then the sweeps."""
        self._summary = PassSummary()
        self.acquire(lease_timeout)
        stop = threading.Event()
        renew = None
        if self.elector is not None:
            renew = threading.Thread(target=self.elector.run, args=(stop,), daemon=True)
            renew.start()
        try:
            for policies in self.policy_informers:
                policies.relist()
            self.check_policies()
            for informer in self.informers:
                informer.relist()
                for key in informer.keys():  # every workflow, changed since last time or not
                    self.queue.add(key)
            for thread in self._run_workers(stop, once=True):
                thread.join()
            if sweeps:
                self._summary.sweeps = self.sweep()
        finally:
            stop.set()
            if renew is not None:
                renew.join(timeout=5)
            if self.elector is not None:
                self.elector.release()
        return self._summary

    # -- the long run --------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        threads: list[threading.Thread] = []
        if self.elector is not None:
            threads.append(
                threading.Thread(
                    target=self.elector.run, args=(stop,), name="argosy-gc-lease", daemon=True
                )
            )
        informers: list[Informer[Any]] = [*self.policy_informers, *self.informers]
        threads += [
            threading.Thread(
                target=i.run, args=(stop,), daemon=True, name=f"argosy-gc-watch-{i.scope}"
            )
            for i in informers
        ]
        threads.append(
            threading.Thread(
                target=self._resync_loop, args=(stop,), daemon=True, name="argosy-gc-resync"
            )
        )
        for thread in threads:
            thread.start()
        workers = self._run_workers(stop, once=False)
        stop.wait()
        self.queue.close()
        for informer in informers:
            informer.close()
        for thread in threads + workers:
            thread.join(timeout=10)
        if self.elector is not None:
            self.elector.release()
        self.deleter.close()

    def _resync_loop(self, stop: threading.Event) -> None:
        offset = 0
        while not stop.wait(self.settings.watch.resync):
            keys = [k for informer in self.informers for k in informer.keys()]
            if keys:  # rotate, so a full queue does not always drop the same keys
                offset = (offset + 1) % len(keys)
                for key in keys[offset:] + keys[:offset]:
                    self.queue.add(key)
            self.check_policies()
            interval = self.settings.sweep_interval
            if (
                interval > 0
                and (self._last_sweep is None or self.monotonic() - self._last_sweep >= interval)
                and self.fence()
            ):
                self._last_sweep = self.monotonic()
                self.sweep()

    def check_policies(self) -> list[str]:
        """Judge every `default` policy in scope now, so a rejected edit is reported even
        in a namespace with no workflows yet; returns the namespaces that have one."""
        scopes: list[str | None] = list(self.settings.namespaces) or [None]
        namespaces: list[str] = []
        for scope in scopes:
            try:
                found = self.kube.list(POLICIES, scope)
            except KubeError as error:
                log.warning("listing ArtifactGCPolicies failed: %s", error)
                continue
            for obj in found:
                meta = obj.get("metadata") or {}
                if meta.get("name") == POLICY_NAME:
                    namespaces.append(str(meta.get("namespace")))
                    try:
                        self.policies.get(namespaces[-1])
                    except Exception as error:  # noqa: BLE001 - reported, never fatal
                        log.warning("policy of %s: %s", namespaces[-1], error)
        return sorted(set(namespaces))

    def ready(self) -> bool:
        informers: list[Informer[Any]] = [*self.policy_informers, *self.informers]
        return all(i.synced.is_set() for i in informers)

    # -- sweeps --------------------------------------------------------------------------
    def _workflows(self, namespace: str) -> list[Workflow]:
        return [
            parse_workflow(i)
            for items, _ in self.kube.list_pages(WORKFLOWS, namespace)
            for i in items
        ]

    def _workflow_prefixes(self, workflows: list[Workflow], target: Target) -> list[str]:
        """The folders of the finished workflows whose repository is `target`'s: where a
        killed pod's upload of theirs can be (a running workflow's may still complete)."""
        prefixes = []
        for wf in workflows:
            if not wf.completed:
                continue
            try:
                entry = recorded_repository(
                    wf, self.reader.configmap, default=self.settings.default_repository
                )
            except ArtifactError:
                continue
            theirs = repository_target("", entry)
            if theirs is None or theirs.bucket_id != target.bucket_id:
                continue
            kind_config = entry.get(theirs.kind) or {}
            key_format = str(
                entry.get("keyFormat") or kind_config.get("keyFormat") or DEFAULT_KEY_FORMAT
            )
            prefixes.append(
                workflow_prefix(
                    key_format,
                    {
                        "workflow.name": wf.name,
                        "workflow.namespace": wf.namespace,
                        "workflow.uid": wf.uid,
                    },
                    created=wf.created,
                )
            )
        return [p for p in prefixes if p]

    def _swept(self, namespace: str, *, ok: bool, reason: str, message: str) -> None:
        """The policy's `Swept` condition says how its last sweep went (not in a dry run)."""
        if self.settings.dry_run:
            return
        try:
            policy = self.kube.find(POLICIES, namespace, POLICY_NAME)
            if policy is None:
                return
            conditions = sweep_condition(
                policy.get("status") or {}, ok=ok, reason=reason, message=message, now=self.clock()
            )
            if conditions is not None:
                self.kube.patch(
                    POLICIES,
                    namespace,
                    POLICY_NAME,
                    {"status": {"conditions": conditions}},
                    subresource="status",
                )
        except KubeError as error:
            log.warning("could not record the sweep of %s in its policy: %s", namespace, error)

    def sweep(self) -> list[SweepReport]:
        reports: list[SweepReport] = []
        for namespace in self.check_policies():
            try:
                policy = self.policies.get(namespace)
            except Exception as error:  # noqa: BLE001 - a sweep never stops the controller
                log.warning("sweep of %s skipped: %s", namespace, error)
                continue
            if policy is None or policy.sweeps is None:
                continue
            try:
                configmap = self.reader.configmap(namespace, DEFAULT_CONFIGMAP)
            except Exception as error:  # noqa: BLE001
                log.warning("sweep of %s skipped: %s", namespace, error)
                continue
            data = (configmap or {}).get("data") or {}
            names = list(policy.sweeps.repositories) or sorted(data)
            swept = [
                self._sweep_one(namespace, name, data.get(name), policy.sweeps) for name in names
            ]
            reports += swept
            errors = [e for r in swept for e in r.errors]
            refused = [e for r in swept for e in r.refused]
            self._swept(
                namespace,
                ok=not errors,
                reason="NoKeyPrefix" if refused else "Failed" if errors else "Swept",
                message="; ".join(errors)[:1024] or f"swept {len(swept)} repository(ies)",
            )
        return reports

    def _sweep_one(
        self, namespace: str, name: str, raw: str | None, sweeps: SweepPolicy
    ) -> SweepReport:
        where = f"{namespace}/{DEFAULT_CONFIGMAP}[{name}]"
        try:
            entry = yamlpos.safe_load(raw) if raw else None
        except yaml.YAMLError:
            entry = None
        target = repository_target(name, entry) if isinstance(entry, dict) else None
        if target is None:
            return SweepReport(where, errors=[f"{where}: no s3/oss/local repository with a bucket"])
        try:
            scope = sweep_scope(target, sweeps.prefix, f"repository {where}")
        except SweepRefused as refused:
            log.warning("sweep refused: %s", refused)
            return SweepReport(where, errors=[str(refused)], refused=[str(refused)])
        try:
            driver = self.drivers.open(target, namespace)
        except Exception as error:  # noqa: BLE001
            return SweepReport(where, errors=[f"{where}: {error}"])
        workflows: list[Workflow] = []

        def listed() -> list[Workflow]:
            if not workflows:
                workflows.extend(self._workflows(namespace))
            return workflows

        try:
            report = run_sweeps(
                driver,
                scope,
                namespace=namespace,
                uploads_after=sweeps.incomplete_uploads_after,
                orphans_after=sweeps.orphans_after,
                live_uids=lambda: {wf.uid for wf in listed()},
                workflow_prefixes=lambda: self._workflow_prefixes(listed(), target),
                now=self.clock(),
                dry_run=self.settings.dry_run,
                fence=self.fence,
            )
        except KubeError as error:
            return SweepReport(where, errors=[f"{where}: listing workflows failed: {error}"])
        log.info(
            "swept %s: %d upload(s) aborted, %d orphan(s) deleted",
            report.repository,
            report.uploads_aborted,
            report.orphans_deleted,
        )
        return report

    def close(self) -> None:
        self.queue.close()
        self.deleter.close()
        self.drivers.close()
