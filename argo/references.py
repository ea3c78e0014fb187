"""Where a `from:` points, checked before anything runs.

Argo resolves `from: "{{steps.NAME.outputs.artifacts.X}}"` (or `tasks.NAME`) only when
the consuming step is about to start: a typo in NAME or X, or a step that runs alongside
or after its consumer, surfaces as a failed workflow. The rules, as Argo's validation and
controller apply them: NAME is a step (or task) of the same template; a step reads only
the steps of earlier groups, a DAG task only the tasks it depends on (directly or not);
X is an output artifact of the template NAME calls; `{{inputs.artifacts.X}}` names one
of the template's own inputs. An exit hook of a step or task may also read the outputs
of the step it is hooked on; a steps or dag template's own outputs may read any of its
steps or tasks.

Pure functions over the raw template mappings, each problem carrying its field path
relative to the template, so the linter can say the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_FROM = re.compile(r"^\{\{\s*(steps|tasks)\.([^.\s{}]+)\.outputs\.artifacts\.([^.\s{}]+)\s*\}\}$")
_INPUT = re.compile(r"^\{\{\s*inputs\.artifacts\.([^.\s{}]+)\s*\}\}$")
# Argo's task names in a `depends` expression: `A.Succeeded` or `A` alone.
_DEPENDS_NAME = re.compile(
    r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)"
)


@dataclass(frozen=True)
class Problem:
    field: str  # relative to the template: "steps[1][0].arguments.artifacts[0].from"
    message: str  # reads after the field: "names step 'x', which ..."


@dataclass(frozen=True)
class _Call:
    """One step or task: its name, its group (steps), what it runs and waits for."""

    name: str
    where: str
    raw: Mapping[str, Any]
    group: int = 0
    template: str | None = None  # None: a templateRef or inline template, not known here
    needs: tuple[str, ...] = field(default=())


def depends_names(task: Mapping[str, Any]) -> list[str]:
    """The tasks `task` names in `dependencies` and `depends`, as Argo reads them."""
    names = [str(d) for d in task.get("dependencies") or [] if isinstance(d, str | int)]
    depends = task.get("depends")
    if isinstance(depends, str):
        for result, bare in _DEPENDS_NAME.findall(depends):
            names.append(result.split(".", 1)[0] if result else bare)
    return list(dict.fromkeys(names))


def _calls(raw: Mapping[str, Any]) -> tuple[str, list[_Call]] | None:
    steps = raw.get("steps")
    if isinstance(steps, list):
        found = []
        for g, group in enumerate(steps):
            members = [group] if isinstance(group, Mapping) else group
            if not isinstance(members, list):
                continue
            for s, step in enumerate(members):
                if isinstance(step, Mapping) and isinstance(step.get("name"), str):
                    where = f"steps[{g}]" if isinstance(group, Mapping) else f"steps[{g}][{s}]"
                    found.append(_Call(step["name"], where, step, g, _called(step)))
        return "steps", found
    dag = raw.get("dag")
    tasks = dag.get("tasks") if isinstance(dag, Mapping) else None
    if isinstance(tasks, list):
        return "tasks", [
            _Call(t["name"], f"dag.tasks[{i}]", t, 0, _called(t), tuple(depends_names(t)))
            for i, t in enumerate(tasks)
            if isinstance(t, Mapping) and isinstance(t.get("name"), str)
        ]
    return None


def _called(call: Mapping[str, Any]) -> str | None:
    template = call.get("template")
    return template if isinstance(template, str) and call.get("templateRef") is None else None


def _artifacts(raw: Any, side: str) -> list[Any]:
    part = raw.get(side) if isinstance(raw, Mapping) else None
    items = part.get("artifacts") if isinstance(part, Mapping) else None
    return items if isinstance(items, list) else []


def _names(raw: Any, side: str) -> list[str]:
    return [
        str(a["name"]) for a in _artifacts(raw, side) if isinstance(a, Mapping) and a.get("name")
    ]


def _froms(arguments: Any, where: str) -> Iterator[tuple[str, str]]:
    """(field, text) of each `from` in an `arguments` mapping."""
    items = arguments.get("artifacts") if isinstance(arguments, Mapping) else None
    for i, artifact in enumerate(items if isinstance(items, list) else []):
        if isinstance(artifact, Mapping) and isinstance(artifact.get("from"), str):
            yield f"{where}.arguments.artifacts[{i}].from", artifact["from"]


def _ancestors(name: str, calls: Mapping[str, _Call]) -> set[str]:
    seen: set[str] = set()
    todo = list(calls[name].needs) if name in calls else []
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += calls[current].needs if current in calls else ()
    return seen


def problems(raw: Any, templates: Mapping[str, Any]) -> list[Problem]:
    """Every `from` of a steps or dag template that cannot be resolved as written;
    `templates` are the workflow's templates by name (to know what a step's outputs are)."""
    if not isinstance(raw, Mapping):
        return []
    found = _calls(raw)
    if found is None:
        return []
    kind, calls = found
    by_name = {call.name: call for call in calls}
    context = _Context(kind, str(raw.get("name") or ""), by_name, templates, _names(raw, "inputs"))
    result = []
    for call in calls:
        for where, text in _froms(call.raw.get("arguments"), call.where):
            result += context.check(text, where, call, hooked=False)
        hooks = call.raw.get("hooks")
        for hook_name, hook in hooks.items() if isinstance(hooks, Mapping) else ():
            if isinstance(hook, Mapping):
                at = f"{call.where}.hooks.{hook_name}"
                for where, text in _froms(hook.get("arguments"), at):
                    result += context.check(text, where, call, hooked=True)
    for i, output in enumerate(_artifacts(raw, "outputs")):
        if isinstance(output, Mapping) and isinstance(output.get("from"), str):
            result += context.check(output["from"], f"outputs.artifacts[{i}].from", None)
    return result


@dataclass(frozen=True)
class _Context:
    kind: str  # "steps" or "tasks"
    template: str
    calls: Mapping[str, _Call]
    templates: Mapping[str, Any]
    inputs: list[str]

    def check(
        self, text: str, where: str, caller: _Call | None, *, hooked: bool = False
    ) -> list[Problem]:
        match = _FROM.match(text.strip())
        if match is None:
            given = _INPUT.match(text.strip())
            if given and given.group(1) not in self.inputs:
                return [
                    Problem(
                        where,
                        f"names input artifact {given.group(1)!r}, which template "
                        f"{self.template!r} does not declare "
                        f"(has: {', '.join(self.inputs) or 'none'})",
                    )
                ]
            return []
        kind, name, artifact = match.groups()
        noun = "step" if self.kind == "steps" else "task"
        if kind != self.kind:
            flow = "steps" if self.kind == "steps" else "dag"
            return [Problem(where, f"refers to {kind} in a {flow} template (use {self.kind}.NAME)")]
        producer = self.calls.get(name)
        if producer is None:
            have = ", ".join(self.calls) or "none"
            return [
                Problem(
                    where,
                    f"names {noun} {name!r}, which template {self.template!r} does not have "
                    f"(has: {have})",
                )
            ]
        own = hooked and caller is not None and name == caller.name
        if caller is not None and not own:
            if self.kind == "steps" and producer.group >= caller.group:
                return [
                    Problem(
                        where,
                        f"names step {name!r}, which does not run before step {caller.name!r} "
                        f"(it is in steps[{producer.group}], {caller.name!r} in "
                        f"steps[{caller.group}])",
                    )
                ]
            if self.kind == "tasks" and name not in _ancestors(caller.name, self.calls):
                return [
                    Problem(
                        where,
                        f"names task {name!r}, which task {caller.name!r} does not depend on "
                        "(add it to depends or dependencies)",
                    )
                ]
        callee = self.templates.get(producer.template) if producer.template else None
        if isinstance(callee, Mapping) and artifact not in _names(callee, "outputs"):
            have = ", ".join(_names(callee, "outputs")) or "none"
            return [
                Problem(
                    where,
                    f"names output artifact {artifact!r} of {noun} {name!r}, which its "
                    f"template {producer.template!r} does not have (has: {have})",
                )
            ]
        return []
