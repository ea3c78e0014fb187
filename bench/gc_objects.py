"""The objects of the GC benchmark: directory artifacts written as `cp --archive none`
lays them out, made fast, and deleted Argo's way for comparison.

Why a module: 100,000 small objects take minutes to create, so creation runs in several
processes (botocore is GIL-bound and spends about as much CPU per request as RGW does),
each with a bounded thread pool; and Argo's way of deleting (list the artifact's folder,
then one DeleteObject request per key, in sequence, as `workflow/artifacts/s3` does with
minio-go's RemoveObject) must be the real single-object DELETE, not a batch of one.

Layout of one tree: `<workflow>/pod/out/dNN/fNNNN.txt` (tiny bodies) plus its tree
manifest beside it, `<workflow>/pod/out.argosy-manifest.json`, written after its files,
listing each with its size and CRC32C: a directory artifact of `files + 1` objects.

Workflow names are what Argo gives a `generateName: wf-` workflow: a random suffix, so
their keys sort in no relation to the order the workflows run, complete and are collected
in. Sequential names (`wf-NNN`, `sequential=True`) collected in name order are a
different load for Ceph: each deletion leaves a tombstone at the front of a bucket index
shard's omap, and every later listing of that shard steps over all of them (RocksDB's
iterator seeks to the shard's first entry), so listings grow slower as the run goes on.
"""

from __future__ import annotations

import multiprocessing
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.rgw import Rgw

PART_TIMEOUT_S = 1800  # one fill process's share; far above 100k objects at 100/s


SUFFIX_LETTERS = "bcdfghjklmnpqrstvwxz2456789"  # the letters generateName's suffixes use


def workflow_name(index: int, *, sequential: bool = False) -> str:
    """Workflow `index`'s name: `wf-` and a five-letter suffix drawn from the index's hash,
    as generateName gives, then the index (unique, and read back by `workflow_of`);
    with `sequential`, `wf-NNN`."""
    if sequential:
        return f"wf-{index:03d}"
    h = zlib.crc32(index.to_bytes(8, "big"))
    suffix = "".join(SUFFIX_LETTERS[(h >> (5 * k)) % len(SUFFIX_LETTERS)] for k in range(5))
    return f"wf-{suffix}-{index}"


def tree_prefix(index: int, *, sequential: bool = False) -> str:
    """The artifact key of workflow `index`'s output folder (no trailing slash)."""
    return f"{workflow_name(index, sequential=sequential)}/pod/out"


def workflow_of(key: str) -> int:
    """The workflow index a key belongs to (the name's last `-` field)."""
    return int(key.split("/", 1)[0].rsplit("-", 1)[-1])


def tree(index: int, files: int, *, sequential: bool = False) -> Iterator[tuple[str, bytes]]:
    """(key, body) of one directory artifact, its manifest last."""
    from argosy.artifacts.checksum import crc32c, to_hex
    from argosy.artifacts.manifest import FileEntry, Manifest, manifest_key

    prefix = tree_prefix(index, sequential=sequential)
    manifest = Manifest()
    for i in range(files):
        folder = f"d{i // 100:02d}"
        if i % 100 == 0:
            manifest.dirs.append((folder, 0o755))
        rel = f"{folder}/f{i:04d}.txt"
        body = f"{prefix}/{rel}\n".encode()
        manifest.files.append(FileEntry(rel, len(body), f"crc32c:{to_hex(crc32c(body))}", 0o644))
        yield f"{prefix}/{rel}", body
    yield manifest_key(prefix), manifest.to_json()


def driver(rgw: Rgw, bucket: str, *, connections: int = 64) -> Any:
    from argosy.artifacts.drivers.s3 import S3Driver, S3Settings

    return S3Driver(
        S3Settings(
            endpoint=rgw.endpoint,
            region=rgw.region,
            access_key=rgw.access_key,
            secret_key=rgw.secret_key,
            addressing_style="path",
            max_connections=connections,
        ),
        bucket,
    )


