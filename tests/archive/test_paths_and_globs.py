"""The pure rules: member path normalisation, symlink targets, include patterns, and
the package's public surface."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import argosy.artifacts.archive as archive
from argosy.artifacts.archive.globs import compile_include
from argosy.artifacts.archive.paths import check_symlink, member_path, parents
from argosy.artifacts.errors import InvalidSpec


@pytest.mark.parametrize(
    "name, normal",
    [
        ("a/b", "a/b"),
        ("./a//b/", "a/b"),
        ("./", ""),
        ("a/./b", "a/b"),
        ("...", "..."),
        ("a/..b", "a/..b"),
    ],
)
def test_member_paths_are_normalised_without_changing_meaning(name: str, normal: str) -> None:
    assert member_path(name) == normal


def test_every_short_name_is_normalised_as_the_general_rule_says() -> None:
    """member_path's quick test for usual names must agree with the general rule on
    every name up to six characters over the characters that matter."""
    from itertools import product

    from argosy.artifacts.archive.paths import _checked_path

    def outcome(check: Callable[[str], str], name: str) -> str:
        try:
            return check(name)
        except InvalidSpec:
            return "refused"

    names = ["".join(p) for n in range(7) for p in product("a./\x00", repeat=n)]
    differ = [n for n in names if outcome(member_path, n) != outcome(_checked_path, n)]
    assert len(names) > 5000 and differ == []


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../b", "a/..", "a\x00b", "//x"])
def test_member_paths_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(InvalidSpec):
        member_path(name)


@pytest.mark.parametrize(
    "path, target",
    [
        ("link", "a.txt"),
        ("d/link", "../a.txt"),
        ("d/e/link", "../../x/y"),
        ("link", "."),
        ("d/link", ".."),
        ("link", "./a//b"),
    ],
)
def test_symlinks_that_stay_inside_are_accepted(path: str, target: str) -> None:
    check_symlink(path, target)


@pytest.mark.parametrize(
    "path, target",
    [
        ("link", "/etc"),
        ("link", ".."),
        ("d/link", "../.."),
        ("link", "a/../b"),
        ("link", "a/.."),
        ("link", ""),
        ("link", "a\x00"),
        ("d/e/link", "../../../x"),
    ],
)
def test_symlinks_that_could_lead_outside_are_refused(path: str, target: str) -> None:
    with pytest.raises(InvalidSpec):
        check_symlink(path, target)


def test_parents_lists_every_enclosing_folder_outermost_first() -> None:
    assert parents("a/b/c") == ["a", "a/b"]
    assert parents("a") == []


@pytest.mark.parametrize(
    "pattern, path, matches",
    [
        ("*.txt", "a.txt", True),
        ("*.txt", "d/a.txt", False),  # '*' stays within one segment
        ("**/*.txt", "a.txt", True),  # '**' may span no segment at all
        ("**/*.txt", "x/y/a.txt", True),
        ("data", "data/x/y", True),  # a folder brings its contents
        ("data", "database", False),
        ("d/**", "d", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/yb", False),
        ("[ab].c", "b.c", True),
        ("[!ab].c", "a.c", False),
        ("?.c", "ab.c", False),
        ("./x/", "x/y", True),
        ("a*b", "a/b", False),
    ],
)
def test_include_patterns_match_like_globs_with_double_star(
    pattern: str, path: str, matches: bool
) -> None:
    select = compile_include([pattern])
    assert select is not None and select(path) is matches


def test_no_include_pattern_keeps_everything_and_an_empty_one_is_refused() -> None:
    assert compile_include([]) is None
    with pytest.raises(InvalidSpec):
        compile_include(["/"])


def test_the_public_surface_is_exactly_what_all_declares() -> None:
    public = {name for name in vars(archive) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(archive, name)).__name__ == "module"}
    assert public - modules <= set(archive.__all__)  # the rest loads on first use
    assert all(getattr(archive, name) is not None for name in archive.__all__)
