"""The parts of Argo's controller the local engine needs, as pure functions: a Workflow's
templates, the order its `steps` groups and `dag` tasks run in, Argo's node and pod
names, and `from:` references (`{{steps.X.outputs.artifacts.Y}}`,
`{{tasks.X.outputs.artifacts.Y}}`, `{{inputs.artifacts.Y}}`) turned into the producer's
recorded artifact, the way Argo's controller resolves them before it creates a pod.

Kept apart from the engine that runs processes so that each rule is tested on its own,
with no process, storage or clock.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from argosy.argo import references, yamlpos
from argosy.argo.names import LOCATION_KINDS
from argosy.artifacts.errors import InvalidSpec

Raw = Mapping[str, Any]
_REFERENCE = re.compile(
    r"^\{\{\s*(steps|tasks)\.([^.\s{}]+)\.outputs\.artifacts\.([^.\s{}]+)"
    r"\s*\}\}$"
)
_INPUT = re.compile(r"^\{\{\s*inputs\.artifacts\.([^.\s{}]+)\s*\}\}$")
LEAF_KINDS = ("container", "script")
# Argo documents that are not a Workflow the engine could run
_OTHER_KINDS = frozenset({"WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})
CARRIED = frozenset({*LOCATION_KINDS, "archive", "subPath"})  # argument -> pod input


@dataclass(frozen=True)
class Workflow:
    name: str
    namespace: str
    entrypoint: str
    templates: Mapping[str, Raw]
    source: str
    raw: Raw

    def template(self, name: str, where: str) -> Raw:
        found = self.templates.get(name)
        if found is None:
            raise InvalidSpec(
                f"{self.source}: {where} names template {name!r}, which the workflow does not have"
            )
        return found


def generated_name(
    prefix: str, *, alphabet: str = string.ascii_lowercase + string.digits, length: int = 5
) -> str:
    """Argo's `generateName`: the prefix and five random lowercase letters or digits."""
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def parse_workflow(
    text: str, *, source: str, name: str | None = None, namespace: str = "argo"
) -> Workflow:
    try:
        doc = yamlpos.safe_load(text)
    except yaml.YAMLError:
        raise InvalidSpec(f"{source} is not valid YAML") from None
    if isinstance(doc, Mapping) and doc.get("kind") in _OTHER_KINDS:
        raise InvalidSpec(
            f"{source}: a {doc['kind']} is not supported by the demo engine, which runs"
            " Workflows (kind: Workflow)"
        )
    if not isinstance(doc, Mapping) or doc.get("kind") != "Workflow":
        raise InvalidSpec(f"{source}: not an Argo Workflow (kind: Workflow)")
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        raise InvalidSpec(f"{source}: metadata and spec must be mappings")
    if name is None:
        if meta.get("name"):
            name = str(meta["name"])
        elif meta.get("generateName"):
            name = generated_name(str(meta["generateName"]))
        else:
            raise InvalidSpec(f"{source}: metadata needs a name or generateName")
    templates: dict[str, Raw] = {}
    for i, template in enumerate(spec.get("templates") or []):
        if not isinstance(template, Mapping) or not template.get("name"):
            raise InvalidSpec(f"{source}: spec.templates[{i}] needs a name")
        templates[str(template["name"])] = template
    entrypoint = str(spec.get("entrypoint") or "")
    # a workflow made from a WorkflowTemplate has neither: check.workflow refuses it by name
    if entrypoint not in templates and not spec.get("workflowTemplateRef"):
        raise InvalidSpec(
            f"{source}: spec.entrypoint {entrypoint!r} is not one of its "
            f"templates ({', '.join(templates) or 'none'})"
        )
    return Workflow(
        name, str(meta.get("namespace") or namespace), entrypoint, templates, source, doc
    )