def _fill_part(
    rgw: Rgw, bucket: str, indexes: list[int], files: int, threads: int, sequential: bool
) -> int:
    """One process's share: every tree's files, then every tree's manifest."""
    target = driver(rgw, bucket, connections=threads)
    items = [item for i in indexes for item in tree(i, files, sequential=sequential)]
    manifests = [item for item in items if item[0].endswith(".argosy-manifest.json")]
    bodies = [item for item in items if not item[0].endswith(".argosy-manifest.json")]

    def put(item: tuple[str, bytes]) -> None:
        target.put(item[0], item[1], size=len(item[1]), metadata={})

    with ThreadPoolExecutor(threads, thread_name_prefix="bench-fill") as pool:
        list(pool.map(put, bodies))
        list(pool.map(put, manifests))
    return len(items)


@dataclass(frozen=True)
class Filled:
    objects: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.objects / self.seconds


def fill(
    rgw: Rgw,
    bucket: str,
    indexes: list[int],
    files: int,
    *,
    processes: int,
    threads: int,
    sequential: bool = False,
) -> Filled:
    """Create the trees of `indexes` with `processes` x `threads` puts in flight."""
    shares = [indexes[p::processes] for p in range(processes)]
    shares = [share for share in shares if share]
    start = time.monotonic()
    with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_fill_part, rgw, bucket, share, files, threads, sequential)
            for share in shares
        ]
        objects = sum(future.result(timeout=PART_TIMEOUT_S) for future in futures)
    return Filled(objects, time.monotonic() - start)


def argo_delete(rgw: Rgw, bucket: str, prefixes: list[str]) -> Filled:
    """Argo's way: per artifact, list its folder, then one DeleteObject per key."""
    from argosy.artifacts.drivers.s3 import make_client
    from argosy.artifacts.tree import list_all

    source = driver(rgw, bucket, connections=1)
    client = make_client(source.settings)  # the same botocore settings, one connection
    deleted = 0
    start = time.monotonic()
    for prefix in prefixes:
        for info in list(list_all(source, prefix + "/")):
            client.delete_object(Bucket=bucket, Key=info.key)
            deleted += 1
    return Filled(deleted, time.monotonic() - start)


def batch_delete(rgw: Rgw, bucket: str, prefixes: list[str], *, concurrency: int) -> Filled:
    """RGW's ceiling, no controller: list the folders, then DeleteObjects of 1000 keys,
    `concurrency` in flight."""
    from argosy.artifacts.manifest import manifest_key
    from argosy.artifacts.tree import list_all

    source = driver(rgw, bucket, connections=concurrency)
    start = time.monotonic()
    keys = (
        key
        for prefix in prefixes
        for key in [
            manifest_key(prefix),  # deleted by its exact key, as the controller does
            *(info.key for info in list_all(source, prefix + "/")),
        ]
    )
    deleted, failures = delete_keys(source, keys, concurrency=concurrency)
    if failures:
        raise RuntimeError(f"{len(failures)} keys not deleted: {failures[0]}")
    return Filled(deleted, time.monotonic() - start)


def delete_keys(target: Any, keys: Iterator[str], *, concurrency: int = 4) -> tuple[int, list[Any]]:
    """Every key, in batches of 1000, `concurrency` batches at once."""
    from argosy.artifacts.retry import Retrier
    from argosy.artifacts.tree import BATCH, delete_batch

    batches: list[list[tuple[str, int]]] = [[]]
    for key in keys:
        if len(batches[-1]) == BATCH:
            batches.append([])
        batches[-1].append((key, 0))
    retrier = Retrier()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="bench-delete") as pool:
        results = list(pool.map(lambda b: delete_batch(target, b, retrier=retrier), batches))
    return sum(r.deleted for r in results), [f for r in results for f in r.failures]


def count(target: Any, prefix: str = "") -> int:
    from argosy.artifacts.tree import list_all

    return sum(1 for _ in list_all(target, prefix))


def remove_bucket(target: Any) -> None:
    """Empty (batch deletes) and delete the bucket; for the cleanup after a run."""
    from argosy.artifacts.drivers.s3 import make_client
    from argosy.artifacts.tree import list_all

    delete_keys(target, (info.key for info in list_all(target, "")))
    make_client(target.settings).delete_bucket(Bucket=target.bucket)
