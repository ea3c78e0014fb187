"""Deleting one artifact: everything under `key/` (a directory artifact), its tree
manifest beside it (`key.argosy-manifest.json`) and the exact `key`, in batches of 1000,
with bounded concurrency per bucket.

What makes up a folder is decided in one place, `argosy.artifacts.tree.delete_folder`,
which `argosy rm -r` uses too; the controller hands it its own way to run batches and
lookups. It deletes many artifacts at once from many buckets:
- one listing of the artifact's bare name finds its folder, its manifest and its own
  key (`folder_keys`), so a small artifact costs one round trip before its delete; when
  lookalikes crowd that listing, the exact-key lookups run on a pool while the folder
  is listed;
- keys go to a queue per bucket, and each bucket has at most `bucket_concurrency`
  DeleteObjects requests in flight; a request takes the keys of as many waiting
  artifacts of that bucket (reached through the same client, so with the same
  credentials) as fit in one batch of 1000, and each artifact gets back exactly its own
  keys' results. Ten thousand workflows of five objects then cost hundreds of batch
  deletes, not ten thousand;
- at most `lanes_per_bucket` workflows work on one bucket at a time (a worker that finds
  its bucket busy moves on to other work), and the keys waiting per bucket are bounded
  (an artifact of a million keys lists only as fast as its batches go);
- a leadership fence is checked before every request, so a controller that lost its
  Lease stops deleting.
A key is never a prefix: `foo/` is listed, so `foobar` is never touched. A missing key
counts as deleted.
"""

from __future__ import annotations

