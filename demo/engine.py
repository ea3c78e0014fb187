"""A small local workflow engine: walks an Argo Workflow's `steps` and `dag` templates the
way Argo's controller does, and hands every leaf (a pod) to a runner.

What it takes from the controller: steps run group after group, the steps of a group
in parallel; dag tasks run as soon as their dependencies are done (in waves); a step's
`from:` arguments are resolved from the outputs its producer recorded, and its pod gets
the resolved template (inputs bound, `archiveLocation` filled in from the repository
with the key prefix already expanded). It also keeps Argo's `status.nodes`, so that what
the pods recorded can be handed to the GC exactly as Argo would have it.

How a pod runs is the runner's business (`argosy.demo.pod` runs real `argosy init/wait/
emissary` processes; tests use a fake), so the walk is tested without processes.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from argosy.argo import keys
from argosy.artifacts.errors import PermanentError
from argosy.demo import spec

Raw = Mapping[str, Any]


class StepFailed(PermanentError):
    """A pod of the workflow failed; the workflow stops as Argo's would (steps already
    running in parallel finish first)."""


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
    the node's status (location filled in); `failure` says why the pod failed, if it did.
    The reports are the sidecar's `inputs.json` / `outputs.json`, for people."""

    pod: Pod
    outputs: list[Raw] = field(default_factory=list)
    failure: str | None = None
    inputs_report: Raw | None = None
    outputs_report: Raw | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # init, main, wait: wall time
    folder: str = ""


class PodRunner(Protocol):
    def run(self, pod: Pod) -> PodResult: ...


@dataclass
class Run:
    """One workflow's run: its pods in the order they finished, and Argo's node tree."""

    workflow: spec.Workflow
    uid: str
    results: list[PodResult] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return bool(self.results) and all(r.failure is None for r in self.results)


class Engine:
    def __init__(
        self,
        workflow: spec.Workflow,
        runner: PodRunner,
        *,
        repository: Raw,
        key_format: str,
        on_pod: Callable[[PodResult], None] = lambda result: None,
    ) -> None:
        self.workflow = workflow
        self.runner = runner
        self.repository = repository
        self.key_format = key_format
        self.on_pod = on_pod
        self.run_record = Run(workflow, str(uuid.uuid4()))

    def run(self) -> Run:
        wf = self.workflow
        template = wf.template(wf.entrypoint, "spec.entrypoint")
        arguments = {
            str(a["name"]): a
            for a in ((wf.raw.get("spec") or {}).get("arguments") or {}).get("artifacts") or []
            if isinstance(a, Mapping) and a.get("name")
        }
        self._template(template, arguments, wf.name, wf.name, parent=None)
        return self.run_record

    # -- the walk ------------------------------------------------------------------------
    def _template(
        self,
        template: Raw,
        arguments: Mapping[str, Raw],
        node_name: str,
        display: str,
        parent: str | None,
    ) -> list[Raw]:
        """Run `template` as node `node_name`; its output artifacts as recorded."""
        where = f"{self.workflow.source}: {display}"
        kind = spec.kind_of(template, self.workflow.source)
        if kind in spec.LEAF_KINDS:
            return self._pod(template, arguments, node_name, display, parent)
        node_id = self._node_id(node_name)
        inputs = spec.bind_inputs(template, arguments, where)
        self._add_node(
            node_id, node_name, display, "Steps" if kind == "steps" else "DAG", template, parent
        )
        scope = spec.Scope(
            "steps" if kind == "steps" else "tasks", {}, {str(a["name"]): a for a in inputs}
        )
        try:
            if kind == "steps":
                for i, group in enumerate(spec.step_groups(template, self.workflow.source)):
                    self._together(
                        group, scope, node_id, functools.partial(_step_name, node_name, i)
                    )
            else:
                for wave in spec.dag_waves(template, self.workflow.source):
                    self._together(
                        wave,
                        scope,
                        node_id,
                        lambda task: spec.task_node_name(node_name, str(task["name"])),
                    )
            outputs = spec.template_outputs(template, scope, where)
        except Exception:
            self._finish_node(node_id, "Failed", [])
            raise
        self._finish_node(node_id, "Succeeded", outputs)
        return outputs

    def _together(
        self, steps: Sequence[Raw], scope: spec.Scope, parent: str, name_of: Callable[[Raw], str]
    ) -> None:
        """Steps (or tasks) that may run at once; all are resolved before any starts, so a
        bad reference fails before a pod runs."""
        jobs = []
        for step in steps:
            where = f"{self.workflow.source}: {step['name']}"
            arguments = spec.resolve_arguments(step, scope, where)
            template = self.workflow.template(str(step["template"]), where)
            jobs.append((str(step["name"]), template, arguments, name_of(step)))

        def one(job: tuple[str, Raw, dict[str, Raw], str]) -> list[Raw]:
            name, template, arguments, node_name = job
            return self._template(template, arguments, node_name, name, parent)

        if len(jobs) == 1:
            outcomes: list[list[Raw] | BaseException] = [_attempt(one, jobs[0])]
        else:
            with ThreadPoolExecutor(len(jobs), thread_name_prefix="argosy-step") as pool:
                outcomes = list(pool.map(lambda job: _attempt(one, job), jobs))
        for (name, *_), outcome in zip(jobs, outcomes, strict=False):
            if isinstance(outcome, BaseException):
                raise outcome
            scope.outputs[name] = outcome

    def _pod(
        self,
        template: Raw,
        arguments: Mapping[str, Raw],
        node_name: str,
        display: str,
        parent: str | None,
    ) -> list[Raw]:
        wf = self.workflow
        where = f"{wf.source}: {display}"
        pod_name = spec.pod_name(wf.name, str(template["name"]), node_name)
        node_id = pod_name
        variables = {
            "workflow.name": wf.name,
            "workflow.namespace": wf.namespace,
            "workflow.uid": self.run_record.uid,
            "pod.name": pod_name,
        }
        prefix = keys.expand(self.key_format, variables)
        inputs = spec.bind_inputs(template, arguments, where)
        pod = Pod(
            workflow=wf.name,
            namespace=wf.namespace,
            workflow_uid=self.run_record.uid,
            node_id=node_id,
            node_name=node_name,
            display=display,
            pod_name=pod_name,
            template=spec.pod_template(
                template, inputs, spec.archive_location(self.repository, prefix)
            ),
            command=spec.leaf_command(template, wf.source),
            env=spec.leaf_env(template, wf.source),
            script=spec.leaf_script(template, wf.source),
            workdir=spec.leaf_workdir(template, wf.source),
        )
        self._add_node(node_id, node_name, display, "Pod", template, parent)
        result = self.runner.run(pod)
        self.run_record.results.append(result)
        self._finish_node(node_id, "Failed" if result.failure else "Succeeded", result.outputs)
        self.on_pod(result)
        if result.failure:
            raise StepFailed(f"step {display} (pod {pod_name}) failed: {result.failure}")
        return result.outputs

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

    def _finish_node(self, node_id: str, phase: str, outputs: Sequence[Raw]) -> None:
        node = self.run_record.nodes[node_id]
        node["phase"] = phase
        if outputs:
            node["outputs"] = {"artifacts": [dict(a) for a in outputs]}


def _step_name(parent: str, group: int, step: Raw) -> str:
    return spec.step_node_name(parent, group, str(step["name"]))


def _attempt(function: Callable[[Any], list[Raw]], job: Any) -> list[Raw] | BaseException:
    try:
        return function(job)
    except Exception as error:  # noqa: BLE001 - re-raised by the caller once all are done
        return error
