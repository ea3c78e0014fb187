"""The work queue: one key is never worked on twice at once, namespaces take turns, it
holds at most its capacity, and delayed keys come back when due."""

from __future__ import annotations

from argosy.gc.workqueue import FairQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drain(queue: FairQueue) -> list[tuple[str, str]]:
    taken = []
    while (key := queue.get(timeout=0)) is not None:
        taken.append(key)
        queue.done(key)
    return taken


def test_namespaces_take_turns_so_a_busy_one_cannot_starve_the_others() -> None:
    queue = FairQueue()
    for i in range(5):
        queue.add(("busy", f"wf{i}"))
    queue.add(("quiet", "one"))
    queue.add(("other", "two"))
    assert [k[0] for k in drain(queue)] == [
        "busy",
        "quiet",
        "other",
        "busy",
        "busy",
        "busy",
        "busy",
    ]


def test_a_key_added_while_it_is_processed_comes_back_once_after_done() -> None:
    queue = FairQueue()
    queue.add(("ns", "a"))
    key = queue.get(timeout=0)
    queue.add(("ns", "a"))
    queue.add(("ns", "a"))
    assert queue.get(timeout=0) is None  # not handed to a second worker
    assert key is not None
    queue.done(key)
    assert drain(queue) == [("ns", "a")]


def test_a_full_queue_refuses_new_keys_and_counts_them() -> None:
    queue = FairQueue(capacity=2)
    assert queue.add(("ns", "a")) and queue.add(("ns", "b"))
    assert queue.add(("ns", "a"))  # already there: fine
    assert not queue.add(("ns", "c"))
    assert queue.dropped == 1


def test_delayed_keys_come_back_when_due_by_the_injected_clock() -> None:
    clock = Clock()
    queue = FairQueue(monotonic=clock)
    queue.add_after(("ns", "later"), 30)
    queue.add_after(("ns", "later"), 60)  # a later retry does not postpone an earlier one
    assert queue.get(timeout=0) is None and len(queue) == 1
    clock.now = 30
    assert drain(queue) == [("ns", "later")]
    assert len(queue) == 0


def test_adding_a_delayed_key_now_makes_it_ready_now() -> None:
    clock = Clock()
    queue = FairQueue(monotonic=clock)
    queue.add_after(("ns", "k"), 100)
    queue.add(("ns", "k"))
    assert drain(queue) == [("ns", "k")]
    clock.now = 200
    assert drain(queue) == []
