"""What `wait` (and `init`) did, written for people and programs: `VAR_DIR/outputs.json`
(schema: `outputs.schema.json`, shipped beside this module) and `VAR_DIR/inputs.json`,
and the artifact list Argo expects in a WorkflowTaskResult.

Files are written atomically: a reader never sees half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from argosy.argo.template import Template
from argosy.artifacts.errors import LocalIOError
from argosy.sidecar.results import InputResult, OutputResult

API_VERSION = "argosy.io/v1"


def schema() -> dict[str, Any]:
    text = resources.files("argosy.sidecar").joinpath("outputs.schema.json").read_text()
    return dict(json.loads(text))


def _checksum(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    algorithm, _, digest = value.partition(":")
    return {"algorithm": algorithm, "value": digest}


def output_entry(result: OutputResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": result.name, "status": result.status, "path": result.path}
    if result.reason:
        entry["reason"] = result.reason
    if result.status == "uploaded":
        entry.update(
            url=result.url,
            location=dict(result.location),
            size=result.size,
            checksum=_checksum(result.checksum),
            archive=result.archive,
            seconds=round(result.seconds, 3),
        )
    return entry


def outputs_document(
    results: Sequence[OutputResult], *, exit_code: int, template: str, reported_to: str
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Outputs",
        "exitCode": exit_code,
        "template": template,
        "reportedTo": reported_to,
        "artifacts": [output_entry(r) for r in results],
    }


def inputs_document(results: Sequence[InputResult], *, template: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Inputs",
        "template": template,
        "artifacts": [
            {
                k: v
                for k, v in {
                    "name": r.name,
                    "status": r.status,
                    "path": r.path,
                    "reason": r.reason,
                    "url": r.url,
                    "size": r.size,
                    "checksum": _checksum(r.checksum),
                    "archive": r.archive,
                    "seconds": round(r.seconds, 3),
                }.items()
                if v not in ("", None)
            }
            for r in results
        ],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(temp, path)
    except OSError as error:
        raise LocalIOError(f"cannot write {path}: {error.strerror or error}") from None


def argo_artifacts(template: Template, results: Sequence[OutputResult]) -> list[dict[str, Any]]:
    """The uploaded outputs as Argo records them in a node's outputs: the template's
    artifact with its location filled in, which the controller and the GC read."""
    by_name = {a.name: a for a in template.outputs}
    found: list[dict[str, Any]] = []
    for result in results:
        if result.status != "uploaded":
            continue
        artifact = by_name.get(result.name)
        entry: dict[str, Any] = {"name": result.name, **dict(result.location)}
        if artifact is not None:
            if artifact.path:
                entry["path"] = artifact.path
            if artifact.archive is not None:
                entry["archive"] = _argo_archive(artifact.archive.fmt, artifact.archive.level)
            if artifact.global_name:
                entry["globalName"] = artifact.global_name
            if artifact.gc_strategy:
                entry["artifactGC"] = {"strategy": artifact.gc_strategy}
            if artifact.optional:
                entry["optional"] = True
        elif result.archive == "none":
            entry["archive"] = {"none": {}}
        found.append(entry)
    return found


def _argo_archive(fmt: str, level: int | None) -> dict[str, Any]:
    if fmt == "none":
        return {"none": {}}
    if fmt == "zip":
        return {"zip": {}}
    if fmt == "tar.gz":
        return {"tar": {"compressionLevel": level}} if level is not None else {"tar": {}}
    return {"tar": {}}  # tar.zst: Argo has no name for it; its reader auto-detects
