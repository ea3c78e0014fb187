"""Everything in a workflow the demo engine would not run as Argo runs it, found before
any step runs.

A local engine that meets a feature half-way through a run has already run (and
written) the steps before it, and one that ignores a feature runs something else than
Argo would. So the whole workflow is read first, every template whether or not it is
reached: a feature the engine does not implement is refused with one line naming it and
where it is (exit 2, nothing run); so are the mistakes Argo's own validation refuses at
submission (a `{{...}}` that names nothing, an input nobody supplies, a `from:` that
cannot be resolved). What the engine implements: container and script templates, steps
and DAGs (`dependencies`, `depends` on success, skip and omission), parameters
(workflow arguments, inputs with defaults, step and task arguments, outputs from a file
(`valueFrom.path`) or a value, a steps or dag template's `valueFrom.parameter`, a
pod's `outputs.result`), loops (`withItems`, `withParam`, `withSequence`) and `when`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from argosy.argo import references
from argosy.argo.names import LOCATION_KINDS
from argosy.artifacts.errors import InvalidSpec
from argosy.demo import expressions, loops, sandbox, spec, variables

Raw = Mapping[str, Any]
_NOTHING_RUN = "is not supported by the demo engine (nothing was run)"

SPEC_REFUSED = {
    "onExit": "an exit handler (onExit)",
    "hooks": "lifecycle hooks (hooks)",
    "workflowTemplateRef": "a WorkflowTemplate (workflowTemplateRef)",
    "templateDefaults": "template defaults (templateDefaults)",
    "volumes": "volumes",
    "volumeClaimTemplates": "volume claims (volumeClaimTemplates)",
    "parallelism": "a parallelism limit (parallelism)",
    "retryStrategy": "retries (retryStrategy)",
    "synchronization": "synchronization (synchronization)",
    "suspend": "a suspended workflow (suspend)",
    "shutdown": "a shutdown (shutdown)",
    "activeDeadlineSeconds": "a deadline for the whole workflow (activeDeadlineSeconds)",
}
TEMPLATE_REFUSED = {
    "daemon": "a daemon (daemon)",
    "volumes": "volumes",
    "initContainers": "init containers (initContainers)",
    "sidecars": "sidecars",
    "retryStrategy": "retries (retryStrategy)",
    "parallelism": "a parallelism limit (parallelism)",
    "failFast": "failFast",
    "memoize": "memoization (memoize)",
    "synchronization": "synchronization (synchronization)",
    "containerSet": "a containerSet template",
    "resource": "a resource template",
    "suspend": "a suspend template",
    "data": "a data template",
    "http": "an http template",
    "plugin": "a plugin template",
    "activeDeadlineSeconds": "a deadline (activeDeadlineSeconds)",
    "timeout": "a timeout (timeout)",
}

MAIN_REFUSED = {
    "volumeMounts": "volume mounts (volumeMounts)",
    "envFrom": "environment from ConfigMaps or Secrets (envFrom)",
}
STEP_REFUSED = {
    "templateRef": "a WorkflowTemplate's template (templateRef)",
    "inline": "an inline template (inline)",
    "hooks": "lifecycle hooks (hooks)",
    "onExit": "an exit handler (onExit)",
    "continueOn": "continuing after a failure (continueOn)",
}
STEP_FIELDS = frozenset({"name", "template", "arguments", "when", *loops.LOOP_FIELDS})
TASK_FIELDS = frozenset({*STEP_FIELDS, "dependencies", "depends"})
DAG_FIELDS = frozenset({"tasks"})
GLOBALS = ("workflow.name", "workflow.namespace", "workflow.uid")
POD_OUTPUTS = ("outputs.result",)  # what a container or script pod always has


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != {}


def workflow(wf: spec.Workflow) -> None:
    """Raises InvalidSpec naming the first thing the engine would not run as Argo would."""
    _Checker(wf).run()


@dataclass
class _Caller:
    """What a call site gives the template it calls."""

    where: str
    template: str
    parameters: set[str] = field(default_factory=set)
    artifacts: set[str] = field(default_factory=set)


class _Checker:
    def __init__(self, wf: spec.Workflow) -> None:
        self.wf = wf
        self.source = wf.source
        body = wf.raw.get("spec")
        self.spec: Raw = body if isinstance(body, Mapping) else {}
        self.globals: set[str] = set(GLOBALS)

    def fail(self, where: str, message: str) -> InvalidSpec:
        return InvalidSpec(f"{self.source}: {where}: {message}")

    def refuse(self, where: str, feature: str) -> InvalidSpec:
        return self.fail(where, f"{feature} {_NOTHING_RUN}")

    def run(self) -> None:
        for name, feature in SPEC_REFUSED.items():
            if _given(self.spec.get(name)):
                raise self.refuse(f"spec.{name}", feature)
        entry = _Caller("spec.arguments", self.wf.entrypoint)
        self._arguments(self.spec.get("arguments"), "spec.arguments", entry, workflow=True)
        for name in entry.parameters:
            self.globals.add(f"workflow.parameters.{name}")
        self._supplied(entry)
        for name, template in self.wf.templates.items():
            self._template(name, template)

    # -- arguments and inputs --------------------------------------------------------------
    def _arguments(self, raw: Any, where: str, caller: _Caller, *, workflow: bool = False) -> None:
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            raise self.fail(where, "must be a mapping (parameters, artifacts)")
        for i, parameter in enumerate(_list(raw.get("parameters"), f"{where}.parameters", self)):
            at = f"{where}.parameters[{i}]"
            name = _name(parameter, at, self)
            if _given(parameter.get("valueFrom")):
                raise self.refuse(f"{at} ({name})", "a parameter's valueFrom")
            if "value" not in parameter or variables.scalar(parameter["value"]) is None:
                raise self.fail(f"{at} ({name})", "needs a value (a string, number or boolean)")
            enum = parameter.get("enum")
            if workflow and enum is not None:
                shown = [variables.scalar(e) for e in enum] if isinstance(enum, list) else []
                if variables.scalar(parameter["value"]) not in shown:
                    raise self.fail(f"{at} ({name})", f"value is not one of its enum {enum}")
            caller.parameters.add(name)
        for i, artifact in enumerate(_list(raw.get("artifacts"), f"{where}.artifacts", self)):
            caller.artifacts.add(_name(artifact, f"{where}.artifacts[{i}]", self))

    def _supplied(self, caller: _Caller) -> None:
        """Every input the called template needs and does not default is given, as
        Argo's validation demands (`inputs.parameters.X was not supplied`)."""
        template = self.wf.templates.get(caller.template)
        if template is None:
            raise self.fail(
                caller.where,
                f"names template {caller.template!r}, which the workflow does not have",
            )
        inputs = _part(template, "inputs")
        for parameter in inputs.get("parameters") or []:
            if not isinstance(parameter, Mapping):
                continue
            needs = parameter.get("value") is None and parameter.get("default") is None
            if needs and parameter.get("name") not in caller.parameters:
                raise self.fail(
                    caller.where,
                    f"template {caller.template!r} needs input parameter "
                    f"{parameter.get('name')!r}, which is not supplied",
                )
        for artifact in inputs.get("artifacts") or []:
            if not isinstance(artifact, Mapping) or artifact.get("optional"):
                continue
            has_source = any(artifact.get(k) is not None for k in LOCATION_KINDS)
            if not has_source and artifact.get("name") not in caller.artifacts:
                raise self.fail(
                    caller.where,
                    f"template {caller.template!r} needs input artifact "
                    f"{artifact.get('name')!r}, which is not supplied",
                )

    # -- templates ----------------------------------------------------------------------
    def _template(self, name: str, template: Raw) -> None:
        where = f"templates.{name}"
        for key, feature in TEMPLATE_REFUSED.items():
            if _given(template.get(key)):
                raise self.refuse(where, feature)
        kind = spec.kind_of(template, self.source)
        scope = _Scope(self, name, set(self.globals))
        inputs = _part(template, "inputs")
        for i, parameter in enumerate(
            _list(inputs.get("parameters"), f"{where}.inputs.parameters", self)
        ):
            pname = _name(parameter, f"{where}.inputs.parameters[{i}]", self)
            if _given(parameter.get("valueFrom")):
                raise self.refuse(f"{where}.inputs.parameters.{pname}", "an input's valueFrom")
            scope.known.add(f"inputs.parameters.{pname}")
        self._outputs(template, kind, where)
        for problem in references.problems(template, self.wf.templates):
            raise self.fail(f"{where}.{problem.field}", problem.message)
        if kind in spec.LEAF_KINDS:
            self._leaf(template, where, scope)
        else:
            self._flow(template, kind, where, scope)

    def _outputs(self, template: Raw, kind: str, where: str) -> None:
        outputs = _part(template, "outputs")
        for i, parameter in enumerate(
            _list(outputs.get("parameters"), f"{where}.outputs.parameters", self)
        ):
            pname = _name(parameter, f"{where}.outputs.parameters[{i}]", self)
            at = f"{where}.outputs.parameters.{pname}"
            source = parameter.get("valueFrom")
            if source is None:
                if parameter.get("value") is None:
                    raise self.fail(at, "needs a value or a valueFrom")
                continue
            if not isinstance(source, Mapping):
                raise self.fail(f"{at}.valueFrom", "must be a mapping")
            wanted = "path" if kind in spec.LEAF_KINDS else "parameter"
            others = sorted(
                k for k in source if k not in (wanted, "default") and source[k] is not None
            )
            if others:
                raise self.refuse(at, f"an output parameter's valueFrom.{others[0]}")
            if not isinstance(source.get(wanted), str):
                raise self.fail(f"{at}.valueFrom", f"needs {wanted} in a {kind} template")

    def _leaf(self, template: Raw, where: str, scope: _Scope) -> None:
        main = template.get("container") or template.get("script")
        if isinstance(main, Mapping):
            for key, feature in MAIN_REFUSED.items():
                if _given(main.get(key)):
                    raise self.refuse(where, feature)
            for item in main.get("env") or []:
                if isinstance(item, Mapping) and item.get("valueFrom") is not None:
                    raise self.refuse(f"{where}.env.{item.get('name')}", "an env valueFrom")
        paths = []
        for side in ("inputs", "outputs"):
            for artifact in _artifacts(template, side):
                if isinstance(artifact.get("path"), str):
                    paths.append(artifact["path"])
                    scope.known.add(f"{side}.artifacts.{artifact.get('name')}.path")
        outputs = _part(template, "outputs")
        for parameter in outputs.get("parameters") or []:
            source = parameter.get("valueFrom") if isinstance(parameter, Mapping) else None
            if isinstance(source, Mapping) and isinstance(source.get("path"), str):
                paths.append(source["path"])
                scope.known.add(f"outputs.parameters.{parameter.get('name')}.path")
        try:
            sandbox.tops_of(p for p in paths if not variables.tags(p))
        except InvalidSpec as error:
            raise self.fail(where, str(error)) from None
        scope.known.add("pod.name")
        scope.check(template, where)

    # -- steps and DAGs -----------------------------------------------------------------
    def _flow(self, template: Raw, kind: str, where: str, scope: _Scope) -> None:
        for artifact in _artifacts(template, "inputs"):
            scope.known.add(f"inputs.artifacts.{artifact.get('name')}")
        scope.check(
            {k: v for k, v in template.items() if k not in ("steps", "dag", "outputs")}, where
        )
        for step, at in _raw_calls(template, where):
            for key, feature in STEP_REFUSED.items():  # before the template each step names
                if _given(step.get(key)):
                    raise self.refuse(at, feature)
        if kind == "steps":
            calls = [
                (step, f"{where}.steps[{g}].{step['name']}", g)
                for g, group in enumerate(spec.step_groups(template, self.source))
                for step in group
            ]
            fields, noun = STEP_FIELDS, "steps"
        else:
            dag = template["dag"]
            if isinstance(dag, Mapping):
                for key in sorted(set(dag) - DAG_FIELDS):
                    if _given(dag[key]):
                        raise self.refuse(f"{where}.dag.{key}", f"a dag's {key}")
            waves = spec.dag_waves(template, self.source)
            calls = [
                (task, f"{where}.tasks.{task['name']}", w)
                for w, wave in enumerate(waves)
                for task in wave
            ]
            fields, noun = TASK_FIELDS, "tasks"
        producers = {str(step["name"]): step for step, _, _ in calls}
        for step, at, group in calls:
            self._call(step, at, fields)
            visible = self._visible(noun, step, group, calls, producers)
            scope.check(step, at, visible=visible, noun=noun, loop=step)
        everything = self._visible(noun, None, None, calls, producers)
        scope.check(template.get("outputs"), f"{where}.outputs", visible=everything, noun=noun)

    def _call(self, step: Raw, where: str, fields: frozenset[str]) -> None:
        for key, feature in STEP_REFUSED.items():
            if _given(step.get(key)):
                raise self.refuse(where, feature)
        unknown = sorted(set(step) - fields)
        if unknown:
            raise self.refuse(where, f"the field {unknown[0]}")
        if step.get("depends") and step.get("dependencies"):
            raise self.fail(where, "cannot use both depends and dependencies")
        given = [k for k in loops.LOOP_FIELDS if step.get(k) is not None]
        if len(given) > 1:
            raise self.fail(
                where, "only one of withItems, withParam, withSequence can be specified"
            )
        if step.get("withItems") is not None:
            if not isinstance(step["withItems"], list):
                raise self.fail(f"{where}.withItems", "must be a list")
            for i, value in enumerate(step["withItems"]):
                if not variables.tags(str(value)):
                    loops.item(value, f"{where}.withItems[{i}]")
        if step.get("withSequence") is not None:
            sequence = step["withSequence"]
            if not isinstance(sequence, Mapping):
                raise self.fail(f"{where}.withSequence", "must be a mapping")
            if not variables.all_tags(sequence):
                loops.sequence(sequence, where)
            elif isinstance(sequence.get("format"), str):
                loops.check_format(sequence["format"], where)
        if step.get("when") is not None:
            try:
                expressions.check_when(str(step["when"]))
            except expressions.ExpressionError as error:
                raise self.fail(f"{where}.when", f"{step['when']!r}: {error}") from None
        if isinstance(step.get("depends"), str):
            try:
                expressions.parse_depends(step["depends"])
            except expressions.ExpressionError as error:
                raise self.fail(f"{where}.depends", f"{step['depends']!r}: {error}") from None
        caller = _Caller(where, str(step["template"]))
        self._arguments(step.get("arguments"), f"{where}.arguments", caller)
        self._supplied(caller)

    def _visible(
        self,
        noun: str,
        step: Raw | None,
        group: int | None,
        calls: list[tuple[Raw, str, int]],
        producers: Mapping[str, Raw],
    ) -> dict[str, Raw]:
        """The steps (earlier groups) or tasks (ancestors) whose outputs `step` may read;
        all of them for the template's own outputs (`step` None)."""
        if step is None or group is None:
            return dict(producers)
        if noun == "steps":
            return {str(s["name"]): s for s, _, g in calls if g < group}
        ancestors = _ancestors(str(step["name"]), producers)
        return {name: producers[name] for name in ancestors if name in producers}


