"""The namespace's ArtifactGCPolicy (`argosy.io/v1alpha1`, the one named `default`) and
the precedence that turns it, a workflow and an artifact into one strategy.

Precedence, highest first: the artifact's own `artifactGC.strategy`, the workflow's
`spec.artifactGC.strategy`, the namespace policy's `strategy` (for the workflows its
selector picks), the controller's cluster default (Never). An unset or empty field is
"not said here", never Never: only an explicit Never keeps an artifact forever.

A policy with an unknown strategy or a negative duration is rejected: its status says
why, and the last accepted spec (kept in `status.acceptedSpec`, so it survives a
controller restart) stays in force. Everything here is pure; time comes in as arguments.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argosy.argo.names import Strategy
from argosy.argo.resources import Resource
from argosy.gc.duration import DurationError, format_duration, parse_duration
from argosy.gc.selector import Selector, SelectorError, parse_selector

GROUP, VERSION, PLURAL, KIND = "argosy.io", "v1alpha1", "artifactgcpolicies", "ArtifactGCPolicy"
POLICIES = Resource(GROUP, VERSION, PLURAL, KIND)
POLICY_NAME = "default"


class Source(StrEnum):
    """Which level of the precedence chose an artifact's strategy."""

    ARTIFACT = "artifact"
    WORKFLOW = "workflow"
    POLICY = "policy"
    DEFAULT = "default"


class InvalidPolicy(ValueError):
    """A policy spec the controller refuses; the message goes to the policy's status."""


def parse_strategy(value: Any, where: str) -> Strategy | None:
    """None for unset/empty; raises InvalidPolicy naming the valid values otherwise."""
    if value is None or value == "":
        return None
    try:
        return Strategy(value)
    except ValueError:
        valid = ", ".join(s.value for s in Strategy)
        raise InvalidPolicy(f"{where}: unknown strategy {value!r} (valid: {valid})") from None


@dataclass(frozen=True)
class SweepPolicy:
    """Opt-in sweeps of the namespace's repositories (see `argosy.gc.sweep`).

    incomplete_uploads_after: abort multipart uploads initiated longer ago than this,
        under the folder of a finished workflow of the namespace (never elsewhere: an
        upload's metadata cannot tell whose it is).
    orphans_after: delete Argosy-written objects whose workflow is gone, once older
        than this (and only if their recorded strategy allows deletion).
    repositories: keys of the `artifact-repositories` ConfigMap to sweep (empty: all).
    prefix: the key prefix to sweep, required for a repository whose keyFormat starts
        with a variable (its static prefix is the whole bucket); within the static
        prefix otherwise.
    """

    incomplete_uploads_after: timedelta | None = None
    orphans_after: timedelta | None = None
    repositories: tuple[str, ...] = ()
    prefix: str | None = None


@dataclass(frozen=True)
class GcPolicy:
    namespace: str
    strategy: Strategy | None = None
    expire_after: timedelta | None = None
    selector: Selector = Selector()
    dry_run: bool = False
    sweeps: SweepPolicy | None = None

    def applies_to(self, labels: Mapping[str, str]) -> bool:
        return self.selector.matches(labels)


_SPEC_FIELDS = {"strategy", "expireAfter", "selector", "dryRun", "sweeps"}
_SWEEP_FIELDS = {"incompleteUploadsAfter", "orphansAfter", "repositories", "prefix"}


