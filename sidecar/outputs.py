"""`argosy wait`'s uploads: every output artifact (and the main log) at once.

Argo stages each output as a .tgz on disk and uploads them one by one; here a folder
streams from the tree walker through the archiver into the multipart upload with no
staging copy, files go as parallel parts, and outputs go concurrently. An upload is
complete or absent under its key: parts stay invisible until Complete, and a failure
aborts them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from argosy.argo import keys
from argosy.argo.location import Target
from argosy.argo.template import Artifact, Template
from argosy.artifacts.directory import upload_directory
from argosy.artifacts.errors import ArtifactError, InvalidSpec
from argosy.artifacts.protocol import Driver
from argosy.artifacts.provenance import Provenance
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.upload import upload_file
from argosy.sidecar import placing
from argosy.sidecar.options import Layers
from argosy.sidecar.resolve import (
    Context,
    open_driver,
    repository_location,
    target_for,
)
from argosy.sidecar.results import OutputResult

LOGS_NAME = "main-logs"  # the name Argo gives the archived log of the main container


def output_format(artifact: Artifact, layers: Layers) -> tuple[str, int | None]:
    if artifact.archive is not None:
        return artifact.archive.fmt, artifact.archive.level
    effective = layers.for_artifact(artifact)
    return effective.archive, effective.level


def _gzip_level(fmt: str, level: int | None) -> int | None:
    """Argo's gzip levels are 0-9; ISA-L has 0-3. 0 stays 0 (stored, as Argo means it)."""
    if fmt != "tar.gz" or level is None:
        return level
    return min(3, (level + 2) // 3)


def upload_output(
    artifact: Artifact,
    *,
    template: Template,
    ctx: Context,
    layers: Layers,
    root: Path | None,
    settings: TransferSettings,
    main_failed: bool,
    provenance: Provenance | None,
    open_driver: Callable[[Target, Context], Driver] = open_driver,
) -> OutputResult:
    started = time.monotonic()
    if not artifact.path:
        raise InvalidSpec(f"{artifact.where} ({artifact.name}) has no path")
    source = placing.destination(artifact.path, root)
    effective = layers.for_artifact(artifact)
    settings = effective.transfer(settings)
    if main_failed and not effective.upload_on_failure:
        return OutputResult(
            artifact.name, "skipped", artifact.path, "main failed and uploadOnFailure is false"
        )
    if not (source.exists() or source.is_symlink()):
        status = "missing-optional" if artifact.optional else "failed"
        return OutputResult(artifact.name, status, artifact.path, f"{artifact.path} does not exist")
    fmt, level = output_format(artifact, layers)
    target = target_for(artifact, ctx=ctx, template=template, fmt=fmt, output=True)
    driver = open_driver(target, ctx)
    metadata: dict[str, str] = {}
    if provenance is not None:
        metadata = replace(
            provenance, strategy=artifact.gc_strategy or provenance.strategy
        ).metadata()
    if fmt == "none" and source.is_file():
        up = upload_file(driver, target.key, source, settings=settings, metadata=metadata)
        size, checksum, url = up.size, up.record.checksum if up.record else None, up.url
    else:
        result = upload_directory(
            driver,
            target.key,
            source,
            fmt=fmt,  # type: ignore[arg-type]
            settings=settings,
            level=_gzip_level(fmt, level),
            metadata=metadata,
            root_name=None if fmt == "none" else (source.name or artifact.name),
        )
        size, checksum, url = result.bytes, result.checksum, result.url
    return OutputResult(
        artifact.name,
        "uploaded",
        artifact.path,
        url=url,
        location=target.location(),
        size=size,
        checksum=checksum,
        archive=fmt,
        seconds=time.monotonic() - started,
    )


def upload_log(
    log: Path,
    *,
    template: Template,
    ctx: Context,
    settings: TransferSettings,
    provenance: Provenance | None,
    open_driver: Callable[[Target, Context], Driver] = open_driver,
) -> OutputResult:
    """The main container's combined output, to `<key prefix>/main.log`."""
    started = time.monotonic()
    repo_loc, prefix = repository_location(ctx, template)
    if repo_loc is None or not repo_loc.bucket:
        return OutputResult(
            LOGS_NAME, "failed", str(log), "archiveLogs is on but there is no artifact repository"
        )
    if not log.exists():
        return OutputResult(LOGS_NAME, "failed", str(log), f"{log} does not exist")
    config = {k: v for k, v in repo_loc.config.items() if k not in ("key", "keyFormat")}
    target = Target(repo_loc.kind, repo_loc.bucket, keys.log_key(prefix), config)
    up = upload_file(
        open_driver(target, ctx),
        target.key,
        log,
        settings=settings,
        metadata=provenance.metadata() if provenance else {},
    )
    return OutputResult(
        LOGS_NAME,
        "uploaded",
        str(log),
        url=up.url,
        location=target.location(),
        size=up.size,
        checksum=up.record.checksum if up.record else None,
        archive="none",
        seconds=time.monotonic() - started,
    )


def upload_outputs(
    template: Template,
    *,
    ctx: Context,
    layers: Layers,
    root: Path | None,
    settings: TransferSettings,
    main_failed: bool,
    provenance: Provenance | None,
    log: Path | None,
    artifact_concurrency: int = 4,
    open_driver: Callable[[Target, Context], Driver] = open_driver,
) -> list[OutputResult]:
    """Every output at once (and the log when `log` is given); a failure is reported per
    artifact, never raised."""
    jobs: list[tuple[str, str, Callable[[], OutputResult]]] = []
    for artifact in template.outputs:

        def job(a: Artifact = artifact) -> OutputResult:
            return upload_output(
                a,
                template=template,
                ctx=ctx,
                layers=layers,
                root=root,
                settings=settings,
                main_failed=main_failed,
                provenance=provenance,
                open_driver=open_driver,
            )

        jobs.append((artifact.name, artifact.path or "", job))
    if log is not None:

        def log_job() -> OutputResult:
            return upload_log(
                log,
                template=template,
                ctx=ctx,
                settings=settings,
                provenance=provenance,
                open_driver=open_driver,
            )

        jobs.append((LOGS_NAME, os.fspath(log), log_job))

    def run(item: tuple[str, str, Callable[[], OutputResult]]) -> OutputResult:
        name, path, job = item
        try:
            return job()
        except ArtifactError as error:
            return OutputResult(name, "failed", path, str(error))
        except OSError as error:
            return OutputResult(
                name, "failed", path, f"{error.filename or path}: {error.strerror or error}"
            )

    if not jobs:
        return []
    with ThreadPoolExecutor(
        max(1, min(artifact_concurrency, len(jobs))), thread_name_prefix="argosy-output"
    ) as pool:
        return list(pool.map(run, jobs))
