"""`argosy --help` and each command's: a flag only where it does something, every
argument described, `-v` before the command as after it."""

from __future__ import annotations

import argparse
import re

import pytest

CONNECTION = {
    "--repository",
    "--repository-key",
    "--endpoint",
    "--region",
    "--profile",
    "--addressing-style",
    "--insecure",
    "--ca-bundle",
}
TRANSFER = {"--part-size", "--concurrency", "--files", "--direct-io"}
STORAGE = CONNECTION | TRANSFER | {"--sse", "--sse-kms-key-id", "--sse-c-key-file"}
# what each command does with storage: reach it, read SSE-C objects, move bytes
USED = {
    "cp": STORAGE,
    "ls": CONNECTION | {"--sse-c-key-file"},  # --archive-contents reads the object
    "rm": CONNECTION,
    "cat": CONNECTION | {"--sse-c-key-file", "--part-size"},
    "stat": CONNECTION | {"--sse-c-key-file"},
    "demo": {"--endpoint", "--region"} | TRANSFER,
    "lint": set(),
    "gc": set(),
}


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?m)^ {2}(?:-\w, )?(--[\w-]+)", help_text))


@pytest.mark.parametrize("command", USED)
def test_a_command_offers_only_the_storage_flags_it_uses(argosy_local, command) -> None:
    shown = argosy_local(command, "--help")
    assert shown.code == 0, shown.err
    assert _flags(shown.text) & STORAGE == USED[command]


def _arguments(p: argparse.ArgumentParser, path: str) -> list[tuple[str, str | None]]:
    """(command and argument, its help) of every positional and flag, -h aside."""
    found = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _arguments(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            shown = "/".join(action.option_strings) or action.metavar or action.dest
            found.append((f"{path} {shown}", action.help))
    return found


def test_every_argument_of_every_command_is_described() -> None:
    from argosy.main import parser

    arguments = _arguments(parser(), "argosy")
    assert len([name for name, _ in arguments if " -" not in name]) >= 9  # positionals
    assert [name for name, text in arguments if not text] == []


def test_the_quiet_flag_is_offered_where_there_is_progress_or_a_summary(argosy_local):
    for command, quiet in {"cp": True, "cat": True, "rm": True, "ls": False, "stat": False}.items():
        assert ("--quiet" in _flags(argosy_local(command, "--help").text)) is quiet


_LOG_LEVEL = (
    "import logging, sys; from argosy.main import main; code = main(sys.argv[1:]); "
    "print(logging.getLevelName(logging.getLogger('argosy').getEffectiveLevel())); "
    "sys.exit(code)"
)


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["-v", "ls", "local://bkt/"], "INFO"),
        (["--verbose", "ls", "local://bkt/"], "INFO"),
        (["ls", "-v", "local://bkt/"], "INFO"),
        (["ls", "local://bkt/"], "WARNING"),
        (["-v", "lint", "wf.yaml"], "INFO"),
    ],
)
def test_verbose_is_taken_before_the_command_as_after_it(argosy_local, tmp_path, argv, level):
    (tmp_path / "wf.yaml").write_text("kind: Workflow\nspec: {templates: []}\n")
    run = argosy_local("-c", _LOG_LEVEL, *argv, python=True)
    assert "error" not in run.err
    assert run.text.splitlines()[-1] == level


@pytest.mark.parametrize("command", ["stat", "cat", "cp"])
def test_an_sse_c_key_file_alone_asks_for_sse_c(argosy_local, command) -> None:
    args = ["s3://b/k", "out"] if command == "cp" else ["s3://b/k"]
    run = argosy_local(
        command, "--sse-c-key-file", "no-key", *args, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert run.code == 2
    assert (
        run.err == "argosy: error: cannot read SSE-C key file no-key: No such file or directory\n"
    )
