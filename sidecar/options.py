"""Argosy's own settings for one artifact, merged from where Argo lets them live.

Argo's controller drops fields it does not know before it writes `ARGO_TEMPLATE`, so
under Argo an `argosy:` block on an artifact never arrives. The same settings can come
from, highest first:

1. the artifact's `argosy:` block (Argosy's own template files),
2. the pod annotation `argosy.io/settings` (JSON or YAML; Argo passes a template's
   `metadata.annotations` to its pod, and the downward API shows them at
   `/argo/podmetadata/annotations`): top-level fields apply to every artifact,
   `artifacts: {NAME: {...}}` to one,
3. the repository entry's `argosy:` block,
4. the defaults: Argo's (tar + gzip, upload outputs even when main failed).

`stallTimeout` and `deadline` (seconds) bound each artifact's transfer: see
`TransferSettings.stall_timeout` and `deadline`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from argosy.argo import yamlpos
from argosy.argo.template import ArgosyOptions, Artifact, FieldReader, argosy_options
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.settings import TransferSettings

ANNOTATION = "argosy.io/settings"
_LINE = re.compile(r'^([^=]+)="(.*)"$')


@dataclass(frozen=True)
class Effective:
    archive: str  # the format for an output with no `archive:` of its own
    level: int | None
    include: tuple[str, ...]
    upload_on_failure: bool
    concurrency: int | None
    files: int | None = None  # None: the transfer settings' own
    max_expansion: float | None = None  # inputs: None is the extractor's default (1000)
    stall_timeout: float | None = None  # seconds; None: the transfer settings' own
    deadline: float | None = None  # seconds the artifact's transfer may take; None: no limit

    def transfer(self, settings: TransferSettings) -> TransferSettings:
        """`settings` with this artifact's parts and files in flight, stall timeout and
        deadline."""
        return replace(
            settings,
            concurrency=self.concurrency or settings.concurrency,
            files=self.files or settings.files,
            stall_timeout=self.stall_timeout or settings.stall_timeout,
            deadline=self.deadline if self.deadline is not None else settings.deadline,
        )


def read_annotations(path: Path) -> dict[str, str]:
    """The downward API's annotations file: `key="value"` lines, values quoted as Go's
    `%q` quotes them. A line that cannot be read is skipped, unless it is Argosy's own
    annotation: someone else's odd annotation never stops a pod."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise InvalidSpec(f"cannot read pod annotations {path}: {error.strerror}") from None
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        key = match.group(1)
        try:
            found[key] = go_unquote(match.group(2))
        except ValueError as error:
            if key == ANNOTATION:
                raise InvalidSpec(f"pod annotation {key} in {path}: {error}") from None
    return found


_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_SIMPLE.update({"\\": "\\", '"': '"', "'": "'"})
_WIDTH = {"x": 2, "u": 4, "U": 8}


def go_unquote(body: str) -> str:
    """The text inside a Go double-quoted string literal, its escapes resolved
    (`\\xHH` bytes joined as UTF-8, `\\uHHHH`, `\\UHHHHHHHH`, octal `\\ooo`, the
    one-letter escapes). A malformed escape is a ValueError naming it."""
    out = bytearray()
    at = 0
    while at < len(body):
        char = body[at]
        if char != "\\":
            out += char.encode()
            at += 1
            continue
        kind = body[at + 1 : at + 2]
        if kind in _SIMPLE:
            out += _SIMPLE[kind].encode()
            at += 2
        elif kind in _WIDTH:
            digits = body[at + 2 : at + 2 + _WIDTH[kind]]
            value = _hex(digits, _WIDTH[kind], body[at : at + 2 + _WIDTH[kind]])
            out += bytes([value]) if kind == "x" else _rune(value, digits)
            at += 2 + _WIDTH[kind]
        elif kind in "01234567" and kind:
            digits = body[at + 1 : at + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ValueError(f"bad escape \\{digits}")
            out.append(int(digits, 8))
            at += 4
        else:
            raise ValueError(f"bad escape \\{kind}" if kind else "a lone backslash at the end")
    return out.decode("utf-8", errors="replace")


def _hex(digits: str, width: int, shown: str) -> int:
    if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
        raise ValueError(f"bad escape {shown}")
    return int(digits, 16)


def _rune(value: int, digits: str) -> bytes:
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise ValueError(f"bad code point U+{digits}")
    return chr(value).encode()


@dataclass(frozen=True)
class Layers:
    annotation: Mapping[str, Any]
    repository: Mapping[str, Any]

    @classmethod
    def build(
        cls, annotations: Mapping[str, str], repository_entry: Mapping[str, Any] | None
    ) -> Layers:
        raw = annotations.get(ANNOTATION)
        annotation: Any = {}
        if raw:
            try:
                annotation = yamlpos.safe_load(raw) or {}
            except yaml.YAMLError:
                raise InvalidSpec(f"pod annotation {ANNOTATION} is not JSON or YAML") from None
            if not isinstance(annotation, Mapping):
                raise InvalidSpec(f"pod annotation {ANNOTATION} must be a mapping")
        repo_block = (repository_entry or {}).get("argosy") or {}
        return cls(annotation, repo_block)

    def for_artifact(self, artifact: Artifact) -> Effective:
        reader = FieldReader("")
        per_artifact = (self.annotation.get("artifacts") or {}).get(artifact.name) or {}
        top = {k: v for k, v in self.annotation.items() if k != "artifacts"}
        layers: list[ArgosyOptions] = [
            artifact.argosy,
            argosy_options(reader, per_artifact, f"{ANNOTATION}.artifacts.{artifact.name}"),
            argosy_options(reader, top, ANNOTATION),
            argosy_options(reader, self.repository, "repository.argosy"),
        ]

        def first(name: str) -> Any:
            for layer in layers:
                value = getattr(layer, name)
                if value not in (None, ()):
                    return value
            return None

        upload_on_failure = first("upload_on_failure")
        return Effective(
            archive=first("archive") or "tar.gz",
            level=first("level"),
            include=first("include") or (),
            upload_on_failure=True if upload_on_failure is None else upload_on_failure,
            concurrency=first("concurrency"),
            files=first("files"),
            max_expansion=first("max_expansion"),
            stall_timeout=first("stall_timeout"),
            deadline=first("deadline"),
        )
