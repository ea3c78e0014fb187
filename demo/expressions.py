"""The two small expression languages of Argo's steps and DAGs, as far as the demo engine
evaluates them exactly.

`when` (a step's or task's condition) is govaluate, evaluated after the `{{...}}` in it
are substituted, with one twist of Argo's: a bare word (govaluate's variable) is a string,
so `tails == heads` compares two strings. The subset here: numbers, quoted strings, bare
words, `true`/`false`, `== != < <= > >=`, `&& || !`, unary minus, parentheses; with
govaluate's types (`==` compares type and value, `<` wants two numbers or two strings,
`&&` two booleans). Anything else (`=~`, arithmetic, `?:`, `in`, a dotted word, which
govaluate reads as an accessor) is refused by name rather than guessed at.

`depends` (a DAG task's) is Argo's expr over the results of other tasks: `A`, meaning
`A.Succeeded || A.Skipped || A.Daemoned`, or `A.Succeeded`, `A.Skipped`, `A.Omitted`,
joined by `&& || !` and parentheses. A local run stops at the first failure, so results
about failures (`.Failed`, `.Errored`, `.AnySucceeded`, `.AllFailed`) and daemons are
refused: they cannot be evaluated as Argo would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from argosy.artifacts.errors import InvalidSpec


class ExpressionError(InvalidSpec):
    """An expression outside the subset, or one govaluate would fail to evaluate."""


@dataclass(frozen=True)
class _Token:
    kind: str  # num | str | word | bool | op | end
    value: object


_WHEN_TOKEN = re.compile(
    r"\s*(?:(?P<num>[0-9.]+)|(?P<word>[^\W\d_][\w.]*)|(?P<str>'[^'\\]*'|\"[^\"\\]*\")"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()-]))"
)
_UNSUPPORTED = ("=~", "!~", "??", "**", "<<", ">>", "+", "*", "/", "%", "?", ":", "[", "]", ",")


def _when_tokens(text: str) -> list[_Token]:
    tokens, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _WHEN_TOKEN.match(text, at)
        if match is None or match.end() == at:
            rest = text[at:].lstrip()
            named = next((op for op in _UNSUPPORTED if rest.startswith(op)), rest[:1])
            raise ExpressionError(f"{named!r} is outside what the demo engine evaluates")
        at = match.end()
        kind = match.lastgroup or "op"
        value: object = match.group(kind)
        if kind == "num":
            try:
                value = float(str(value))
            except ValueError:
                raise ExpressionError(f"{value!r} is not a number") from None
        elif kind == "str":
            value = str(value)[1:-1]
        elif kind == "word":
            if value in ("true", "false"):
                kind, value = "bool", value == "true"
            elif value in ("in", "IN"):
                raise ExpressionError("'in' is outside what the demo engine evaluates")
            elif "." in str(value):
                raise ExpressionError(
                    f"{value!r}: govaluate reads a dotted word as an accessor, which fails"
                )
            else:
                kind = "str"  # Argo turns govaluate's variables into strings
        tokens.append(_Token(kind, value))
    tokens.append(_Token("end", None))
    return tokens


class _Parser:
    """Recursive descent over the tokens: or > and > comparison > unary > operand."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expression(self) -> Callable[[], object]:
        return self._logical("||", self._and)

    def _and(self) -> Callable[[], object]:
        return self._logical("&&", self._comparison)

    def _logical(self, op: str, lower: Callable[[], Callable[[], object]]) -> Callable[[], object]:
        left = lower()
        while self.peek() == _Token("op", op):
            self.take()
            left = _logical(op, left, lower())
        return left

    def _comparison(self) -> Callable[[], object]:
        left = self._unary()
        token = self.peek()
        if token.kind == "op" and token.value in _COMPARE:
            self.take()
            right = self._unary()
            after = self.peek()
            if after.kind == "op" and after.value in _COMPARE:
                raise ExpressionError(
                    "chained comparisons are outside what the demo engine evaluates"
                )
            return _compare(str(token.value), left, right)
        return left

    def _unary(self) -> Callable[[], object]:
        token = self.peek()
        if token == _Token("op", "!"):
            self.take()
            return _not(self._unary())
        if token == _Token("op", "-"):
            self.take()
            return _negate(self._unary())
        return self._operand()

    def _operand(self) -> Callable[[], object]:
        token = self.take()
        if token == _Token("op", "("):
            inner = self.expression()
            if self.take() != _Token("op", ")"):
                raise ExpressionError("a '(' is not closed")
            return inner
        if token.kind in ("num", "str", "bool"):
            value = token.value
            return lambda: value
        raise ExpressionError(f"expected a value, found {token.value or 'the end'!r}")


_COMPARE = ("==", "!=", "<", "<=", ">", ">=")


def _logical(
    op: str, left: Callable[[], object], right: Callable[[], object]
) -> Callable[[], object]:
    def run() -> object:
        a = left()
        if op == "&&" and a is False:
            return False  # govaluate short-circuits before it checks the other side
        if op == "||" and a is True:
            return True
        b = right()
        if not isinstance(a, bool) or not isinstance(b, bool):
            raise ExpressionError(f"{op} needs two booleans, not {a!r} and {b!r}")
        return b

    return run


