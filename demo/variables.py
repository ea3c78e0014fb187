"""Argo's `{{...}}` variables, substituted as its controller substitutes them.

Argo marshals a template (or a step) to JSON and replaces each tag, `{{` to the next `}}`,
trimmed of spaces, by its value; a tag it has no value for is left as written (Argo's
validation refuses those with a prefix it owns, `inputs.`, `steps.`, `workflow.`, ...,
before the workflow starts; others, like a shell's `{{foo}}`, stay text). Tags starting
with `=` are expressions (expr-lang), which the demo engine does not evaluate.

Values are strings, as Argo's are; a YAML number or boolean given as a parameter or
loop item is written as Go writes it after the YAML->JSON step Argo's clients take
(`1.0` is `1`, `true` is `true`), and a map as Go's JSON (keys sorted, `<>&` escaped).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# Argo validates tags with these prefixes; any other is left alone, by Argo too.
ARGO_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
# Variables Argo fills in that carry none of those prefixes: the demo engine refuses them.
ARGO_UNPREFIXED = frozenset({"node.name", "retries", "steps.name", "tasks.name"})


class RawNumber(str):
    """A JSON number kept as written (`1.0` stays `1.0`), as Go's json.Number keeps it."""


def tags(text: str) -> list[str]:
    """The trimmed contents of every `{{...}}` in `text`."""
    return [match.group(1).strip() for match in _TAG.finditer(text)]


def all_tags(value: Any) -> list[str]:
    """Every tag in the strings of a JSON-like value (mapping keys included)."""
    found: list[str] = []
    if isinstance(value, str):
        found += tags(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found += all_tags(key) + all_tags(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found += all_tags(item)
    return found


def replace(text: str, values: Mapping[str, str]) -> str:
    """`text` with every tag `values` knows replaced; the others left as written."""
    return _TAG.sub(lambda m: values.get(m.group(1).strip(), m.group(0)), text)


def substitute(value: Any, values: Mapping[str, str]) -> Any:
    """A copy of a JSON-like value with `replace` applied to each string in it."""
    if isinstance(value, str):
        return replace(value, values)
    if isinstance(value, Mapping):
        return {replace(str(k), values): substitute(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(item, values) for item in value]
    return value


def is_argos(tag: str) -> bool:
    """A tag Argo would resolve (or refuse): its prefixes, its unprefixed variables and
    expressions. Any other tag is text to Argo and stays as written."""
    return tag.startswith(("=", *ARGO_PREFIXES)) or tag in ARGO_UNPREFIXED


def go_float(number: float) -> str:
    """A float as Go's encoding/json writes it (what Argo's YAML->JSON step leaves)."""
    if not math.isfinite(number):
        raise ValueError(f"{number} is not a JSON number")
    if number == int(number) and abs(number) < 1e21:
        return str(int(number))
    if 1e-6 <= abs(number) < 1e21:
        return format(Decimal(repr(number)), "f")
    mantissa, _, exponent = repr(number).partition("e")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"


def scalar(value: Any) -> str | None:
    """A YAML or JSON scalar as Argo's string for it; None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, RawNumber | str):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    return None


def go_json(value: Any) -> str:
    """Go's json.Marshal of scalars, maps and lists: keys sorted, no spaces, `<`, `>` and
    `&` escaped as Go escapes them for HTML safety."""
    if isinstance(value, Mapping):
        pairs = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, str) and not isinstance(value, RawNumber):
        text = json.dumps(value, ensure_ascii=False)
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escaped)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    found = scalar(value)
    if found is None:
        raise ValueError(f"{value!r} is not a JSON value")
    return found
