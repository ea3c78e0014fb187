"""The rules that keep member paths and link targets inside the destination.

Pure functions over strings, so they can be reasoned about (and fuzzed) alone:

- A member path is relative, has no `..` segment and no NUL; `.` and empty
  segments are dropped ('./a//b' is 'a/b'). Refused otherwise, never "repaired":
  an archive that tries is hostile or broken.
- A symlink target is relative, made of leading `..` segments followed by names
  only ('../../lib/x' yes, 'a/../b' no), with no more `..` than the link's folder is
  deep. By induction every symlink then resolves inside the destination however the
  others point: parents are real folders (the extractor refuses paths through
  symlinks), so the leading `..` walk real folders, and the names that follow either
  are real entries or symlinks obeying the same rule. 'a/../b' is refused because if
  'a' is a symlink, the kernel resolves '..' from the link's target, not lexically.
"""

from __future__ import annotations

from argosy.artifacts.errors import InvalidSpec


def _segments(value: str) -> list[str]:
    return [part for part in value.split("/") if part not in ("", ".")]


def member_path(name: str) -> str:
    """The normalised relative path of a member ('' for the archive root itself)."""
    rest = name[2:] if name.startswith("./") else name
    # the usual name, tested cheaply: no segment is empty (but a trailing one) or starts
    # with a dot, so none is '.' or '..'; the general rule gives the same
    if rest and rest[0] not in "./" and not ("/." in rest or "//" in rest or "\x00" in rest):
        return rest[:-1] if rest[-1] == "/" else rest
    return _checked_path(name)


def _checked_path(name: str) -> str:
    if "\x00" in name:
        raise InvalidSpec(f"archive member {name!r} has a NUL byte in its name")
    if name.startswith("/"):
        raise InvalidSpec(f"archive member {name!r} has an absolute path")
    parts = _segments(name)
    if ".." in parts:
        raise InvalidSpec(f"archive member {name!r} has a '..' segment")
    return "/".join(parts)


def check_symlink(path: str, target: str) -> None:
    """Refuse a symlink at normalised `path` whose `target` could lead outside."""
    if not target:
        raise InvalidSpec(f"archive symlink {path!r} has an empty target")
    if "\x00" in target:
        raise InvalidSpec(f"archive symlink {path!r} has a NUL byte in its target")
    if target.startswith("/"):
        raise InvalidSpec(
            f"archive symlink {path!r} points to the absolute path {target!r},"
            " outside the destination"
        )
    parts = _segments(target)
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    if ".." in parts[ups:]:
        raise InvalidSpec(
            f"archive symlink {path!r} -> {target!r} has a '..' after a name;"
            " only leading '..' segments are accepted"
        )
    if ups > path.count("/"):
        raise InvalidSpec(f"archive symlink {path!r} -> {target!r} leads outside the destination")


def parents(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b']."""
    out = []
    cut = path.find("/")
    while cut >= 0:
        out.append(path[:cut])
        cut = path.find("/", cut + 1)
    return out
