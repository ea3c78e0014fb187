"""Folders of objects: list everything under a prefix, delete it in batches, and move a
local directory to or from one object per file (the layout of Argo's `archive: none`).

A prefix is always a folder: `foo/`, never `foo`, so `foobar` is never touched.
"""

from __future__ import annotations

import functools
import io
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.archive.layout import (
    Layout,
    check_destination,
    move_into,
    new_staging,
    remove_staging,
)
from argosy.artifacts.checksum import ALGORITHM
from argosy.artifacts.download import DownloadResult, download_file, iter_object
from argosy.artifacts.errors import IntegrityError, InvalidSpec, NotFound
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


def list_all(
    driver: Driver, prefix: str, *, retrier: Retrier | None = None
) -> Iterator[ObjectInfo]:
    retrier = retrier or Retrier()
    token: str | None = None
    while True:
        page = retrier.call(
            functools.partial(driver.list, prefix, token=token),
            what=f"list {driver.url(prefix)}",
        )
        yield from page.objects
        if not page.next_token:
            return
        token = page.next_token


def delete_keys(
    driver: Driver, keys: Iterator[str], *, concurrency: int = 4, retrier: Retrier | None = None
) -> tuple[int, list[DeleteFailure]]:
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
        for batch_keys, result in zip(batches, pool.map(one, batches), strict=False):
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


