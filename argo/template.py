"""The pod's template as Argo hands it to its executor, parsed once into typed artifacts.

Argo's controller writes the resolved template as JSON into `ARGO_TEMPLATE`; Argosy's
own template files may be YAML and may carry an `argosy:` block per artifact (Argo drops
fields it does not know, so under Argo those settings come from the repository entry or
the pod annotation instead). Every artifact field Argo defines is read and given its
Argo meaning; an unknown field is a warning, a field of the wrong type is an error that
names it (`outputs.artifacts[1].optional must be true or false`). Both carry the field's
path relative to the template, and its line when the caller can tell (`locate`), so a
linter can point into a workflow file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from argosy.argo import yamlpos
from argosy.argo.location import Location
from argosy.argo.names import LOCATION_FIELDS, LOCATION_KINDS, STRATEGIES
from argosy.artifacts.errors import InvalidSpec

Locate = Callable[[str], int | None]  # a field path ("outputs.artifacts[0]") to its line

ARTIFACT_FIELDS = frozenset(
    {
        "name",
        "path",
        "mode",
        "from",
        "fromExpression",
        "globalName",
        "optional",
        "subPath",
        "recurseMode",
        "archive",
        "archiveLogs",
        "artifactGC",
        "deleted",
        "argosy",
        *LOCATION_KINDS,
    }
)
ARGOSY_FIELDS = frozenset(
    {
        "include",
        "uploadOnFailure",
        "archive",
        "level",
        "concurrency",
        "files",
        "maxExpansion",
        "stallTimeout",
        "deadline",
    }
)


@dataclass(frozen=True)
class Archive:
    """How a path is packed: Argo's `tar` (gzip; level 0 stores), `none`, `zip`, or
    Argosy's `tar.zst` (opt-in)."""

    fmt: str  # tar.gz | tar.zst | tar | zip | none
    level: int | None = None


@dataclass(frozen=True)
class ArgosyOptions:
    """Argosy's own per-artifact settings; None = the repository's or the default."""

    include: tuple[str, ...] = ()
    upload_on_failure: bool | None = None
    archive: str | None = None  # "tar.zst" to opt in per artifact
    level: int | None = None
    concurrency: int | None = None  # parts in flight
    files: int | None = None  # files in flight, for a folder of objects (archive: none)
    max_expansion: float | None = None  # inputs: the extractor's ratio limit; 0: none
    stall_timeout: float | None = None  # seconds: see TransferSettings.stall_timeout
    deadline: float | None = None  # seconds the artifact's transfer may take


@dataclass(frozen=True)
class Artifact:
    name: str
    where: str  # "inputs.artifacts[0]": how errors and lint name it
    path: str | None = None
    location: Location | None = None
    archive: Archive | None = None  # None: Argo's default (tar.gz out, auto-detect in)
    optional: bool = False
    mode: int | None = None
    recurse_mode: bool = False
    sub_path: str | None = None
    archive_logs: bool | None = None
    gc_strategy: str | None = None
    from_: str | None = None
    from_expression: str | None = None
    global_name: str | None = None
    deleted: bool = False
    argosy: ArgosyOptions = ArgosyOptions()


@dataclass(frozen=True)
class Finding:
    """A warning about one field: `field` is its path relative to the template (or to the
    mapping parsed), `line` its line when the caller gave a `locate`."""

    field: str
    message: str  # reads after the field: "is an unknown field, ignored"
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.field} {self.message}"


class TemplateError(InvalidSpec):
    """An InvalidSpec about one field, which it names apart from the message."""

    def __init__(self, text: str, *, field: str, problem: str, line: int | None) -> None:
        super().__init__(text)
        self.field = field
        self.problem = problem
        self.line = line


@dataclass(frozen=True)
class Template:
    name: str
    inputs: tuple[Artifact, ...] = ()
    outputs: tuple[Artifact, ...] = ()
    archive_location: Location | None = None
    archive_logs: bool | None = None
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()  # the warnings again, with field and line apart


