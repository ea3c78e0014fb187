"""The local engine's Argo features one by one, with a fake pod runner: parameters,
outputs and results, loops, `when` and `depends`; then everything it refuses, each
refused before a single pod runs."""

from __future__ import annotations

import pytest

from argosy.artifacts.errors import InvalidSpec
from argosy.demo import expressions, loops, spec, variables
from argosy.demo.engine import StepFailed
from tests.cli.test_workflow_demo import FakeRunner, engine

HEAD = """
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
"""


def echo(name: str, *inputs: str) -> str:
    """A container template printing its input parameters."""
    declared = ", ".join(f"{{name: {i}}}" for i in inputs)
    shown = " ".join(f"{{{{inputs.parameters.{i}}}}}" for i in inputs)
    return f"""
  - name: {name}
    inputs: {{parameters: [{declared}]}}
    container: {{image: busybox, command: [echo, "{shown}"]}}
"""


def commands(runner: FakeRunner) -> dict[str, str]:
    return {pod.display: " ".join(pod.command[1:]) for pod in runner.pods}


# -- parameters ---------------------------------------------------------------------------
PARAMETERS = (
    HEAD
    + """  arguments:
    parameters: [{name: greeting, value: hello}, {name: times, value: 2}]
  templates:
  - name: main
    inputs:
      parameters: [{name: greeting}, {name: who, default: world}]
    steps:
    - - name: say
        template: echo
        arguments:
          parameters:
          - {name: text, value: "{{inputs.parameters.greeting}} {{inputs.parameters.who}}"}
          - {name: count, value: "{{workflow.parameters.times}} in {{workflow.name}}"}
"""
    + echo("echo", "text", "count", "fixed").replace("{name: fixed}", "{name: fixed, value: '1.0'}")
)


def test_parameters_reach_the_pod_substituted_as_argo_substitutes_them() -> None:
    runner = FakeRunner()

    run = engine(PARAMETERS, runner).run()

    assert commands(runner) == {"say": "hello world 2 in wf 1.0"}
    (pod,) = runner.pods
    assert pod.template["inputs"]["parameters"] == [
        {"name": "text", "value": "hello world"},
        {"name": "count", "value": "2 in wf"},
        {"name": "fixed", "value": "1.0"},
    ]
    assert run.succeeded


def test_a_literal_tag_argo_does_not_own_stays_as_written() -> None:
    text = PARAMETERS.replace(
        '"{{inputs.parameters.text}}', '"{{ .Values.x }} {{inputs.parameters.text}}'
    )
    runner = FakeRunner()

    engine(text, runner).run()

    assert commands(runner) == {"say": "{{ .Values.x }} hello world 2 in wf 1.0"}


OUTPUTS = (
    HEAD
    + """  templates:
  - name: main
    steps:
    - - name: make
        template: make
    - - name: use
        template: echo
        arguments:
          parameters:
          - {name: a, value: "{{steps.make.outputs.parameters.size}}"}
          - {name: b, value: "{{steps.make.outputs.result}}"}
          - {name: c, value: "{{steps.make.outputs.parameters.label}}"}
    outputs:
      parameters:
      - name: final
        valueFrom: {parameter: "{{steps.make.outputs.parameters.size}}"}
  - name: make
    script:
      image: python
      command: [python]
      source: print("out")
    outputs:
      parameters:
      - {name: size, valueFrom: {path: /tmp/size}}
      - {name: label, value: "made-by-{{pod.name}}"}
"""
    + echo("echo", "a", "b", "c")
)


def test_outputs_of_a_step_parameters_and_result_feed_the_next() -> None:
    runner = FakeRunner(results={"make": "out"}, files={"/tmp/size": "42"})

    run = engine(OUTPUTS, runner).run()

    make = runner.pods[0]
    assert commands(runner)["use"] == f"42 out made-by-{make.pod_name}"
    (main,) = [n for n in run.nodes.values() if n["name"] == "wf"]
    assert main["outputs"]["parameters"] == [{"name": "final", "value": "42"}]


