"""A step's (or task's) loop, expanded as Argo's controller expands it.

`withItems` (a list written in the workflow), `withParam` (a JSON list, once the
`{{...}}` in it are substituted) and `withSequence` (`count` or `end`, from `start`,
each number written with `format`) each make one step per item, named
`NAME(INDEX:ITEM)`: a string, number or boolean item as itself; a map as its sorted
`key:value` pairs joined by commas; parentheses dropped from the item. In the step,
`{{item}}` is the item (a map as Go's JSON of it) and `{{item.KEY}}` a map item's
value. Items that are lists, or maps holding lists or maps, are refused: their names
and values follow Go's formatting of nested values, which is not reproduced here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argosy.artifacts.errors import InvalidSpec
from argosy.demo import variables
from argosy.demo.variables import RawNumber

LOOP_FIELDS = ("withItems", "withParam", "withSequence")
_FORMAT = re.compile(r"%(?P<flags>[-+ 0]*)(?P<width>\d*)(?P<verb>[dxXob])|%%")
_ATOI = re.compile(r"[+-]?\d+")


class LoopError(InvalidSpec):
    """A loop the engine cannot expand as Argo would (or that Argo would refuse)."""


@dataclass(frozen=True)
class Item:
    """One expanded item: what `{{item}}` (and `{{item.KEY}}`) become, and its name part."""

    values: Mapping[str, str]
    label: str


def is_loop(step: Mapping[str, Any]) -> bool:
    """Argo expands a step with a non-empty withItems, a withParam or a withSequence
    (an empty `withItems: []` is no loop: the step runs once)."""
    return (
        bool(step.get("withItems"))
        or bool(step.get("withParam"))
        or (step.get("withSequence") is not None)
    )


def item(value: Any, where: str) -> Item:
    """A loop item's variables and name part."""
    text = variables.scalar(value)
    if text is not None:
        return Item({"item": text}, _clean(text))
    if isinstance(value, Mapping) and value:
        values = {"item": variables.go_json(value)}
        parts = []
        for key, member in value.items():
            shown = variables.scalar(member)
            if shown is None:
                raise LoopError(
                    f"{where}: item {key!r} holds {type(member).__name__} values; the demo "
                    "engine expands maps of strings, numbers and booleans only"
                )
            values[f"item.{key}"] = shown
            parts.append(f"{key}:{shown}")
        return Item(values, _clean(",".join(sorted(parts))))
    raise LoopError(
        f"{where}: a {type(value).__name__} item is not supported by the demo engine "
        "(items are strings, numbers, booleans or maps of them)"
    )


def _clean(label: str) -> str:
    """Argo drops parentheses from the item in a node's name (the index keeps it unique)."""
    return label.replace("(", "").replace(")", "")


def node_name(name: str, index: int, label: str) -> str:
    return f"{name}({index}:{label})"


def items_of(step: Mapping[str, Any], where: str) -> list[Item]:
    """The items of a substituted step's loop."""
    if step.get("withItems"):
        raw = step["withItems"]
        if not isinstance(raw, list):
            raise LoopError(f"{where}: withItems must be a list")
        return [item(value, f"{where}.withItems[{i}]") for i, value in enumerate(raw)]
    if step.get("withParam"):
        return param_items(str(step["withParam"]), where)
    return [Item({"item": text}, _clean(text)) for text in sequence(step["withSequence"], where)]


def param_items(text: str, where: str) -> list[Item]:
    """`withParam`'s JSON list (numbers kept as written, as Go's json.Number keeps them)."""
    try:
        found = json.loads(text, parse_float=RawNumber, parse_int=RawNumber)
    except ValueError:
        raise LoopError(
            f"{where}: withParam value could not be parsed as a JSON list: {text.strip()}"
        ) from None
    if not isinstance(found, list):
        raise LoopError(f"{where}: withParam value is not a JSON list: {text.strip()}")
    return [item(value, f"{where}.withParam[{i}]") for i, value in enumerate(found)]


def _int(value: Any, name: str, where: str) -> int:
    text = variables.scalar(value) if not isinstance(value, bool) else None
    if text is None or not _ATOI.fullmatch(text):
        raise LoopError(f"{where}: withSequence.{name} must be a whole number, not {value!r}")
    return int(text)


def check_format(text: str, where: str) -> None:
    """Refuses a `format` other than text around one integer verb (Go's %d, %5d, %05d,
    %x, %X, %o, %b): Go's other verbs are not reproduced."""
    verbs = [m for m in _FORMAT.finditer(text) if m.group(0) != "%%"]
    rest = _FORMAT.sub("", text)
    if len(verbs) != 1 or "%" in rest:
        raise LoopError(
            f"{where}: withSequence.format {text!r} is not supported by the demo engine "
            "(text around one of %d, %Nd, %0Nd, %x, %X, %o, %b)"
        )


def _format(text: str, number: int) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        flags, width, verb = match.group("flags"), match.group("width"), match.group("verb")
        if "-" in flags:
            flags = flags.replace("0", "")  # Go, like C, ignores 0 when left-justifying
        return format(number, f"{_py_flags(flags)}{width}{verb}")

    return _FORMAT.sub(one, text)


def _py_flags(flags: str) -> str:
    align = "<" if "-" in flags else ""
    sign = "+" if "+" in flags else " " if " " in flags else ""
    zero = "0" if "0" in flags and not align else ""
    return f"{align}{sign}{zero}"


def sequence(raw: Any, where: str) -> list[str]:
    """Argo's expandSequence: `count` numbers from `start` (0), or `start` to `end` either
    way, each written with `format` (%d)."""
    if not isinstance(raw, Mapping):
        raise LoopError(f"{where}: withSequence must be a mapping (count or end, start, format)")
    if raw.get("count") is not None and raw.get("end") is not None:
        raise LoopError(f"{where}: only one of count or end can be defined in withSequence")
    start = _int(raw["start"], "start", where) if raw.get("start") is not None else 0
    if raw.get("end") is not None:
        end = _int(raw["end"], "end", where)
    elif raw.get("count") is not None:
        count = _int(raw["count"], "count", where)
        if count == 0:
            return []
        end = start + count - 1
    else:
        raise LoopError(f"{where}: withSequence needs count or end")
    fmt = str(raw.get("format") or "%d")
    check_format(fmt, where)
    step = 1 if start <= end else -1
    return [_format(fmt, n) for n in range(start, end + step, step)]
