"""Deleting one artifact: everything under `key/` (a directory artifact), its tree
manifest beside it (`key.argosy-manifest.json`) and the exact `key`, in batches of 1000,
with bounded concurrency per bucket.

What makes up a folder is decided in one place, `argosy.artifacts.tree.delete_folder`,
which `argosy rm -r` uses too; the controller hands it its own way to run batches: it
deletes many artifacts at once from many buckets, so batches go to one shared pool, each
bucket may have only `bucket_concurrency` batches in flight (one slow bucket cannot take
every connection), only `lanes_per_bucket` workflows work on one bucket at a time (a
worker that finds its bucket busy moves on to other work), and a leadership fence is
checked before every batch, so a controller that lost its Lease stops deleting. A key is
never a prefix: `foo/` is listed, so `foobar` is never touched. A missing key counts as
deleted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from argosy.argo.location import Target
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    PermanentError,
    TransientError,
)
from argosy.artifacts.protocol import DeleteFailure, Driver
from argosy.artifacts.retry import Retrier, RetryPolicy
from argosy.artifacts.tree import TRANSIENT_DELETE_CODES, BatchResult, delete_batch, delete_folder

T = TypeVar("T")
R = TypeVar("R")
_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class LeadershipLost(ArtifactError):
    """This controller no longer holds the Lease: it must stop deleting at once."""

    def __init__(self) -> None:
        super().__init__(
            "this controller lost its leadership Lease; stopped deleting", code="LeadershipLost"
        )


@dataclass(frozen=True)
class DeleteSettings:
    """Bounds on deleting.

    bucket_concurrency: batch deletes (of up to 1000 keys) in flight per bucket (4: one
        bucket keeps a few connections busy without owning the pool).
    lanes_per_bucket: workflows deleting from one bucket at once; a worker that finds the
        bucket full requeues its workflow instead of waiting (4, as many as the batches a
        bucket may have in flight: most workflows hold one batch's worth of keys, and RGW
        works through the keys of one batch one after another).
    pool_size: batch deletes in flight across all buckets.
    artifact_concurrency: artifacts listed and deleted at once across all workflows (the
        artifacts of one workflow go in parallel: the lag from completion to deletion is
        then one artifact's few requests, not the sum of all of them).
    retry: per request, for transient failures (kept short: the controller retries the
        whole artifact later, with backoff, instead of holding a worker).
    """

    bucket_concurrency: int = 4
    lanes_per_bucket: int = 4
    pool_size: int = 16
    artifact_concurrency: int = 8
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3, base=0.2, cap=2.0))


@dataclass
class ArtifactOutcome:
    artifact_id: str
    url: str
    objects: int = 0
    bytes: int = 0
    remaining: int | None = 0  # keys known to be left; None: unknown (listing failed)
    error: ArtifactError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _failure_error(failure: DeleteFailure, url: str, count: int) -> ArtifactError:
    text = f"{url}: {count} key(s) not deleted ({failure.code}: {failure.message})"
    if failure.code in _ACCESS_CODES:
        return AccessDenied(text, code="AccessDenied")
    if failure.code in TRANSIENT_DELETE_CODES:
        return TransientError(text, code=failure.code)
    return PermanentError(text, code=failure.code or "DeleteFailed")


class Deleter:
    def __init__(
        self,
        settings: DeleteSettings | None = None,
        *,
        retrier: Retrier | None = None,
        fence: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings or DeleteSettings()
        self.retrier = retrier or Retrier(self.settings.retry)
        self.fence = fence
        self._pool = ThreadPoolExecutor(
            self.settings.pool_size, thread_name_prefix="argosy-gc-delete"
        )
        self._artifacts = ThreadPoolExecutor(
            self.settings.artifact_concurrency, thread_name_prefix="argosy-gc-artifact"
        )
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.BoundedSemaphore] = {}
        self._lanes: dict[str, int] = {}

    def close(self) -> None:
        self._artifacts.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def each(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """`fn` over `items` on the artifact pool (the caller's thread waits)."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._artifacts.map(fn, items))

    @contextmanager
    def lane(self, bucket_id: str) -> Iterator[bool]:
        """Yields False (without waiting) when the bucket already has its share of work."""
        with self._lock:
            busy = self._lanes.get(bucket_id, 0)
            entered = busy < self.settings.lanes_per_bucket
            if entered:
                self._lanes[bucket_id] = busy + 1
        try:
            yield entered
        finally:
            if entered:
                with self._lock:
                    self._lanes[bucket_id] -= 1
                    if not self._lanes[bucket_id]:
                        del self._lanes[bucket_id]

    def _semaphore(self, bucket_id: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._inflight.get(bucket_id)
            if sem is None:
                sem = self._inflight[bucket_id] = threading.BoundedSemaphore(
                    self.settings.bucket_concurrency
                )
            return sem

    def delete(self, driver: Driver, target: Target, artifact_id: str) -> ArtifactOutcome:
        outcome = ArtifactOutcome(artifact_id, target.url)
        if not self.fence():
            outcome.error, outcome.remaining = LeadershipLost(), None
            return outcome
        sem = self._semaphore(target.bucket_id)

        def submit(batch: list[tuple[str, int]]) -> Future[BatchResult]:
            if not self.fence():
                raise LeadershipLost()
            sem.acquire()
            try:
                future = self._pool.submit(delete_batch, driver, batch, retrier=self.retrier)
            except BaseException:
                sem.release()
                raise
            future.add_done_callback(lambda _: sem.release())
            return future

        done = delete_folder(
            driver, target.key, with_object=True, retrier=self.retrier, submit=submit
        )
        outcome.objects, outcome.bytes = done.objects, done.bytes
        outcome.error, outcome.remaining = done.error, done.remaining
        if done.failures and outcome.error is None:
            outcome.error = _failure_error(done.failures[0], target.url, len(done.failures))
        return outcome