# -- loops --------------------------------------------------------------------------------
LOOP = (
    HEAD
    + """  templates:
  - name: main
    steps:
    - - name: each
        template: echo
        arguments: {parameters: [{name: x, value: "{{item}}"}]}
        LOOP
    - - name: after
        template: echo
        arguments: {parameters: [{name: x, value: done}]}
"""
    + echo("echo", "x")
)


@pytest.mark.parametrize(
    "loop, displays, printed",
    [
        (
            "withItems: [hello, 7, 2.50, true, 'a(b)']",
            ["each(0:hello)", "each(1:7)", "each(2:2.5)", "each(3:true)", "each(4:ab)"],
            ["hello", "7", "2.5", "true", "a(b)"],
        ),
        (
            'withSequence: {count: "3", start: 8, format: "n%02d"}',
            ["each(0:n08)", "each(1:n09)", "each(2:n10)"],
            ["n08", "n09", "n10"],
        ),
        (
            "withSequence: {start: 2, end: 0}",
            ["each(0:2)", "each(1:1)", "each(2:0)"],
            ["2", "1", "0"],
        ),
        (
            """withParam: '["x", 1.0, {"k": "v"}]'""",
            ["each(0:x)", "each(1:1.0)", "each(2:k:v)"],
            ["x", "1.0", '{"k":"v"}'],
        ),
    ],
    ids=["withItems", "withSequence-count", "withSequence-down", "withParam"],
)
def test_a_loop_runs_one_step_per_item_named_as_argo_names_them(
    loop: str, displays: list[str], printed: list[str]
) -> None:
    runner = FakeRunner()

    run = engine(LOOP.replace("LOOP", loop), runner).run()

    assert sorted(runner.displays()[:-1]) == sorted(displays)
    assert runner.displays()[-1] == "after"  # the next group waits for every item
    shown = commands(runner)
    assert [shown[d] for d in displays] == printed
    names = {n["name"] for n in run.nodes.values()}
    assert {f"wf[0].{d}" for d in displays} <= names


def test_map_items_give_item_fields_and_a_sorted_name() -> None:
    text = LOOP.replace('value: "{{item}}"', 'value: "{{item.os}}/{{item.v}} {{item}}"').replace(
        "LOOP", "withItems: [{v: 1, os: linux}, {os: 'a<b', v: 2}]"
    )
    runner = FakeRunner()

    engine(text, runner).run()

    assert commands(runner) == {
        "each(0:os:linux,v:1)": 'linux/1 {"os":"linux","v":1}',
        "each(1:os:a<b,v:2)": 'a<b/2 {"os":"a\\u003cb","v":2}',
        "after": "done",
    }


def test_an_empty_loop_skips_the_step_and_the_workflow_goes_on() -> None:
    runner = FakeRunner()

    run = engine(LOOP.replace("LOOP", "withSequence: {count: 0}"), runner).run()

    assert runner.displays() == ["after"]
    (skipped,) = [n for n in run.nodes.values() if n["type"] == "Skipped"]
    assert (skipped["name"], skipped["message"]) == ("wf[0].each", "Skipped, empty params")


def test_with_param_reads_a_previous_steps_result() -> None:
    text = (
        HEAD
        + """  templates:
  - name: main
    steps:
    - - {name: list, template: list}
    - - name: each
        template: echo
        arguments: {parameters: [{name: x, value: "{{item}}"}]}
        withParam: "{{steps.list.outputs.result}}"
  - name: list
    script: {image: python, command: [python], source: "print('[1, 2]')"}
"""
        + echo("echo", "x")
    )
    runner = FakeRunner(results={"list": "[1, 2]"})

    engine(text, runner).run()

    assert runner.displays() == ["list", "each(0:1)", "each(1:2)"] or runner.displays() == [
        "list",
        "each(1:2)",
        "each(0:1)",
    ]


