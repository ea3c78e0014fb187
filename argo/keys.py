"""Where an artifact's object goes: Argo's key rules and `keyFormat` templating.

An artifact with its own `key` keeps it. Otherwise the key is the repository's
`keyFormat` (default `{{workflow.name}}/{{pod.name}}`) expanded, then a file name by
archive: `<name>.tgz` (tar), `<name>.zip`, `basename(path)` (none), and for Argosy's
opt-in zstd `<name>.tar.zst`. A keyFormat may use workflow variables
(`{{workflow.name}}`, `{{workflow.namespace}}`, `{{workflow.uid}}`, `{{pod.name}}`, ...)
and strftime parts of the workflow's creation time (`{{workflow.creationTimestamp.Y}}`;
`{{workflow.creationTimestamp}}` and `.RFC3339` are the whole time, `.s` Unix seconds,
as in Argo).
A variable that cannot be resolved is an error naming it, never an empty path segment.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from argosy.artifacts.errors import InvalidSpec

_VARIABLE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
_CREATED = "workflow.creationTimestamp"
_STRFTIME = frozenset("aAbBcdHIjmMpSUwWxXyYZz%")


def expand(
    text: str,
    variables: Mapping[str, str],
    *,
    created: datetime | None = None,
    what: str = "keyFormat",
) -> str:
    """`text` with every `{{variable}}` replaced; unknown ones are an InvalidSpec."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return variables[name]
        if name.startswith(_CREATED + ".") and created is not None:
            part = name[len(_CREATED) + 1 :]
            if len(part) == 1 and part in _STRFTIME:
                return created.strftime("%" + part)
        if name in (_CREATED, _CREATED + ".RFC3339") and created is not None:
            return created.strftime("%Y-%m-%dT%H:%M:%SZ")
        if name == _CREATED + ".s" and created is not None:  # Unix seconds; naive is UTC
            return str(int(created.replace(tzinfo=created.tzinfo or UTC).timestamp()))
        known = ", ".join(sorted(variables)) or "none"
        raise InvalidSpec(
            f"{what} {text!r}: cannot resolve {{{{{name}}}}} "
            f"(known: {known}; give it with --set {name}=...)"
        )

    return _VARIABLE.sub(value, text)


def file_name(name: str, path: str | None, fmt: str) -> str:
    """The last segment Argo appends to the keyFormat's prefix for an output."""
    if fmt == "none":
        base = posixpath.basename((path or "").rstrip("/"))
        return base or name
    return {
        "tar.gz": f"{name}.tgz",
        "zip": f"{name}.zip",
        "tar.zst": f"{name}.tar.zst",
        "tar": f"{name}.tar",
    }[fmt]


def output_key(prefix: str, name: str, path: str | None, fmt: str) -> str:
    """`prefix` is the expanded keyFormat (or Argo's archiveLocation key)."""
    return posixpath.join(prefix.strip("/"), file_name(name, path, fmt))


def log_key(prefix: str, container: str = "main") -> str:
    """Where `archiveLogs` puts a container's log: `<key>/main.log`, as Argo does."""
    return posixpath.join(prefix.strip("/"), f"{container}.log")


WORKFLOW_VARIABLES = ("workflow.name", "workflow.namespace", "workflow.uid")


def workflow_prefix(
    key_format: str, variables: Mapping[str, str], *, created: datetime | None = None
) -> str:
    """The folder every key one workflow writes with `key_format` lies under (its outputs
    are `<format>/<file>`): the format expanded up to its first variable that is not the
    workflow's own (`{{pod.name}}`, a node's), cut back to the last '/'
    (`{{workflow.name}}/{{pod.name}}` -> `wf-1/`, `{{workflow.name}}` -> `wf-1/`). Empty
    when the format starts with such a variable: the workflow has no folder of its own."""
    head, _, rest = key_format.partition("{{")
    text = head
    while rest:
        name, close, after = rest.partition("}}")
        if not close:
            break
        variable = name.strip()
        known = {k: v for k, v in variables.items() if k in WORKFLOW_VARIABLES}
        try:
            text += expand("{{" + variable + "}}", known, created=created)
        except InvalidSpec:
            break
        head, _, rest = after.partition("{{")
        text += head
    else:  # all of it expanded: the keys are `<format>/<file>`
        return text.rstrip("/") + "/" if text.strip("/") else ""
    return text[: text.rfind("/") + 1]
