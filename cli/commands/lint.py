"""`argosy lint FILE...`: the linter's rows as a table (or JSON lines), its diagnostics,
and an exit code: 0 when nothing is wrong (warnings allowed), 1 on any error, 2 when a
file cannot be read or is not YAML (bad input, not a finding). With `--strict`, CI's
gate: an artifact Argosy cannot move (gcs, azure, hdfs, git, artifactory, plugin) is an
error, and a warning fails the run too."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from argosy.argo.lint import ConfigMap, Diagnostic, Report, Row, lint_file, load_repositories

COLUMNS = (
    "FILE",
    "TEMPLATE",
    "DIR",
    "NAME",
    "KIND",
    "BUCKET",
    "KEY",
    "ARCHIVE",
    "OPTIONAL",
    "GC",
    "NOTES",
)


def lint(files: Sequence[str], *, repositories: Sequence[str] = (), strict: bool = False) -> Report:
    """Every file linted against the ConfigMaps of every `--repositories` file; with
    `strict`, each artifact Argosy cannot move is an error of its own."""
    report = Report()
    configmaps: list[ConfigMap] = []
    for path in repositories:
        found, problems = load_repositories(path)
        configmaps += found
        report.extend(problems)
    for path in files:
        report.extend(lint_file(path, configmaps=configmaps))
    if strict:
        report.diagnostics += [
            Diagnostic(
                "error",
                row.file,
                row.line,
                row.where,
                f"is a {row.kind} artifact, which Argosy cannot move (--strict)",
            )
            for row in report.rows
            if not row.supported
        ]
    return report


def exit_code(report: Report, *, strict: bool = False) -> int:
    """2: a file could not be read or parsed; 1: an error (with `strict`, a warning too)."""
    if report.unreadable:
        return 2
    if report.errors or (strict and report.warnings):
        return 1
    return 0


def _cells(row: Row) -> tuple[str, ...]:
    return (
        f"{row.file}:{row.line}",
        row.template,
        row.direction,
        row.name,
        row.kind,
        row.bucket or "-",
        row.key or "-",
        row.archive,
        str(row.optional).lower(),
        row.gc,
        ",".join(row.notes) or "-",
    )


def table(rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell, as `kubectl get` prints them."""
    lines = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )


def row_json(row: Row) -> dict[str, Any]:
    return {
        "type": "artifact",
        "file": row.file,
        "line": row.line,
        "template": row.template,
        "direction": row.direction,
        "name": row.name,
        "kind": row.kind,
        "bucket": row.bucket,
        "key": row.key,
        "archive": row.archive,
        "optional": row.optional,
        "gc": row.gc,
        "supported": row.supported,
        "notes": list(row.notes),
    }


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "type": diagnostic.level,
        "file": diagnostic.file,
        "line": diagnostic.line,
        "field": diagnostic.field,
        "message": diagnostic.message,
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def show(report: Report, *, as_json: bool, out: TextIO, err: TextIO, strict: bool = False) -> None:
    """The table (or JSON lines), then each diagnostic; a file that could not be read is
    one line naming it and why, not followed by a verdict on what it holds."""
    if as_json:
        for row in report.rows:
            print(json.dumps(row_json(row)), file=out)
        for diagnostic in report.diagnostics:
            print(json.dumps(diagnostic_json(diagnostic)), file=out)
        return
    if report.rows:
        print(table(report.rows), file=out)
    elif not report.errors:
        print("no artifacts found", file=err)
    for diagnostic in report.diagnostics:
        print(diagnostic, file=err)
    if len(report.diagnostics) > len(report.unreadable):
        errors, warnings = len(report.errors), len(report.warnings)
        failing = " (--strict: warnings fail the lint)" if strict and warnings else ""
        print(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}{failing}", file=err)


def run(args: argparse.Namespace) -> int:
    strict = bool(getattr(args, "strict", False))
    report = lint(args.files, repositories=args.repositories or (), strict=strict)
    show(report, as_json=args.json, out=sys.stdout, err=sys.stderr, strict=strict)
    return exit_code(report, strict=strict)
