"""What is due for one workflow, now: a pure function of the workflow, the namespace
policy, the GC record and the time, so every rule is unit-tested with a fixed clock.

Triggers per effective strategy:
- OnWorkflowCompletion: the workflow completed (Succeeded, Failed or Error).
- OnWorkflowSuccess / OnWorkflowFailure: it completed with that outcome; otherwise kept.
- OnWorkflowDeletion: the workflow is being deleted (the controller's finalizer holds it
  until then).
- expiry: with the policy's `expireAfter`, any artifact whose strategy is not Never is
  also due at completion + expireAfter, even while the workflow stays.
- Never: kept, always.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argosy.argo.names import PLUGIN_NAME, STORAGE_KINDS, Strategy
from argosy.argo.workflow import Artifact, Workflow
from argosy.gc.outcome import GcRecord, read_record
from argosy.gc.policy import (
    GcPolicy,
    InvalidPolicy,
    Source,
    parse_strategy,
    resolve_strategy,
)

SUPPORTED_KINDS = STORAGE_KINDS


class Action(StrEnum):
    DELETE = "delete"  # due now
    WAIT = "wait"  # may become due (completion, deletion or expiry)
    KEEP = "keep"  # never due while things stay as they are
    DONE = "done"  # already deleted (by us, or by Argo's GC)
    SKIP = "skip"  # cannot be handled: no location, unsupported storage, bad strategy


@dataclass(frozen=True)
class Decision:
    artifact: Artifact
    action: Action
    reason: str
    strategy: Strategy | None = None
    source: Source | None = None
    due_at: datetime | None = None  # WAIT: when it becomes due, if a time is known
    triggered_at: datetime | None = None  # DELETE: when it became due (for the lag metric)


@dataclass(frozen=True)
class Plan:
    workflow: Workflow
    decisions: tuple[Decision, ...]
    needs_finalizer: bool
    next_check: datetime | None
    dry_run: bool  # the namespace policy asks for a dry run

    @property
    def deletions(self) -> list[Decision]:
        return [d for d in self.decisions if d.action is Action.DELETE]


def _strategy(raw: str | None, where: str) -> tuple[Strategy | None, str | None]:
    try:
        return parse_strategy(raw, where), None
    except InvalidPolicy as error:
        return None, str(error)


def _decide(
    artifact: Artifact,
    workflow: Workflow,
    wf_strategy: Strategy | None,
    wf_error: str | None,
    policy: GcPolicy | None,
    record: GcRecord,
    now: datetime,
    default: Strategy,
) -> Decision:
    if artifact.deleted or record.is_done(artifact.id):
        return Decision(artifact, Action.DONE, "already deleted")
    own, own_error = _strategy(artifact.strategy, f"artifact {artifact.id} artifactGC.strategy")
    if own_error:
        return Decision(artifact, Action.SKIP, f"{own_error}; kept")
    if own is None and wf_error:
        return Decision(artifact, Action.SKIP, f"{wf_error}; kept")
    strategy, source = resolve_strategy(own, wf_strategy, policy, workflow.labels, default=default)
    decision = _trigger(artifact, workflow, strategy, source, policy, now)
    if decision.action is Action.DELETE:
        if artifact.kind is None or not artifact.key:
            return Decision(artifact, Action.SKIP, "no storage location recorded", strategy, source)
        if artifact.kind == "plugin":
            name = artifact.location.get("name")
            if name not in (None, "", PLUGIN_NAME):
                return Decision(
                    artifact,
                    Action.SKIP,
                    f"plugin {name} is not Argosy's ({PLUGIN_NAME}); kept",
                    strategy,
                    source,
                )
        elif artifact.kind not in SUPPORTED_KINDS:
            return Decision(
                artifact,
                Action.SKIP,
                f"{artifact.kind} storage is not supported by the Argosy GC; kept",
                strategy,
                source,
            )
    return decision


def _trigger(
    artifact: Artifact,
    workflow: Workflow,
    strategy: Strategy,
    source: Source,
    policy: GcPolicy | None,
    now: datetime,
) -> Decision:
    def due(reason: str, at: datetime | None) -> Decision:
        return Decision(artifact, Action.DELETE, reason, strategy, source, None, at)

    if strategy is Strategy.NEVER:
        return Decision(artifact, Action.KEEP, f"strategy Never ({source.value})", strategy, source)
    finished = workflow.finished_at if workflow.completed else None
    if workflow.completed:
        if strategy is Strategy.ON_COMPLETION:
            return due("the workflow completed", finished)
        if strategy is Strategy.ON_SUCCESS and workflow.succeeded:
            return due("the workflow succeeded", finished)
        if strategy is Strategy.ON_FAILURE and not workflow.succeeded:
            return due(f"the workflow ended {workflow.phase}", finished)
    if strategy is Strategy.ON_DELETION and workflow.deleting:
        return due("the workflow is being deleted", workflow.deletion_timestamp or now)
    expiry = (
        policy.expire_after if policy is not None and policy.applies_to(workflow.labels) else None
    )
    if expiry is not None and finished is not None:
        at = finished + expiry
        if now >= at:
            return due("expired (completion + expireAfter)", at)
        return Decision(artifact, Action.WAIT, "expires later", strategy, source, at)
    if workflow.deleting:
        return Decision(
            artifact,
            Action.KEEP,
            f"{strategy.value} not due and the workflow is being deleted",
            strategy,
            source,
        )
    if workflow.completed and strategy is not Strategy.ON_DELETION:
        return Decision(
            artifact,
            Action.KEEP,
            f"{strategy.value}: the workflow ended {workflow.phase}",
            strategy,
            source,
        )
    return Decision(artifact, Action.WAIT, f"{strategy.value}: not yet", strategy, source)


def _future_deletion(
    workflow: Workflow, wf_strategy: Strategy | None, policy: GcPolicy | None, default: Strategy
) -> bool:
    """Will artifacts not yet in the status need the finalizer? (Only while running.)"""
    if workflow.completed:
        return False
    if Strategy.ON_DELETION.value in workflow.template_strategies:
        return True
    inherited, _ = resolve_strategy(None, wf_strategy, policy, workflow.labels, default=default)
    return inherited is Strategy.ON_DELETION


def make_plan(
    workflow: Workflow,
    policy: GcPolicy | None,
    now: datetime,
    *,
    default: Strategy = Strategy.NEVER,
    record: GcRecord | None = None,
) -> Plan:
    if policy is not None and not policy.applies_to(workflow.labels):
        policy = None
    record = record if record is not None else read_record(workflow.annotations)
    wf_strategy, wf_error = _strategy(workflow.strategy, "spec.artifactGC.strategy")
    decisions = tuple(
        _decide(a, workflow, wf_strategy, wf_error, policy, record, now, default)
        for a in workflow.artifacts
    )
    pending_deletion = any(
        d.strategy is Strategy.ON_DELETION and d.action in (Action.WAIT, Action.DELETE)
        for d in decisions
    )
    needs = pending_deletion or _future_deletion(workflow, wf_strategy, policy, default)
    waits: Iterable[datetime] = (
        d.due_at for d in decisions if d.action is Action.WAIT and d.due_at is not None
    )
    return Plan(
        workflow,
        decisions,
        needs,
        min(waits, default=None),
        bool(policy is not None and policy.dry_run),
    )
