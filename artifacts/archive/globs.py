"""`--include` patterns: which member paths an extraction keeps.

`*`, `?` and `[...]` stay within one path segment; `**` as a whole segment spans any
number of segments, none included (`**/*.txt` matches `a.txt` and `x/y/a.txt`). A
pattern that matches a folder selects everything inside it, as tar's member
arguments do (`data` keeps `data/x/y`). Patterns are relative to the archive root: a
leading `./` or `/` is ignored. All patterns compile into one regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from argosy.artifacts.errors import InvalidSpec


def _segment(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and segment.find("]", i + 2) > 0:
            end = segment.find("]", i + 2)  # a ']' right after '[' is a member of the set
            body = segment[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append("[" + ("^/" if negate else "") + body + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _pattern(glob: str) -> str:
    path = glob.strip()
    while path.startswith(("./", "/")):
        path = path[2:] if path.startswith("./") else path[1:]
    path = path.rstrip("/")
    if not path:
        raise InvalidSpec(f"include pattern {glob!r} is empty")
    parts: list[str] = []
    for part in path.split("/"):
        if not (part == "**" and parts and parts[-1] == "**"):
            parts.append(part)
    regex = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**" and last:
            # 'd/**' is 'd' and everything in it: the folder-selects-contents rule
            regex = regex[:-1] if regex else ".*"
        elif part == "**":
            regex += "(?:[^/]+/)*"
        else:
            regex += _segment(part) + ("" if last else "/")
    return regex


def compile_include(patterns: Sequence[str]) -> Callable[[str], bool] | None:
    """A predicate over normalised member paths ('a/b', no leading './'), or None
    when there are no patterns (everything is kept)."""
    if not patterns:
        return None
    try:
        regex = re.compile("(?:" + "|".join(_pattern(p) for p in patterns) + ")(?:/.*)?", re.DOTALL)
    except (re.error, ValueError) as e:
        raise InvalidSpec(f"bad include pattern in {list(patterns)!r}: {e}") from None
    return lambda path: regex.fullmatch(path) is not None