# -- when and depends -----------------------------------------------------------------------
FLIP = (
    HEAD
    + """  templates:
  - name: main
    steps:
    - - {name: flip, template: flip}
    - - name: heads
        template: echo
        arguments: {parameters: [{name: x, value: heads}]}
        when: "{{steps.flip.outputs.result}} == heads"
      - name: tails
        template: echo
        arguments: {parameters: [{name: x, value: tails}]}
        when: "{{steps.flip.outputs.result}} == tails"
  - name: flip
    script: {image: python, command: [python], source: "print('heads')"}
"""
    + echo("echo", "x")
)


@pytest.mark.parametrize("side", ["heads", "tails"])
def test_when_runs_only_the_steps_whose_condition_holds(side: str) -> None:
    runner = FakeRunner(results={"flip": side})
    skipped: list[tuple[str, str]] = []
    running = engine(FLIP, runner)
    running.on_skip = lambda display, reason: skipped.append((display, reason))

    run = running.run()

    assert runner.displays() == ["flip", side]
    other = "tails" if side == "heads" else "heads"
    assert skipped == [(other, f"when '{side} == {other}' evaluated false")]
    assert run.succeeded


@pytest.mark.parametrize(
    "condition, runs",
    [
        ("5 > 10", False),
        ("'5' < '10'", False),  # two strings compare as strings
        ("10 >= 9.5 && !(a == b)", True),
        ("true || 1 < 'x'", True),  # govaluate stops at true
        ("-2 < 0 && yes != no", True),
        ("1 == '1'", False),  # a number is not a string
    ],
)
def test_when_is_govaluate_with_bare_words_as_strings(condition: str, runs: bool) -> None:
    assert expressions.when(condition) is runs


@pytest.mark.parametrize(
    "condition", ["a =~ b", "1 + 1 == 2", "v1.2 == v1.2", "x ? y : z", "1 < 'a'", "a b", "a && b"]
)
def test_a_when_outside_the_subset_is_an_error_not_a_guess(condition: str) -> None:
    with pytest.raises(expressions.ExpressionError):
        expressions.when(condition)


DAG = (
    HEAD
    + """  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: echo, arguments: {parameters: [{name: x, value: a}]}, when: "1 == 2"}
      - {name: b, template: echo, arguments: {parameters: [{name: x, value: b}]}, depends: a}
      - name: c
        template: echo
        arguments: {parameters: [{name: x, value: c}]}
        depends: a.Succeeded
      - {name: d, template: echo, arguments: {parameters: [{name: x, value: d}]}, depends: c}
      - name: e
        template: echo
        arguments: {parameters: [{name: x, value: e}]}
        depends: "c.Omitted && b"
"""
    + echo("echo", "x")
)


def test_depends_follows_argo_a_skipped_task_satisfies_a_bare_name_only() -> None:
    runner = FakeRunner()

    run = engine(DAG, runner).run()

    assert runner.displays() == ["b", "e"]
    phases = {n["displayName"]: n["phase"] for n in run.nodes.values() if n["type"] == "Skipped"}
    assert phases == {"a": "Skipped", "c": "Omitted", "d": "Omitted"}
    assert run.succeeded


def test_a_when_whose_values_fall_outside_the_subset_fails_the_step() -> None:
    runner = FakeRunner(results={"flip": "no way"})

    with pytest.raises(StepFailed, match=r"step heads: when 'no way == heads'"):
        engine(FLIP, runner).run()
    assert runner.displays() == ["flip"]


# -- values as Go writes them ----------------------------------------------------------------
def test_values_are_written_as_go_writes_them() -> None:
    assert [variables.scalar(v) for v in (1.0, 2.5, 1e21, 1e-7, True, 3)] == [
        "1",
        "2.5",
        "1e+21",
        "1e-7",
        "true",
        "3",
    ]
    assert variables.go_json({"b": 1.0, "a": "x&y"}) == '{"a":"x\\u0026y","b":1}'
    assert loops.sequence({"start": -1, "count": 2, "format": "%+03d"}, "w") == ["-01", "+00"]