def _compare(
    op: str, left: Callable[[], object], right: Callable[[], object]
) -> Callable[[], object]:
    def run() -> object:
        a, b = left(), right()
        if op in ("==", "!="):
            same = type(a) is type(b) and a == b
            return same if op == "==" else not same
        if not (isinstance(a, float) and isinstance(b, float)) and not (
            isinstance(a, str) and isinstance(b, str)
        ):
            raise ExpressionError(f"{op} needs two numbers or two strings, not {a!r} and {b!r}")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]  # type: ignore[operator]

    return run


def _not(inner: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        value = inner()
        if not isinstance(value, bool):
            raise ExpressionError(f"! needs a boolean, not {value!r}")
        return not value

    return run


def _negate(inner: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        value = inner()
        if not isinstance(value, float):
            raise ExpressionError(f"- needs a number, not {value!r}")
        return -value

    return run


def parse_when(text: str) -> Callable[[], object]:
    """The expression's evaluator; raises ExpressionError for text outside the subset."""
    parser = _Parser(_when_tokens(text))
    evaluate = parser.expression()
    if parser.peek().kind != "end":
        raise ExpressionError(f"unexpected {parser.peek().value!r}")
    return evaluate


def when(text: str) -> bool:
    """Whether a substituted `when` lets its step run (an empty one does)."""
    if not text.strip():
        return True
    result = parse_when(text)()
    if not isinstance(result, bool):
        raise ExpressionError(f"evaluates to {result!r}, not true or false")
    return result


def check_when(text: str) -> None:
    """Refuses a `when` the engine could not evaluate, before anything runs: each `{{...}}`
    stands for one value (what it is substituted with is checked again at run time)."""
    parse_when(re.sub(r"\{\{.*?\}\}", "value", text, flags=re.DOTALL))


# -- depends ----------------------------------------------------------------------------

_DEPENDS_TOKEN = re.compile(
    r"\s*(?:(?P<name>[a-zA-Z0-9][-a-zA-Z0-9]*?)(?:\.(?P<result>[A-Z][a-zA-Z]+))?(?![-a-zA-Z0-9])"
    r"|(?P<op>&&|\|\||[!()]))"
)
RESULTS = ("Succeeded", "Skipped", "Omitted")  # what a task of a local run can end as
_REFUSED_RESULTS = ("Failed", "Errored", "Daemoned", "AnySucceeded", "AllFailed")


def parse_depends(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A `depends` expression as a function of the tasks' results (name -> one of
    RESULTS); raises ExpressionError for what the engine cannot evaluate."""
    tokens: list[_Token] = []
    at = 0
    while text[at:].strip():
        match = _DEPENDS_TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ExpressionError(f"{text[at:].strip()[:1]!r} is not part of a depends expression")
        at = match.end()
        if match.group("op"):
            tokens.append(_Token("op", match.group("op")))
            continue
        result = match.group("result")
        if result in _REFUSED_RESULTS:
            raise ExpressionError(
                "the demo engine stops at the first failure and runs no daemons, so it "
                f"cannot evaluate {match.group('name')}.{result} as Argo would"
            )
        if result is not None and result not in RESULTS:
            raise ExpressionError(f"{result!r} is not a task result")
        tokens.append(_Token("word", (match.group("name"), result)))
    tokens.append(_Token("end", None))
    parser = _DependsParser(tokens)
    evaluate = parser.either()
    if parser.tokens[parser.at].kind != "end":
        raise ExpressionError(f"unexpected {parser.tokens[parser.at].value!r}")
    return evaluate


Results = Mapping[str, str]


class _DependsParser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.at = tokens, 0

    def _next_is(self, op: str) -> bool:
        if self.tokens[self.at] == _Token("op", op):
            self.at += 1
            return True
        return False

    def either(self) -> Callable[[Results], bool]:
        parts = [self.both()]
        while self._next_is("||"):
            parts.append(self.both())
        return lambda results: any(part(results) for part in parts)

    def both(self) -> Callable[[Results], bool]:
        parts = [self.unary()]
        while self._next_is("&&"):
            parts.append(self.unary())
        return lambda results: all(part(results) for part in parts)

    def unary(self) -> Callable[[Results], bool]:
        if self._next_is("!"):
            inner = self.unary()
            return lambda results: not inner(results)
        if self._next_is("("):
            inner = self.either()
            if not self._next_is(")"):
                raise ExpressionError("a '(' is not closed")
            return inner
        token = self.tokens[self.at]
        if token.kind != "word":
            raise ExpressionError(f"expected a task, found {token.value or 'the end'!r}")
        self.at += 1
        if not isinstance(token.value, tuple):
            raise ExpressionError(f"expected a task, found {token.value!r}")
        name, result = str(token.value[0]), token.value[1]
        if result is None:  # Argo's expansion of a bare name (no daemons here)
            return lambda results: results.get(name) in ("Succeeded", "Skipped")
        return lambda results: results.get(name) == result
