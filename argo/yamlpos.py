"""YAML documents that remember where each field was written.

PyYAML's `safe_load` returns plain data and forgets the line a key sat on; a linter that
says `spec.templates[1].outputs.artifacts[0].optional must be true or false` should also
say `wf.yaml:23`. Here each document is composed into nodes first, constructed with the
same SafeConstructor `safe_load` uses (so the data is identical), and its node tree is
walked once to record the line of every mapping key and sequence item under a field
path: `spec.templates[1].name`. Keys a mapping repeats (YAML keeps the last silently)
are recorded too, so a linter can point at them.

Every YAML text Argosy reads from a user goes through `Loader`, which refuses nesting
deeper than `MAX_DEPTH`: PyYAML composes nodes recursively, so a file of 10,000 nested
lists would otherwise end in a RecursionError instead of a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import yaml

from argosy.artifacts.errors import InvalidSpec

_LAST_SEGMENT = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")
MAX_DEPTH = 100  # levels of nested mappings and lists; Argo's own documents need ~15


class TooDeep(yaml.composer.ComposerError):
    """A document nested deeper than MAX_DEPTH."""


class Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader (the same data `yaml.safe_load` gives), refusing a document
    nested deeper than MAX_DEPTH with `TooDeep`, which names the line."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise TooDeep(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """`yaml.safe_load`, with nesting capped at MAX_DEPTH (raises yaml.YAMLError)."""
    return yaml.load(stream, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader


def not_yaml(source: str, error: yaml.YAMLError) -> str:
    """The message for a text that `safe_load` or `load` refused: `wf.yaml: line 3 is
    not valid YAML`, or `wf.yaml: line 3 is nested deeper than 100 levels`."""
    mark = getattr(error, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark else ""
    if isinstance(error, TooDeep):
        return f"{source}:{where} is {error.problem}"
    return f"{source}:{where} is not valid YAML"


def load_file(path: str | os.PathLike[str], name: str) -> Any:
    """`safe_load` of a file the user named, every failure one line calling it `name`:
    `cannot read NAME: ...`, `NAME is not text`, `NAME: line 3 is not valid YAML`."""
    try:
        with open(path, encoding="utf-8") as handle:
            return safe_load(handle)
    except OSError as error:
        raise InvalidSpec(f"cannot read {name}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidSpec(f"{name} is not text") from None
    except yaml.YAMLError as error:
        raise InvalidSpec(not_yaml(name, error)) from None


@dataclass(frozen=True)
class Document:
    """One YAML document: its data, and the 1-based line of every field path in it."""

    data: Any
    line: int  # where the document starts
    lines: dict[str, int] = field(default_factory=dict)
    duplicates: tuple[str, ...] = ()  # field paths a mapping gives twice

    def line_of(self, path: str) -> int:
        """The line of `path`, or of its nearest ancestor written in the file (a missing
        field is reported where its parent is)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            parent = _LAST_SEGMENT.sub("", path)
            if parent == path:
                break
            path = parent
        return self.line


@dataclass(frozen=True)
class YamlError:
    """Text that is not YAML: where the parser gave up, and why."""

    line: int | None
    problem: str


def join(base: str, name: str | int) -> str:
    """`spec` + `templates` -> `spec.templates`; `spec.templates` + 1 -> `spec.templates[1]`."""
    if isinstance(name, int):
        return f"{base}[{name}]"
    return f"{base}.{name}" if base else name


def _walk(
    node: yaml.Node, path: str, lines: dict[str, int], duplicates: list[str], seen: frozenset[int]
) -> None:
    if id(node) in seen:  # a recursive alias (`&a [*a]`): its lines are already known
        return
    seen = seen | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            child = join(path, str(key.value))
            if child in lines:
                duplicates.append(child)
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = join(path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, duplicates, seen)


def _error(error: yaml.YAMLError) -> YamlError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return YamlError(mark.line + 1 if mark is not None else None, str(problem))


def _documents(text: str) -> Iterator[Document]:
    loader = Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[str, int] = {}
            duplicates: list[str] = []
            _walk(node, "", lines, duplicates, frozenset())
            data = loader.construct_document(node)
            yield Document(data, node.start_mark.line + 1, lines, tuple(duplicates))
    finally:
        loader.dispose()


def load_all(text: str) -> tuple[list[Document], YamlError | None]:
    """Every document of a (multi-document) YAML text, up to the first one that is not
    YAML; the documents before a broken one are still returned."""
    found: list[Document] = []
    try:
        for document in _documents(text):
            found.append(document)
    except yaml.YAMLError as error:
        return found, _error(error)
    return found, None


def load(text: str) -> Document:
    """A single YAML document (an empty text is a document of None); raises yaml.YAMLError."""
    documents = list(_documents(text))
    if len(documents) > 1:
        raise yaml.YAMLError("expected a single document, found several")
    return documents[0] if documents else Document(None, 1)
