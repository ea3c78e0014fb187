"""Folders of objects: list everything under a prefix, delete it in batches, and move a
local directory to or from one object per file (the layout of Argo's `archive: none`).

A prefix is always a folder: `foo/`, never `foo`, so `foobar` is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from argosy.artifacts.download import DownloadResult, download_file
from argosy.artifacts.errors import ArtifactError, InvalidSpec, PermanentError
from argosy.artifacts.protocol import DeleteFailure, Driver, ObjectInfo
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.upload import UploadResult, upload_file

BATCH = 1000


def as_folder(prefix: str) -> str:
    return prefix if prefix == "" or prefix.endswith("/") else prefix + "/"


def list_all(driver: Driver, prefix: str, *,
             retrier: Retrier | None = None) -> Iterator[ObjectInfo]:
    retrier = retrier or Retrier()
    token: str | None = None
    while True:
        page = retrier.call(lambda: driver.list(prefix, token=token),
                            what=f"list {driver.url(prefix)}")
        yield from page.objects
        if not page.next_token:
            return
        token = page.next_token


def delete_keys(driver: Driver, keys: Iterator[str], *, concurrency: int = 4,
                retrier: Retrier | None = None) -> tuple[int, list[DeleteFailure]]:
    """Delete keys in batches of 1000, `concurrency` batches at once."""
    retrier = retrier or Retrier()
    failures: list[DeleteFailure] = []
    deleted = 0

    def one(batch: list[str]) -> list[DeleteFailure]:
        return retrier.call(lambda: driver.delete(batch), what=f"delete {len(batch)} keys")

    with ThreadPoolExecutor(concurrency, thread_name_prefix="argosy-delete") as pool:
        batches: list[list[str]] = []
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == BATCH:
                batches.append(batch)
                batch = []
        if batch:
            batches.append(batch)
        for batch_keys, result in zip(batches, pool.map(one, batches)):
            failures += result
            deleted += len(batch_keys) - len(result)
    return deleted, failures


def delete_prefix(driver: Driver, prefix: str, **kwargs: object) -> tuple[int, list[DeleteFailure]]:
    folder = as_folder(prefix)
    if folder == "":
        raise InvalidSpec(f"refusing to delete a whole bucket ({driver.url('')})")
    return delete_keys(driver, (o.key for o in list_all(driver, folder)), **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TreeResult:
    files: int
    bytes: int
    verified: int
    notes: list[str]


def _local_files(root: Path) -> Iterator[tuple[Path, str]]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                continue
            yield path, path.relative_to(root).as_posix()


def upload_tree(driver: Driver, prefix: str, root: str | os.PathLike[str], *,
                settings: TransferSettings,
                progress: Callable[[int], None] = lambda n: None) -> TreeResult:
    base = Path(root)
    if not base.is_dir():
        raise InvalidSpec(f"{base} is not a folder")
    folder = as_folder(prefix)

    def one(item: tuple[Path, str]) -> UploadResult:
        path, rel = item
        return upload_file(driver, folder + rel, path, settings=settings, progress=progress)

    with ThreadPoolExecutor(settings.file_concurrency, thread_name_prefix="argosy-file") as pool:
        results = list(pool.map(one, _local_files(base)))
    return TreeResult(len(results), sum(r.size for r in results),
                      sum(1 for r in results if r.record), [r.note for r in results if r.note])


def _safe_relative(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise PermanentError(f"refusing key that leaves the destination: {rel!r}")
    return rel


def download_tree(driver: Driver, prefix: str, root: str | os.PathLike[str], *,
                  settings: TransferSettings,
                  progress: Callable[[int], None] = lambda n: None) -> TreeResult:
    base = Path(root)
    folder = as_folder(prefix)
    objects = [o for o in list_all(driver, folder) if not o.key.endswith("/")]
    if not objects:
        raise ArtifactError(f"nothing under {driver.url(folder)}")
    base.mkdir(parents=True, exist_ok=True)

    def one(info: ObjectInfo) -> DownloadResult:
        rel = _safe_relative(info.key[len(folder):])
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # stat each object: listings carry no metadata, and so no checksum record
        return download_file(driver, info.key, target, settings=settings, progress=progress)

    with ThreadPoolExecutor(settings.file_concurrency, thread_name_prefix="argosy-file") as pool:
        results = list(pool.map(one, objects))
    notes = sorted({r.note for r in results if r.note})
    return TreeResult(len(results), sum(r.size for r in results),
                      sum(1 for r in results if r.verified), notes)
