"""A small local workflow engine: walks an Argo Workflow's `steps` and `dag` templates the
way Argo's controller does, and hands every leaf (a pod) to a runner.

What it takes from the controller: the whole workflow is checked first (`check`), so a
feature the engine does not implement stops it before any step runs; steps run group
after group, the steps of a group in parallel; dag tasks run once their dependencies are
done (in waves), or are omitted when their `depends` says so; a step's `when` is
evaluated, its loop (`withItems`, `withParam`, `withSequence`) expanded into steps named
`NAME(INDEX:ITEM)`; parameters are substituted as Argo substitutes them (the workflow's,
a template's inputs, step outputs and results, loop items), and a step's `from:`
arguments are resolved from the outputs its producer recorded. Each pod gets the
resolved template (inputs bound, `archiveLocation` filled in from the repository with
the key prefix already expanded). It also keeps Argo's `status.nodes`, so that what the
pods recorded can be handed to the GC exactly as Argo would have it.

How a pod runs is the runner's business (`argosy.demo.pod` runs real `argosy init/wait/
emissary` processes; tests use a fake), so the walk is tested without processes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from argosy.argo import keys
from argosy.artifacts.errors import InvalidSpec, PermanentError
from argosy.demo import check, expressions, loops, spec, variables

Raw = Mapping[str, Any]


class StepFailed(PermanentError):
    """A pod of the workflow failed, or a step could not be resolved once its turn came
    (a `when` whose values fall outside what the engine evaluates, a `from:` naming a
    skipped step); the workflow stops as Argo's would (steps already running in
    parallel finish first)."""


@dataclass(frozen=True)
class Pod:
    """One leaf step, resolved and ready to run."""

    workflow: str
    namespace: str
    workflow_uid: str
    node_id: str
    node_name: str
    display: str
    pod_name: str
    template: dict[str, Any]  # what Argo's controller hands the pod (ARGO_TEMPLATE)
    command: list[str]
    env: dict[str, str]
    script: str | None = None  # a script template's source, for SCRIPT_PATH
    workdir: str | None = None  # the container's workingDir


@dataclass
class PodResult:
    """What a runner reports back. `outputs` are the artifacts as Argo records them in
    the node's status (location filled in), `parameters` the output parameters and
    `result` the main container's standard output (Argo's `outputs.result`, one final
    newline dropped); `failure` says why the pod failed, if it did. The reports are the
    sidecar's `inputs.json` / `outputs.json`, for people."""

    pod: Pod
    outputs: list[Raw] = field(default_factory=list)
    failure: str | None = None
    inputs_report: Raw | None = None
    outputs_report: Raw | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # init, main, wait: wall time
    folder: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    result: str | None = None


class PodRunner(Protocol):
    def run(self, pod: Pod) -> PodResult: ...


@dataclass
class Outputs:
    """What a node produced: artifacts as recorded, parameters, and a pod's result."""

    artifacts: list[Raw] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    result: str | None = None


@dataclass(frozen=True)
class Arguments:
    parameters: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, Raw] = field(default_factory=dict)


@dataclass
class Run:
    """One workflow's run: its pods in the order they finished, and Argo's node tree."""

    workflow: spec.Workflow
    uid: str
    results: list[PodResult] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        failed = any(n["phase"] in ("Failed", "Error") for n in self.nodes.values())
        return bool(self.nodes) and not failed and all(r.failure is None for r in self.results)


@dataclass
class _Scope:
    """What the steps or tasks of one steps/dag template can read: the values of their
    `{{...}}` (inputs, the outputs of the steps that ran), the artifacts recorded, and
    (in a DAG) how each task ended."""

    artifacts: spec.Scope
    values: dict[str, str]
    results: dict[str, str] = field(default_factory=dict)  # task -> Succeeded|Skipped|Omitted


@dataclass(frozen=True)
class _Job:
    name: str  # the step's own name (loops: NAME(INDEX:ITEM))
    record: str | None  # under which name its outputs are readable (None: in a loop)
    template: Raw
    arguments: Arguments
    node_name: str


