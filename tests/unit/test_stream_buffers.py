"""Streams hold a fixed pool of part buffers: memory does not grow with the object."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from argosy.artifacts import download, upload
from argosy.artifacts.bodies import BufferBody
from argosy.artifacts.buffers import BufferPool, PartBuffer
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import InvalidSpec, NotFound
from argosy.artifacts.settings import TransferSettings

MiB = 1 << 20
STREAM = TransferSettings(stream_part_size=5 * MiB, concurrency=8, stream_concurrency=3)


class CountingDriver(LocalDriver):
    """Counts the parts being uploaded at the same moment (each takes a little while)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def upload_part(self, key, upload_id, number, body, *, size):
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.01)
            return super().upload_part(key, upload_id, number, body, size=size)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def driver(tmp_path: Path) -> CountingDriver:
    (tmp_path / "store" / "b").mkdir(parents=True)
    return CountingDriver(tmp_path / "store", "b")


def test_a_pool_hands_out_at_most_its_count_and_reuses_what_comes_back() -> None:
    pool = BufferPool(2, 16)
    first, second = pool.take(), pool.take()
    assert first is not second and pool.allocated == 2
    got: list[PartBuffer] = []
    waiter = threading.Thread(target=lambda: got.append(pool.take()))
    waiter.start()
    waiter.join(0.05)
    assert waiter.is_alive(), "a third take() must wait for a buffer to come back"
    pool.give(first)
    waiter.join(1)
    assert got == [first] and got[0] is first and pool.allocated == 2


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("mapped", [True, False])
def test_a_mapped_pool_costs_memory_only_where_its_buffers_are_written(mapped: bool) -> None:
    pool = BufferPool(1, 64 * MiB, mapped=mapped)
    before = _rss()
    buffer = pool.take()
    grown = _rss() - before
    assert grown < MiB if mapped else grown >= 60 * MiB  # a bytearray is zero-filled
    view = memoryview(buffer)
    view[10 * MiB : 10 * MiB + 5] = b"bytes"
    assert bytes(view[10 * MiB - 1 : 10 * MiB + 6]) == b"\0bytes\0"
    assert len(buffer) == 64 * MiB


def test_a_long_stream_uploads_with_stream_parts_in_flight_and_round_trips(
    driver: CountingDriver,
) -> None:
    data = os.urandom(40 * MiB + 11)  # 9 parts of 5 MiB
    result = upload.upload_stream(driver, "s", io.BufferedReader(io.BytesIO(data)), settings=STREAM)
    assert result.parts == 9
    assert 2 <= driver.most_in_flight <= STREAM.stream_parts == 3
    out = io.BytesIO()
    assert download.download_stream(driver, "s", out, settings=STREAM).verified
    assert out.getvalue() == data


def test_reading_a_stream_reuses_the_same_few_buffers_whatever_its_length(
    driver: CountingDriver,
) -> None:
    data = os.urandom(50 * MiB)  # 10 parts
    upload.upload_stream(driver, "s", io.BufferedReader(io.BytesIO(data)), settings=STREAM)
    seen: set[int] = set()
    pieces: list[bytes] = []
    for chunk in download.iter_object(driver, "s", settings=STREAM):
        seen.add(id(chunk))
        pieces.append(bytes(chunk))  # kept as a copy, as iter_object's contract says
    assert b"".join(pieces) == data
    assert len(seen) <= STREAM.stream_parts + 1


