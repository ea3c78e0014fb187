"""`argosy lint`: where every artifact of a workflow will go, before it runs.

Argo shows an artifact's bucket and key only after the pod ran; a typo in `optional:` or
an unknown GC strategy surfaces as a failed workflow. The linter reads Workflows,
WorkflowTemplates, ClusterWorkflowTemplates, CronWorkflows and bare templates, parses
each template with the sidecar's own parser (so lint and the running sidecar agree), and
reports one `Row` per artifact: location kind, bucket, key (the keyFormat left
unexpanded: `{{workflow.name}}/{{pod.name}}/hello-art.tgz`), archive, optional and the
GC strategy that applies, plus `Diagnostic`s that name file, line and field.

Repositories come from artifact-repositories ConfigMaps read without their secrets:
only the kind, bucket and keyFormat of each entry matter here.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from argosy.argo import keys, plugin_config, references, yamlpos
from argosy.argo.location import Location
from argosy.argo.names import (
    BUCKET_KINDS,
    DEFAULT_KEY_FORMAT,
    PLUGIN_NAME,
    REPOSITORIES_CONFIGMAP,
    REPOSITORY_KINDS,
    STORAGE_KINDS,
    STRATEGIES,
)
from argosy.argo.names import DEFAULT_REPOSITORY_ANNOTATION as DEFAULT_ANNOTATION
from argosy.argo.template import (
    Artifact,
    FieldReader,
    Finding,
    Template,
    TemplateError,
    parse_arguments,
    parse_artifact,
    parse_template,
)
from argosy.argo.yamlpos import Document, join, load_all
from argosy.artifacts.errors import InvalidSpec, redact_url

WORKFLOW_KINDS = {
    "Workflow": "spec",
    "WorkflowTemplate": "spec",
    "ClusterWorkflowTemplate": "spec",
    "CronWorkflow": "spec.workflowSpec",
}
TEMPLATE_FIELDS = ("inputs", "outputs", "container", "script")
LEAF_FIELDS = ("container", "script", "containerSet")  # templates that run in a pod's files
CONFIGMAP = REPOSITORIES_CONFIGMAP
ARGUMENTS = "(arguments)"  # the TEMPLATE of a workflow's own `spec.arguments` rows


@dataclass(frozen=True)
class Diagnostic:
    level: str  # "error" | "warning"
    file: str
    line: int | None
    field: str | None  # the field path from the document's root, if one field is at fault
    message: str
    unreadable: bool = False  # the file itself could not be read or parsed: bad input

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{self.field} {self.message}" if self.field else self.message
        return f"{where}: {self.level}: {text}"


@dataclass(frozen=True)
class Row:
    """One artifact as it will be stored or fetched; None is "not known or not used"."""

    file: str
    line: int
    template: str
    direction: str  # in | out | arg | data (the source a data template lists)
    name: str
    kind: str  # s3, oss, http, raw, git, ...; "repository"; "from"; "-" (the caller's)
    bucket: str | None
    key: str | None  # explicit or derived key, a URL, or "from: {{...}}"
    archive: str  # tar.gz | tar.gz level 0 | none | zip | tar.zst | auto | -
    optional: bool
    gc: str  # a strategy, "(default)" (the namespace policy, else Never), or "-"
    supported: bool = True
    notes: tuple[str, ...] = ()
    where: str | None = None  # the artifact's field path from the document's root


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == "warning"]

    @property
    def unreadable(self) -> list[Diagnostic]:
        """Files (or documents) that could not be read or parsed at all: bad input."""
        return [d for d in self.diagnostics if d.unreadable]

    def extend(self, other: Report) -> None:
        self.rows += other.rows
        self.diagnostics += other.diagnostics


@dataclass(frozen=True)
class RepositoryView:
    """What lint needs of a repository entry: no endpoint, no secrets."""

    kind: str | None = None
    bucket: str | None = None
    key_format: str = DEFAULT_KEY_FORMAT
    label: str | None = None  # "artifact-repositories/my-key"
    via: str | None = None  # a plugin entry of Argosy's: the storage kind it reaches

    @property
    def supported(self) -> bool:
        return self.kind is None or self.kind in STORAGE_KINDS or self.via is not None


@dataclass(frozen=True)
class ConfigMap:
    name: str
    default: str | None
    entries: Mapping[str, RepositoryView | None]  # None: an entry already reported broken


# -- reading files ---------------------------------------------------------------------


def _read(path: str, report: Report) -> str | None:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        report.diagnostics.append(
            Diagnostic(
                "error",
                path,
                None,
                None,
                f"cannot be read ({error.strerror or error})",
                unreadable=True,
            )
        )
    except UnicodeDecodeError:
        report.diagnostics.append(
            Diagnostic("error", path, None, None, "not UTF-8 text", unreadable=True)
        )
    return None


def _parse(text: str, file: str, report: Report) -> list[Document]:
    """The documents before any broken one, which is reported with its line."""
    documents, broken = load_all(text)
    if broken is not None:
        report.diagnostics.append(
            Diagnostic(
                "error",
                file,
                broken.line,
                None,
                f"not valid YAML ({broken.problem})",
                unreadable=True,
            )
        )
    return documents


def _entry(raw: Any, label: str) -> RepositoryView | str:
    """A ConfigMap entry's kind, bucket and keyFormat, or what is wrong with it."""
    try:
        entry = yamlpos.safe_load(raw) if isinstance(raw, str) else raw
    except yaml.YAMLError:
        return "is not valid YAML"
    if not isinstance(entry, Mapping):
        return "must be a repository entry (a mapping)"
    kinds = [k for k in REPOSITORY_KINDS if entry.get(k) is not None]
    if len(kinds) != 1:
        return (
            f"needs exactly one of {', '.join(REPOSITORY_KINDS)} "
            f"(found {', '.join(kinds) or 'none'})"
        )
    config = entry[kinds[0]]
    if not isinstance(config, Mapping):
        return f"{kinds[0]} must be a mapping"
    bucket = config.get("bucket") or config.get("container")
    key_format = entry.get("keyFormat") or config.get("keyFormat")
    via = None
    if kinds[0] == "plugin" and config.get("name") == PLUGIN_NAME:
        # Argosy's plugin: its configuration names the storage (and may name keyFormat)
        try:
            parsed = plugin_config.parse(str(config.get("configuration") or ""))
        except InvalidSpec as error:
            return f"plugin {PLUGIN_NAME}: {error}"
        bucket, via = parsed.bucket, parsed.kind
        key_format = key_format or parsed.key_format
    return RepositoryView(
        kinds[0],
        str(bucket) if bucket else None,
        str(key_format or DEFAULT_KEY_FORMAT),
        label,
        via,
    )