# -- refused ---------------------------------------------------------------------------------
REFUSED_BASE = (
    HEAD
    + """  templates:
  - name: main
    steps:
    - - {name: first, template: noop}
    - - name: second
        TEMPLATE
        SECOND
  - name: noop
    container: {image: busybox, command: ["true"]}
"""
)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ("SECOND", "templateRef: {name: wt, template: t}"),
            r"steps\[1\].second: a WorkflowTemplate's template \(templateRef\)",
        ),
        (
            ("SECOND", "hooks: {exit: {template: noop}}"),
            r"steps\[1\].second: lifecycle hooks \(hooks\)",
        ),
        (("SECOND", "onExit: noop"), r"steps\[1\].second: an exit handler \(onExit\)"),
        (("SECOND", "continueOn: {failed: true}"), r"second: continuing after a failure"),
        (
            ("  entrypoint: main", "  entrypoint: main\n  onExit: noop"),
            r"spec.onExit: an exit handler \(onExit\)",
        ),
        (
            ("  entrypoint: main", "  entrypoint: main\n  hooks: {exit: {template: noop}}"),
            r"spec.hooks: lifecycle hooks",
        ),
        (
            ("  entrypoint: main", "  workflowTemplateRef: {name: wt}\n  entrypoint: main"),
            r"spec.workflowTemplateRef: a WorkflowTemplate",
        ),
        (
            ("    container:", "    retryStrategy: {limit: 2}\n    container:"),
            r"templates.noop: retries \(retryStrategy\)",
        ),
        (
            ("  entrypoint: main", "  entrypoint: main\n  activeDeadlineSeconds: 60"),
            r"spec.activeDeadlineSeconds: a deadline for the whole workflow",
        ),
        (
            ("    container:", "    activeDeadlineSeconds: 5\n    container:"),
            r"templates.noop: a deadline \(activeDeadlineSeconds\)",
        ),
        (
            ("    steps:", "    timeout: 1m\n    steps:"),
            r"templates.main: a timeout \(timeout\)",
        ),
        (
            ('command: ["true"]', 'command: ["true"], volumeMounts: [{name: v, mountPath: /v}]'),
            r"templates.noop: volume mounts",
        ),
        (
            (
                'command: ["true"]',
                'command: ["true"], env: [{name: T, valueFrom: {secretKeyRef: {name: s, key: k}}}]',
            ),
            r"templates.noop.env.T: an env valueFrom",
        ),
        (
            ("SECOND", 'when: "{{steps.first.outputs.result}} =~ ok"'),
            r"second.when: .* '=~' is outside what the demo engine evaluates",
        ),
        (
            ("SECOND", "withSequence: {count: 2, format: '%s'}"),
            r"withSequence.format '%s' is not supported",
        ),
        (("SECOND", "withItems: [[1, 2]]"), r"withItems\[0\]: a list item is not supported"),
        (
            ("SECOND", "arguments: {parameters: [{name: x, value: '{{=sprig.upper(\"a\")}}'}]}"),
            r"\{\{=sprig.upper\(\"a\"\)\}\} is an expression",
        ),
        (
            (
                "SECOND",
                "arguments: {parameters: [{name: x, value: '{{workflow.creationTimestamp}}'}]}",
            ),
            r"\{\{workflow.creationTimestamp\}\} is not supported by the demo engine",
        ),
        (
            ("SECOND", "arguments: {parameters: [{name: x, value: '{{inputs.parameters.nope}}'}]}"),
            r"\{\{inputs.parameters.nope\}\} names no input parameter of template 'main'",
        ),
        (
            (
                "SECOND",
                "arguments: {parameters: [{name: x, value: '{{steps.second.outputs.result}}'}]}",
            ),
            r"names 'second', which is not an earlier step group",
        ),
        (
            ("SECOND", "arguments: {parameters: [{name: x, value: '{{steps.first.status}}'}]}"),
            r"\{\{steps.first.status\}\} is not supported",
        ),
        (
            ("    container:", "    inputs: {parameters: [{name: needed}]}\n    container:"),
            r"template 'noop' needs input parameter 'needed', which is not supplied",
        ),
        (
            (
                "  - name: noop\n",
                "  - name: other\n    resource: {action: create}\n  - name: noop\n",
            ),
            r"templates.other: a resource template",
        ),
    ],
    ids=[
        "templateRef",
        "step-hooks",
        "step-onExit",
        "continueOn",
        "workflow-onExit",
        "workflow-hooks",
        "workflowTemplateRef",
        "retryStrategy",
        "workflow-activeDeadlineSeconds",
        "activeDeadlineSeconds",
        "timeout",
        "volumeMounts",
        "env-valueFrom",
        "when-regex",
        "sequence-format",
        "list-items",
        "expression-tag",
        "unsupported-variable",
        "unknown-input",
        "same-group-output",
        "step-status",
        "unsupplied-input",
        "unreachable-resource-template",
    ],
)
def test_a_feature_the_engine_does_not_run_is_refused_before_any_pod_runs(
    change: tuple[str, str], message: str
) -> None:
    text = REFUSED_BASE.replace(*change).replace("        SECOND\n", "")
    # a step naming a WorkflowTemplate's template has no template of its own
    own = "" if "templateRef" in change[1] else "        template: noop\n"
    text = text.replace("        TEMPLATE\n", own)
    runner = FakeRunner()

    with pytest.raises(InvalidSpec, match=message) as refused:
        engine(text, runner).run()

    assert runner.pods == []  # not even the first step, which the engine could run
    assert "\n" not in str(refused.value)


