"""The pure rules, with a fixed clock: durations, selectors, policies and their status,
the precedence of strategies, what is due when, and the bounded record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from argosy.argo.names import Strategy
from argosy.argo.workflow import parse_workflow
from argosy.gc.duration import DurationError, format_duration, parse_duration
from argosy.gc.outcome import (
    ANNOTATION,
    MAX_DONE,
    Failure,
    GcRecord,
    Leak,
    encode_record,
    read_record,
)
from argosy.gc.plan import Action, make_plan
from argosy.gc.policy import (
    GcPolicy,
    InvalidPolicy,
    Source,
    judge_policy,
    parse_spec,
    resolve_strategy,
)
from argosy.gc.selector import SelectorError, parse_selector

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# -- durations and selectors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("720h", 720 * 3600),
        ("1h30m", 5400),
        ("30d", 30 * 86400),
        ("90s", 90),
        ("0", 0),
        ("1.5h", 5400),
        ("500ms", 0.5),
    ],
)
def test_durations_are_go_durations_plus_days(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["-1h", "1x", "h", "", "1h-5m", 3600, None, "1 h"])
def test_negative_or_malformed_durations_are_refused(text: Any) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_a_duration_prints_as_it_would_be_written() -> None:
    assert format_duration(timedelta(hours=720)) == "720h"
    assert format_duration(timedelta(seconds=5430)) == "1h30m30s"


def test_selectors_match_labels_and_expressions_like_the_api_server() -> None:
    selector = parse_selector(
        {
            "matchLabels": {"team": "a"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["batch", "ml"]},
                {"key": "keep", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches({"team": "a", "tier": "ml"})
    assert not selector.matches({"team": "a", "tier": "web"})
    assert not selector.matches({"team": "a", "tier": "ml", "keep": "yes"})
    assert parse_selector(None).matches({})


@pytest.mark.parametrize(
    "raw",
    [
        {"matchExpressions": [{"key": "a", "operator": "In"}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Near"}]},
        {"matchLabels": {"a": 1}},
        {"labels": {}},
    ],
)
def test_selectors_the_api_server_would_refuse_are_refused(raw: Any) -> None:
    with pytest.raises(SelectorError):
        parse_selector(raw)


# -- policies ------------------------------------------------------------------------------


def policy_object(spec: Any, status: Any = None) -> dict[str, Any]:
    obj = {"metadata": {"name": "default", "namespace": "ns", "generation": 3}, "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


def test_a_policy_spec_parses_into_its_settings() -> None:
    policy = parse_spec(
        {
            "strategy": "OnWorkflowSuccess",
            "expireAfter": "7d",
            "dryRun": True,
            "sweeps": {"orphansAfter": "72h", "repositories": ["default"]},
        },
        "ns",
    )
    assert (policy.strategy, policy.expire_after, policy.dry_run) == (
        Strategy.ON_SUCCESS,
        timedelta(days=7),
        True,
    )
    assert policy.sweeps is not None and policy.sweeps.repositories == ("default",)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"strategy": "Sometimes"}, "unknown strategy 'Sometimes'"),
        ({"expireAfter": "-5m"}, "cannot be negative"),
        ({"dryRun": "yes"}, "spec.dryRun must be true or false"),
        ({"stratgy": "Never"}, "unknown field(s) stratgy"),
        ({"sweeps": {"orphansAfter": "-1h"}}, "spec.sweeps.orphansAfter"),
    ],
)
def test_invalid_policy_specs_are_rejected_with_a_message(spec: Any, message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(spec, "ns")


def test_a_rejected_policy_falls_back_to_its_last_accepted_spec() -> None:
    first = judge_policy(policy_object({"strategy": "OnWorkflowCompletion"}), NOW)
    assert first.accepted and first.status is not None
    edited = judge_policy(policy_object({"strategy": "Bogus"}, first.status), NOW)
    assert not edited.accepted
    assert edited.policy is not None and edited.policy.strategy is Strategy.ON_COMPLETION
    assert edited.status is not None
    assert edited.status["acceptedSpec"] == {"strategy": "OnWorkflowCompletion"}
    assert edited.status["conditions"][0]["reason"] == "InvalidSpec"


def test_a_policy_whose_status_already_says_it_all_needs_no_write() -> None:
    first = judge_policy(policy_object({"strategy": "Never"}), NOW)
    again = judge_policy(
        policy_object({"strategy": "Never"}, first.status), NOW + timedelta(hours=1)
    )
    assert again.status is None


def test_precedence_goes_artifact_then_workflow_then_policy_then_default() -> None:
    policy = GcPolicy("ns", strategy=Strategy.ON_COMPLETION)
    assert resolve_strategy(Strategy.NEVER, Strategy.ON_DELETION, policy, {}) == (
        Strategy.NEVER,
        Source.ARTIFACT,
    )
    assert resolve_strategy(None, Strategy.ON_DELETION, policy, {}) == (
        Strategy.ON_DELETION,
        Source.WORKFLOW,
    )
    assert resolve_strategy(None, None, policy, {}) == (Strategy.ON_COMPLETION, Source.POLICY)
    assert resolve_strategy(None, None, GcPolicy("ns"), {}) == (Strategy.NEVER, Source.DEFAULT)
    assert resolve_strategy(None, None, None, {}, default=Strategy.ON_FAILURE) == (
        Strategy.ON_FAILURE,
        Source.DEFAULT,
    )


# -- workflows and plans -------------------------------------------------------------------


def workflow(
    phase: str = "Running",
    *,
    finished: datetime | None = None,
    deleting: bool = False,
    strategy: str | None = None,
    artifacts: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "wf",
        "namespace": "ns",
        "uid": "u1",
        "resourceVersion": "7",
        "annotations": annotations or {},
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    status: dict[str, Any] = {
        "phase": phase,
        "nodes": {
            "wf": {"id": "wf", "type": "Steps"},
            "wf-1": {
                "id": "wf-1",
                "type": "Pod",
                "outputs": {
                    "artifacts": artifacts
                    or [
                        {"name": "out", "s3": {"key": "wf/out.tgz"}},
                        {"name": "main-logs", "s3": {"key": "wf/main.log"}},
                    ]
                },
            },
            "wf-2": {
                "id": "wf-2",
                "type": "Retry",
                "outputs": {"artifacts": [{"name": "not-a-pod", "s3": {"key": "x"}}]},
            },
        },
    }
    if finished is not None:
        status["finishedAt"] = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec: dict[str, Any] = {}
    if strategy is not None:
        spec["artifactGC"] = {"strategy": strategy}
    return {"metadata": meta, "spec": spec, "status": status}


def actions(raw: dict[str, Any], policy: GcPolicy | None, now: datetime = NOW) -> list[str]:
    return [d.action.value for d in make_plan(parse_workflow(raw), policy, now).decisions]


def test_only_output_artifacts_of_pod_nodes_count_logs_included() -> None:
    wf = parse_workflow(workflow())
    assert [a.id for a in wf.artifacts] == ["wf-1/out", "wf-1/main-logs"]


def test_completion_makes_completion_artifacts_due_and_success_depends_on_the_phase() -> None:
    completion = GcPolicy("ns", strategy=Strategy.ON_COMPLETION)
    success = GcPolicy("ns", strategy=Strategy.ON_SUCCESS)
    failure = GcPolicy("ns", strategy=Strategy.ON_FAILURE)
    assert actions(workflow(), completion) == ["wait", "wait"]
    assert actions(workflow("Error", finished=NOW), completion) == ["delete", "delete"]
    assert actions(workflow("Failed", finished=NOW), success) == ["keep", "keep"]
    assert actions(workflow("Succeeded", finished=NOW), success) == ["delete", "delete"]
    assert actions(workflow("Error", finished=NOW), failure) == ["delete", "delete"]
    assert actions(workflow("Succeeded", finished=NOW), failure) == ["keep", "keep"]


def test_expiry_makes_any_strategy_but_never_due_at_completion_plus_expire_after() -> None:
    policy = GcPolicy("ns", strategy=Strategy.ON_SUCCESS, expire_after=timedelta(hours=1))
    failed = workflow("Failed", finished=NOW)
    plan = make_plan(parse_workflow(failed), policy, NOW + timedelta(minutes=59))
    assert [d.action for d in plan.decisions] == [Action.WAIT, Action.WAIT]
    assert plan.next_check == NOW + timedelta(hours=1)
    assert actions(failed, policy, NOW + timedelta(hours=1)) == ["delete", "delete"]
    never = workflow("Failed", finished=NOW, strategy="Never")
    assert actions(never, policy, NOW + timedelta(days=9)) == ["keep", "keep"]


def test_deletion_strategy_needs_the_finalizer_until_its_artifacts_are_done() -> None:
    policy = GcPolicy("ns", strategy=Strategy.ON_DELETION)
    running = make_plan(parse_workflow(workflow(artifacts=[])), policy, NOW)
    assert running.needs_finalizer  # artifacts yet to come will inherit the strategy
    deleting = make_plan(
        parse_workflow(workflow("Succeeded", finished=NOW, deleting=True)), policy, NOW
    )
    assert [d.action for d in deleting.decisions] == [Action.DELETE, Action.DELETE]
    done = GcRecord().with_done(["wf-1/out", "wf-1/main-logs"], 2, 20)
    finished = make_plan(
        parse_workflow(workflow("Succeeded", finished=NOW)), policy, NOW, record=done
    )
    assert not finished.needs_finalizer
    assert [d.action for d in finished.decisions] == [Action.DONE, Action.DONE]


def test_a_bad_strategy_on_a_workflow_keeps_its_artifacts_and_says_why() -> None:
    plan = make_plan(
        parse_workflow(workflow("Succeeded", finished=NOW, strategy="Soon")),
        GcPolicy("ns", strategy=Strategy.ON_COMPLETION),
        NOW,
    )
    assert [d.action for d in plan.decisions] == [Action.SKIP, Action.SKIP]
    assert "unknown strategy 'Soon'" in plan.decisions[0].reason


def test_unsupported_storage_and_missing_locations_are_skipped_not_failed() -> None:
    raw = workflow(
        "Succeeded",
        finished=NOW,
        artifacts=[{"name": "g", "gcs": {"key": "k"}}, {"name": "none", "path": "/tmp/x"}],
    )
    plan = make_plan(parse_workflow(raw), GcPolicy("ns", strategy=Strategy.ON_COMPLETION), NOW)
    assert [(d.action, d.reason) for d in plan.decisions] == [
        (Action.SKIP, "gcs storage is not supported by the Argosy GC; kept"),
        (Action.SKIP, "no storage location recorded"),
    ]


def test_a_policy_that_does_not_select_the_workflow_does_not_apply() -> None:
    policy = parse_spec(
        {
            "strategy": "OnWorkflowCompletion",
            "expireAfter": "1h",
            "selector": {"matchLabels": {"gc": "on"}},
        },
        "ns",
    )
    assert actions(workflow("Succeeded", finished=NOW), policy, NOW + timedelta(days=1)) == [
        "keep",
        "keep",
    ]


# -- the record ----------------------------------------------------------------------------


def test_the_record_round_trips_and_stays_bounded_whatever_the_number_of_artifacts() -> None:
    record = GcRecord().with_done([f"node/{i}" for i in range(50_000)], 100_000, 10**9)
    failures = [
        Failure(f"node/{i}", f"s3://b/k{i}", "AccessDenied", "denied " * 100) for i in range(500)
    ]
    record = record.with_failures(failures, NOW).with_leaks(
        [Leak(f"s3://b/k{i}/", 1000, "AccessDenied") for i in range(500)]
    )
    text = encode_record(record, NOW)
    assert len(text) < 40_000
    back = read_record({ANNOTATION: text})
    assert len(back.done) == MAX_DONE and back.objects == 100_000
    assert back.deleted[:2] == ("node/0", "node/1") and len(back.deleted) == 50
    assert (len(back.failures), back.more_failures, back.attempts) == (20, 480, 1)
    assert (len(back.leaks), back.more_leaks, back.forced) == (20, 480, True)
    assert len(json.loads(text)["failures"][0]["message"]) <= 240


def test_a_damaged_record_reads_as_empty_so_work_is_redone_not_skipped() -> None:
    assert read_record({ANNOTATION: "{not json"}) == GcRecord()
    assert read_record({}) == GcRecord()


@pytest.mark.parametrize(
    ("data", "annotations", "message"),
    [
        (
            {"a": "s3: {bucket: x}", "b": "s3: {bucket: y}"},
            {},
            "several repositories and no workflows.argoproj.io/default-artifact-repository",
        ),
        (
            {"a": "s3: {bucket: x}"},
            {"workflows.argoproj.io/default-artifact-repository": "z"},
            "no repository 'z'",
        ),
        ({"a": "s3: [bucket"}, {}, "repository 'a' is not valid YAML"),
        ({"a": "just text"}, {}, "repository 'a' is not a mapping"),
    ],
)
def test_a_repository_configmap_the_gc_cannot_use_is_reported_by_name(
    data: dict[str, str], annotations: dict[str, str], message: str
) -> None:
    from argosy.argo.location import RepositoryMissing
    from argosy.argo.workflow import entry_from_configmap

    configmap = {"metadata": {"annotations": annotations}, "data": data}
    with pytest.raises(RepositoryMissing, match=message) as caught:
        entry_from_configmap(configmap, None, "ConfigMap ns/artifact-repositories")
    assert str(caught.value).startswith("ConfigMap ns/artifact-repositories")


def test_the_gc_takes_the_annotated_default_repository_of_several() -> None:
    from argosy.argo.workflow import entry_from_configmap

    configmap = {
        "metadata": {"annotations": {"workflows.argoproj.io/default-artifact-repository": "b"}},
        "data": {"a": "s3: {bucket: x}", "b": "s3: {bucket: y}"},
    }
    assert entry_from_configmap(configmap, None, "cm") == {"s3": {"bucket": "y"}}
    assert entry_from_configmap(configmap, "a", "cm") == {"s3": {"bucket": "x"}}