def load_repositories(path: str) -> tuple[list[ConfigMap], Report]:
    """Every artifact-repositories ConfigMap in a file, each entry read for lint only."""
    report = Report()
    found: list[ConfigMap] = []
    text = _read(path, report)
    for document in _parse(text, path, report) if text is not None else []:
        doc = document.data
        if not isinstance(doc, Mapping) or doc.get("kind") != "ConfigMap":
            report.diagnostics.append(
                Diagnostic(
                    "error",
                    path,
                    document.line,
                    None,
                    "is not a ConfigMap (--repositories takes artifact-repositories ConfigMaps)",
                )
            )
            continue
        metadata = doc.get("metadata")
        if not isinstance(metadata, Mapping):
            metadata = {}
        name = str(metadata.get("name") or CONFIGMAP)
        annotations = metadata.get("annotations")
        default = annotations.get(DEFAULT_ANNOTATION) if isinstance(annotations, Mapping) else None
        data = doc.get("data") or {}
        if not isinstance(data, Mapping):
            report.diagnostics.append(
                Diagnostic("error", path, document.line_of("data"), "data", "must be a mapping")
            )
            data = {}
        if default is not None and default not in data:
            report.diagnostics.append(
                Diagnostic(
                    "error",
                    path,
                    document.line_of("metadata.annotations"),
                    "metadata.annotations",
                    f"names default repository {default!r}, which data "
                    f"does not have (has: {', '.join(sorted(map(str, data))) or 'none'})",
                )
            )
        entries: dict[str, RepositoryView | None] = {}
        for key, raw in data.items():
            entry = _entry(raw, f"{name}/{key}")
            if isinstance(entry, str):
                where = join("data", str(key))
                report.diagnostics.append(
                    Diagnostic("error", path, document.line_of(where), where, entry)
                )
                entries[str(key)] = None
            else:
                entries[str(key)] = entry
        found.append(ConfigMap(name, str(default) if default else None, entries))
    return found, report