class FieldReader:
    """Type checks that name the field; warnings collected on the way."""

    def __init__(self, source: str, *, locate: Locate | None = None) -> None:
        self.source = source
        self.locate = locate
        self.warnings: list[str] = []
        self.findings: list[Finding] = []

    def fail(self, where: str, message: str) -> InvalidSpec:
        line = self.locate(where) if self.locate else None
        if self.source:
            prefix = f"{self.source}:{line}: " if line else f"{self.source}: "
        else:
            prefix = f"line {line}: " if line else ""
        return TemplateError(f"{prefix}{where} {message}", field=where, problem=message, line=line)

    def warn(self, where: str, message: str, *, text: str) -> None:
        """`text` is the warning as `Template.warnings` has always said it."""
        self.warnings.append(text)
        self.findings.append(Finding(where, message, self.locate(where) if self.locate else None))

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(where, "must be a mapping")
        return value

    def string(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, not {value!r}")
        return value

    def boolean(self, value: Any, where: str) -> bool | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(where, f"must be true or false, not {value!r}")

    def integer(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(where, f"must be a number, not {value!r}")
        try:
            return int(value, 0) if isinstance(value, str) else value
        except ValueError:
            raise self.fail(where, f"must be a number, not {value!r}") from None

    def number(self, value: Any, where: str) -> float | None:
        """A finite number, integer or not (YAML may hand it over as a string)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(where, f"must be a number, not {value!r}")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise self.fail(where, f"must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise self.fail(where, f"must be a number, not {value!r}")
        return number

    def seconds(self, value: Any, where: str) -> float | None:
        """A positive number of seconds."""
        seconds = self.number(value, where)
        if seconds is not None and seconds <= 0:
            raise self.fail(where, f"must be a positive number of seconds, not {value!r}")
        return seconds

    def count(self, value: Any, where: str) -> int | None:
        """A number of things in flight: at least 1."""
        count = self.integer(value, where)
        if count is not None and count < 1:
            raise self.fail(where, f"must be at least 1, not {count}")
        return count

    def unknown(self, raw: Mapping[str, Any], known: frozenset[str], where: str) -> None:
        for name in raw:
            if name not in known:
                self.warn(
                    f"{where}.{name}",
                    "is an unknown field, ignored",
                    text=f"{where}.{name}: unknown field, ignored",
                )


def _mode(reader: FieldReader, value: Any, where: str) -> int | None:
    if isinstance(value, str) and value.isdigit() and value.startswith("0"):
        return int(value, 8)  # "0755" as a string: octal, as in a YAML file
    mode = reader.integer(value, where)
    if mode is not None and not 0 <= mode <= 0o7777:
        raise reader.fail(where, f"must be a file mode (0 to 07777), not {value!r}")
    return mode


def _archive(reader: FieldReader, raw: Any, where: str) -> Archive | None:
    if raw is None:
        return None
    spec = reader.mapping(raw, where)
    kinds = [k for k in ("tar", "none", "zip", "zstd") if k in spec]
    if len(kinds) != 1:
        raise reader.fail(where, "needs exactly one of tar, none, zip")
    kind = kinds[0]
    if kind == "tar":
        tar = reader.mapping(spec["tar"], f"{where}.tar")
        level = reader.integer(tar.get("compressionLevel"), f"{where}.tar.compressionLevel")
        if level is not None and not 0 <= level <= 9:
            raise reader.fail(f"{where}.tar.compressionLevel", "must be 0 to 9")
        return Archive("tar.gz", level)
    if kind == "zstd":
        level = reader.integer(
            reader.mapping(spec["zstd"], f"{where}.zstd").get("level"), f"{where}.zstd.level"
        )
        return Archive("tar.zst", level)
    return Archive(kind)


def _location(reader: FieldReader, raw: Mapping[str, Any], where: str) -> Location | None:
    kinds = [k for k in LOCATION_KINDS if k in raw and raw[k] is not None]
    if len(kinds) > 1:
        raise reader.fail(
            where, f"has several locations ({', '.join(kinds)}); an artifact has exactly one"
        )
    if not kinds:
        return None
    kind = kinds[0]
    config = raw[kind]
    if kind == "raw":
        config = reader.mapping(config, f"{where}.raw")
        if not isinstance(config.get("data"), str):
            raise reader.fail(f"{where}.raw.data", "must be a string")
    elif kind == "http":
        config = reader.mapping(config, f"{where}.http")
        if not isinstance(config.get("url"), str):
            raise reader.fail(f"{where}.http.url", "must be a string")
    else:
        config = reader.mapping(config, f"{where}.{kind}")
        for name in ("bucket", "key", "endpoint", "region"):
            if name in config:
                reader.string(config[name], f"{where}.{kind}.{name}")
    if kind in LOCATION_FIELDS:
        reader.unknown(config, LOCATION_FIELDS[kind], f"{where}.{kind}")
    return Location(kind, dict(config))


def argosy_options(reader: FieldReader, raw: Any, where: str) -> ArgosyOptions:
    spec = reader.mapping(raw, where)
    reader.unknown(spec, ARGOSY_FIELDS, where)
    include = spec.get("include") or ()
    if isinstance(include, str):
        include = (include,)
    if not isinstance(include, Sequence) or not all(isinstance(g, str) for g in include):
        raise reader.fail(f"{where}.include", "must be a list of globs")
    archive = reader.string(spec.get("archive"), f"{where}.archive")
    if archive is not None and archive not in ("tar.zst", "tar.gz", "tar", "zip", "none"):
        raise reader.fail(f"{where}.archive", "must be tar.zst, tar.gz, tar, zip or none")
    max_expansion = reader.number(spec.get("maxExpansion"), f"{where}.maxExpansion")
    if max_expansion is not None and not (max_expansion == 0 or max_expansion >= 1):
        raise reader.fail(
            f"{where}.maxExpansion",
            f"must be a ratio of at least 1, such as 1000 (0: no limit), not {max_expansion:g}",
        )
    return ArgosyOptions(
        include=tuple(include),
        upload_on_failure=reader.boolean(spec.get("uploadOnFailure"), f"{where}.uploadOnFailure"),
        archive=archive,
        level=reader.integer(spec.get("level"), f"{where}.level"),
        concurrency=reader.count(spec.get("concurrency"), f"{where}.concurrency"),
        files=reader.count(spec.get("files"), f"{where}.files"),
        max_expansion=max_expansion,
        stall_timeout=reader.seconds(spec.get("stallTimeout"), f"{where}.stallTimeout"),
        deadline=reader.seconds(spec.get("deadline"), f"{where}.deadline"),
    )


def _gc_strategy(reader: FieldReader, raw: Any, where: str) -> str | None:
    spec = reader.mapping(raw, where)
    strategy = reader.string(spec.get("strategy"), f"{where}.strategy")
    if strategy and strategy not in STRATEGIES:
        raise reader.fail(f"{where}.strategy", f"must be one of {', '.join(STRATEGIES)}")
    return strategy or None


def parse_artifact(reader: FieldReader, raw: Any, where: str) -> Artifact:
    spec = reader.mapping(raw, where)
    reader.unknown(spec, ARTIFACT_FIELDS, where)
    name = reader.string(spec.get("name"), f"{where}.name")
    if not name:
        raise reader.fail(f"{where}.name", "is required")
    return Artifact(
        name=name,
        where=where,
        path=reader.string(spec.get("path"), f"{where}.path"),
        location=_location(reader, spec, where),
        archive=_archive(reader, spec.get("archive"), f"{where}.archive"),
        optional=bool(reader.boolean(spec.get("optional"), f"{where}.optional")),
        mode=_mode(reader, spec.get("mode"), f"{where}.mode"),
        recurse_mode=bool(reader.boolean(spec.get("recurseMode"), f"{where}.recurseMode")),
        sub_path=reader.string(spec.get("subPath"), f"{where}.subPath"),
        archive_logs=reader.boolean(spec.get("archiveLogs"), f"{where}.archiveLogs"),
        gc_strategy=_gc_strategy(reader, spec.get("artifactGC"), f"{where}.artifactGC"),
        from_=reader.string(spec.get("from"), f"{where}.from"),
        from_expression=reader.string(spec.get("fromExpression"), f"{where}.fromExpression"),
        global_name=reader.string(spec.get("globalName"), f"{where}.globalName"),
        deleted=bool(reader.boolean(spec.get("deleted"), f"{where}.deleted")),
        argosy=argosy_options(reader, spec.get("argosy"), f"{where}.argosy"),
    )


def _artifacts(reader: FieldReader, raw: Any, where: str) -> tuple[Artifact, ...]:
    side = reader.mapping(raw, where)
    items = side.get("artifacts") or []
    if not isinstance(items, list):
        raise reader.fail(f"{where}.artifacts", "must be a list")
    found = tuple(
        parse_artifact(reader, item, f"{where}.artifacts[{i}]") for i, item in enumerate(items)
    )
    names = [a.name for a in found]
    for name in {n for n in names if names.count(n) > 1}:
        raise reader.fail(f"{where}.artifacts", f"names {name!r} twice")
    return found


def parse_template(doc: Any, *, source: str = "", locate: Locate | None = None) -> Template:
    """A template mapping (Argo's ARGO_TEMPLATE, or one entry of a workflow's
    `templates`) into a Template. `locate` maps a field path relative to the template
    (`outputs.artifacts[0].optional`) to its line, for errors and findings."""
    reader = FieldReader(source, locate=locate)
    spec = reader.mapping(doc, "template")
    if not spec:
        raise reader.fail("template", "is empty")
    archive_location = None
    archive_logs = None
    if spec.get("archiveLocation") is not None:
        where = "archiveLocation"
        raw = reader.mapping(spec["archiveLocation"], where)
        archive_logs = reader.boolean(raw.get("archiveLogs"), f"{where}.archiveLogs")
        archive_location = _location(reader, raw, where)
    return Template(
        name=reader.string(spec.get("name"), "name") or "",
        inputs=_artifacts(reader, spec.get("inputs"), "inputs"),
        outputs=_artifacts(reader, spec.get("outputs"), "outputs"),
        archive_location=archive_location,
        archive_logs=archive_logs,
        warnings=tuple(reader.warnings),
        findings=tuple(reader.findings),
    )


def parse_arguments(
    doc: Any,
    *,
    where: str = "arguments",
    source: str = "",
    locate: Locate | None = None,
) -> tuple[tuple[Artifact, ...], tuple[Finding, ...]]:
    """The artifacts of an `arguments` mapping (a workflow's `spec.arguments`, or a step's
    or task's), each named `<where>.artifacts[i]`; parameters are not ours to read."""
    reader = FieldReader(source, locate=locate)
    return _artifacts(reader, doc, where), tuple(reader.findings)


def load_template(text: str, *, source: str) -> Template:
    """JSON or YAML text (JSON is YAML, but JSON's parser gives better errors for it).
    Errors in a YAML text name the line of the field."""
    locate: Locate | None = None
    try:
        if text.lstrip().startswith("{"):
            doc = json.loads(text)
        else:
            document = yamlpos.load(text)
            doc, locate = document.data, document.line_of
    except json.JSONDecodeError as error:
        raise InvalidSpec(
            f"{source}: line {error.lineno} is not valid JSON ({error.msg})"
        ) from None
    except RecursionError:  # JSON's parser recurses, about a thousand levels deep
        raise InvalidSpec(f"{source}: nested too deeply to read as JSON") from None
    except yaml.YAMLError as error:
        raise InvalidSpec(yamlpos.not_yaml(source, error)) from None
    if not isinstance(doc, Mapping):
        raise InvalidSpec(f"{source}: a template must be a JSON or YAML mapping")
    return parse_template(doc, source=source, locate=locate)