def kind_of(template: Raw, source: str) -> str:
    kinds = [k for k in ("steps", "dag", *LEAF_KINDS) if template.get(k) is not None]
    if len(kinds) != 1:
        found = ", ".join(k for k in template if k not in ("name", "inputs", "outputs"))
        raise InvalidSpec(
            f"{source}: template {template.get('name')!r} must have exactly one "
            f"of steps, dag, container, script (the demo engine runs no "
            f"other kind; found: {found or 'none'})"
        )
    return kinds[0]


def check_step(step: Any, where: str) -> Raw:
    """A step or task has a name and a template (what else it may have is `check`'s)."""
    if not isinstance(step, Mapping) or not step.get("name") or not step.get("template"):
        raise InvalidSpec(f"{where} needs a name and a template")
    return step


def step_groups(template: Raw, source: str) -> list[list[Raw]]:
    """A `steps` template's groups: each group runs in parallel, groups in order."""
    groups = template.get("steps")
    if not isinstance(groups, list):
        raise InvalidSpec(f"{source}: {template.get('name')}.steps must be a list of lists")
    found = []
    for i, group in enumerate(groups):
        if isinstance(group, Mapping):
            group = [group]  # a lone step where a group belongs: Argo accepts it too
        if not isinstance(group, list):
            raise InvalidSpec(f"{source}: {template.get('name')}.steps[{i}] must be a list")
        found.append(
            [
                check_step(s, f"{source}: {template.get('name')}.steps[{i}][{j}]")
                for j, s in enumerate(group)
            ]
        )
    return found


def dependencies_of(task: Raw) -> list[str]:
    """The tasks `task` waits for: `dependencies`, or the names in a `depends` expression
    (`A && (B.Succeeded || C)`): every name it mentions is waited for."""
    return references.depends_names(task)


def dag_waves(template: Raw, source: str) -> list[list[Raw]]:
    """A `dag` template's tasks in waves: every task of a wave has all its dependencies
    in earlier waves, so a wave runs in parallel (Kahn's algorithm)."""
    dag = template.get("dag") or {}
    raw_tasks = dag.get("tasks") if isinstance(dag, Mapping) else None
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise InvalidSpec(f"{source}: {template.get('name')}.dag.tasks must be a list")
    tasks = {}
    for i, task in enumerate(raw_tasks):
        task = check_step(task, f"{source}: {template.get('name')}.dag.tasks[{i}]")
        if task["name"] in tasks:
            raise InvalidSpec(f"{source}: task {task['name']!r} appears twice")
        tasks[str(task["name"])] = task
    needs = {name: dependencies_of(task) for name, task in tasks.items()}
    for name, deps in needs.items():
        for dep in deps:
            if dep not in tasks:
                raise InvalidSpec(
                    f"{source}: task {name!r} depends on {dep!r}, which is not a task of this dag"
                )
    waves: list[list[Raw]] = []
    done: set[str] = set()
    while len(done) < len(tasks):
        ready = [n for n in tasks if n not in done and set(needs[n]) <= done]
        if not ready:
            cycle = sorted(n for n in tasks if n not in done)
            raise InvalidSpec(f"{source}: the dependencies of {', '.join(cycle)} form a cycle")
        waves.append([tasks[n] for n in ready])
        done.update(ready)
    return waves


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def pod_name(workflow: str, template: str, node_name: str) -> str:
    """Argo's v2 pod name: `<workflow>-<template>-<fnv32a(node name)>`, the prefix cut so
    the whole stays a valid name (Argo cuts at 63 characters less the hash)."""
    if workflow == node_name:
        return workflow
    prefix = f"{workflow}-{template}"[: (63 - 11)].rstrip("-")
    return f"{prefix}-{fnv32a(node_name)}"


def step_node_name(parent: str, group: int, step: str) -> str:
    return f"{parent}[{group}].{step}"


def task_node_name(parent: str, task: str) -> str:
    return f"{parent}.{task}"


