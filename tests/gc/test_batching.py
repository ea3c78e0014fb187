"""The deleter at scale: the keys of many small artifacts of one bucket share batch
deletes, each artifact still gets exactly its own outcome, a bucket never has more batch
deletes in flight than its bound, and one listing finds an
artifact's exact keys and folder, with lookups beside the folder's own listing when it
is crowded.

Real storage throughout (moto's S3); the drivers are wrapped
only to hold a request until the test has lined up what it needs, and to refuse keys."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from argosy.argo.location import Target
from argosy.artifacts.errors import TransientError
from argosy.artifacts.protocol import DeleteFailure, Driver
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.tree import delete_folder
from argosy.gc.controller import Controller
from argosy.gc.deleter import ArtifactOutcome, Deleter, DeleteSettings, LeadershipLost
from argosy.testing.kube.api import ManualClock
from tests.conftest import s3_driver
from tests.gc.argo import ACCESS, SECRET, Argo, Art
from tests.gc.conftest import NS, gc_settings, keys, put
from tests.gc.running import eventually

QUICK = RetryPolicy(attempts=2, base=0.01, cap=0.02)


class Held:
    """A driver whose batch deletes wait at a gate the test opens, noting each request's
    keys and how many were in flight at once; `refuse` keys come back as failures, and
    `broken` makes every request fail as the server being down would."""

    def __init__(self, inner: Driver) -> None:
        self._inner = inner
        self.gate = threading.Event()
        self.calls: list[list[str]] = []
        self.refuse: dict[str, str] = {}
        self.broken = False
        self.inflight = self.most = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def delete(self, keys: Sequence[str]) -> list[DeleteFailure]:
        with self._lock:
            self.calls.append(list(keys))
            self.inflight += 1
            self.most = max(self.most, self.inflight)
        try:
            assert self.gate.wait(10), "the test never opened the gate"
            if self.broken:
                raise TransientError("the bucket is down", code="ServiceUnavailable")
            refused = [k for k in keys if k in self.refuse]
            failures = self._inner.delete([k for k in keys if k not in self.refuse])
            return failures + [DeleteFailure(k, self.refuse[k], "refused") for k in refused]
        finally:
            with self._lock:
                self.inflight -= 1


@pytest.fixture
def local(bucket: tuple[str, Driver]) -> Driver:
    """A bucket of moto's S3 (a `local:` folder cannot hold both `a` and `a/1`)."""
    return bucket[1]


@pytest.fixture
def deleter() -> Iterator[Callable[..., Deleter]]:
    made: list[Deleter] = []

    def make(**settings: Any) -> Deleter:
        made.append(Deleter(DeleteSettings(retry=QUICK, **settings)))
        return made[-1]

    yield make
    for one in made:
        one.close()


def target(key: str, root: str = "/r") -> Target:
    return Target("local", "bucket", key, {"root": root})


def waiting(deleter: Deleter) -> int:
    with deleter._lock:
        return sum(len(q) for q in deleter._waiting.values())


def start(
    pool: ThreadPoolExecutor, deleter: Deleter, driver: Any, name: str
) -> Any:  # a Future[ArtifactOutcome]
    return pool.submit(deleter.delete, driver, target(name), name)


def test_the_keys_of_artifacts_waiting_for_their_bucket_go_in_one_batch_delete_each_counted_once(
    local: Driver, deleter: Callable[..., Deleter]
) -> None:
    held = Held(local)
    for name in ("a", "b", "c", "d", "e"):
        put(local, f"{name}/1", f"{name}/2", name, size=7)
    put(local, "bb/keep", "b.argosy-manifest.jsonx")
    one = deleter(bucket_concurrency=1)
    with ThreadPoolExecutor(5) as pool:
        first = start(pool, one, held, "a")
        eventually(lambda: len(held.calls) == 1, what="the first batch delete")
        rest = [start(pool, one, held, name) for name in ("b", "c", "d", "e")]
        eventually(lambda: waiting(one) == 4, what="four artifacts waiting for the bucket")
        held.gate.set()
        outcomes: list[ArtifactOutcome] = [first.result(10)] + [f.result(10) for f in rest]

    assert [sorted(c) for c in held.calls] == [
        ["a", "a/1", "a/2"],
        sorted(f"{n}{s}" for n in "bcde" for s in ("", "/1", "/2")),
    ]
    assert one.requests == 2
    assert [(o.artifact_id, o.objects, o.bytes, o.ok) for o in outcomes] == [
        (n, 3, 21, True) for n in "abcde"
    ]
    assert keys(local) == ["b.argosy-manifest.jsonx", "bb/keep"]