import threading
from collections import deque
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
from argosy.artifacts.tree import (
    BATCH,
    TRANSIENT_DELETE_CODES,
    BatchResult,
    delete_batch,
    delete_folder,
)

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

    bucket_concurrency: batch deletes (of up to 1000 keys, of one or many artifacts) in
        flight per bucket (4: one bucket keeps a few connections busy without owning the
        pool; RGW works through the keys of one request one after another, so a few
        requests at once keep it busy).
    lanes_per_bucket: workflows deleting from one bucket at once (16: their listings and
        lookups overlap, and their keys share the bucket's batch deletes); a worker that
        finds the bucket full requeues its workflow instead of waiting.
    pool_size: batch deletes in flight across all buckets.
    artifact_concurrency: artifacts listed and deleted at once across all workflows (the
        artifacts of one workflow go in parallel: the lag from completion to deletion is
        then one artifact's few requests, not the sum of all of them).
    lookup_concurrency: exact-key lookups (HEAD) in flight across all buckets.
    retry: per request, for transient failures (kept short: the controller retries the
        whole artifact later, with backoff, instead of holding a worker).
    """

    bucket_concurrency: int = 4
    lanes_per_bucket: int = 16
    pool_size: int = 16
    artifact_concurrency: int = 8
    lookup_concurrency: int = 16
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


@dataclass
class _Request:
    """One artifact's batch, waiting for a place in a batch delete of its bucket."""

    driver: Driver
    batch: list[tuple[str, int]]
    future: Future[BatchResult]
    queued: threading.Semaphore  # the bucket's bound on waiting requests, released when done


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
        self._lookups = ThreadPoolExecutor(
            self.settings.lookup_concurrency, thread_name_prefix="argosy-gc-lookup"
        )
        self._lock = threading.Lock()
        self._waiting: dict[str, deque[_Request]] = {}  # bucket -> requests not yet sent
        self._sending: dict[str, int] = {}  # bucket -> batch deletes in flight
        self._bounds: dict[str, threading.Semaphore] = {}  # bucket -> room for requests
        self._lanes: dict[str, int] = {}
        self._closed = False
        self.requests = 0  # batch deletes sent (each of one or more artifacts' keys)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._artifacts.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._lookups.shutdown(wait=True, cancel_futures=True)
        with self._lock:  # nobody is left to send these: their artifacts fail, not hang
            stranded = [r for q in self._waiting.values() for r in q]
            self._waiting.clear()
        for request in stranded:
            self._settle([request], ArtifactError("the controller is stopping", code="Stopped"))

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

    # -- batch deletes, shared by the artifacts of one bucket ------------------------------
    def _room(self, bucket_id: str) -> threading.Semaphore:
        with self._lock:
            bound = self._bounds.get(bucket_id)
            if bound is None:
                # every lane may have a batch waiting, plus those being sent
                room = self.settings.lanes_per_bucket + self.settings.bucket_concurrency
                bound = self._bounds[bucket_id] = threading.Semaphore(room)
            return bound

    def submit(
        self, bucket_id: str, driver: Driver, batch: list[tuple[str, int]]
    ) -> Future[BatchResult]:
        """Queue `batch` (up to 1000 keys of one artifact) for a batch delete of its
        bucket; the future holds this batch's own result. Waits while the bucket already
        has its bound of batches waiting. Raises LeadershipLost without the Lease."""
        if not self.fence():
            raise LeadershipLost()
        room = self._room(bucket_id)
        room.acquire()
        request = _Request(driver, batch, Future(), room)
        with self._lock:
            if self._closed:
                closed = True
            else:
                closed = False
                self._waiting.setdefault(bucket_id, deque()).append(request)
                start = self._sending.get(bucket_id, 0) < self.settings.bucket_concurrency
                if start:
                    self._sending[bucket_id] = self._sending.get(bucket_id, 0) + 1
        if closed:
            self._settle([request], ArtifactError("the controller is stopping", code="Stopped"))
        elif start:
            try:
                self._pool.submit(self._send_all, bucket_id)
            except RuntimeError:  # closing: `close` fails what still waits
                pass
        return request.future

    def _take(self, bucket_id: str) -> list[_Request]:
        """The next batch delete's requests (under the lock): the oldest waiting one and
        those after it through the same client that fit beside it in one batch."""
        queue = self._waiting.get(bucket_id)
        if not queue:
            self._waiting.pop(bucket_id, None)
            return []
        first = queue.popleft()
        taken, size = [first], len(first.batch)
        kept: deque[_Request] = deque()
        while queue and size < BATCH:
            request = queue.popleft()
            if request.driver is first.driver and size + len(request.batch) <= BATCH:
                taken.append(request)
                size += len(request.batch)
            else:
                kept.append(request)
        kept.extend(queue)  # the queue is bounded by the bucket's room: a short scan
        if kept:
            self._waiting[bucket_id] = kept
        else:
            del self._waiting[bucket_id]
        return taken

    def _send_all(self, bucket_id: str) -> None:
        """One of the bucket's senders: batch deletes until nothing of it waits."""
        while True:
            with self._lock:
                taken = self._take(bucket_id)
                if not taken:
                    self._sending[bucket_id] -= 1
                    if not self._sending[bucket_id]:
                        del self._sending[bucket_id]
                    return
                self.requests += 1
            self._send(taken)

    def _send(self, taken: list[_Request]) -> None:
        try:
            if not self.fence():
                raise LeadershipLost()
            sizes: dict[str, int] = {}
            for request in taken:
                sizes.update(request.batch)
            result = delete_batch(taken[0].driver, list(sizes.items()), retrier=self.retrier)
        except BaseException as error:  # noqa: BLE001 - each artifact in it fails, none hangs
            self._settle(taken, error)
            return
        failed = {f.key: f for f in result.failures}
        for request in taken:
            mine = [failed[k] for k, _ in request.batch if k in failed]
            gone = [s for k, s in request.batch if k not in failed]
            self._settle([request], BatchResult(len(gone), sum(gone), mine))

    @staticmethod
    def _settle(requests: list[_Request], outcome: BatchResult | BaseException) -> None:
        for request in requests:
            if not request.future.done():
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)
            request.queued.release()

    def delete(self, driver: Driver, target: Target, artifact_id: str) -> ArtifactOutcome:
        outcome = ArtifactOutcome(artifact_id, target.url)
        if not self.fence():
            outcome.error, outcome.remaining = LeadershipLost(), None
            return outcome
        bucket_id = target.bucket_id
        done = delete_folder(
            driver,
            target.key,
            with_object=True,
            retrier=self.retrier,
            submit=lambda batch: self.submit(bucket_id, driver, batch),
            spawn=self._lookups.submit,
        )
        outcome.objects, outcome.bytes = done.objects, done.bytes
        outcome.error, outcome.remaining = done.error, done.remaining
        if done.failures and outcome.error is None:
            outcome.error = _failure_error(done.failures[0], target.url, len(done.failures))
        return outcome