class Engine:
    def __init__(
        self,
        workflow: spec.Workflow,
        runner: PodRunner,
        *,
        repository: Raw,
        key_format: str,
        on_pod: Callable[[PodResult], None] = lambda result: None,
        on_skip: Callable[[str, str], None] = lambda display, reason: None,
    ) -> None:
        self.workflow = workflow
        self.runner = runner
        self.repository = repository
        self.key_format = key_format
        self.on_pod = on_pod
        self.on_skip = on_skip
        self.run_record = Run(workflow, str(uuid.uuid4()))
        self.globals: dict[str, str] = {}

    def run(self) -> Run:
        """Checks the whole workflow (InvalidSpec, nothing run), then runs it."""
        wf = self.workflow
        check.workflow(wf)
        body = wf.raw.get("spec") or {}
        given = body.get("arguments") or {}
        self.globals = {
            "workflow.name": wf.name,
            "workflow.namespace": wf.namespace,
            "workflow.uid": self.run_record.uid,
        }
        parameters = {
            str(p["name"]): variables.scalar(p["value"]) or ""
            for p in given.get("parameters") or []
        }
        self.globals |= {f"workflow.parameters.{k}": v for k, v in parameters.items()}
        artifacts = {str(a["name"]): a for a in given.get("artifacts") or []}
        template = wf.template(wf.entrypoint, "spec.entrypoint")
        self._template(template, Arguments(parameters, artifacts), wf.name, wf.name, None)
        return self.run_record

    # -- the walk ------------------------------------------------------------------------
    def _inputs(self, template: Raw, given: Mapping[str, str], where: str) -> dict[str, str]:
        """The template's input parameters (Argo's ProcessArgs): the argument's value, else
        the declared `value`, else `default`; globals substituted in the declared ones."""
        found = {}
        inputs = template.get("inputs") or {}
        for parameter in inputs.get("parameters") or []:
            name = str(parameter["name"])
            declared = parameter.get("value")
            if declared is None:
                declared = parameter.get("default")
            if name in given:
                found[name] = given[name]
            elif declared is not None:
                found[name] = variables.replace(variables.scalar(declared) or "", self.globals)
            else:  # check.workflow refuses this before anything runs
                raise InvalidSpec(f"{where}: inputs.parameters.{name} was not supplied")
        return found

    def _template(
        self,
        template: Raw,
        arguments: Arguments,
        node_name: str,
        display: str,
        parent: str | None,
    ) -> Outputs:
        """Run `template` as node `node_name`; its outputs as recorded."""
        where = f"{self.workflow.source}: {display}"
        kind = spec.kind_of(template, self.workflow.source)
        parameters = self._inputs(template, arguments.parameters, where)
        values = {**self.globals, **{f"inputs.parameters.{k}": v for k, v in parameters.items()}}
        if kind in spec.LEAF_KINDS:
            return self._pod(template, arguments, values, node_name, display, parent)
        resolved = variables.substitute(template, values)
        node_id = self._node_id(node_name)
        inputs = spec.bind_inputs(resolved, arguments.artifacts, where)
        self._add_node(
            node_id, node_name, display, "Steps" if kind == "steps" else "DAG", template, parent
        )
        scope = _Scope(
            spec.Scope(
                "steps" if kind == "steps" else "tasks", {}, {str(a["name"]): a for a in inputs}
            ),
            dict(values),
        )
        try:
            if kind == "steps":
                for i, group in enumerate(spec.step_groups(resolved, self.workflow.source)):
                    self._group(group, scope, node_id, _step_namer(node_name, i))
            else:
                for wave in spec.dag_waves(resolved, self.workflow.source):
                    ready = [t for t in wave if self._depends_met(t, scope, node_id, node_name)]
                    self._group(ready, scope, node_id, _task_namer(node_name))
            outputs = self._flow_outputs(resolved, scope, where)
        except Exception:
            self._finish_node(node_id, "Failed", Outputs())
            raise
        self._finish_node(node_id, "Succeeded", outputs)
        return outputs

    def _flow_outputs(self, template: Raw, scope: _Scope, where: str) -> Outputs:
        """A steps/dag template's own outputs: artifacts `from:` its children's, parameters
        from `valueFrom.parameter` (or a `value`), substituted in its scope."""
        try:
            artifacts = spec.template_outputs(template, scope.artifacts, where)
        except InvalidSpec as error:
            raise StepFailed(str(error)) from None
        parameters = {}
        for parameter in (template.get("outputs") or {}).get("parameters") or []:
            source = parameter.get("valueFrom") or {}
            text = source.get("parameter") if source else variables.scalar(parameter.get("value"))
            value = variables.replace(str(text), scope.values)
            if any(variables.is_argos(tag) for tag in variables.tags(value)):
                # what it names did not run (a skipped step): Argo takes the default
                if source.get("default") is None:
                    raise StepFailed(
                        f"{where}: output parameter {parameter['name']}: cannot resolve {text}"
                    )
                value = variables.scalar(source["default"]) or ""
            parameters[str(parameter["name"])] = value
        return Outputs(artifacts, parameters)

    def _depends_met(self, task: Raw, scope: _Scope, parent: str, node_name: str) -> bool:
        """Whether a task whose dependencies are done runs; one that does not is Omitted."""
        logic = task.get("depends")
        if not logic and task.get("dependencies"):
            logic = " && ".join(str(d) for d in task["dependencies"])
        if not logic or expressions.parse_depends(str(logic))(scope.results):
            return True
        name = str(task["name"])
        scope.results[name] = "Omitted"
        self._skip(
            _task_namer(node_name)(name),
            name,
            "Omitted",
            "omitted: depends condition not met",
            parent,
        )
        return False

    def _group(
        self, steps: Sequence[Raw], scope: _Scope, parent: str, name_of: Callable[[str], str]
    ) -> None:
        """Steps (or tasks) that may run at once: each substituted, its `when` evaluated and
        its loop expanded, all resolved before any starts, then run in parallel."""
        jobs: list[_Job] = []
        for raw in steps:
            step = variables.substitute(raw, scope.values)
            name = str(step["name"])
            where = f"{self.workflow.source}: {name}"
            if not loops.is_loop(step):
                if self._skipped(step, name, name_of(name), parent):
                    scope.results[name] = "Skipped"
                    continue
                jobs.append(self._job(step, name, name, name_of(name), scope))
                continue
            try:
                items = loops.items_of(step, where)
            except InvalidSpec as error:
                raise StepFailed(str(error)) from None
            body = {k: v for k, v in step.items() if k not in loops.LOOP_FIELDS}
            if not items:
                self._skip(name_of(name), name, "Skipped", "Skipped, empty params", parent)
            expanded = []
            for index, item in enumerate(items):
                one = variables.substitute(body, item.values)
                display = loops.node_name(name, index, item.label)
                if not self._skipped(one, display, name_of(display), parent):
                    expanded.append(self._job(one, display, None, name_of(display), scope))
            scope.results[name] = "Succeeded" if expanded else "Skipped"
            jobs += expanded
        self._together(jobs, scope, parent)

    def _skipped(self, step: Raw, display: str, node_name: str, parent: str) -> bool:
        condition = step.get("when")
        if condition is None or str(condition).strip() == "":
            return False
        try:
            proceed = expressions.when(str(condition))
        except InvalidSpec as error:
            raise StepFailed(f"step {display}: when {str(condition)!r}: {error}") from None
        if not proceed:
            self._skip(node_name, display, "Skipped", f"when '{condition}' evaluated false", parent)
        return not proceed

    def _job(
        self, step: Raw, display: str, record: str | None, node_name: str, scope: _Scope
    ) -> _Job:
        where = f"{self.workflow.source}: {display}"
        try:
            artifacts = spec.resolve_arguments(step, scope.artifacts, where)
        except InvalidSpec as error:
            raise StepFailed(str(error)) from None
        parameters = {
            str(p["name"]): variables.scalar(p.get("value")) or ""
            for p in (step.get("arguments") or {}).get("parameters") or []
        }
        template = self.workflow.template(str(step["template"]), where)
        return _Job(display, record, template, Arguments(parameters, artifacts), node_name)

    def _together(self, jobs: Sequence[_Job], scope: _Scope, parent: str) -> None:
        def one(job: _Job) -> Outputs:
            return self._template(job.template, job.arguments, job.node_name, job.name, parent)

        if not jobs:
            return
        if len(jobs) == 1:
            outcomes: list[Outputs | BaseException] = [_attempt(one, jobs[0])]
        else:
            with ThreadPoolExecutor(len(jobs), thread_name_prefix="argosy-step") as pool:
                outcomes = list(pool.map(lambda job: _attempt(one, job), jobs))
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.record is not None and isinstance(outcome, Outputs):
                self._record(job.record, outcome, scope)

    def _record(self, name: str, outputs: Outputs, scope: _Scope) -> None:
        """A finished step's outputs, readable by the steps after it."""
        prefix = f"{scope.artifacts.kind}.{name}.outputs"
        scope.artifacts.outputs[name] = outputs.artifacts
        scope.values |= {f"{prefix}.parameters.{k}": v for k, v in outputs.parameters.items()}
        if outputs.result is not None:
            scope.values[f"{prefix}.result"] = outputs.result
        scope.results[name] = "Succeeded"

    def _pod(
        self,
        template: Raw,
        arguments: Arguments,
        values: Mapping[str, str],
        node_name: str,
        display: str,
        parent: str | None,
    ) -> Outputs:
        wf = self.workflow
        where = f"{wf.source}: {display}"
        pod_name = spec.pod_name(wf.name, str(template["name"]), node_name)
        node_id = pod_name
        local = {**values, "pod.name": pod_name, **_paths(template, self.globals)}
        resolved = dict(variables.substitute(template, local))
        inputs = spec.bind_inputs(resolved, arguments.artifacts, where)
        if (resolved.get("inputs") or {}).get("parameters"):
            resolved["inputs"] = {
                **resolved["inputs"],
                "parameters": [
                    {**p, "value": values[f"inputs.parameters.{p['name']}"]}
                    for p in resolved["inputs"]["parameters"]
                ],
            }
        prefix = keys.expand(self.key_format, {**self.globals, "pod.name": pod_name})
        pod = Pod(
            workflow=wf.name,
            namespace=wf.namespace,
            workflow_uid=self.run_record.uid,
            node_id=node_id,
            node_name=node_name,
            display=display,
            pod_name=pod_name,
            template=spec.pod_template(
                resolved, inputs, spec.archive_location(self.repository, prefix)
            ),
            command=spec.leaf_command(resolved, wf.source),
            env=spec.leaf_env(resolved, wf.source),
            script=spec.leaf_script(resolved, wf.source),
            workdir=spec.leaf_workdir(resolved, wf.source),
        )
        self._add_node(node_id, node_name, display, "Pod", template, parent)
        result = self.runner.run(pod)
        self.run_record.results.append(result)
        outputs = Outputs(list(result.outputs), dict(result.parameters), result.result)
        self._finish_node(node_id, "Failed" if result.failure else "Succeeded", outputs)
        self.on_pod(result)
        if result.failure:
            raise StepFailed(f"step {display} (pod {pod_name}) failed: {result.failure}")
        return outputs

    # -- Argo's status.nodes -------------------------------------------------------------
    def _node_id(self, node_name: str) -> str:
        wf = self.workflow.name
        return wf if node_name == wf else f"{wf}-{spec.fnv32a(node_name)}"

    def _add_node(
        self,
        node_id: str,
        node_name: str,
        display: str,
        kind: str,
        template: Raw,
        parent: str | None,
    ) -> None:
        self.run_record.nodes[node_id] = {
            "id": node_id,
            "name": node_name,
            "displayName": display,
            "type": kind,
            "templateName": str(template.get("name")),
            "phase": "Running",
        }
        if parent is not None:
            children = self.run_record.nodes[parent].setdefault("children", [])
            children.append(node_id)

    def _skip(self, node_name: str, display: str, phase: str, reason: str, parent: str) -> None:
        """A step that does not run: Skipped (its `when`, an empty loop) or Omitted."""
        node_id = self._node_id(node_name)
        self.run_record.nodes[node_id] = {
            "id": node_id,
            "name": node_name,
            "displayName": display,
            "type": "Skipped",
            "phase": phase,
            "message": reason,
        }
        self.run_record.nodes[parent].setdefault("children", []).append(node_id)
        self.on_skip(display, reason)

    def _finish_node(self, node_id: str, phase: str, outputs: Outputs) -> None:
        node = self.run_record.nodes[node_id]
        node["phase"] = phase
        recorded: dict[str, Any] = {}
        if outputs.artifacts:
            recorded["artifacts"] = [dict(a) for a in outputs.artifacts]
        if outputs.parameters:
            recorded["parameters"] = [
                {"name": k, "value": v} for k, v in outputs.parameters.items()
            ]
        if outputs.result is not None:
            recorded["result"] = outputs.result
        if recorded:
            node["outputs"] = recorded