def _duration(value: Any, where: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError as error:
        raise InvalidPolicy(f"{where}: {error}") from None


def _sweeps(raw: Any) -> SweepPolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidPolicy("spec.sweeps must be a mapping")
    unknown = set(raw) - _SWEEP_FIELDS
    if unknown:
        raise InvalidPolicy(f"spec.sweeps: unknown field(s) {', '.join(sorted(unknown))}")
    repos = raw.get("repositories") or []
    if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
        raise InvalidPolicy("spec.sweeps.repositories must be a list of ConfigMap keys")
    return SweepPolicy(
        incomplete_uploads_after=_duration(
            raw.get("incompleteUploadsAfter"), "spec.sweeps.incompleteUploadsAfter"
        ),
        orphans_after=_duration(raw.get("orphansAfter"), "spec.sweeps.orphansAfter"),
        repositories=tuple(repos),
        prefix=_sweep_prefix(raw.get("prefix")),
    )


def _sweep_prefix(value: Any) -> str | None:
    """A folder of keys: relative, no empty, '.' or '..' segment; '/' added at the end."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip("/"):
        raise InvalidPolicy("spec.sweeps.prefix must be a non-empty key prefix such as runs/")
    parts = value.rstrip("/").split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidPolicy(
            f"spec.sweeps.prefix {value!r} must be a relative key prefix "
            "without empty, '.' or '..' segments"
        )
    return value.rstrip("/") + "/"


def parse_spec(spec: Any, namespace: str) -> GcPolicy:
    """A policy's spec, validated; raises InvalidPolicy with a message fit for a status."""
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise InvalidPolicy("spec must be a mapping")
    unknown = set(spec) - _SPEC_FIELDS
    if unknown:
        raise InvalidPolicy(f"spec: unknown field(s) {', '.join(sorted(unknown))}")
    dry_run = spec.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidPolicy(f"spec.dryRun must be true or false, not {dry_run!r}")
    try:
        selector = parse_selector(spec.get("selector"), "spec.selector")
    except SelectorError as error:
        raise InvalidPolicy(str(error)) from None
    return GcPolicy(
        namespace=namespace,
        strategy=parse_strategy(spec.get("strategy"), "spec.strategy"),
        expire_after=_duration(spec.get("expireAfter"), "spec.expireAfter"),
        selector=selector,
        dry_run=dry_run,
        sweeps=_sweeps(spec.get("sweeps")),
    )


@dataclass(frozen=True)
class PolicyVerdict:
    """What a policy object means now: the policy in force (None: none), and the status
    to write on the object (None: its status already says so)."""

    policy: GcPolicy | None
    status: dict[str, Any] | None
    accepted: bool
    message: str


def _condition(
    accepted: bool, message: str, now: datetime, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    status = "True" if accepted else "False"
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if previous and previous.get("status") == status and previous.get("lastTransitionTime"):
        since = str(previous["lastTransitionTime"])
    return {
        "type": "Accepted",
        "status": status,
        "reason": "Valid" if accepted else "InvalidSpec",
        "message": message,
        "lastTransitionTime": since,
    }


def judge_policy(obj: Mapping[str, Any], now: datetime) -> PolicyVerdict:
    """Validate a policy object; an invalid one keeps its last accepted spec in force."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    generation = meta.get("generation")
    old_status = obj.get("status") or {}
    old_condition = next(
        (
            c
            for c in old_status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Accepted"
        ),
        None,
    )
    try:
        policy = parse_spec(obj.get("spec"), namespace)
    except InvalidPolicy as error:
        kept: GcPolicy | None = None
        accepted_spec = old_status.get("acceptedSpec")
        if accepted_spec is not None:
            try:
                kept = parse_spec(accepted_spec, namespace)
            except InvalidPolicy:
                kept = None
        message = f"rejected: {error}; " + (
            "the previously accepted spec stays in force" if kept else "no policy applies (Never)"
        )
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": [_condition(False, message, now, old_condition), *_others(old_status)],
        }
        if accepted_spec is not None:
            status["acceptedSpec"] = accepted_spec
        return PolicyVerdict(kept, None if _same(old_status, status) else status, False, message)
    message = describe(policy)
    status = {
        "observedGeneration": generation,
        "conditions": [_condition(True, message, now, old_condition), *_others(old_status)],
        "acceptedSpec": copy.deepcopy(obj.get("spec") or {}),
    }
    return PolicyVerdict(policy, None if _same(old_status, status) else status, True, message)


def _others(old_status: Mapping[str, Any]) -> list[Any]:
    """The conditions other than Accepted (the sweeps write `Swept`): kept as they are."""
    return [
        c
        for c in old_status.get("conditions") or []
        if isinstance(c, Mapping) and c.get("type") != "Accepted"
    ]


def sweep_condition(
    old_status: Mapping[str, Any], *, ok: bool, reason: str, message: str, now: datetime
) -> list[Any] | None:
    """The policy's conditions with `Swept` set to this outcome; None when that is what
    they already say (no write needed)."""
    conditions = [c for c in old_status.get("conditions") or [] if isinstance(c, Mapping)]
    previous = next((c for c in conditions if c.get("type") == "Swept"), None)
    status = "True" if ok else "False"
    if previous and (previous.get("status"), previous.get("reason"), previous.get("message")) == (
        status,
        reason,
        message,
    ):
        return None
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if previous and previous.get("status") == status and previous.get("lastTransitionTime"):
        since = str(previous["lastTransitionTime"])
    swept = {
        "type": "Swept",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    return [c for c in conditions if c.get("type") != "Swept"] + [swept]


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return all(old.get(k) == v for k, v in new.items())


def describe(policy: GcPolicy) -> str:
    parts = [f"strategy {policy.strategy.value if policy.strategy else 'unset'}"]
    if policy.expire_after is not None:
        parts.append(f"expireAfter {format_duration(policy.expire_after)}")
    if not policy.selector.everything:
        parts.append("selector set")
    if policy.dry_run:
        parts.append("dry run")
    return "accepted: " + ", ".join(parts)


def resolve_strategy(
    artifact: Strategy | None,
    workflow: Strategy | None,
    policy: GcPolicy | None,
    labels: Mapping[str, str],
    *,
    default: Strategy = Strategy.NEVER,
) -> tuple[Strategy, Source]:
    """The precedence chain; the first level that says something wins."""
    if artifact is not None:
        return artifact, Source.ARTIFACT
    if workflow is not None:
        return workflow, Source.WORKFLOW
    if policy is not None and policy.strategy is not None and policy.applies_to(labels):
        return policy.strategy, Source.POLICY
    return default, Source.DEFAULT
