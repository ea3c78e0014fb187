"""Folders of objects: a local directory to or from one object per file under a prefix
(the layout of Argo's `archive: none` and of `cp -r`), and the one way to delete such a
folder (`delete_folder`: `argosy rm -r`, the GC, a plugin's Delete).

A prefix is always a folder: `foo/`, never `foo`, so `foobar` is never touched. A tree
uploaded with its manifest has it beside the folder, at the exact key
`foo.argosy-manifest.json` (`manifest.py`); deleting the folder deletes that key by name.

Nothing is left half-done. An upload that fails deletes the objects it had written (a
re-run writes them again) and never writes the manifest, which comes last: an
`archive: none` folder without one was never finished, and a download of it says that
nothing vouches for it. A download builds the tree in a staging folder and moves it
into place only once every file is in and verified (against the manifest when there is
one: a stale manifest fails the download, never passes a mixed tree). Either way the
first failure stops the files not yet started.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.archive.layout import (
    Layout,
    check_destination,
    missing_folders,
    move_into,
    new_staging,
    remove_empty,
    remove_staging,
)
from argosy.artifacts.checksum import ALGORITHM
from argosy.artifacts.download import DownloadResult, download_file, iter_object
from argosy.artifacts.errors import (
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    LocalIOError,
    NotFound,
)
from argosy.artifacts.filewriter import process_umask
from argosy.artifacts.lane import Lane
from argosy.artifacts.manifest import (
    FileEntry,
    Manifest,
    legacy_manifest_key,
    manifest_key,
    walk,
)
from argosy.artifacts.protocol import (
    BatchingDriver,
    DeleteFailure,
    DescribingDriver,
    Driver,
    Exchange,
    ObjectInfo,
)
from argosy.artifacts.record import Record
from argosy.artifacts.retry import Retrier
from argosy.artifacts.settings import TransferSettings
from argosy.artifacts.smallfiles import check_got, put_exchange, put_record, write_new
from argosy.artifacts.stall import Watchdog
from argosy.artifacts.upload import UploadResult, upload_file, upload_stream

BATCH = 1000
AHEAD = 2  # items taken per worker beyond those finished (`_run_all`)
TRANSIENT_DELETE_CODES = frozenset(
    {"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"}
)
T = TypeVar("T")
R = TypeVar("R")


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


class _NotStarted(Exception):
    """An item dropped because another had failed."""


def _run_all(
    fn: Callable[[T], R], items: Iterable[T], *, workers: int
) -> tuple[list[tuple[T, R]], BaseException | None]:
    """`fn` over `items`, `workers` at a time: the (item, result) of those that succeeded,
    in the order of `items`, and the first failure. `items` is taken lazily, at most
    `AHEAD` x `workers` items ahead of those finished: a walk of the tree or a listing
    feeds the workers as it goes, the first file starts at once, and what is waiting
    stays bounded. A failure of `items` itself (a walk, a listing, a name refused) is a
    failure like any other. At a failure (or an interrupt while waiting) no item starts
    any more, and those running are waited for, so nothing is at work when this returns.
    (The failing worker raises the flag itself: the pool would otherwise hand it the
    next item before this thread could cancel it.)"""
    stop = threading.Event()
    room = threading.Semaphore(max(1, workers) * AHEAD)

    def guarded(item: T) -> R:
        try:
            if stop.is_set():
                raise _NotStarted
            try:
                return fn(item)
            except BaseException:
                stop.set()
                raise
        finally:
            room.release()

    pool: ThreadPoolExecutor | None = None
    failure: BaseException | None = None
    submitted: list[tuple[T, Future[R]]] = []
    try:
        taken = iter(items)
        while True:
            room.acquire()  # before the next item is even looked for
            if stop.is_set():
                break
            try:
                item = next(taken)
            except StopIteration:
                break
            if pool is None:
                pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="argosy-file")
            submitted.append((item, pool.submit(guarded, item)))
        for future in as_completed([f for _, f in submitted]):
            error = future.exception()
            if error is not None and not isinstance(error, _NotStarted):
                failure = error
                break
    except BaseException as error:  # noqa: BLE001 - returned, raised by the caller
        failure = error
    finally:
        if failure is not None:
            stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=failure is not None)
    done = [
        (item, future.result())
        for item, future in submitted
        if future.done() and not future.cancelled() and future.exception() is None
    ]
    return done, failure


def _run_batched(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    settings: TransferSettings,
    lane: Lane[T, R] | None,
) -> tuple[list[tuple[T, R]], BaseException | None]:
    """`_run_all` in a pool sized by `settings` (`tree_pool`), with the items `lane` takes
    done in its batch beside the pool."""
    workers = settings.tree_pool(beside_lane=lane is not None)
    if lane is None:
        return _run_all(fn, items, workers=workers)
    try:
        done, failure = _run_all(fn, lane.feed(items), workers=workers)
    finally:
        lane.close()
    return lane.done + done, failure


def _lane(
    driver: Driver,
    settings: TransferSettings,
    watch: Watchdog,
    take: Callable[[T], Exchange | None],
    finish: Callable[[T, Exchange], R],
) -> Lane[T, R] | None:
    """The batch lane of a tree, where the driver batches (`lane.py`); else None."""
    if not isinstance(driver, BatchingDriver) or settings.tree_lane < 1:
        return None
    batch = driver.batch(settings.tree_lane, settings.batch_memory)
    if batch is None:
        return None
    pool = settings.tree_pool(beside_lane=True)
    return Lane(batch, take, finish, budget=watch.left, ahead=AHEAD * pool)


# -- deleting a folder ---------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    deleted: int
    bytes: int
    failures: list[DeleteFailure]


def delete_batch(
    driver: Driver, batch: Sequence[tuple[str, int]], *, retrier: Retrier
) -> BatchResult:
    """Delete up to 1000 (key, size) at once; keys the server could not delete this time
    (a transient code) get one more go."""
    sizes = dict(batch)
    keys = list(sizes)
    failures = retrier.call(lambda: driver.delete(keys), what=f"delete {len(keys)} keys")
    again = [f.key for f in failures if f.code in TRANSIENT_DELETE_CODES]
    if again:
        failures = [f for f in failures if f.code not in TRANSIENT_DELETE_CODES] + retrier.call(
            lambda: driver.delete(again), what="delete again"
        )
    failed = {f.key for f in failures}
    deleted = [k for k in keys if k not in failed]
    return BatchResult(len(deleted), sum(sizes[k] for k in deleted), failures)


Submit = Callable[[list[tuple[str, int]]], "Future[BatchResult]"]
Spawn = Callable[[Callable[[], "tuple[str, int] | None"]], "Future[tuple[str, int] | None]"]


@dataclass
class DeleteOutcome:
    """What deleting a folder did. `error`: the listing, a stat or a whole batch failed,
    so what is left is unknown; `failures`: keys the server refused to delete."""

    objects: int = 0
    bytes: int = 0
    failures: list[DeleteFailure] = field(default_factory=list)
    error: ArtifactError | None = None

    @property
    def remaining(self) -> int | None:
        """Keys known to be left; None: unknown (the listing or a batch failed)."""
        return None if self.error is not None else len(self.failures)


def _exact(driver: Driver, key: str, retrier: Retrier) -> tuple[str, int] | None:
    try:
        info = retrier.call(functools.partial(driver.stat, key), what=f"stat {driver.url(key)}")
    except NotFound:
        return None
    return key, info.size


def folder_keys(
    driver: Driver,
    key: str,
    *,
    with_object: bool = False,
    retrier: Retrier | None = None,
    spawn: Spawn | None = None,
) -> Iterator[tuple[str, int]]:
    """(key, size) of everything the folder `key/` is made of: every object under `key/` (a
    manifest of the older layout among them), then its tree manifest by the exact key
    `key.argosy-manifest.json`; with `with_object`, the object named exactly `key` too
    (an artifact that is a file or an archive). Nothing that merely starts like it.

    The exact keys start with the folder's bare name, as every key under it does, so one
    listing of that name finds them all: an artifact of up to a page of keys costs one
    request, not a listing and two lookups. Lookalikes it meets (`run10/` beside `run1`)
    are skipped. When that first page is not the whole listing, the folder is listed on
    its own (the keys the first page gave are not given again) and the exact keys the
    page did not show are looked up, so a bare name shared by many other keys never
    lists them all. With `spawn` (a pool's `submit`), those lookups run while the folder
    is listed."""
    retrier = retrier or Retrier()
    folder = as_folder(key)
    if folder == "":
        raise InvalidSpec(f"refusing to delete a whole bucket ({driver.url('')})")
    exact = [manifest_key(folder)]
    if with_object and not key.endswith("/"):
        exact.append(key)
    bare = folder[:-1]
    first = retrier.call(functools.partial(driver.list, bare), what=f"list {driver.url(bare)}")
    given: set[str] = set()
    found: dict[str, int] = {}
    for info in first.objects:
        if info.key.startswith(folder):
            given.add(info.key)
            yield info.key, info.size
        elif info.key in exact:
            found[info.key] = info.size
    if first.next_token:
        missing = [k for k in exact if k not in found]
        lookups = (
            [spawn(functools.partial(_exact, driver, k, retrier)) for k in missing]
            if spawn is not None
            else []
        )
        for info in list_all(driver, folder, retrier=retrier):
            if info.key not in given:
                yield info.key, info.size
        for at, name in enumerate(missing):
            got = lookups[at].result() if lookups else _exact(driver, name, retrier)
            if got is not None:
                found[got[0]] = got[1]
    for name in exact:
        if name in found:
            yield name, found[name]


def delete_folder(
    driver: Driver,
    key: str,
    *,
    with_object: bool = False,
    retrier: Retrier | None = None,
    submit: Submit | None = None,
    concurrency: int = 4,
    spawn: Spawn | None = None,
) -> DeleteOutcome:
    """Delete the folder `key/` whole (`folder_keys`): the one way every part of Argosy
    deletes a folder, so none forgets its manifest nor strays into a sibling (`run1`
    never touches `run10/` or `run10.argosy-manifest.json`). A missing key counts as
    deleted (and is not counted).

    Batches of up to 1000 keys go to `submit`, which returns each batch's future; by
    default `concurrency` batches at a time on a pool of this call, each by
    `delete_batch`. The GC passes its own (one pool for every bucket, a bound per
    bucket, its leadership checked before each batch) and `spawn`, so the exact-key
    lookups overlap the listing (`folder_keys`). A listing that fails, or a
    `submit` that raises an ArtifactError, stops the listing and is the outcome's
    error; the batches already handed over are still waited for."""
    retrier = retrier or Retrier()
    own: ThreadPoolExecutor | None = None
    if submit is None:
        pool = own = ThreadPoolExecutor(concurrency, thread_name_prefix="argosy-delete")
        rt = retrier

        def submit(batch: list[tuple[str, int]]) -> Future[BatchResult]:
            return pool.submit(delete_batch, driver, batch, retrier=rt)

    outcome = DeleteOutcome()
    futures: list[Future[BatchResult]] = []
    try:
        try:
            batch: list[tuple[str, int]] = []
            for item in folder_keys(
                driver, key, with_object=with_object, retrier=retrier, spawn=spawn
            ):
                batch.append(item)
                if len(batch) == BATCH:
                    futures.append(submit(batch))
                    batch = []
            if batch:
                futures.append(submit(batch))
        except ArtifactError as error:
            outcome.error = error
        for future in futures:
            try:
                result = future.result()
            except ArtifactError as error:
                outcome.error = outcome.error or error
                continue
            outcome.objects += result.deleted
            outcome.bytes += result.bytes
            outcome.failures += result.failures
    finally:
        if own is not None:
            own.shutdown(wait=True)
    return outcome


# -- trees to and from a folder ------------------------------------------------------------


@dataclass(frozen=True)
class TreeResult:
    files: int
    bytes: int
    verified: int
    notes: list[str]
    manifest: bool = False  # a tree manifest was written (upload) or vouched for every file

    @property
    def verdict(self) -> str:
        """What a download verified, and against what."""
        if self.manifest:
            return "every file verified against the tree manifest"
        whole = "no tree manifest, so nothing vouches that the folder is complete"
        if self.files and self.verified == self.files:
            return f"every file verified against its own checksum record ({whole})"
        if self.verified:
            return (
                f"{self.verified} of {self.files} files verified against their own checksum "
                f"records, {self.files - self.verified} unverified: no record ({whole})"
            )
        if not self.files:
            return f"no files ({whole})"
        return f"unverified: no checksum records ({whole})"


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
    watch: Watchdog | None = None,
) -> TreeResult:
    """One object per file under `prefix/`. With `manifest`, symlinks stay links (kept in
    the manifest, not uploaded as copies), folders and modes are recorded, and the
    manifest is written last, beside the folder, once every file is in place. `metadata`
    goes on every object, the manifest included. Every file is part of one transfer
    (`watch`, by default the tree's own): the tree stalls as a whole, not each file by
    itself. The files go up as the walk finds them (the walk stays a bounded number of
    files ahead of the uploads): the first PUT leaves at once, not after the whole tree
    has been walked; the manifest is made from what was uploaded.

    On failure (a file's, or the walk's: a FIFO in the tree, say) the objects this
    upload had written are deleted (an object it replaced is then gone: what stood
    there before was already overwritten) and the error says so, or names those it
    could not delete; running the same upload again writes the whole tree afresh."""
    watch = watch or settings.watchdog()
    base = Path(root)
    if not base.is_dir():
        raise InvalidSpec(f"{base} is not a folder")
    folder = as_folder(prefix)
    manifest_at = manifest_key(folder) if manifest else None
    record = Manifest()
    modes: dict[str, int] = {}

    def recorded() -> Iterator[tuple[Path, str]]:
        """The files to upload, as the walk finds them; links and folders go into the
        record (the walk runs beside the uploads, never more than `_run_all` lets it get
        ahead of them)."""
        for rel, st, target in walk(base):
            if target is not None:
                record.symlinks.append((rel, target))
            elif stat.S_ISDIR(st.st_mode):
                record.dirs.append((rel, stat.S_IMODE(st.st_mode)))
            else:
                modes[rel] = stat.S_IMODE(st.st_mode)
                yield base / rel, rel

    items = recorded() if manifest else _local_files(base)

    def one(item: tuple[Path, str]) -> UploadResult:
        path, rel = item
        return upload_file(
            driver,
            folder + rel,
            path,
            settings=settings,
            metadata=metadata,
            progress=progress,
            watch=watch,
        )

    common = dict(metadata or {})
    limit = driver.batch_limit if isinstance(driver, BatchingDriver) else 0

    def take(item: tuple[Path, str]) -> Exchange | None:
        return put_exchange(item[0], folder + item[1], common, limit)

    def finish(item: tuple[Path, str], exchange: Exchange) -> UploadResult:
        size = len(exchange.body or b"")
        progress(size)
        watch.moved()
        return UploadResult(driver.url(exchange.key), size, exchange.etag, put_record(exchange), 1)

    lane = _lane(driver, settings, watch, take, finish)
    done: list[tuple[tuple[Path, str], UploadResult]] = []
    try:
        done, failure = _run_batched(one, items, settings=settings, lane=lane)
        if failure is not None:
            raise failure
        if manifest_at is not None:
            for (_, rel), result in done:
                if result.record is None:
                    raise IntegrityError(
                        f"{result.url}: no checksum record, so the tree manifest "
                        "cannot vouch for it"
                    )
                record.files.append(FileEntry(rel, result.size, result.record.checksum, modes[rel]))
            upload_stream(
                driver,
                manifest_at,
                io.BytesIO(record.to_json()),
                settings=settings,
                metadata=metadata,
                watch=watch,
            )
    except BaseException as error:
        _take_back(driver, [folder + rel for (_, rel), _ in done], error)
        raise
    results = [r for _, r in done]
    return TreeResult(
        len(results),
        sum(r.size for r in results),
        sum(1 for r in results if r.record),
        [r.note for r in results if r.note],
        manifest=manifest_at is not None,
    )


def _take_back(driver: Driver, keys: list[str], error: BaseException) -> None:
    """Delete the objects a failed upload wrote, and say so in its error (never raises:
    the upload's own failure is the one reported)."""
    if not keys:
        return
    retrier = Retrier()
    left: list[str] = []
    try:
        for at in range(0, len(keys), BATCH):
            batch = keys[at : at + BATCH]
            result = delete_batch(driver, [(k, 0) for k in batch], retrier=retrier)
            left += [f.key for f in result.failures]
    except ArtifactError as failed:
        left = keys
        why = f" ({failed})"
    else:
        why = ""
    if not isinstance(error, ArtifactError):
        return
    if left:
        error.message += (
            f"; {len(left)} of the {len(keys)} object(s) this upload had written could not be "
            f"deleted{why}, e.g. {', '.join(driver.url(k) for k in left[:3])}"
        )
    else:
        error.message += f"; the {len(keys)} object(s) this upload had written were deleted"


def _key_path(rel: str, where: str) -> str:
    """A key's path below the prefix, as it is: a key that needs normalising ('a//b',
    './a') is refused with those that leave the destination, never repaired."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in rel:
        raise InvalidSpec(f"{where}: refusing a key that leaves the destination: {rel!r}")
    return rel


def _read_manifest(
    driver: Driver, key: str, settings: TransferSettings, watch: Watchdog
) -> Manifest | None:
    try:
        # each chunk's buffer is reused once the next is asked for: keep copies
        chunks = [bytes(c) for c in iter_object(driver, key, settings=settings, watch=watch)]
    except NotFound:
        return None
    return Manifest.from_json(b"".join(chunks), where=driver.url(key))


def is_folder(driver: Driver, key: str) -> bool:
    """Whether `key` names a folder of objects: its tree manifest is there, or some
    object is under `key/`."""
    folder = as_folder(key)
    if folder:
        try:
            driver.stat(manifest_key(folder))
            return True
        except NotFound:
            pass
    return bool(driver.list(folder, limit=1).objects)


class _Listing:
    """The objects under a folder, listed page by page in a thread of its own from the
    moment it is made, while the caller works on the pages already in (`pages`). Kept
    pages are what the listing holds, as a listing read whole would. `close` stops it
    after the page in flight."""

    def __init__(self, driver: Driver, folder: str, retrier: Retrier) -> None:
        self._driver, self._folder, self._retrier = driver, folder, retrier
        self._queue: queue.SimpleQueue[tuple[Sequence[ObjectInfo], bool] | BaseException] = (
            queue.SimpleQueue()
        )
        self._stop = threading.Event()
        self.done = False  # every page has been handed out
        self._thread = threading.Thread(target=self._run, name="argosy-list", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        token: str | None = None
        try:
            while not self._stop.is_set():
                page = self._retrier.call(
                    functools.partial(self._driver.list, self._folder, token=token),
                    what=f"list {self._driver.url(self._folder)}",
                )
                self._queue.put((page.objects, not page.next_token))
                if not page.next_token:
                    return
                token = page.next_token
        except BaseException as error:  # noqa: BLE001 - handed to the reader
            self._queue.put(error)

    def pages(self) -> Iterator[Sequence[ObjectInfo]]:
        """The pages, in order; `done` is set with the last one."""
        while not self.done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self.done = True
                raise item
            objects, self.done = item
            yield objects

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Plan:
    """Every entry of a tree, claimed through the restore rules as it is handed to the
    workers (folders, then files, then symlinks once every file is in): the folders to
    make that no file needed, and the symlinks."""

    layout: Layout = field(default_factory=lambda: Layout("tree entry"))
    folders: list[str] = field(default_factory=list)
    symlinks: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    """One file of a tree: its key, its claimed path, what a listing said of it (None:
    the download's first read describes it) and its tree manifest entry."""

    key: str
    path: str
    info: ObjectInfo | None
    entry: FileEntry | None


def _lists_past(page: Sequence[ObjectInfo], key: str) -> bool:
    """Whether a page of a listing, in key order, reaches `key` or beyond."""
    return bool(page) and page[-1].key >= key


def download_tree(
    driver: Driver,
    prefix: str,
    root: str | os.PathLike[str],
    *,
    settings: TransferSettings,
    progress: Callable[[int], None] = lambda n: None,
    watch: Watchdog | None = None,
) -> TreeResult:
    """Every object under `prefix/` into `root`, restored by the rules every tree restore
    follows (`archive.layout`): every entry is claimed before it is written (names that
    leave the destination, clash, or go through a link are refused), the tree is built
    in a staging folder beside `root` and moved into place only when every file is in;
    a failure leaves neither files nor the folders made above `root`. With a tree
    manifest (beside the folder, or under it as older versions wrote it) the tree is
    verified against it and `root` must be new or empty; without one, `root` may be an
    existing folder, which the tree joins without replacing anything in it. One transfer
    (`watch`) as for `upload_tree`.

    The files start at once. With a tree manifest and a driver whose reads describe the
    object (S3's GET), they come from the manifest: its list names every file, and the
    listing runs beside the downloads only to report objects the manifest does not name
    (a file it names that is missing fails its GET). Otherwise they come from the
    listing, page by page: the first page's files are on their way while the next pages
    are fetched, and a file of the manifest that the listing lacks fails the download
    once the listing is over."""
    watch = watch or settings.watchdog()
    base = os.path.abspath(os.fspath(root))
    folder = as_folder(prefix)
    retrier = Retrier(settings.retry, watch=watch)
    tree_manifest = (
        _read_manifest(driver, manifest_key(folder), settings, watch) if folder else None
    )
    legacy = legacy_manifest_key(folder)
    listing = _Listing(driver, folder, retrier)
    try:
        return _download_tree(
            driver, folder, base, listing, tree_manifest, legacy, settings, progress, watch
        )
    finally:
        listing.close()


def _download_tree(
    driver: Driver,
    folder: str,
    base: str,
    listing: _Listing,
    tree_manifest: Manifest | None,
    legacy: str,
    settings: TransferSettings,
    progress: Callable[[int], None],
    watch: Watchdog,
) -> TreeResult:
    pages = listing.pages()
    first: Sequence[ObjectInfo] = []
    if tree_manifest is None:
        # The older layout keeps the manifest under the folder: the first page says
        # whether it is there when it reaches its key (it sorts early), else a read does.
        first = next(pages, [])
        if any(o.key == legacy for o in first) or not (listing.done or _lists_past(first, legacy)):
            tree_manifest = _read_manifest(driver, legacy, settings, watch)
    from_manifest = tree_manifest is not None and isinstance(driver, DescribingDriver)
    sums = {f.path: f for f in tree_manifest.files} if tree_manifest else {}
    plan = _Plan()
    for rel, _ in sorted(tree_manifest.dirs if tree_manifest else []):
        plan.folders += plan.layout.claim(rel, EntryType.DIR)[1]
    notes: list[str] = []
    listed: set[str] = set()  # what the listing held beside the manifest's files

    def claimed(key: str, rel: str, info: ObjectInfo | None) -> _Item:
        path, new = plan.layout.claim(rel, EntryType.FILE)
        plan.folders += new
        return _Item(key, path, info, sums.get(rel))

    def items() -> Iterator[_Item]:
        if from_manifest:
            assert tree_manifest is not None
            for entry in sorted(tree_manifest.files, key=lambda f: f.path):
                yield claimed(folder + entry.path, entry.path, None)
            return
        count = 0
        for page in itertools.chain([first], pages):
            for info in page:
                if info.key.endswith("/") or (tree_manifest is not None and info.key == legacy):
                    continue
                rel = info.key[len(folder) :]
                if tree_manifest is not None:
                    listed.add(rel)
                    if rel not in sums:
                        continue
                count += 1
                yield claimed(info.key, _key_path(rel, driver.url(folder)), info)
        if tree_manifest is not None:
            missing = sorted(set(sums) - listed)
            if missing:
                raise IntegrityError(
                    f"{driver.url(folder)}: {len(missing)} file(s) of the tree "
                    f"manifest are missing, e.g. {', '.join(missing[:5])}"
                )
        elif not count:
            raise NotFound(f"nothing under {driver.url(folder)}")

    check_destination(base, merge=tree_manifest is None)
    made = missing_folders(base)
    stage = new_staging(base)
    # Folders are made by the workers as their files need them, beside the downloads
    # (thousands of mkdirs in a row before the first GET were on the critical path), then
    # the rest (folders with no file) at the end. Each is a real folder of this restore:
    # nothing but this restore writes in the staging folder and no link exists before
    # `_restore_shape`.
    ready: set[str] = {""}

    def folder_for(rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent not in ready:
            os.makedirs(os.path.join(stage, parent), 0o700, exist_ok=True)
            ready.add(parent)

    def one(item: _Item) -> DownloadResult:
        info, rel, entry = item.info, item.path, item.entry
        try:
            folder_for(rel)
        except OSError as error:
            raise LocalIOError(f"cannot restore into {base}: {error.strerror or error}") from None
        if entry is not None and info is not None and entry.size != info.size:
            raise IntegrityError(
                f"{driver.url(info.key)}: {info.size} bytes, the tree manifest says {entry.size}"
            )
        # A listing carries no metadata, so no checksum record. For a file of one range
        # the manifest's checksum is all the download needs (with the listing's size and
        # ETag to pin to, or what its first GET says): no stat per file. Larger files,
        # and trees without a manifest, read the object's own record (its part checksums
        # check each range as it arrives; on S3 it comes with the first GET, still no
        # stat).
        expect = _expected(entry) if entry and entry.size <= settings.part_size else None
        try:
            result = download_file(
                driver,
                item.key,
                Path(stage, rel),
                settings=settings,
                progress=progress,
                info=info if expect is not None else None,
                expect=expect,
                mode=entry.mode & 0o777 if entry is not None else 0o644,
                staged=True,  # a new staging folder: nothing to resume, sweep or rename
                watch=watch,
            )
        except NotFound:
            if entry is None:
                raise
            raise IntegrityError(
                f"{driver.url(folder)}: a file of the tree manifest is missing: {rel}"
            ) from None
        if entry is not None and (entry.checksum != result.checksum or entry.size != result.size):
            raise IntegrityError(
                f"{result.url}: does not match the tree manifest "
                f"({result.checksum}, manifest says {entry.checksum})"
            )
        return result

    limit = driver.batch_limit if isinstance(driver, BatchingDriver) else 0

    def take(item: _Item) -> Exchange | None:
        """A GET of a small file, its folder made; None leaves the file to the pool (and
        one whose listing and manifest disagree on its size, which the pool reports)."""
        sizes = {x.size for x in (item.entry, item.info) if x is not None}
        if len(sizes) != 1 or (size := sizes.pop()) >= limit:
            return None
        try:
            folder_for(item.path)
        except OSError:
            return None
        return Exchange(item.key, size=size)

    def finish(item: _Item, exchange: Exchange) -> DownloadResult:
        url, entry = driver.url(item.key), item.entry
        checksum, record, reason = check_got(exchange, url, _expected(entry), item.info)
        if entry is not None and entry.checksum != checksum:
            raise IntegrityError(f"{url}: does not match the tree manifest")
        write_new(Path(stage, item.path), exchange.data, entry.mode & 0o777 if entry else 0o644)
        progress(len(exchange.data))
        watch.moved()
        info = exchange.info
        assert info is not None  # check_got read it
        return DownloadResult(url, info.size, info.etag, checksum, record is not None, reason, 0, 1)

    lane = _lane(driver, settings, watch, take, finish)
    try:
        try:
            os.chmod(stage, 0o777 & ~process_umask())  # mkdtemp's 0700 would stay the root's
            done, failure = _run_batched(one, items(), settings=settings, lane=lane)
            if failure is not None:
                raise failure
            if from_manifest:  # the listing ran beside the files: what else is there
                for page in itertools.chain([first], pages):
                    listed.update(o.key[len(folder) :] for o in page if not o.key.endswith("/"))
            if tree_manifest is not None:
                extra = sorted(listed - set(sums) - {legacy[len(folder) :]})
                if extra:
                    notes.append(
                        f"{len(extra)} object(s) not in the tree manifest were left out, "
                        f"e.g. {', '.join(extra[:5])}"
                    )
            # links last, so no link exists while anything else is made; one under
            # another link's path, or in a file's place, is refused by the layout
            for rel, target in sorted(tree_manifest.symlinks if tree_manifest else []):
                plan.folders += plan.layout.claim(rel, EntryType.SYMLINK, linkname=target)[1]
                plan.symlinks.append((rel, target))
            for rel in plan.folders:  # real folders, made by this restore, before any link
                if rel not in ready:
                    os.makedirs(os.path.join(stage, rel), 0o700, exist_ok=True)
            _restore_shape(Path(stage), plan, tree_manifest)
        except OSError as error:  # a full disk making a folder or a link, say
            raise LocalIOError(f"cannot restore into {base}: {error.strerror or error}") from None
        move_into(stage, base)
    except BaseException:
        remove_staging(stage)
        remove_empty(made)
        raise
    results = [r for _, r in done]
    notes += sorted({r.note for r in results if r.note})
    verified = sum(1 for r in results if r.verified or tree_manifest is not None)
    return TreeResult(
        len(results),
        sum(r.size for r in results),
        verified,
        notes,
        manifest=tree_manifest is not None,
    )


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