def upload_tree(
    driver: Driver,
    prefix: str,
    root: str | os.PathLike[str],
    *,
    settings: TransferSettings,
    manifest: bool = False,
    metadata: Mapping[str, str] | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> TreeResult:
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
        return upload_file(
            driver, folder + rel, path, settings=settings, metadata=metadata, progress=progress
        )

    with ThreadPoolExecutor(settings.file_concurrency, thread_name_prefix="argosy-file") as pool:
        results = list(pool.map(one, items))
    if manifest:
        for (_, rel), result in zip(items, results, strict=False):
            if result.record is None:
                raise IntegrityError(
                    f"{result.url}: no checksum record, so the tree manifest cannot vouch for it"
                )
            record.files.append(FileEntry(rel, result.size, result.record.checksum, modes[rel]))
        upload_stream(
            driver,
            folder + MANIFEST,
            io.BytesIO(record.to_json()),
            settings=settings,
            metadata=metadata,
        )
    return TreeResult(
        len(results),
        sum(r.size for r in results),
        sum(1 for r in results if r.record),
        [r.note for r in results if r.note],
    )


def _key_path(rel: str, where: str) -> str:
    """A key's path below the prefix, as it is: a key that needs normalising ('a//b',
    './a') is refused with those that leave the destination, never repaired."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in rel:
        raise InvalidSpec(f"{where}: refusing a key that leaves the destination: {rel!r}")
    return rel


def _read_manifest(driver: Driver, folder: str, settings: TransferSettings) -> Manifest | None:
    try:
        # each chunk's buffer is reused once the next is asked for: keep copies
        chunks = [bytes(c) for c in iter_object(driver, folder + MANIFEST, settings=settings)]
    except NotFound:
        return None
    return Manifest.from_json(b"".join(chunks), where=driver.url(folder + MANIFEST))


@dataclass
class _Plan:
    """Every entry of a tree, claimed through the restore rules before anything is
    written: folders (to make, in order), files (object -> path), then symlinks."""

    layout: Layout
    folders: list[str]
    files: list[tuple[ObjectInfo, str]]
    symlinks: list[tuple[str, str]]


def _plan(
    driver: Driver, folder: str, objects: list[ObjectInfo], tree_manifest: Manifest | None
) -> _Plan:
    layout = Layout("tree entry")
    plan = _Plan(layout, [], [], [])
    for rel, _ in sorted(tree_manifest.dirs if tree_manifest else []):
        plan.folders += layout.claim(rel, EntryType.DIR)[1]
    for info in objects:
        path, new = layout.claim(
            _key_path(info.key[len(folder) :], driver.url(folder)), EntryType.FILE
        )
        plan.folders += new
        plan.files.append((info, path))
    # links last, so no link exists while anything else is made; one under another
    # link's path, or in a file's place, is refused by the layout
    for rel, target in sorted(tree_manifest.symlinks if tree_manifest else []):
        plan.folders += layout.claim(rel, EntryType.SYMLINK, linkname=target)[1]
        plan.symlinks.append((rel, target))
    return plan


def download_tree(
    driver: Driver,
    prefix: str,
    root: str | os.PathLike[str],
    *,
    settings: TransferSettings,
    progress: Callable[[int], None] = lambda n: None,
) -> TreeResult:
    """Every object under `prefix/` into `root`, restored by the rules every tree restore
    follows (`archive.layout`): the whole tree is claimed first (names that leave the
    destination, clash, or go through a link are refused before anything is written),
    built in a staging folder beside `root` and moved into place only when every file
    is in. With a tree manifest the tree is verified against it and `root` must be new
    or empty; without one, `root` may be an existing folder, which the tree joins
    without replacing anything in it."""
    base = os.path.abspath(os.fspath(root))
    folder = as_folder(prefix)
    tree_manifest = _read_manifest(driver, folder, settings)
    objects = [
        o
        for o in list_all(driver, folder)
        if not o.key.endswith("/") and o.key != folder + MANIFEST
    ]
    notes: list[str] = []
    if tree_manifest is not None:
        listed = {o.key[len(folder) :] for o in objects}
        wanted = {f.path for f in tree_manifest.files}
        missing = sorted(wanted - listed)
        if missing:
            raise IntegrityError(
                f"{driver.url(folder)}: {len(missing)} file(s) of the tree "
                f"manifest are missing, e.g. {', '.join(missing[:5])}"
            )
        extra = sorted(listed - wanted)
        if extra:
            notes.append(
                f"{len(extra)} object(s) not in the tree manifest were left out, "
                f"e.g. {', '.join(extra[:5])}"
            )
        objects = [o for o in objects if o.key[len(folder) :] in wanted]
    elif not objects:
        raise NotFound(f"nothing under {driver.url(folder)}")
    plan = _plan(driver, folder, objects, tree_manifest)
    check_destination(base, merge=tree_manifest is None)
    stage = new_staging(base)
    sums = {f.path: f for f in tree_manifest.files} if tree_manifest else {}

    def one(item: tuple[ObjectInfo, str]) -> DownloadResult:
        info, rel = item
        entry = sums.get(rel)
        if entry is not None and entry.size != info.size:
            raise IntegrityError(
                f"{driver.url(info.key)}: {info.size} bytes, the tree manifest says {entry.size}"
            )
        # A listing carries no metadata, so no checksum record. For a file of one range
        # the listing (size, the ETag to pin to) and the manifest's checksum are all the
        # download needs: no stat per file. Larger files, and trees without a manifest,
        # read the object's own record (its part checksums check each range as it
        # arrives; on S3 it comes with the first GET, still no stat).
        expect = _expected(entry) if entry and entry.size <= settings.part_size else None
        result = download_file(
            driver,
            info.key,
            Path(stage, rel),
            settings=settings,
            progress=progress,
            info=info if expect is not None else None,
            expect=expect,
            mode=entry.mode & 0o777 if entry is not None else 0o644,
            resume=False,  # a new staging folder: nothing to resume, nothing to sweep
        )
        if entry is not None and (entry.checksum != result.checksum or entry.size != result.size):
            raise IntegrityError(
                f"{result.url}: does not match the tree manifest "
                f"({result.checksum}, manifest says {entry.checksum})"
            )
        return result

    try:
        os.chmod(stage, 0o777 & ~process_umask())  # mkdtemp's 0700 would stay the root's
        for rel in plan.folders:  # real folders, made by this restore, before any link
            os.mkdir(os.path.join(stage, rel), 0o700)
        with ThreadPoolExecutor(
            settings.file_concurrency, thread_name_prefix="argosy-file"
        ) as pool:
            results = list(pool.map(one, plan.files))
        _restore_shape(Path(stage), plan, tree_manifest)
        move_into(stage, base)
    except BaseException:
        remove_staging(stage)
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
        raise IntegrityError(
            f"tree manifest: unsupported checksum {entry.checksum!r} for {entry.path}"
        )
    return Record(crc, entry.size, max(entry.size, 1))


def _restore_shape(root: Path, plan: _Plan, tree_manifest: Manifest | None) -> None:
    """Symlinks and modes, once every file is in: what the objects alone cannot carry.
    Every path here was claimed by the plan, so each parent is a real folder this
    restore made and no link is ever followed."""
    for rel, target in plan.symlinks:
        os.symlink(target, root / rel)
    umask = process_umask()
    modes = dict(tree_manifest.dirs) if tree_manifest else {}
    for entry in tree_manifest.files if tree_manifest else []:
        if entry.mode & 0o1777 & (umask | 0o1000):  # created with their modes: only what
            os.chmod(root / entry.path, entry.mode & 0o1777)  # the umask took
    for rel in plan.layout.folders():  # deepest first: a read-only folder blocks nothing
        if not rel:
            continue
        mode = modes.get(rel)
        os.chmod(root / rel, (mode & 0o1777) | 0o700 if mode is not None else 0o777 & ~umask)
