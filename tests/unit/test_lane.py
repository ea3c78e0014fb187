"""The batch lane's bookkeeping, with a scripted batch in place of the S3 driver's (the
driver's batch itself is tried against RGW in tests/contract/test_s3_batch.py): what the
batch takes and finishes stays with the lane, everything else reaches the pool, and the
lane stops without hanging whatever the pool does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.lane import Lane
from argosy.artifacts.protocol import Exchange
from argosy.artifacts.settings import TransferSettings


class ScriptedBatch:
    """Finishes each exchange at once: failed if its key is in `refuse`."""

    def __init__(self, refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.refuse = refuse
        self.closed = False

    def run(
        self,
        exchanges: Iterator[Exchange],
        finished: Callable[[Exchange], None],
        stop: threading.Event,
        budget: Callable[[], float | None],
    ) -> None:
        for exchange in exchanges:
            exchange.failed = "refused" if exchange.key in self.refuse else ""
            finished(exchange)
            if stop.is_set():
                return

    def close(self) -> None:
        self.closed = True


def small_only(name: str) -> Exchange | None:
    """Names starting with "big" are not the batch's."""
    return None if name.startswith("big") else Exchange(name)


def test_the_pool_gets_what_the_batch_does_not_take_then_what_it_failed() -> None:
    batch = ScriptedBatch(refuse={"b"})
    lane: Lane[str, str] = Lane(
        batch, small_only, lambda item, ex: item.upper(), budget=lambda: None, ahead=4
    )
    to_pool = list(lane.feed(["a", "big1", "b", "c", "big2"]))
    lane.close()
    assert to_pool == ["big1", "big2", "b"]
    assert lane.done == [("a", "A"), ("c", "C")]
    assert batch.closed


def test_the_batch_s_connections_are_closed_before_the_pool_redoes_what_failed() -> None:
    batch = ScriptedBatch(refuse={"b"})
    lane: Lane[str, str] = Lane(batch, small_only, lambda i, e: i, budget=lambda: None, ahead=4)
    closed_when_handed = [(item, batch.closed) for item in lane.feed(["a", "b", "c"])]
    lane.close()
    assert closed_when_handed == [("b", True)]


def test_an_item_whose_finish_raises_goes_to_the_pool() -> None:
    def finish(item: str, exchange: Exchange) -> str:
        if item == "bad":
            raise ValueError("bytes disagree with the record")
        return item

    lane: Lane[str, str] = Lane(ScriptedBatch(), small_only, finish, budget=lambda: None, ahead=4)
    assert list(lane.feed(["ok", "bad"])) == ["bad"]
    lane.close()
    assert lane.done == [("ok", "ok")]


def test_a_walk_that_fails_fails_the_pool_s_walk_with_the_same_error() -> None:
    def walk() -> Iterator[str]:
        yield "a"
        raise FileNotFoundError("a FIFO in the tree")

    lane: Lane[str, str] = Lane(
        ScriptedBatch(), small_only, lambda i, e: i, budget=lambda: None, ahead=4
    )
    with pytest.raises(FileNotFoundError, match="FIFO"):
        list(lane.feed(walk()))
    lane.close()
    assert lane.done == [("a", "a")]


def test_close_returns_when_the_pool_stopped_taking_items() -> None:
    lane: Lane[str, str] = Lane(
        ScriptedBatch(), small_only, lambda i, e: i, budget=lambda: None, ahead=1
    )
    feed = lane.feed(f"big{i}" for i in range(1000))
    assert next(feed) == "big0"  # the pool takes one, then stops (a failure elsewhere)
    closer = threading.Thread(target=lane.close)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive()  # the lane's walk, blocked on the full queue, gave up


@pytest.mark.parametrize(
    "setting, message",
    [({"batch_concurrency": 0}, "concurrency"), ({"batch_memory": 0}, "batch memory")],
)
def test_a_lane_with_no_room_is_refused_by_its_settings(
    setting: dict[str, int], message: str
) -> None:
    with pytest.raises(InvalidSpec, match=message):
        TransferSettings(**setting)  # type: ignore[arg-type]