def parse_reference(text: str, where: str) -> tuple[str, str, str]:
    """`("steps"|"tasks"|"inputs", producer, artifact)` for a `from:` string."""
    match = _REFERENCE.match(text.strip())
    if match:
        return match.group(1), match.group(2), match.group(3)
    match = _INPUT.match(text.strip())
    if match:
        return "inputs", "", match.group(1)
    raise InvalidSpec(
        f"{where}: cannot resolve from {text!r} (the demo engine knows "
        "{{steps.X.outputs.artifacts.Y}}, {{tasks.X.outputs.artifacts.Y}} "
        "and {{inputs.artifacts.Y}})"
    )


@dataclass
class Scope:
    """What a `from:` can point at inside one steps/dag template: the outputs of the
    steps or tasks that already ran there, and the template's own inputs."""

    kind: str  # "steps" or "tasks"
    outputs: dict[str, list[Raw]]  # producer name -> its recorded output artifacts
    inputs: Mapping[str, Raw]

    def lookup(self, text: str, where: str) -> Raw:
        kind, producer, name = parse_reference(text, where)
        if kind == "inputs":
            if name not in self.inputs:
                raise InvalidSpec(
                    f"{where}: {text} names input {name!r}, which this template was not given"
                )
            return self.inputs[name]
        if kind != self.kind:
            raise InvalidSpec(
                f"{where}: {text} refers to {kind} inside a "
                f"{'dag' if self.kind == 'tasks' else 'steps'} template"
            )
        if producer not in self.outputs:
            raise InvalidSpec(
                f"{where}: {text}: {producer!r} has not run before this step (or does not exist)"
            )
        for artifact in self.outputs[producer]:
            if artifact.get("name") == name:
                return artifact
        have = ", ".join(str(a.get("name")) for a in self.outputs[producer]) or "none"
        raise InvalidSpec(
            f"{where}: {text}: {producer} has no output artifact {name!r} (it has: {have})"
        )


def resolve_arguments(step: Raw, scope: Scope, where: str) -> dict[str, Raw]:
    """A step's argument artifacts by name, each `from:` replaced by what it points at."""
    arguments = (step.get("arguments") or {}).get("artifacts") or []
    resolved: dict[str, Raw] = {}
    for i, argument in enumerate(arguments):
        if not isinstance(argument, Mapping) or not argument.get("name"):
            raise InvalidSpec(f"{where}.arguments.artifacts[{i}] needs a name")
        name = str(argument["name"])
        if argument.get("from"):
            found = dict(
                copy.deepcopy(
                    scope.lookup(str(argument["from"]), f"{where}.arguments.artifacts[{i}]")
                )
            )
            found["name"] = name
            resolved[name] = found
        else:
            resolved[name] = dict(argument)
    return resolved


def bind_inputs(template: Raw, arguments: Mapping[str, Raw], where: str) -> list[dict[str, Any]]:
    """The template's input artifacts with their arguments merged in, as Argo does: the
    argument brings the location (and archive), the template keeps name, path and mode."""
    bound = []
    for i, declared in enumerate((template.get("inputs") or {}).get("artifacts") or []):
        if not isinstance(declared, Mapping) or not declared.get("name"):
            raise InvalidSpec(f"{where}: inputs.artifacts[{i}] needs a name")
        name = str(declared["name"])
        argument = arguments.get(name)
        merged: dict[str, Any] = dict(copy.deepcopy(declared))
        if argument is not None:
            merged.update(
                copy.deepcopy({k: v for k, v in argument.items() if k in CARRIED and v is not None})
            )
        elif not _has_source(declared) and not declared.get("optional"):
            raise InvalidSpec(f"{where}: input artifact {name!r} was given no argument")
        bound.append(merged)
    return bound


def _has_source(artifact: Raw) -> bool:
    return any(artifact.get(k) is not None for k in LOCATION_KINDS)