def test_a_key_refused_in_a_shared_batch_fails_only_its_own_artifact(
    local: Driver, deleter: Callable[..., Deleter]
) -> None:
    held = Held(local)
    for name in ("a", "b", "c", "d"):
        put(local, f"{name}/1", f"{name}/2")
    held.refuse = {"c/2": "AccessDenied"}
    one = deleter(bucket_concurrency=1)
    with ThreadPoolExecutor(4) as pool:
        first = start(pool, one, held, "a")
        eventually(lambda: len(held.calls) == 1, what="the first batch delete")
        rest = {n: start(pool, one, held, n) for n in ("b", "c", "d")}
        eventually(lambda: waiting(one) == 3, what="three artifacts waiting")
        held.gate.set()
        first.result(10)
        outcomes = {n: f.result(10) for n, f in rest.items()}

    assert len(held.calls) == 2  # b, c and d shared one request
    assert [(n, o.objects, o.ok, o.remaining) for n, o in outcomes.items()] == [
        ("b", 2, True, 0),
        ("c", 1, False, 1),
        ("d", 2, True, 0),
    ]
    assert "1 key(s) not deleted (AccessDenied" in str(outcomes["c"].error)
    assert keys(local) == ["c/2"]


def test_a_shared_batch_delete_that_fails_fails_each_of_its_artifacts_and_none_hangs(
    local: Driver, deleter: Callable[..., Deleter]
) -> None:
    held = Held(local)
    for name in ("a", "b", "c"):
        put(local, f"{name}/1")
    one = deleter(bucket_concurrency=1)
    with ThreadPoolExecutor(3) as pool:
        first = start(pool, one, held, "a")
        eventually(lambda: len(held.calls) == 1, what="the first batch delete")
        rest = [start(pool, one, held, n) for n in ("b", "c")]
        eventually(lambda: waiting(one) == 2, what="two artifacts waiting")
        held.broken = True
        held.gate.set()
        outcomes = [first.result(10)] + [f.result(10) for f in rest]

    assert [(o.artifact_id, o.objects, o.remaining) for o in outcomes] == [
        ("a", 0, None),
        ("b", 0, None),
        ("c", 0, None),
    ]
    assert all(isinstance(o.error, TransientError) for o in outcomes)
    assert keys(local) == ["a/1", "b/1", "c/1"]


def test_artifacts_reached_through_different_clients_never_share_a_batch_delete(
    bucket: tuple[str, Driver], moto_endpoint: str, deleter: Callable[..., Deleter]
) -> None:
    """Two namespaces may name one bucket with different credentials: each artifact's
    keys are deleted with its own namespace's client, never another's."""
    mine = bucket[1]
    theirs = s3_driver(moto_endpoint, ACCESS, SECRET, bucket[0], create=False)
    held_mine, held_theirs = Held(mine), Held(theirs)
    put(mine, "a/1", "b/1", "c/1")
    one = deleter(bucket_concurrency=1)
    with ThreadPoolExecutor(3) as pool:
        first = start(pool, one, held_mine, "a")
        eventually(lambda: len(held_mine.calls) == 1, what="the first batch delete")
        b = start(pool, one, held_theirs, "b")
        eventually(lambda: waiting(one) == 1, what="b waiting")
        c = start(pool, one, held_mine, "c")
        eventually(lambda: waiting(one) == 2, what="b and c waiting")
        held_mine.gate.set()
        held_theirs.gate.set()
        assert [f.result(10).ok for f in (first, b, c)] == [True, True, True]

    assert [sorted(k for k in c if "/" in k) for c in held_mine.calls] == [["a/1"], ["c/1"]]
    assert [sorted(k for k in c if "/" in k) for c in held_theirs.calls] == [["b/1"]]


