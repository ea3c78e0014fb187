"""`argosy init`: every input artifact fetched into its path, concurrently.

Argo's init loads inputs one after another; here they go at once (bounded by
`artifact_concurrency`), each with the storage core's parallel ranged download, so the
slowest input sets the time, not the sum. An archive is recognised from its first
bytes, as Argo does for inputs with no `archive:`, and extracted straight from the
download stream by the safe extractor. Each input lands in a staging folder beside its
path and is moved into place only when complete and verified.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Literal

from argosy.argo.location import Target
from argosy.argo.template import Artifact, Template
from argosy.artifacts import archive, tree
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.directory import download_directory, range_reader
from argosy.artifacts.download import download_file
from argosy.artifacts.errors import ArtifactError, InvalidSpec, NotFound
from argosy.artifacts.protocol import Driver
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.sidecar import placing
from argosy.sidecar.httpfetch import fetch_http
from argosy.sidecar.options import Layers
from argosy.sidecar.resolve import Context, open_driver, target_for
from argosy.sidecar.results import InputResult

_HEAD = 512  # enough to tell tar, gzip, zstd and zip apart


def _fetch_stored(
    artifact: Artifact,
    target: Target,
    driver: Driver,
    dest: Path,
    *,
    include: Sequence[str],
    limits: ExtractLimits,
    settings: TransferSettings,
) -> InputResult:
    """An object (a file or an archive) or a folder of objects (`archive: none`), as one
    transfer: every request of it shares one stall timeout and deadline."""
    sub = (artifact.sub_path or "").strip("/")
    key = target.key
    watch = settings.watchdog()
    retrier = Retrier(settings.retry, watch=watch)
    try:
        info = (
            retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
            if not key.endswith("/")
            else None
        )
    except NotFound:
        info = None
    if info is not None and sub and artifact.archive is not None and artifact.archive.fmt == "none":
        info = None  # a subPath into a folder of objects: see below
    if info is None:  # `archive: none` folders are a prefix of objects
        folder = tree.as_folder(key) + (sub + "/" if sub else "")
        if sub:
            try:
                single = folder.rstrip("/")
                one = retrier.call(lambda: driver.stat(single), what=f"stat {driver.url(single)}")
                result = download_file(
                    driver, one.key, dest, settings=settings, info=one, watch=watch
                )
                return InputResult(
                    artifact.name,
                    "downloaded",
                    str(dest),
                    result.url,
                    result.size,
                    result.checksum,
                    "none",
                )
            except NotFound:
                pass
        stage = placing.staging(dest)
        try:
            got = tree.download_tree(driver, folder, stage / "tree", settings=settings, watch=watch)
            placing.place(stage / "tree", dest, name=artifact.name, sub_path=None, unwrap=False)
        finally:
            placing.discard(stage)
        return InputResult(
            artifact.name, "downloaded", str(dest), driver.url(folder), got.bytes, None, "none"
        )
    explicit = artifact.archive.fmt if artifact.archive else None
    found = None
    if explicit != "none" and info.size > 0:
        found = archive.detect(
            range_reader(driver, key, info.etag, retrier)(0, min(info.size, _HEAD))
        )
    if found in (None, "xz", "bzip2") or explicit == "none":
        if sub:
            raise InvalidSpec(f"input {artifact.name}: subPath needs a folder or an archive")
        result = download_file(driver, key, dest, settings=settings, info=info, watch=watch)
        return InputResult(
            artifact.name, "downloaded", str(dest), result.url, result.size, result.checksum, "none"
        )
    stage = placing.staging(dest)
    try:
        fmt: Literal["zip", "auto"] = "zip" if found == "zip" else "auto"
        unpacked = download_directory(
            driver,
            key,
            stage / "x",
            fmt=fmt,
            settings=settings,
            include=include,
            limits=limits,
            watch=watch,
        )
        placing.place(stage / "x", dest, name=artifact.name, sub_path=sub or None, unwrap=True)
    finally:
        placing.discard(stage)
    return InputResult(
        artifact.name,
        "downloaded",
        str(dest),
        unpacked.url,
        unpacked.bytes,
        unpacked.checksum,
        {"gzip": "tar.gz", "zstd": "tar.zst"}.get(found, found),
    )


def _write_raw(artifact: Artifact, dest: Path) -> InputResult:
    assert artifact.location is not None
    data = str(artifact.location.config["data"]).encode()
    temp = dest.with_name(f".{dest.name}.argosy-raw")
    temp.write_bytes(data)
    os.replace(temp, dest)
    return InputResult(artifact.name, "downloaded", str(dest), "raw:", len(data))


def fetch_input(
    artifact: Artifact,
    *,
    template: Template,
    ctx: Context,
    layers: Layers,
    root: Path | None,
    settings: TransferSettings,
    open_driver: Callable[[Target, Context], Driver] = open_driver,
) -> InputResult:
    started = time.monotonic()
    if not artifact.path:
        raise InvalidSpec(f"{artifact.where} ({artifact.name}) has no path")
    dest = placing.destination(artifact.path, root)
    loc = artifact.location
    if loc is not None and not loc.supported:
        what = f"plugin {loc.config.get('name')!r}" if loc.kind == "plugin" else loc.kind
        raise InvalidSpec(
            f"input {artifact.name}: {what} artifacts are not supported by "
            "Argosy (supported: s3, oss, local, http, raw, and its own plugin: argosy)"
        )
    placing.check_free(dest, artifact.name)
    effective = layers.for_artifact(artifact)
    include = effective.include
    limits = (
        ExtractLimits(max_expansion=effective.max_expansion)
        if effective.max_expansion is not None
        else DEFAULT_LIMITS
    )
    settings = effective.transfer(settings)
    try:
        if loc is not None and loc.kind == "raw":
            result = _write_raw(artifact, dest)
        elif loc is not None and loc.kind == "http":
            result = fetch_http(
                artifact, dest, secrets_dir=ctx.secrets_dir, include=include, limits=limits
            )
        else:
            target = target_for(artifact, ctx=ctx, template=template, fmt="", output=False)
            result = _fetch_stored(
                artifact,
                target,
                open_driver(target, ctx),
                dest,
                include=include,
                limits=limits,
                settings=settings,
            )
    except NotFound as error:
        if artifact.optional:
            return InputResult(artifact.name, "missing-optional", artifact.path, reason=str(error))
        raise
    except archive.ExpansionRefused as refused:
        setting = "the argosy setting maxExpansion"
        raise InvalidSpec(f"input {artifact.name}: {refused.explain(setting)}") from None
    placing.set_mode(dest, artifact.mode, recurse=artifact.recurse_mode)
    return replace(result, path=artifact.path, seconds=time.monotonic() - started)


def fetch_inputs(
    template: Template,
    *,
    ctx: Context,
    layers: Layers,
    root: Path | None,
    settings: TransferSettings,
    artifact_concurrency: int = 8,
    open_driver: Callable[[Target, Context], Driver] = open_driver,
) -> list[InputResult]:
    """Every input, at once; a failure is reported per artifact, never raised."""

    def one(artifact: Artifact) -> InputResult:
        try:
            return fetch_input(
                artifact,
                template=template,
                ctx=ctx,
                layers=layers,
                root=root,
                settings=settings,
                open_driver=open_driver,
            )
        except ArtifactError as error:
            return InputResult(artifact.name, "failed", artifact.path or "", reason=str(error))
        except OSError as error:
            return InputResult(
                artifact.name,
                "failed",
                artifact.path or "",
                reason=f"{error.filename or ''}: {error.strerror or error}",
            )

    workers = max(1, min(artifact_concurrency, len(template.inputs)))
    with ThreadPoolExecutor(workers, thread_name_prefix="argosy-input") as pool:
        return list(pool.map(one, template.inputs))
