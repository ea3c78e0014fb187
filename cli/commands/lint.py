"""`argosy lint FILE...`: the linter's rows as a table (or JSON lines), its diagnostics,
and an exit code: 0 when nothing is wrong (warnings allowed), 1 on any error."""

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


def lint(files: Sequence[str], *, repositories: Sequence[str] = ()) -> Report:
    """Every file linted against the ConfigMaps of every `--repositories` file."""
    report = Report()
    configmaps: list[ConfigMap] = []
    for path in repositories:
        found, problems = load_repositories(path)
        configmaps += found
        report.extend(problems)
    for path in files:
        report.extend(lint_file(path, configmaps=configmaps))
    return report


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


def show(report: Report, *, as_json: bool, out: TextIO, err: TextIO) -> None:
    if as_json:
        for row in report.rows:
            print(json.dumps(row_json(row)), file=out)
        for diagnostic in report.diagnostics:
            print(json.dumps(diagnostic_json(diagnostic)), file=out)
        return
    if report.rows:
        print(table(report.rows), file=out)
    else:
        print("no artifacts found", file=err)
    for diagnostic in report.diagnostics:
        print(diagnostic, file=err)
    if report.diagnostics:
        errors = len(report.errors)
        print(
            f"{_plural(errors, 'error')}, {_plural(len(report.diagnostics) - errors, 'warning')}",
            file=err,
        )


def run(args: argparse.Namespace) -> int:
    report = lint(args.files, repositories=args.repositories or ())
    show(report, as_json=args.json, out=sys.stdout, err=sys.stderr)
    return 1 if report.errors else 0