def test_a_bucket_never_has_more_batch_deletes_in_flight_than_its_bound(
    local: Driver, deleter: Callable[..., Deleter]
) -> None:
    held = Held(local)
    names = [f"wf{i}" for i in range(12)]
    for name in names:
        put(local, f"{name}/1")
    two = deleter(bucket_concurrency=2, lanes_per_bucket=16)
    with ThreadPoolExecutor(12) as pool:
        futures = [start(pool, two, held, n) for n in names]
        eventually(
            lambda: (
                len(held.calls) == 2
                and sum(1 for c in held.calls for k in c if "/" in k) + waiting(two) == 12
            ),
            what="two batch deletes in flight and every other artifact waiting",
        )
        held.gate.set()
        assert all(f.result(10).ok for f in futures)

    assert held.most == 2
    assert sorted(k for c in held.calls for k in c if "/" in k) == sorted(f"{n}/1" for n in names)
    assert keys(local) == []


def test_the_keys_waiting_for_a_bucket_are_bounded_so_a_huge_folder_lists_no_faster_than_it_goes(
    local: Driver, deleter: Callable[..., Deleter]
) -> None:
    held = Held(local)
    put(local, *(f"big/{i:05d}" for i in range(3500)))
    one = deleter(bucket_concurrency=1, lanes_per_bucket=1)  # room for 2 batches
    with ThreadPoolExecutor(1) as pool:
        future = start(pool, one, held, "big")
        eventually(
            lambda: len(held.calls) == 1 and waiting(one) == 1, what="the bucket's room filled"
        )
        assert waiting(one) == 1  # the listing waits: 2 of its 4 batches are handed over
        held.gate.set()
        outcome = future.result(30)

    assert (outcome.objects, outcome.ok) == (3500, True)
    assert [len(c) for c in held.calls] == [1000, 1000, 1000, 500]


def test_a_controller_that_loses_its_lease_sends_no_batch_that_was_waiting(
    local: Driver,
) -> None:
    held = Held(local)
    put(local, "a/1", "b/1")
    leader = [True]
    one = Deleter(DeleteSettings(retry=QUICK, bucket_concurrency=1), fence=lambda: leader[0])
    try:
        with ThreadPoolExecutor(2) as pool:
            first = start(pool, one, held, "a")
            eventually(lambda: len(held.calls) == 1, what="the first batch delete")
            second = start(pool, one, held, "b")
            eventually(lambda: waiting(one) == 1, what="b waiting")
            leader[0] = False
            held.gate.set()
            assert first.result(10).ok
            lost = second.result(10)
    finally:
        one.close()
    assert isinstance(lost.error, LeadershipLost)
    assert len(held.calls) == 1
    assert keys(local) == ["b/1"]


class Counted:
    """A driver that counts its listings and exact-key lookups, and can serve listings
    in short pages (`page`), as a listing crowded by lookalike keys would come."""

    def __init__(self, inner: Driver, page: int = 1000) -> None:
        self._inner = inner
        self.page = page
        self.lists: list[str] = []
        self.stats: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def stat(self, key: str) -> Any:
        self.stats.append(key)
        return self._inner.stat(key)

    def list(self, prefix: str = "", **kwargs: Any) -> Any:
        self.lists.append(prefix)
        kwargs["limit"] = min(kwargs.get("limit", 1000), self.page)
        return self._inner.list(prefix, **kwargs)


class Meeting(Counted):
    """Listings of a folder (`KEY/`) and exact-key lookups must all be in progress at
    once to go on (a barrier): run one after another, they never meet and it breaks."""

    def __init__(self, inner: Driver, parties: int, page: int) -> None:
        super().__init__(inner, page)
        self.barrier = threading.Barrier(parties, timeout=10)

    def stat(self, key: str) -> Any:
        self.barrier.wait()
        return super().stat(key)

    def list(self, prefix: str = "", **kwargs: Any) -> Any:
        if prefix.endswith("/") and not kwargs.get("token"):
            self.barrier.wait()
        return super().list(prefix, **kwargs)


def test_an_artifact_of_one_page_of_keys_costs_one_listing_and_no_lookups(
    local: Driver,
) -> None:
    put(local, "out/a", "out/b", "out", "out.argosy-manifest.json", "out-1", "out10/a", "outx")
    counted = Counted(local)
    done = delete_folder(counted, "out", with_object=True)

    assert (done.objects, done.error) == (4, None)
    assert (counted.lists, counted.stats) == (["out"], [])
    assert keys(local) == ["out-1", "out10/a", "outx"]


