"""Pure functions for the request semantics the test API server must get right.

Label and field selectors decide what a list or watch returns; merge patch (RFC 7386) and
JSON patch (RFC 6902) decide what a PATCH writes. They are kept free of storage and HTTP so
each rule can be read (and fixed) against the Kubernetes documentation in one place. Every
user error raises ``KubeError`` with the code the real server uses: 400 for a malformed
selector or patch document, 422 for a JSON patch that cannot be applied (a failed ``test``
included).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from argosy.testing.kube.model import JsonDict, KubeError

_KEY = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)
_VALUE = re.compile(r"^(([a-zA-Z0-9][-a-zA-Z0-9_.]*)?[a-zA-Z0-9])?$")
_SET_TERM = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\((.*)\)\s*$")
_BINARY_TERM = re.compile(r"^\s*([^!=<>\s]+)\s*(==|!=|=|<|>)\s*(\S*)\s*$")


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector, e.g. ``tier in (a,b)`` or ``!legacy``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "<", ">"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            have, want = int(str(value)), int(next(iter(self.values)))
        except ValueError:
            return False
        return have < want if self.op == "<" else have > want


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``( ... )``."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return [t.strip() for t in terms if t.strip()]


def _bad_selector(term: str, why: str) -> KubeError:
    return KubeError(400, f"unable to parse requirement: {why}: {term!r}")


def _check_key(key: str, term: str) -> str:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise _bad_selector(term, f"invalid label key {key!r}")
    return key


def _check_values(values: list[str], term: str) -> frozenset[str]:
    for value in values:
        if len(value) > 63 or not _VALUE.match(value):
            raise _bad_selector(term, f"invalid label value {value!r}")
    return frozenset(values)


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse the ``labelSelector`` query parameter (equality- and set-based forms)."""
    requirements: list[Requirement] = []
    for term in _split_terms(text or ""):
        set_match = _SET_TERM.match(term)
        if set_match:
            key, op, raw = set_match.groups()
            values = [v.strip() for v in raw.split(",")] if raw.strip() else []
            if not values:
                raise _bad_selector(term, "for 'in', 'notin' operators, values set can't be empty")
            requirements.append(Requirement(_check_key(key, term), op, _check_values(values, term)))
            continue
        if term.startswith("!"):
            requirements.append(Requirement(_check_key(term[1:].strip(), term), "!"))
            continue
        binary = _BINARY_TERM.match(term)
        if binary:
            key, op, value = binary.groups()
            op = "=" if op == "==" else op
            if op in "<>" and not value.isdigit():
                raise _bad_selector(term, "for 'Gt', 'Lt' operators, the value must be an integer")
            requirements.append(
                Requirement(_check_key(key, term), op, _check_values([value], term))
            )
            continue
        if re.search(r"[\s=!<>()]", term):
            raise _bad_selector(term, "found unexpected token")
        requirements.append(Requirement(_check_key(term, term), "exists"))
    return requirements


def parse_field_selector(text: str | None) -> list[tuple[str, bool, str]]:
    """Parse ``fieldSelector``: a list of ``(dotted.path, must_equal, value)``."""
    result: list[tuple[str, bool, str]] = []
    for term in _split_terms(text or ""):
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|!=|=)\s*(.*)$", term)
        if not match:
            raise KubeError(400, f"invalid field selector: {term!r}")
        path, op, value = match.groups()
        result.append((path, op != "!=", value.strip()))
    return result


def _field_value(obj: JsonDict, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def selects(obj: JsonDict, labels: list[Requirement], fields: list[tuple[str, bool, str]]) -> bool:
    """Whether an object passes both selectors (all terms are ANDed, as in Kubernetes)."""
    own_labels = (obj.get("metadata") or {}).get("labels") or {}
    if not all(req.matches(own_labels) for req in labels):
        return False
    return all((_field_value(obj, path) == value) == equal for path, equal, value in fields)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` deletes, all else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_directives(patch: Any) -> Any:
    """Drop strategic-merge ``$directive`` keys, which a plain merge patch cannot honour."""
    if isinstance(patch, dict):
        return {k: strip_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [strip_directives(v) for v in patch]
    return patch


def _unprocessable(message: str) -> KubeError:
    return KubeError(422, message, reason="Invalid")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise KubeError(400, f"invalid JSON pointer: {path!r}")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise _unprocessable(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise _unprocessable(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise _unprocessable(f"doc is missing path: {path}")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise _unprocessable(f"doc is missing path: {path}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise _unprocessable(f"doc is missing path: {path}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise _unprocessable("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, for_insert=False))
    raise _unprocessable(f"unable to remove nonexistent key: {last}: missing value")


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; the document is copied, the input is never modified."""
    if not isinstance(operations, list):
        raise KubeError(400, "json patch must be a list of operations")
    doc = copy.deepcopy(document)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise KubeError(400, f"invalid json patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise KubeError(400, f"missing value for {kind} operation at {path}")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise KubeError(400, f"missing from for {kind} operation at {path}")
            value = copy.deepcopy(_get(doc, source))
            if kind == "move":
                doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise _unprocessable(
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {path} failed"
                )
        else:
            raise KubeError(400, f"unexpected json patch operation {kind!r}")
    return doc