# -- one workflow ------------------------------------------------------------------------


class _Linter:
    """Lints one document: `base` is where its workflow spec (or bare template) sits."""

    def __init__(
        self, file: str, document: Document, base: str, configmaps: Sequence[ConfigMap]
    ) -> None:
        self.file, self.document, self.base = file, document, base
        self.configmaps = configmaps
        self.report = Report()
        self.repository = RepositoryView()
        self.gc: str | None = None
        # template name -> input name -> the arguments that bind it (its callers' steps
        # and tasks, and for the entrypoint the workflow's own)
        self.bindings: dict[str, dict[str, list[Artifact]]] = {}
        self.workflow_arguments: tuple[Artifact, ...] = ()
        self.templates: dict[str, Any] = {}  # the document's templates by name

    def say(self, level: str, path: str | None, message: str) -> None:
        line = self.document.line_of(path) if path else self.document.line
        self.report.diagnostics.append(Diagnostic(level, self.file, line, path, message))

    def at(self, prefix: str, relative: str) -> str:
        """A template-relative field path from the document's root."""
        if relative == "template":
            return prefix
        return join(prefix, relative) if prefix else relative

    def _template_error(self, prefix: str, error: InvalidSpec) -> None:
        if isinstance(error, TemplateError):
            self.say("error", self.at(prefix, error.field), error.problem)
        else:  # not about one field: said where the template (or arguments) starts
            self.say("error", prefix or None, str(error))

    def _findings(self, prefix: str, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self.say("warning", self.at(prefix, finding.field), finding.message)

    def _arguments(self, raw: Any, prefix: str) -> tuple[Artifact, ...]:
        """The artifacts of `<prefix>.arguments`, errors reported; () when broken."""
        try:
            found, findings = parse_arguments(raw)
        except InvalidSpec as error:
            self._template_error(prefix, error)
            return ()
        self._findings(prefix, findings)
        return found

    def run(self) -> Report:
        for path in self.document.duplicates:
            self.say("warning", path, "is given twice; YAML keeps the last one")
        data = self.document.data
        if not self.base:
            self.repository = _namespace_default(self.configmaps)
            self._template(data, "")
            return self.report
        spec = _at(data, self.base)
        if spec is None:
            return self.report
        if not isinstance(spec, Mapping):
            self.say("error", self.base, "must be a mapping")
            return self.report
        self._gc(spec.get("artifactGC"))
        self._repository(spec.get("artifactRepositoryRef"))
        templates = spec.get("templates") or []
        if not isinstance(templates, list):
            self.say("error", join(self.base, "templates"), "must be a list")
            return self.report
        arguments = self._arguments(spec.get("arguments"), self.base)
        self.workflow_arguments = arguments
        # The entrypoint and the exit handler (`onExit`) both run with the workflow's
        # arguments; an exit hook (`hooks: {exit: ...}`) with its own.
        for called in (spec.get("entrypoint"), spec.get("onExit")):
            if isinstance(called, str):
                for argument in arguments:
                    self._bind(called, argument)
        self._hooks(spec.get("hooks"), join(self.base, "hooks"))
        self.templates = {
            str(raw["name"]): raw
            for raw in templates
            if isinstance(raw, Mapping) and isinstance(raw.get("name"), str)
        }
        for index, raw in enumerate(templates):
            self._callers(raw, join(join(self.base, "templates"), index))
        for argument in arguments:
            self._row(ARGUMENTS, "arg", argument, None, self.base)
        for index, raw in enumerate(templates):
            self._template(raw, join(join(self.base, "templates"), index))
        return self.report

    def _gc(self, raw: Any) -> None:
        where = join(self.base, "artifactGC")
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            self.say("error", where, "must be a mapping")
            return
        strategy = raw.get("strategy")
        if strategy in (None, ""):
            return
        if strategy not in STRATEGIES:
            self.say("error", join(where, "strategy"), f"must be one of {', '.join(STRATEGIES)}")
            return
        self.gc = str(strategy)

    def _repository(self, ref: Any) -> None:
        where = join(self.base, "artifactRepositoryRef")
        if ref is None:
            self.repository = _namespace_default(self.configmaps)
            return
        if not isinstance(ref, Mapping):
            self.say("error", where, "must be a mapping with configMap and key")
            return
        name, key = ref.get("configMap") or CONFIGMAP, ref.get("key")
        for field_name, value in (("configMap", name), ("key", key)):
            if value is not None and not isinstance(value, str):
                self.say("error", join(where, field_name), f"must be a string, not {value!r}")
                return
        given = [c for c in self.configmaps if c.name == name]
        if not given:
            self.say(
                "warning",
                where,
                f"names ConfigMap {name}, which was not given "
                "(--repositories): keys are shown with the default "
                "keyFormat",
            )
            return
        configmap = given[0]
        chosen = key or configmap.default
        if not chosen:
            self.say(
                "error",
                where,
                f"names no key and ConfigMap {name} has no default ({DEFAULT_ANNOTATION})",
            )
        elif chosen not in configmap.entries:
            self.say(
                "error",
                join(where, "key") if key else where,
                f"names {chosen!r}, which ConfigMap {name} does not have "
                f"(has: {', '.join(sorted(configmap.entries)) or 'none'})",
            )
        else:
            self.repository = configmap.entries[chosen] or RepositoryView()

    def _bind(self, template: str, argument: Artifact) -> None:
        self.bindings.setdefault(template, {}).setdefault(argument.name, []).append(argument)

    def _callers(self, raw: Any, prefix: str) -> None:
        """Steps and DAG tasks of one template: which artifacts they pass to whom."""
        if not isinstance(raw, Mapping):
            return
        calls: list[tuple[Any, str]] = []
        steps = raw.get("steps")
        if isinstance(steps, list):
            for g, group in enumerate(steps):
                if isinstance(group, list):
                    calls += [
                        (step, join(join(join(prefix, "steps"), g), s))
                        for s, step in enumerate(group)
                    ]
        dag = raw.get("dag")
        tasks = dag.get("tasks") if isinstance(dag, Mapping) else None
        if isinstance(tasks, list):
            calls += [(task, join(join(prefix, "dag.tasks"), t)) for t, task in enumerate(tasks)]
        for call, where in calls:
            if not isinstance(call, Mapping):
                continue
            if call.get("arguments") is not None:
                for argument in self._arguments(call["arguments"], where):
                    if isinstance(call.get("template"), str):
                        self._bind(call["template"], argument)
            self._hooks(call.get("hooks"), join(where, "hooks"))
            if isinstance(call.get("onExit"), str):  # a step's own exit handler (deprecated)
                for argument in self.workflow_arguments:
                    self._bind(call["onExit"], argument)

    def _hooks(self, raw: Any, where: str) -> None:
        """`hooks` of the workflow, a step or a task: each hook's arguments (the exit
        hook's and those of a hook on an expression) are bound to the template it runs."""
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            self.say("error", where, "must be a mapping of hook names to hooks")
            return
        for name, hook in raw.items():
            at = join(where, str(name))
            if not isinstance(hook, Mapping):
                self.say("error", at, "must be a mapping (template, arguments, expression)")
                continue
            if hook.get("arguments") is None:
                continue
            for argument in self._arguments(hook["arguments"], at):
                if isinstance(hook.get("template"), str):
                    self._bind(hook["template"], argument)

    def _template(self, raw: Any, prefix: str) -> None:
        def locate(relative: str) -> int:
            return self.document.line_of(self.at(prefix, relative))

        try:
            template = parse_template(raw, locate=locate)
        except InvalidSpec as error:
            self._template_error(prefix, error)
            return
        self._findings(prefix, template.findings)
        self._paths(raw, template, prefix)
        for problem in references.problems(raw, self.templates):
            self.say("error", self.at(prefix, problem.field), problem.message)
        for artifact in template.inputs:
            self._row(template.name, "in", artifact, template, prefix)
        if isinstance(raw, Mapping) and raw.get("data") is not None:
            self._data_source(raw["data"], template.name, prefix)
        for artifact in template.outputs:
            self._row(template.name, "out", artifact, template, prefix)

    def _paths(self, raw: Any, template: Template, prefix: str) -> None:
        """Argo places each artifact of a container or script template at its `path`, and
        refuses a `path` in a steps or dag template (no container to place it in)."""
        if not isinstance(raw, Mapping):
            return
        leaf = any(isinstance(raw.get(k), Mapping) for k in LEAF_FIELDS)
        flow = raw.get("steps") is not None or raw.get("dag") is not None
        for side, artifacts in (("input", template.inputs), ("output", template.outputs)):
            for artifact in artifacts:
                where = self.at(prefix, f"{artifact.where}.path")
                if leaf and not artifact.path:
                    self.say(
                        "error",
                        where,
                        f"is required: Argo places every {side} artifact of a container or "
                        "script template at its path",
                    )
                elif flow and artifact.path:
                    self.say(
                        "error",
                        where,
                        "is only valid in container and script templates (Argo refuses it in "
                        "a steps or dag template)",
                    )

    def _data_source(self, raw: Any, template_name: str, prefix: str) -> None:
        """A `data` template's `source.artifactPaths`: an artifact location (Argo's
        Artifact inline) whose keys the template lists."""
        where = self.at(prefix, "data")
        if not isinstance(raw, Mapping):
            self.say("error", where, "must be a mapping (source, transformation)")
            return
        source = raw.get("source")
        if not isinstance(source, Mapping):
            self.say("error", join(where, "source"), "must be a mapping (artifactPaths)")
            return
        paths = source.get("artifactPaths")
        if paths is None:
            return
        relative = "data.source.artifactPaths"
        if isinstance(paths, Mapping) and not paths.get("name"):
            paths = {**paths, "name": "artifactPaths"}  # Argo's examples leave it out
        reader = FieldReader("", locate=lambda r: self.document.line_of(self.at(prefix, r)))
        try:
            artifact = parse_artifact(reader, paths, relative)
        except InvalidSpec as error:
            self._template_error(prefix, error)
            return
        self._findings(prefix, reader.findings)
        self._row(template_name, "data", artifact, None, prefix)

    def _row(
        self,
        template_name: str,
        direction: str,
        artifact: Artifact,
        template: Template | None,
        prefix: str,
    ) -> None:
        """An input with neither location nor `from` shows what its callers bind to it."""
        where = self.at(prefix, artifact.where)
        if direction == "in" and artifact.location is None and not _has_from(artifact):
            sources = self.bindings.get(template_name, {}).get(artifact.name, [])
            if sources:
                shown = self._describe(sources[0], "in", None, where)
                others = {_summary(s) for s in sources[1:]} - {_summary(sources[0])}
                if others:
                    shown.notes.append(
                        f"+{len(others)} other source" + ("s" if len(others) > 1 else "")
                    )
            else:
                shown = _Shown("-", None, "(given by the caller)")
        else:
            shown = self._describe(artifact, direction, template, where)
        from_ = _has_from(artifact)
        if direction == "out" and not from_:
            gc = artifact.gc_strategy or self.gc or "(default)"
        else:
            gc = "-"
        if artifact.deleted:
            shown.notes.append("deleted")
        self.report.rows.append(
            Row(
                file=self.file,
                line=self.document.line_of(where),
                template=template_name or "-",
                direction=direction,
                name=artifact.name,
                kind=shown.kind,
                bucket=shown.bucket,
                key=shown.key,
                archive="-" if from_ or direction == "data" else _archive(artifact, direction),
                optional=artifact.optional,
                gc=gc,
                supported=shown.supported,
                notes=tuple(shown.notes),
                where=where,
            )
        )

    def _describe(
        self, artifact: Artifact, direction: str, template: Template | None, where: str
    ) -> _Shown:
        """Kind, bucket and key of an artifact with a location or a `from` of its own, or
        of an output that takes the repository's."""
        if artifact.from_ is not None:
            return _Shown("from", None, f"from: {artifact.from_}", notes=_sub_path(artifact))
        if artifact.from_expression is not None:
            return _Shown(
                "from",
                None,
                f"fromExpression: {artifact.from_expression}",
                notes=_sub_path(artifact),
            )
        own = artifact.location
        if (
            own is None
            and direction == "out"
            and template is not None
            and template.archive_location is not None
        ):
            return self._archive_location(artifact, template.archive_location, where)
        if own is None:
            if direction != "out":
                return _Shown(
                    "-",
                    None,
                    "(given at submit)" if direction == "arg" else "(given by the caller)",
                    notes=_sub_path(artifact),
                )
            repo = self.repository
            key = keys.output_key(
                repo.key_format, artifact.name, artifact.path, _output_format(artifact)[0]
            )
            notes = [f"repository {repo.label}"] if repo.label else []
            if repo.via is not None:
                notes.append(f"plugin {PLUGIN_NAME} -> {repo.via}")
            shown = _Shown("repository", repo.bucket, key, notes=notes)
            if not repo.supported:
                # a gcs, azure, hdfs, artifactory or another plugin's repository
                shown.supported = False
                shown.notes.insert(0, "unsupported")
            return shown
        if own.kind == "plugin" and own.supported:
            return self._plugin(artifact, own, direction, where)
        if own.kind in BUCKET_KINDS:
            shown = self._stored(
                artifact, own.kind, own.bucket, own.key, None, where, direction=direction
            )
        else:
            shown = _Shown(own.kind, *_elsewhere(own.kind, own.config), notes=_sub_path(artifact))
        return _marked(shown, own)

    def _plugin(self, artifact: Artifact, own: Location, direction: str, where: str) -> _Shown:
        """An artifact at Argosy's plugin: the bucket its configuration names (a key-only
        one, the repository's), its key as given."""
        configuration = own.config.get("configuration")
        repo = self.repository
        if configuration is None:
            if repo.kind != "plugin" or repo.via is None:
                self.say(
                    "warning",
                    where,
                    f"is a key-only plugin artifact but repository {repo.label or '(none)'} "
                    f"is not plugin {PLUGIN_NAME}",
                )
                return _Shown("plugin", None, own.key, notes=["key-only"])
            return _Shown("plugin", repo.bucket, own.key, notes=["key-only", f"-> {repo.via}"])
        try:
            parsed = plugin_config.parse(str(configuration))
        except InvalidSpec as error:
            self.say("error", join(where, "plugin.configuration"), str(error))
            return _Shown("plugin", None, own.key, supported=False, notes=["unsupported"])
        return _Shown("plugin", parsed.bucket, own.key, notes=[f"-> {parsed.kind}"])

    def _archive_location(self, artifact: Artifact, location: Location, where: str) -> _Shown:
        """An output with no location of its own, in a template whose archiveLocation
        names one: its key (else keyFormat) is the prefix, as the sidecar resolves it."""
        if location.kind not in BUCKET_KINDS:
            shown = _Shown(location.kind, *_elsewhere(location.kind, location.config))
        else:
            prefix = location.key or str(location.config.get("keyFormat") or DEFAULT_KEY_FORMAT)
            shown = self._stored(artifact, location.kind, location.bucket, None, prefix, where)
        shown.notes.append("archiveLocation")
        return _marked(shown, location)

    def _stored(
        self,
        artifact: Artifact,
        kind: str,
        bucket: str | None,
        key: str | None,
        prefix: str | None,
        where: str,
        *,
        direction: str = "out",
    ) -> _Shown:
        """An object store location: the key given, or the one an output will get."""
        notes = _sub_path(artifact)
        repo = self.repository
        if not bucket:
            if key:
                notes.insert(0, "key-only")
            if repo.kind is not None and repo.kind != kind:
                self.say(
                    "warning",
                    where,
                    f"takes its bucket from repository {repo.label}, "
                    f"which is {repo.kind}, not {kind}",
                )
            else:
                bucket = repo.bucket
        if key is None:
            if direction == "data":
                pass  # a data template lists the whole bucket
            elif direction != "out":
                self.say(
                    "warning",
                    join(where, kind),
                    "names no key: an input cannot be fetched without one",
                )
            else:
                key = keys.output_key(
                    prefix if prefix is not None else repo.key_format,
                    artifact.name,
                    artifact.path,
                    _output_format(artifact)[0],
                )
        return _Shown(kind, bucket, key, notes=notes)


@dataclass
class _Shown:
    kind: str = "-"
    bucket: str | None = None
    key: str | None = None
    supported: bool = True
    notes: list[str] = field(default_factory=list)


def _marked(shown: _Shown, location: Location) -> _Shown:
    """Kinds Argosy cannot move (git, gcs, azure, ...) are shown, marked, not refused."""
    if not location.supported:
        shown.supported = False
        shown.notes.insert(0, "unsupported")
    return shown


def _at(data: Any, path: str) -> Any:
    for name in path.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(name)
    return data


def _has_from(artifact: Artifact) -> bool:
    return artifact.from_ is not None or artifact.from_expression is not None


def _summary(artifact: Artifact) -> str:
    location = artifact.location
    return "|".join(
        str(x)
        for x in (
            artifact.from_,
            artifact.from_expression,
            location and location.kind,
            location and sorted(location.config.items()),
            artifact.sub_path,
        )
    )


def _sub_path(artifact: Artifact) -> list[str]:
    return [f"subPath {artifact.sub_path}"] if artifact.sub_path else []


def _elsewhere(kind: str, config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Bucket and key columns for a location that is not an object store bucket."""
    if kind == "raw":
        return None, f"(inline, {len(str(config.get('data', '')))} characters)"
    if kind == "azure":
        return config.get("container"), config.get("blob")
    for name in ("url", "repo", "path", "key"):  # http/artifactory, git, hdfs, plugin
        if isinstance(config.get(name), str):
            return None, redact_url(str(config[name]))
    return None, None


def _output_format(artifact: Artifact) -> tuple[str, int | None]:
    if artifact.archive is not None:
        return artifact.archive.fmt, artifact.archive.level
    if artifact.argosy.archive is not None:
        return artifact.argosy.archive, artifact.argosy.level
    return "tar.gz", artifact.argosy.level


def _archive(artifact: Artifact, direction: str) -> str:
    if direction != "out" and artifact.archive is None:
        return "auto"  # Argo unpacks a tar+gzip payload it detects
    fmt, level = _output_format(artifact)
    return fmt if level is None else f"{fmt} level {level}"


def _namespace_default(configmaps: Sequence[ConfigMap]) -> RepositoryView:
    """With no ref, Argo uses the namespace's ConfigMap's annotated default, if any."""
    for configmap in configmaps:
        if configmap.name == CONFIGMAP and configmap.default:
            return configmap.entries.get(configmap.default) or RepositoryView()
    return RepositoryView()


# -- files -----------------------------------------------------------------------------


def _base(data: Mapping[str, Any]) -> str | None:
    """Where the workflow spec is ("" for a bare template); None: not ours to lint."""
    kind = data.get("kind")
    if isinstance(kind, str) and kind in WORKFLOW_KINDS:
        return WORKFLOW_KINDS[kind]
    if kind is None and "name" in data and any(f in data for f in TEMPLATE_FIELDS):
        return ""
    return None


def lint_text(text: str, *, file: str, configmaps: Sequence[ConfigMap] = ()) -> Report:
    """Every document of a (multi-document) YAML text; `file` names it in the report."""
    report = Report()
    for document in _parse(text, file, report):
        report.extend(lint_document(document, file=file, configmaps=configmaps))
    return report


def lint_document(document: Document, *, file: str, configmaps: Sequence[ConfigMap] = ()) -> Report:
    """One document; one that is not a workflow or template is skipped with a warning."""
    data = document.data
    if data is None:
        return Report()
    base = _base(data) if isinstance(data, Mapping) else None
    if base is None:
        what = (
            f"a {data['kind']}"
            if isinstance(data, Mapping) and isinstance(data.get("kind"), str)
            else "this document"
        )
        return Report(
            diagnostics=[
                Diagnostic(
                    "warning",
                    file,
                    document.line,
                    None,
                    f"{what} is not a workflow, workflow template or template; skipped",
                )
            ]
        )
    return _Linter(file, document, base, configmaps).run()


def lint_file(path: str, *, configmaps: Sequence[ConfigMap] = ()) -> Report:
    """Every document of one file (`-` is standard input)."""
    report = Report()
    text = _read(path, report)
    if text is not None:
        report.extend(lint_text(text, file=path, configmaps=configmaps))
    return report
