"""Folders of objects: list everything under a prefix, delete it in batches, and move a
local directory to or from one object per file (the layout of Argo's `archive: none`).

A prefix is always a folder: `foo/`, never `foo`, so `foobar` is never touched.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from argosy.artifacts.checksum import ALGORITHM
from argosy.artifacts.download import DownloadResult, download_file, iter_object
from argosy.artifacts.errors import IntegrityError, InvalidSpec, NotFound, PermanentError
from argosy.artifacts.filewriter import process_umask
from argosy.artifacts.manifest import NAME as MANIFEST
from argosy.artifacts.manifest import FileEntry, Manifest, walk
from argosy.artifacts.protocol import DeleteFailure, Driver, ObjectInfo
from argosy.artifacts.record import Record
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.upload import UploadResult, upload_file, upload_stream

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
                settings: TransferSettings, manifest: bool = False,
                metadata: Mapping[str, str] | None = None,
                progress: Callable[[int], None] = lambda n: None) -> TreeResult:
    """One object per file under `prefix/`. With `manifest`, symlinks stay links (kept in
    the manifest, not uploaded as copies), folders and modes are recorded, and the
    manifest is written last, once every file is in place. `metadata` goes on every
    object, the manifest included."""
    base = Path(root)
    if not base.is_dir():
        raise InvalidSpec(f"{base} is not a folder")
    folder = as_folder(prefix)
    record = Manifest()
    modes: dict[str, int] = {}
    if manifest:
        items = []
        for rel, st, target in walk(base):
            if target is not None:
                record.symlinks.append((rel, target))
            elif stat.S_ISDIR(st.st_mode):
                record.dirs.append((rel, stat.S_IMODE(st.st_mode)))
            else:
                items.append((base / rel, rel))
                modes[rel] = stat.S_IMODE(st.st_mode)
    else:
        items = list(_local_files(base))

    def one(item: tuple[Path, str]) -> UploadResult:
        path, rel = item
        return upload_file(driver, folder + rel, path, settings=settings, metadata=metadata,
                           progress=progress)

    with ThreadPoolExecutor(settings.file_concurrency, thread_name_prefix="argosy-file") as pool:
        results = list(pool.map(one, items))
    if manifest:
        for (_, rel), result in zip(items, results):
            if result.record is None:
                raise IntegrityError(f"{result.url}: no checksum record, so the tree "
                                     "manifest cannot vouch for it")
            record.files.append(FileEntry(rel, result.size, result.record.checksum,
                                          modes[rel]))
        upload_stream(driver, folder + MANIFEST, io.BytesIO(record.to_json()),
                      settings=settings, metadata=metadata)
    return TreeResult(len(results), sum(r.size for r in results),
                      sum(1 for r in results if r.record), [r.note for r in results if r.note])


def _safe_relative(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise PermanentError(f"refusing key that leaves the destination: {rel!r}")
    return rel


def _read_manifest(driver: Driver, folder: str, settings: TransferSettings) -> Manifest | None:
    try:
        # each chunk's buffer is reused once the next is asked for: keep copies
        chunks = [bytes(c) for c in iter_object(driver, folder + MANIFEST, settings=settings)]
    except NotFound:
        return None
    return Manifest.from_json(b"".join(chunks), where=driver.url(folder + MANIFEST))


def download_tree(driver: Driver, prefix: str, root: str | os.PathLike[str], *,
                  settings: TransferSettings,
                  progress: Callable[[int], None] = lambda n: None) -> TreeResult:
    """Every object under `prefix/` into `root`. When the prefix has a tree manifest the
    whole tree is verified against it and restored into a staging folder that is moved
    into place only when everything checked out (then `root` must be new or empty)."""
    base = Path(root)
    folder = as_folder(prefix)
    tree_manifest = _read_manifest(driver, folder, settings)
    objects = [o for o in list_all(driver, folder)
               if not o.key.endswith("/") and o.key != folder + MANIFEST]
    notes: list[str] = []
    if tree_manifest is not None:
        listed = {o.key[len(folder):] for o in objects}
        wanted = {f.path for f in tree_manifest.files}
        missing = sorted(wanted - listed)
        if missing:
            raise IntegrityError(f"{driver.url(folder)}: {len(missing)} file(s) of the tree "
                                 f"manifest are missing, e.g. {', '.join(missing[:5])}")
        extra = sorted(listed - wanted)
        if extra:
            notes.append(f"{len(extra)} object(s) not in the tree manifest were left out, "
                         f"e.g. {', '.join(extra[:5])}")
        objects = [o for o in objects if o.key[len(folder):] in wanted]
    elif not objects:
        raise NotFound(f"nothing under {driver.url(folder)}")
    target_root = base
    staging: Path | None = None
    if tree_manifest is not None:
        if base.exists() and (not base.is_dir() or any(base.iterdir())):
            raise InvalidSpec(f"{base} already exists: a verified tree needs a new or empty "
                              "folder")
        base.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{base.name}.argosy-", suffix=".tmp",
                                        dir=base.parent))
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would become the folder's mode
        target_root = staging
    else:
        base.mkdir(parents=True, exist_ok=True)
    sums = {f.path: f for f in tree_manifest.files} if tree_manifest else {}
    made: set[Path] = {target_root}

    def one(info: ObjectInfo) -> DownloadResult:
        rel = _safe_relative(info.key[len(folder):])
        target = target_root / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        entry = sums.get(rel)
        if entry is not None and entry.size != info.size:
            raise IntegrityError(f"{driver.url(info.key)}: {info.size} bytes, the tree "
                                 f"manifest says {entry.size}")
        # A listing carries no metadata, so no checksum record. For a file of one range
        # the listing (size, the ETag to pin to) and the manifest's checksum are all the
        # download needs: no stat per file. Larger files, and trees without a manifest,
        # read the object's own record (its part checksums check each range as it
        # arrives; on S3 it comes with the first GET, still no stat).
        expect = _expected(entry) if entry and entry.size <= settings.part_size else None
        result = download_file(driver, info.key, target, settings=settings, progress=progress,
                               info=info if expect is not None else None, expect=expect,
                               mode=entry.mode & 0o777 if entry is not None else 0o644)
        if entry is not None and (entry.checksum != result.checksum or
                                  entry.size != result.size):
            raise IntegrityError(f"{result.url}: does not match the tree manifest "
                                 f"({result.checksum}, manifest says {entry.checksum})")
        return result

    try:
        with ThreadPoolExecutor(settings.file_concurrency,
                                thread_name_prefix="argosy-file") as pool:
            results = list(pool.map(one, objects))
        if tree_manifest is not None and staging is not None:
            _restore_shape(staging, tree_manifest)
            if base.exists():
                base.rmdir()
            os.rename(staging, base)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    notes += sorted({r.note for r in results if r.note})
    verified = sum(1 for r in results if r.verified or tree_manifest is not None)
    return TreeResult(len(results), sum(r.size for r in results), verified, notes)


def _expected(entry: FileEntry | None) -> Record | None:
    """The record a file of a tree manifest must match (None: use the object's own)."""
    if entry is None:
        return None
    algorithm, _, value = entry.checksum.partition(":")
    try:
        crc = int(value, 16)
    except ValueError:
        crc = -1
    if algorithm != ALGORITHM or len(value) != 8 or crc < 0:
        raise IntegrityError(f"tree manifest: unsupported checksum {entry.checksum!r} for "
                             f"{entry.path}")
    return Record(crc, entry.size, max(entry.size, 1))


def _restore_shape(root: Path, tree_manifest: Manifest) -> None:
    """Symlinks, empty folders and modes: what the objects alone cannot carry."""
    for rel, _ in tree_manifest.dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel, target in tree_manifest.symlinks:
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
    umask = process_umask()
    for entry in tree_manifest.files:  # created with their modes: only what umask took
        if entry.mode & 0o1777 & (umask | 0o1000):
            os.chmod(root / entry.path, entry.mode & 0o1777)
    for rel, mode in sorted(tree_manifest.dirs, reverse=True):
        os.chmod(root / rel, (mode & 0o1777) | 0o700)