def test_a_looped_steps_aggregated_outputs_are_refused() -> None:
    text = LOOP.replace("LOOP", "withItems: [a, b]").replace(
        "value: done", "value: '{{steps.each.outputs.parameters}}'"
    )
    runner = FakeRunner()

    with pytest.raises(InvalidSpec, match=r"each, which runs in a loop: aggregated outputs"):
        engine(text, runner).run()
    assert runner.pods == []


def test_a_depends_on_a_failure_is_refused() -> None:
    text = DAG.replace("depends: a.Succeeded", "depends: a.Failed")
    runner = FakeRunner()

    with pytest.raises(InvalidSpec, match=r"tasks.c.depends: 'a.Failed': the demo engine stops"):
        engine(text, runner).run()
    assert runner.pods == []


def test_an_env_variable_with_no_value_is_set_empty_as_kubernetes_sets_it() -> None:
    template = {"name": "t", "container": {"command": ["env"], "env": [{"name": "EMPTY"}]}}

    assert spec.leaf_env(template, "wf.yaml") == {"EMPTY": ""}


def test_a_workflow_made_from_a_workflow_template_is_refused_naming_it() -> None:
    """As Argo's users write one: no entrypoint, no templates, only the reference."""
    text = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: wf}\n"
        "spec:\n  workflowTemplateRef: {name: my-template}\n"
    )
    runner = FakeRunner()

    with pytest.raises(InvalidSpec) as refused:
        engine(text, runner).run()

    assert str(refused.value) == (
        "wf.yaml: spec.workflowTemplateRef: a WorkflowTemplate (workflowTemplateRef) "
        "is not supported by the demo engine (nothing was run)"
    )
    assert runner.pods == []


@pytest.mark.parametrize("kind", ["WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"])
def test_another_kind_of_argo_document_is_refused_naming_its_kind(kind: str) -> None:
    text = f"apiVersion: argoproj.io/v1alpha1\nkind: {kind}\nmetadata: {{name: t}}\nspec: {{}}\n"

    with pytest.raises(InvalidSpec) as refused:
        spec.parse_workflow(text, source="t.yaml")

    assert str(refused.value) == (
        f"t.yaml: a {kind} is not supported by the demo engine, which runs Workflows"
        " (kind: Workflow)"
    )