def template_outputs(template: Raw, scope: Scope, where: str) -> list[Raw]:
    """A steps/dag template's own outputs: each is `from:` one of its children's."""
    found: list[Raw] = []
    for i, declared in enumerate((template.get("outputs") or {}).get("artifacts") or []):
        if isinstance(declared, Mapping) and declared.get("from"):
            artifact = dict(
                copy.deepcopy(
                    scope.lookup(str(declared["from"]), f"{where}.outputs.artifacts[{i}]")
                )
            )
            artifact["name"] = declared.get("name", artifact.get("name"))
            found.append(artifact)
    return found


SCRIPT_PATH = "/argo/staging/script"  # where Argo's executor puts a script's source


def _main(template: Raw, source: str) -> Mapping[str, Any]:
    main = template.get("container") or template.get("script")
    if not isinstance(main, Mapping):
        raise InvalidSpec(
            f"{source}: template {template.get('name')!r}: container or script must be a mapping"
        )
    return main


def leaf_command(template: Raw, source: str) -> list[str]:
    """The main container's argv, as the pod would run it: `command + args`, or for a
    script `command + [the script's file] + args`, as Argo's executor runs it."""
    main = _main(template, source)
    command = list(main.get("command") or [])
    if template.get("script") is not None:
        command.append(SCRIPT_PATH)
    command += list(main.get("args") or [])
    if not command or not all(isinstance(a, str | int | float) for a in command):
        raise InvalidSpec(
            f"{source}: template {template.get('name')!r} needs a command "
            "(the demo engine runs no image entrypoints)"
        )
    return [str(a) for a in command]


def leaf_script(template: Raw, source: str) -> str | None:
    if template.get("script") is None:
        return None
    return str(_main(template, source).get("source") or "")


def leaf_env(template: Raw, source: str) -> dict[str, str]:
    """The container's `env` (a variable with no value is set, empty, as Kubernetes sets
    it; one with a `valueFrom` is refused by `check` before anything runs)."""
    found = {}
    for item in _main(template, source).get("env") or []:
        if isinstance(item, Mapping) and item.get("name") and item.get("valueFrom") is None:
            value = item.get("value")
            found[str(item["name"])] = "" if value is None else str(value)
    return found


def leaf_workdir(template: Raw, source: str) -> str | None:
    value = _main(template, source).get("workingDir")
    return str(value) if value else None


def artifact_paths(template: Raw) -> list[str]:
    """Every input and output path of a leaf template (for the sandbox's binds)."""
    paths = []
    for side in ("inputs", "outputs"):
        for artifact in (template.get(side) or {}).get("artifacts") or []:
            if isinstance(artifact, Mapping) and artifact.get("path"):
                paths.append(str(artifact["path"]))
    return paths


def archive_location(entry: Raw, key: str) -> dict[str, Any]:
    """What Argo's controller puts in a pod's template: the repository entry as a location
    with the keyFormat already expanded into `key`, and its `archiveLogs`."""
    kinds = [k for k in ("s3", "oss", "local") if isinstance(entry.get(k), Mapping)]
    if len(kinds) != 1:
        raise InvalidSpec("the artifact repository needs exactly one of s3, oss, local")
    config = {k: v for k, v in entry[kinds[0]].items() if k != "keyFormat"}
    location: dict[str, Any] = {kinds[0]: {**config, "key": key}}
    if entry.get("archiveLogs") is not None:
        location["archiveLogs"] = bool(entry["archiveLogs"])
    return location


def pod_template(
    template: Raw, inputs: list[dict[str, Any]], location: Mapping[str, Any]
) -> dict[str, Any]:
    """The template as the controller hands it to the pod (Argo's ARGO_TEMPLATE): inputs
    bound to their sources, and an archiveLocation unless the template has its own."""
    resolved = dict(copy.deepcopy(template))
    if inputs:
        resolved["inputs"] = {**dict(resolved.get("inputs") or {}), "artifacts": inputs}
    own = dict(resolved.get("archiveLocation") or {})
    if not any(own.get(k) is not None for k in LOCATION_KINDS):
        # A template may say only `archiveLogs`; the place still comes from the repository.
        resolved["archiveLocation"] = {**dict(location), **own}
    return resolved
