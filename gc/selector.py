"""Kubernetes label selectors (`matchLabels` + `matchExpressions`), parsed and matched.

An ArtifactGCPolicy applies to the workflows its selector picks; a workflow it does not
pick falls back to the cluster default (Never). The rules are the API server's: every
requirement must hold; `In`/`NotIn` need values, `Exists`/`DoesNotExist` take none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector the API server would refuse."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # NotIn


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def everything(self) -> bool:
        return not self.requirements


def parse_selector(raw: Any, where: str = "selector") -> Selector:
    """A `metav1.LabelSelector` dict; None or {} selects everything."""
    if raw is None:
        return Selector()
    if not isinstance(raw, Mapping):
        raise SelectorError(f"{where} must be a mapping with matchLabels/matchExpressions")
    unknown = set(raw) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise SelectorError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    requirements: list[Requirement] = []
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise SelectorError(f"{where}.matchLabels must be a mapping of strings")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise SelectorError(f"{where}.matchLabels[{key}] must be a string")
        requirements.append(Requirement(str(key), "In", frozenset([value])))
    expressions = raw.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError(f"{where}.matchExpressions must be a list")
    for i, expr in enumerate(expressions):
        here = f"{where}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping) or not isinstance(expr.get("key"), str):
            raise SelectorError(f"{here} needs a key")
        operator = expr.get("operator")
        if operator not in OPERATORS:
            raise SelectorError(
                f"{here}: operator must be one of {', '.join(OPERATORS)}, not {operator!r}"
            )
        values = expr.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"{here}.values must be a list of strings")
        if operator in ("In", "NotIn") and not values:
            raise SelectorError(f"{here}: {operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"{here}: {operator} takes no values")
        requirements.append(Requirement(expr["key"], str(operator), frozenset(values)))
    return Selector(tuple(requirements))