class Chunks:
    """`data` as chunks of the given sizes (in turn), counting how many have been taken."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.pieces: list[bytes] = []
        at = 0
        while at < len(data):
            size = sizes[len(self.pieces) % len(sizes)]
            self.pieces.append(data[at : at + size])
            at += size
        self.taken = 0
        self.closed = False

    def __iter__(self) -> Chunks:
        return self

    def __next__(self) -> bytes:
        if self.taken == len(self.pieces):
            raise StopIteration
        self.taken += 1
        return self.pieces[self.taken - 1]

    def close(self) -> None:
        self.closed = True


class HoldingDriver(CountingDriver):
    """Records each part's body as the driver gets it, and how many chunks had been
    taken from the source by then."""

    chunks: Chunks

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: list[object] = []
        self.taken_at: list[int] = []

    def upload_part(self, key, upload_id, number, body, *, size):
        self.bodies.append(body)
        self.taken_at.append(self.chunks.taken)
        return super().upload_part(key, upload_id, number, body, size=size)


def test_a_stream_of_chunks_goes_up_in_parts_of_views_of_the_chunks_themselves(
    tmp_path: Path,
) -> None:
    (tmp_path / "store" / "b").mkdir(parents=True)
    driver = HoldingDriver(tmp_path / "store", "b")
    data = os.urandom(23 * MiB + 5)
    # a part boundary falls inside a chunk, and parts are made of several chunks
    sizes = [3 * MiB + 1, 700_000, 2 * MiB, 1] * 12
    driver.chunks = chunks = Chunks(data, sizes)
    result = upload.upload_chunks(driver, "c", chunks, settings=STREAM)
    assert result.parts == 5 and result.size == len(data) and chunks.closed
    several = [b for b in driver.bodies if isinstance(b, BufferBody)]
    assert several, "a part made of several chunks is sent as their views, not joined"
    out = io.BytesIO()
    assert download.download_stream(driver, "c", out, settings=STREAM).verified
    assert out.getvalue() == data


def test_a_stream_of_chunks_is_read_no_further_ahead_than_the_parts_it_may_hold(
    tmp_path: Path,
) -> None:
    (tmp_path / "store" / "b").mkdir(parents=True)
    driver = HoldingDriver(tmp_path / "store", "b")
    data = os.urandom(60 * MiB)  # 12 parts of 5 MiB, 60 chunks of 1 MiB
    driver.chunks = chunks = Chunks(data, [MiB])
    upload.upload_chunks(driver, "c", chunks, settings=STREAM)
    held = STREAM.stream_parts + 1  # parts being sent and one being taken
    for number, taken in enumerate(driver.taken_at, 1):
        # when part N is sent, the source has given at most the chunks of `held` parts
        # beyond those already sent (the parts before N that may still be in flight)
        assert taken <= 5 * (number - 1 + held)


def test_a_small_stream_of_chunks_is_one_put(driver: CountingDriver) -> None:
    data = os.urandom(3 * MiB)
    result = upload.upload_chunks(driver, "small", iter([data[:MiB], data[MiB:]]), settings=STREAM)
    assert result.parts == 1 and driver.list_uploads() == []
    assert driver.stat("small").size == len(data)


def test_a_stream_longer_than_ten_thousand_parts_fails_and_keeps_nothing(
    driver: CountingDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "MAX_PARTS", 3)
    data = io.BufferedReader(io.BytesIO(os.urandom(16 * MiB)))  # a 4th part is needed
    with pytest.raises(InvalidSpec, match="longer than 3 parts of 5 MiB"):
        upload.upload_stream(driver, "too-long", data, settings=STREAM)
    with pytest.raises(NotFound):
        driver.stat("too-long")
    assert driver.list_uploads() == []


def test_a_stream_of_exactly_the_part_limit_is_accepted(
    driver: CountingDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "MAX_PARTS", 3)
    data = os.urandom(15 * MiB)
    result = upload.upload_stream(
        driver, "just", io.BufferedReader(io.BytesIO(data)), settings=STREAM
    )
    assert result.parts == 3 and driver.stat("just").size == len(data)


class Window:
    """A PartWindow whose read-ahead a test sets: counts the buffers out at once."""

    def __init__(self, size: int, most: int, ahead: int) -> None:
        self.size, self.most, self.allow = size, most, ahead
        self.out = 0
        self.most_out = 0
        self.made: list[bytearray] = []
        self.free: list[bytearray] = []
        self.asked: list[int] = []
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            self.out += 1
            self.most_out = max(self.most_out, self.out)
            if self.free:
                return self.free.pop()
            self.made.append(bytearray(self.size))
            return self.made[-1]

    def give(self, buffer: PartBuffer) -> None:
        assert isinstance(buffer, bytearray) and any(buffer is b for b in self.made)
        with self._lock:
            self.out -= 1
            self.free.append(buffer)

    def ahead(self, wanted: int) -> int:
        self.asked.append(wanted)
        return self.allow


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_a_window_lends_the_buffers_and_sets_the_read_ahead(
    driver: CountingDriver, ahead: int
) -> None:
    data = os.urandom(50 * MiB + 3)  # 11 parts of 5 MiB (the stored parts: each checked)
    upload.upload_stream(driver, "s", io.BufferedReader(io.BytesIO(data)), settings=STREAM)
    window = Window(8 * MiB, most=3, ahead=ahead)
    results: list[download.DownloadResult] = []
    pieces: list[bytes] = []
    for chunk in download.iter_object(
        driver, "s", settings=STREAM, window=window, on_done=results.append
    ):
        assert isinstance(chunk, memoryview)  # a view of the window's buffer, no copy
        assert any(chunk.obj is b for b in window.made)
        pieces.append(bytes(chunk))
    assert b"".join(pieces) == data and results[0].verified
    # one buffer being read by the caller, `ahead` fetched meanwhile, never more
    assert window.most_out == 1 + ahead and len(window.made) == 1 + ahead
    assert window.out == 0  # every buffer came back
    # asked before each part, with how many more parts there are after it
    assert window.asked == list(range(10, -1, -1))


def test_a_window_gets_its_buffers_back_when_the_reader_stops_early(
    driver: CountingDriver,
) -> None:
    data = os.urandom(30 * MiB)
    upload.upload_stream(driver, "s", io.BufferedReader(io.BytesIO(data)), settings=STREAM)
    window = Window(5 * MiB, most=3, ahead=3)
    chunks = download.iter_object(driver, "s", settings=STREAM, window=window)
    first = next(chunks)
    assert bytes(first) == data[: 5 * MiB]
    del first
    chunks.close()  # type: ignore[attr-defined]  # a generator: the caller stops: fetches under way end, their buffers come back
    assert window.out == 1  # only the chunk handed over stays the caller's
