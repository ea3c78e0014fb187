"""One workflow, one pass: plan, add the finalizer if needed, delete what is due, record
the outcome on the workflow, remove the finalizer when done (or when out of time).

Writes are few and guarded: the record and finalizer go in one merge patch; a patch that
changes finalizers carries the resourceVersion it was computed from (409 -> read again,
recompute, retry), and only this controller's finalizer is ever added or removed, so
Argo's own (`workflows.argoproj.io/artifact-gc`) is never touched. In a dry run nothing is
written at all: the plan goes to the sink instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argosy.argo.kube import Kube, KubeConflict, KubeError, KubeNotFound
from argosy.argo.location import Target
from argosy.argo.resources import WORKFLOWS
from argosy.argo.workflow import (
    FINALIZER,
    Workflow,
    artifact_target,
    parse_workflow,
    recorded_repository,
)
from argosy.artifacts.errors import ArtifactError
from argosy.artifacts.protocol import Driver
from argosy.gc.deleter import ArtifactOutcome, Deleter, LeadershipLost
from argosy.gc.events import EventRecorder, workflow_ref
from argosy.gc.lookups import ClusterReader, PolicyBook
from argosy.gc.metrics import Metrics
from argosy.gc.outcome import ANNOTATION, Failure, GcRecord, Leak, encode_record, read_record
from argosy.gc.plan import Action, Decision, Plan, make_plan
from argosy.gc.policy import GcPolicy
from argosy.gc.settings import GcSettings
from argosy.gc.storage import DriverFactory, cause_of

log = logging.getLogger("argosy.gc")
PlanSink = Callable[[dict[str, Any]], None]


@dataclass
class ReconcileResult:
    key: tuple[str, str]
    deleted: int = 0  # artifacts
    objects: int = 0
    bytes: int = 0
    failures: list[Failure] = field(default_factory=list)
    busy: bool = False  # some artifact's bucket was busy: try again soon
    interrupted: bool = False  # leadership lost: nothing recorded
    requeue_at: datetime | None = None  # something becomes due then
    retry: bool = False  # failed: try again after backoff
    finalizer: str | None = None  # added, removed, forced
    attempts: int = 0
    error: str | None = None  # the pass could not run (e.g. the policy was unreadable)

    @property
    def failed(self) -> bool:
        return bool(self.failures)


class Reconciler:
    def __init__(
        self,
        *,
        kube: Kube,
        reader: ClusterReader,
        policies: PolicyBook,
        drivers: DriverFactory,
        deleter: Deleter,
        events: EventRecorder,
        metrics: Metrics,
        settings: GcSettings,
        clock: Callable[[], datetime],
        fence: Callable[[], bool] = lambda: True,
        sink: PlanSink | None = None,
    ) -> None:
        self.kube, self.reader, self.policies = kube, reader, policies
        self.drivers, self.deleter, self.events = drivers, deleter, events
        self.metrics, self.settings, self.clock = metrics, settings, clock
        self.fence, self.sink = fence, sink
        # outcomes deleted but not yet recorded on their workflow (by uid): the next pass
        # starts from them, so what was deleted is counted once and recorded when it can be
        self._unwritten: dict[str, GcRecord] = {}
        self._unwritten_lock = threading.Lock()

    def _last_record(self, wf: Workflow, stored: GcRecord) -> GcRecord:
        with self._unwritten_lock:
            pending = self._unwritten.get(wf.uid)
        return pending if pending is not None else stored

    def _keep_unwritten(self, wf: Workflow, record: GcRecord | None) -> None:
        with self._unwritten_lock:
            if record is None:
                self._unwritten.pop(wf.uid, None)
            else:
                self._unwritten[wf.uid] = record

    # -- the pass ------------------------------------------------------------------------
    def reconcile(self, wf: Workflow) -> ReconcileResult:
        result = ReconcileResult(wf.key)
        self.metrics.inc("argosy_gc_reconciles_total")
        now = self.clock()
        stored = read_record(wf.annotations)
        record = self._last_record(wf, stored)
        try:
            policy, plan = self._plan(wf, now, record)
        except ArtifactError as error:  # the policy could not be read: nothing on a guess
            log.warning("%s: %s", wf.ref, error)
            result.retry, result.error = True, str(error)
            return result
        if self.settings.dry_run or plan.dry_run:
            self._report(wf, plan, now)
            result.requeue_at = plan.next_check
            return result
        if wf.gone:
            self._keep_unwritten(wf, None)
            return self._gone(wf, plan, record, result)
        if plan.needs_finalizer and not wf.deleting and FINALIZER not in wf.finalizers:
            if not self.fence():
                result.interrupted = True
                return result
            updated = self._add_finalizer(wf)
            if updated is None:
                return result
            wf = updated
            result.finalizer = "added"
        outcomes, busy = self._delete(wf, plan.deletions)
        if any(isinstance(o.error, LeadershipLost) for _, o in outcomes):
            result.interrupted = True
            return result
        result.busy = bool(busy)
        new_record = self._record(record, outcomes, now, result)
        after = make_plan(
            wf, policy, now, default=self.settings.default_strategy, record=new_record
        )
        result.requeue_at = after.next_check
        finalizers = list(wf.finalizers)
        if FINALIZER in finalizers:
            if wf.deleting:
                left = [d for d in after.decisions if d.action is Action.DELETE]
                if not left:
                    finalizers.remove(FINALIZER)
                    result.finalizer = "removed"
                elif self._out_of_time(wf, new_record, now):
                    new_record = new_record.with_leaks(self._leaks(left, outcomes))
                    finalizers.remove(FINALIZER)
                    result.finalizer = "forced"
            elif not after.needs_finalizer:
                finalizers.remove(FINALIZER)
                result.finalizer = "removed"
        if new_record != stored or finalizers != list(wf.finalizers):
            if not self.fence():
                result.interrupted = True
                return result
            try:
                self._write(wf, new_record, finalizers, now)
                self._keep_unwritten(wf, None)
            except KubeError as error:
                # the deletions happened and are counted; the record waits for the next pass
                log.warning("%s: could not record the GC outcome: %s", wf.ref, error)
                self._keep_unwritten(wf, new_record)
                result.retry = True
                result.error = f"deleted, but the outcome could not be recorded: {error}"
                if result.finalizer in ("removed", "forced"):
                    result.finalizer = None
        self._tell(wf, outcomes, result, new_record)
        return result

    # -- pieces --------------------------------------------------------------------------
    def _plan(self, wf: Workflow, now: datetime, record: GcRecord) -> tuple[GcPolicy | None, Plan]:
        """The plan under the namespace's policy; one that deletes anything is made again
        under the policy as it is now (deleting cannot be undone, and the cached copy may
        be up to the lookup TTL old)."""
        policy = self.policies.get(wf.namespace)
        plan = make_plan(wf, policy, now, default=self.settings.default_strategy, record=record)
        if plan.deletions and not self.settings.dry_run:
            current = self.policies.fresh(wf.namespace)
            if current != policy:
                policy = current
                plan = make_plan(
                    wf, policy, now, default=self.settings.default_strategy, record=record
                )
        return policy, plan

    def _entry_for(self, wf: Workflow) -> Callable[[], Mapping[str, Any]]:
        memo: list[Mapping[str, Any]] = []

        def entry() -> Mapping[str, Any]:
            if not memo:
                memo.append(
                    recorded_repository(
                        wf, self.reader.configmap, default=self.settings.default_repository
                    )
                )
            return memo[0]

        return entry

    def _delete(
        self, wf: Workflow, due: list[Decision]
    ) -> tuple[list[tuple[Decision, ArtifactOutcome]], list[Decision]]:
        entry = self._entry_for(wf)
        outcomes: list[tuple[Decision, ArtifactOutcome]] = []
        ready: list[tuple[Decision, Target, Driver]] = []
        for decision in due:  # resolving is cheap: the repository and drivers are cached
            artifact = decision.artifact
            try:
                target = artifact_target(decision.artifact, entry)
                ready.append((decision, target, self.drivers.open(target, wf.namespace)))
            except ArtifactError as error:
                outcomes.append(
                    (
                        decision,
                        ArtifactOutcome(
                            artifact.id, artifact.key or "", remaining=None, error=error
                        ),
                    )
                )
        with ExitStack() as lanes:
            # one lane per bucket for this workflow; a bucket whose lanes are all taken by
            # other workflows is left for a retry instead of holding this worker
            entered = {
                b
                for b in sorted({t.bucket_id for _, t, _ in ready})
                if lanes.enter_context(self.deleter.lane(b))
            }
            work = [item for item in ready if item[1].bucket_id in entered]
            busy = [d for d, t, _ in ready if t.bucket_id not in entered]
            results = self.deleter.each(
                lambda item: self.deleter.delete(item[2], item[1], item[0].artifact.id), work
            )
        outcomes += [(d, o) for (d, _, _), o in zip(work, results, strict=False)]
        return outcomes, busy

    def _record(
        self,
        record: GcRecord,
        outcomes: list[tuple[Decision, ArtifactOutcome]],
        now: datetime,
        result: ReconcileResult,
    ) -> GcRecord:
        done = [(d, o) for d, o in outcomes if o.ok]
        failures = [
            Failure(o.artifact_id, o.url, cause_of(o.error), str(o.error))
            for _, o in outcomes
            if o.error is not None
        ]
        objects, size = sum(o.objects for _, o in outcomes), sum(o.bytes for _, o in outcomes)
        for decision, _ in done:
            if decision.triggered_at is not None:
                self.metrics.observe_lag((now - decision.triggered_at).total_seconds())
        self.metrics.inc("argosy_gc_objects_deleted_total", objects)
        self.metrics.inc("argosy_gc_bytes_deleted_total", size)
        self.metrics.inc("argosy_gc_artifacts_deleted_total", len(done))
        for failure in failures:
            self.metrics.inc("argosy_gc_failures_total", cause=failure.cause)
        result.deleted, result.objects, result.bytes = len(done), objects, size
        result.failures = failures
        result.retry = bool(failures)
        if not outcomes:
            return record
        new = record.with_done([o.artifact_id for _, o in done], objects, size)
        new = new.with_failures(failures, now)
        result.attempts = new.attempts
        return new

    def _out_of_time(self, wf: Workflow, record: GcRecord, now: datetime) -> bool:
        rules = self.settings.finalizer
        since = wf.deletion_timestamp or now
        return record.attempts >= rules.max_attempts or now - since >= rules.deadline

    @staticmethod
    def _leaks(
        left: list[Decision], outcomes: list[tuple[Decision, ArtifactOutcome]]
    ) -> list[Leak]:
        by_id = {o.artifact_id: o for _, o in outcomes}
        leaks = []
        for decision in left:
            outcome = by_id.get(decision.artifact.id)
            url = (
                outcome.url
                if outcome is not None and outcome.url
                else decision.artifact.key or decision.artifact.id
            )
            cause = (
                cause_of(outcome.error) if outcome is not None and outcome.error else "NotAttempted"
            )
            where = url if url.endswith("/") else f"{url} and {url}/"
            leaks.append(Leak(where, outcome.remaining if outcome is not None else None, cause))
        return leaks

    def _fresh(self, wf: Workflow) -> Workflow | None:
        try:
            return parse_workflow(self.kube.get(WORKFLOWS, wf.namespace, wf.name))
        except KubeNotFound:
            return None

    def _add_finalizer(self, wf: Workflow) -> Workflow | None:
        current: Workflow | None = wf
        for _ in range(3):
            if current is None or current.deleting:
                return current
            if FINALIZER in current.finalizers:
                return current
            patch = {
                "metadata": {
                    "resourceVersion": current.resource_version,
                    "finalizers": [*current.finalizers, FINALIZER],
                }
            }
            try:
                return parse_workflow(self.kube.patch(WORKFLOWS, wf.namespace, wf.name, patch))
            except KubeConflict:
                current = self._fresh(wf)
            except KubeNotFound:
                return None
        raise KubeConflict(409, "Conflict", f"{wf.ref}: could not add the finalizer")

    def _write(self, wf: Workflow, record: GcRecord, finalizers: list[str], now: datetime) -> None:
        annotation = encode_record(record, now)
        current: Workflow | None = wf
        for _ in range(3):
            if current is None:
                return
            meta: dict[str, Any] = {"annotations": {ANNOTATION: annotation}}
            if finalizers != list(wf.finalizers):
                removed = set(wf.finalizers) - set(finalizers)
                meta["finalizers"] = [f for f in current.finalizers if f not in removed]
                meta["resourceVersion"] = current.resource_version
            try:
                self.kube.patch(WORKFLOWS, wf.namespace, wf.name, {"metadata": meta})
                return
            except KubeConflict:
                current = self._fresh(wf)
            except KubeNotFound:
                return
        raise KubeConflict(409, "Conflict", f"{wf.ref}: could not record the GC outcome")

    def _tell(
        self,
        wf: Workflow,
        outcomes: list[tuple[Decision, ArtifactOutcome]],
        result: ReconcileResult,
        record: GcRecord,
    ) -> None:
        involved = workflow_ref(wf.namespace, wf.name, wf.uid)
        by_cause: dict[str, list[ArtifactOutcome]] = {}
        for _, outcome in outcomes:
            if outcome.error is not None:
                by_cause.setdefault(cause_of(outcome.error), []).append(outcome)
        for cause, failed in sorted(by_cause.items()):
            shown = "; ".join(str(o.error) for o in failed[:3])
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            self.events.warn(
                wf.namespace,
                involved,
                f"ArtifactGC{cause}",
                f"{len(failed)} artifact(s) not deleted: {shown}{more}; attempt {record.attempts}",
            )
        if result.finalizer == "forced":
            self.metrics.inc("argosy_gc_finalizers_forced_total")
            leaks = ", ".join(
                f"{leak.url}: {leak.objects if leak.objects is not None else '?'}"
                f" object(s) ({leak.cause})"
                for leak in record.leaks[:10]
            )
            more = f" and {record.more_leaks} more" if record.more_leaks else ""
            self.events.warn(
                wf.namespace,
                involved,
                "ArtifactGCFinalizerForced",
                f"removed {FINALIZER} after {record.attempts} failed attempt(s) "
                f"so the workflow can be deleted; left behind: {leaks}{more}",
            )
        if result.deleted:
            log.info(
                "%s: deleted %d artifact(s), %d object(s), %d bytes",
                wf.ref,
                result.deleted,
                result.objects,
                result.bytes,
            )

    def _gone(
        self, wf: Workflow, plan: Plan, record: GcRecord, result: ReconcileResult
    ) -> ReconcileResult:
        """Best effort for a workflow deleted without our finalizer (added too late, the
        policy changed, or someone removed it by hand): what is due, once, nothing
        recorded (there is no object left to record it on)."""
        if record.forced:  # we gave up on these already, and said so
            return result
        outcomes, _ = self._delete(wf, plan.deletions)
        self._record(record, outcomes, self.clock(), result)
        result.retry = False
        self._tell(wf, outcomes, result, record)
        return result

    def _report(self, wf: Workflow, plan: Plan, now: datetime) -> None:
        if self.sink is None:
            return
        entry = self._entry_for(wf)
        for decision in plan.deletions:
            line: dict[str, Any] = {
                "namespace": wf.namespace,
                "workflow": wf.name,
                "uid": wf.uid,
                "artifact": decision.artifact.id,
                "action": "delete",
                "strategy": decision.strategy.value if decision.strategy else None,
                "source": decision.source.value if decision.source else None,
                "reason": decision.reason,
            }
            try:
                target = artifact_target(decision.artifact, entry)
                key = target.key
                line["url"] = target.url
                line["prefix"] = key if key.endswith("/") else key + "/"
            except ArtifactError as error:
                line["error"] = f"{cause_of(error)}: {error}"
            self.sink(line)
        has = FINALIZER in wf.finalizers
        action = None
        if plan.needs_finalizer and not has and not wf.deleting:
            action = "add-finalizer"
        elif has and (wf.deleting or not plan.needs_finalizer):
            action = "remove-finalizer"
        if action:
            self.sink(
                {
                    "namespace": wf.namespace,
                    "workflow": wf.name,
                    "uid": wf.uid,
                    "action": action,
                    "finalizer": FINALIZER,
                }
            )