def _ancestors(name: str, tasks: Mapping[str, Raw]) -> set[str]:
    seen: set[str] = set()
    todo = references.depends_names(tasks[name]) if name in tasks else []
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += references.depends_names(tasks[current]) if current in tasks else []
    return seen


@dataclass
class _Scope:
    """The `{{...}}` a template's strings may use, and why another one cannot be."""

    checker: _Checker
    template: str
    known: set[str]

    def check(
        self,
        value: Any,
        where: str,
        *,
        visible: Mapping[str, Raw] | None = None,
        noun: str = "",
        loop: Raw | None = None,
    ) -> None:
        known = set(self.known)
        for name, producer in (visible or {}).items():
            known |= self._outputs_of(noun, name, producer)
        item_keys = _item_keys(loop) if loop is not None and loops.is_loop(loop) else None
        for tag in variables.all_tags(value):
            if tag in known or not variables.is_argos(tag) or tag.startswith("outputs."):
                continue
            if item_keys is not None and (
                tag == "item"
                or (
                    tag.startswith("item.")
                    and ("*" in item_keys or tag[len("item.") :] in item_keys)
                )
            ):
                continue
            raise self.checker.fail(where, f"{{{{{tag}}}}} {self._why(tag, visible, noun, loop)}")

    def _outputs_of(self, noun: str, name: str, producer: Raw) -> set[str]:
        if loops.is_loop(producer):
            return set()  # aggregated outputs: refused with a reason in _why
        callee = self.checker.wf.templates.get(str(producer.get("template")))
        if callee is None:
            return set()
        prefix = f"{noun}.{name}.outputs"
        found = {f"{prefix}.parameters.{p.get('name')}" for p in _parameters(callee)}
        found |= {f"{prefix}.artifacts.{a.get('name')}" for a in _artifacts(callee, "outputs")}
        if any(callee.get(k) is not None for k in spec.LEAF_KINDS):
            found.add(f"{prefix}.result")
        return found

    def _why(self, tag: str, visible: Mapping[str, Raw] | None, noun: str, loop: Raw | None) -> str:
        parts = tag.split(".")
        if tag.startswith("="):
            return "is an expression, which the demo engine does not evaluate (nothing was run)"
        if tag.startswith("inputs.parameters.") and len(parts) == 3:
            return f"names no input parameter of template {self.template!r}"
        if tag.startswith("workflow.parameters.") and len(parts) == 3:
            return "names no parameter of the workflow (spec.arguments.parameters)"
        if tag.startswith("item") and (loop is None or not loops.is_loop(loop)):
            return "is used outside a loop"
        if tag.startswith("item."):
            return "names a key no item of the loop has"
        if parts[0] in ("steps", "tasks") and len(parts) >= 3:
            name = parts[1]
            if parts[0] != noun:
                flow = "dag" if parts[0] == "tasks" else "steps"
                return f"refers to {parts[0]} outside a {flow} template"
            if visible is not None and name in visible and loops.is_loop(visible[name]):
                return (
                    f"reads the outputs of {name}, which runs in a loop: aggregated outputs "
                    f"{_NOTHING_RUN}"
                )
            if visible is None or name not in visible:
                order = "an earlier step group" if noun == "steps" else "a task it depends on"
                return f"names {name!r}, which is not {order} of template {self.template!r}"
            if parts[2:4] == ["outputs", "parameters"]:
                return f"names an output parameter {name!r}'s template does not declare"
            if parts[2:] == ["outputs", "result"]:
                return f"names the result of {name!r}, which runs a steps or dag template"
        return _NOTHING_RUN