def test_a_first_page_crowded_by_lookalikes_lists_the_folder_with_lookups_beside_it(
    local: Driver,
) -> None:
    # sorted: out, out-0, out-1, out.argosy-manifest.json, out/a, out/b, outx: the first
    # page of two shows the key and a lookalike, not the manifest nor the folder
    put(local, "out/a", "out/b", "out", "out.argosy-manifest.json", "out-0", "out-1", "outx")
    meeting = Meeting(local, 2, page=2)  # the folder's listing and the manifest's lookup
    with ThreadPoolExecutor(2) as lookups:
        done = delete_folder(meeting, "out", with_object=True, spawn=lookups.submit)

    assert (done.objects, done.error) == (4, None)
    assert meeting.lists[:2] == ["out", "out/"]
    assert meeting.stats == ["out.argosy-manifest.json"]  # `out` was on the first page
    assert keys(local) == ["out-0", "out-1", "outx"]


def test_folder_keys_the_first_page_gave_are_not_deleted_twice(local: Driver) -> None:
    put(local, "out.argosy-manifest.json", "out/a", "out/b", "out/c")
    counted = Counted(local, page=2)  # the first page: the manifest and out/a
    done = delete_folder(counted, "out", with_object=True)

    assert (done.objects, done.error) == (4, None)
    assert counted.stats == ["out"]  # the page ended before `out` could show: looked up
    assert keys(local) == []


def test_the_deleter_overlaps_a_crowded_artifacts_listing_with_its_lookups(
    local: Driver, deleter: Callable[..., Deleter]
) -> None:
    put(local, "out/a", "out", "out-0", "out-1", "out.argosy-manifest.json")
    outcome = deleter().delete(Meeting(local, 2, page=2), target("out"), "out")
    assert (outcome.objects, outcome.ok) == (3, True)
    assert keys(local) == ["out-0", "out-1"]


@pytest.mark.usefixtures("on_completion")
def test_workflows_whose_keys_shared_batch_deletes_each_record_their_own_outcome(
    argo: Argo, team: Driver, clock: ManualClock, make_controller: Callable[..., Controller]
) -> None:
    for i in range(6):
        put(team, f"wf{i}/dir/a", f"wf{i}/dir/b", size=5)
        argo.submit(NS, f"wf{i}", [Art("dir", f"wf{i}/dir")])
        argo.finish(NS, f"wf{i}", "Succeeded", clock())
    held: list[Held] = []

    def hold(driver: Driver) -> Driver:
        held.append(Held(driver))
        held[-1].refuse = {"wf4/dir/b": "AccessDenied"}
        return held[-1]

    one_at_a_time = replace(gc_settings().delete, bucket_concurrency=1)
    controller = make_controller(workers=6, delete=one_at_a_time, decorate_driver=hold)
    with ThreadPoolExecutor(1) as pool:
        summary = pool.submit(controller.run_once)

        def lined_up() -> bool:  # the first batch delete may already hold several
            if not held or len(held[0].calls) != 1:
                return False
            first = {k.split("/")[0] for k in held[0].calls[0]}
            left = waiting(controller.deleter)
            return left >= 1 and len(first) + left == 6

        eventually(lined_up, what="one batch delete in flight and the other workflows waiting")
        held[0].gate.set()
        done = summary.result(30)

    assert len(held) == 1 and len(held[0].calls) == 2  # six workflows, two batch deletes
    assert (done.artifacts, done.objects) == (5, 11)
    assert keys(team) == ["wf4/dir/b"]
    for i in (0, 1, 2, 3, 5):
        record = argo.record(NS, f"wf{i}")
        mine = (record["objects"], record["bytes"], record["deleted"])
        assert mine == (2, 10, [f"wf{i}-pod/dir"])
        assert not record.get("failures")
    failed = argo.record(NS, "wf4")
    assert (failed["objects"], failed.get("deleted")) == (1, [])
    assert [f["cause"] for f in failed["failures"]] == ["AccessDenied"]
