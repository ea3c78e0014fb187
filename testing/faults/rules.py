"""What the fault proxy does to a request: the faults, and the rules that choose requests.

A rule matches a request by regular expressions on its method, path and query (searched,
so `PUT` matches only PUT when anchored: the CLI anchors the method) and fires on a count
of the requests it matches: it lets the first `skip` through, then fires `times` times
(None: on every one). The first rule that matches and fires wins; a request no rule fires
on is forwarded untouched.

The faults are what a network and an object store do to a client:

    Delay       late answers: before the request is forwarded, and between body pieces
    Answer      an error answered by the proxy itself (503 SlowDown, 500, 404 ...)
    Reset       the connection reset after N bytes of the request or the response body
    Truncate    the response body ends early (closed, its Content-Length promised more)
    Corrupt     N bytes of the response body changed in flight (seeded)
    BlackHole   the request read, then never an answer (until the client gives up)
    LoseAnswer  the request applied upstream, then the connection dropped unanswered
"""

from __future__ import annotations

import re
import shlex
import threading
from dataclasses import dataclass, field

KiB = 1 << 10


@dataclass(frozen=True)
class Delay:
    """head: seconds before the request goes upstream (so before the answer's headers);
    between_chunks: seconds before each `chunk` bytes of the response body."""

    head: float = 0.0
    between_chunks: float = 0.0
    chunk: int = 64 * KiB


@dataclass(frozen=True)
class Answer:
    """An S3-style error answer (`<Error><Code>...`), the request's body read first."""

    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    retry_after: int | None = None


@dataclass(frozen=True)
class Reset:
    """A reset (RST) after `request_bytes` of the request body were forwarded, or after
    `response_bytes` of the response body were sent back: exactly one of them."""

    request_bytes: int | None = None
    response_bytes: int | None = None

    def __post_init__(self) -> None:
        if (self.request_bytes is None) == (self.response_bytes is None):
            raise ValueError("Reset needs exactly one of request_bytes, response_bytes")


@dataclass(frozen=True)
class Truncate:
    """The answer's head as upstream sent it, then `after` bytes of its body, then a
    clean close: a body shorter than its Content-Length."""

    after: int = 0


@dataclass(frozen=True)
class Corrupt:
    """`count` bytes of the response body changed (each XORed with a non-zero byte), at
    positions drawn from `seed`; the headers (Content-Length, checksums) untouched."""

    count: int = 1
    seed: int = 0


@dataclass(frozen=True)
class BlackHole:
    """The request is read and never answered; the connection stays open until the
    client closes it or the proxy stops."""


@dataclass(frozen=True)
class LoseAnswer:
    """The request goes upstream and is applied; its answer is read and thrown away and
    the connection reset: the client cannot tell whether it happened."""


Fault = Delay | Answer | Reset | Truncate | Corrupt | BlackHole | LoseAnswer


@dataclass
class Rule:
    """`fault` on the requests matching `method`, `path` and `query` (regular expressions,
    searched): after the first `skip` of them, `times` of them (None: all)."""

    fault: Fault
    method: str = ""
    path: str = ""
    query: str = ""
    times: int | None = 1
    skip: int = 0
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._patterns = tuple(re.compile(p) for p in (self.method, self.path, self.query))

    def matches(self, method: str, path: str, query: str) -> bool:
        return all(p.search(s) for p, s in zip(self._patterns, (method, path, query), strict=True))


@dataclass(frozen=True)
class Hit:
    """One request a rule fired on, as the proxy's log keeps it."""

    method: str
    path: str
    query: str
    fault: Fault


class RuleBook:
    """The rules of one proxy, consulted and counted under a lock (requests arrive on
    many connections at once)."""

    def __init__(self, rules: tuple[Rule, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._rules = list(rules)
        self.hits: list[Hit] = []

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def choose(self, method: str, path: str, query: str) -> Fault | None:
        """The fault for this request (None: forward it untouched), counted."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, query):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                self.hits.append(Hit(method, path, query, rule.fault))
                return rule.fault
        return None


_KINDS: dict[str, type[Fault]] = {
    "delay": Delay,
    "status": Answer,
    "reset": Reset,
    "truncate": Truncate,
    "corrupt": Corrupt,
    "blackhole": BlackHole,
    "lose": LoseAnswer,
}
_FLOATS = {"head", "between_chunks"}
_STRINGS = {"code", "message"}


def parse_rule(text: str) -> Rule:
    """A rule from its command-line form: `KIND [NAME=VALUE ...]`, e.g.
    `status status=503 method=PUT times=3`, `reset response_bytes=1000 path=/b/k`,
    `delay head=0.02 times=all`. KIND is one of delay, status, reset, truncate, corrupt,
    blackhole, lose; NAME a field of that fault, or method, path, query, times, skip.
    The method is matched whole (`PUT` is `^(?:PUT)$`)."""
    words = shlex.split(text)
    if not words or words[0] not in _KINDS:
        raise ValueError(f"a rule starts with one of {', '.join(_KINDS)}: {text!r}")
    kind = _KINDS[words[0]]
    options: dict[str, object] = {}
    where: dict[str, str] = {}
    times: int | None = 1
    skip = 0
    for word in words[1:]:
        name, eq, value = word.partition("=")
        if not eq:
            raise ValueError(f"{word!r} is not NAME=VALUE in rule {text!r}")
        if name in ("method", "path", "query"):
            where[name] = f"^(?:{value})$" if name == "method" else value
        elif name == "times":
            times = None if value in ("all", "always") else int(value)
        elif name == "skip":
            skip = int(value)
        elif name in _FLOATS:
            options[name] = float(value)
        elif name in _STRINGS:
            options[name] = value
        else:
            options[name] = int(value)
    try:
        fault = kind(**options)  # type: ignore[arg-type]
    except TypeError as error:
        raise ValueError(f"rule {text!r}: {error}") from None
    return Rule(fault, times=times, skip=skip, **where)