def _raw_calls(template: Raw, where: str) -> list[tuple[Raw, str]]:
    """Every step or task mapping of a template, as written, with where it is."""
    found = []
    steps = template.get("steps")
    for g, group in enumerate(steps if isinstance(steps, list) else []):
        members = [group] if isinstance(group, Mapping) else group
        for step in members if isinstance(members, list) else []:
            if isinstance(step, Mapping):
                found.append((step, f"{where}.steps[{g}].{step.get('name')}"))
    dag = template.get("dag")
    tasks = dag.get("tasks") if isinstance(dag, Mapping) else None
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, Mapping):
            found.append((task, f"{where}.tasks.{task.get('name')}"))
    return found


def _item_keys(loop: Raw) -> set[str]:
    """The `item.KEY` a loop's items have (`*`: any, a withParam's are known at run time)."""
    if loop.get("withParam") is not None:
        return {"*"}
    keys: set[str] = set()
    for value in loop.get("withItems") or []:
        if isinstance(value, Mapping):
            keys |= {str(k) for k in value}
    return keys


def _part(template: Raw, side: str) -> Raw:
    """A template's `inputs` or `outputs` mapping (empty when not one)."""
    part = template.get(side)
    return part if isinstance(part, Mapping) else {}


def _list(raw: Any, where: str, checker: _Checker) -> list[Raw]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, Mapping) for x in raw):
        raise checker.fail(where, "must be a list of mappings")
    return raw


def _name(raw: Raw, where: str, checker: _Checker) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[-a-zA-Z0-9_]+", name):
        raise checker.fail(where, f"needs a name of letters, digits, - and _ (not {name!r})")
    return name


def _artifacts(template: Raw, side: str) -> list[Raw]:
    part = template.get(side)
    items = part.get("artifacts") if isinstance(part, Mapping) else None
    return [a for a in items or [] if isinstance(a, Mapping)]


def _parameters(template: Raw) -> list[Raw]:
    part = template.get("outputs")
    items = part.get("parameters") if isinstance(part, Mapping) else None
    return [p for p in items or [] if isinstance(p, Mapping)]