def _paths(template: Raw, globals_: Mapping[str, str]) -> dict[str, str]:
    """`{{inputs.artifacts.X.path}}`, `{{outputs.artifacts.X.path}}` and
    `{{outputs.parameters.X.path}}`: each path as declared, globals substituted (Argo
    builds these after its first pass, before input parameters are substituted)."""
    found = {}
    for side in ("inputs", "outputs"):
        for artifact in (template.get(side) or {}).get("artifacts") or []:
            if artifact.get("path"):
                path = variables.replace(str(artifact["path"]), globals_)
                found[f"{side}.artifacts.{artifact['name']}.path"] = path
    for parameter in (template.get("outputs") or {}).get("parameters") or []:
        source = parameter.get("valueFrom") or {}
        if source.get("path"):
            found[f"outputs.parameters.{parameter['name']}.path"] = variables.replace(
                str(source["path"]), globals_
            )
    return found


def _step_namer(parent: str, group: int) -> Callable[[str], str]:
    return lambda name: spec.step_node_name(parent, group, name)


def _task_namer(parent: str) -> Callable[[str], str]:
    return lambda name: spec.task_node_name(parent, name)


def _attempt(function: Callable[[Any], Outputs], job: Any) -> Outputs | BaseException:
    try:
        return function(job)
    except Exception as error:  # noqa: BLE001 - re-raised by the caller once all are done
        return error
