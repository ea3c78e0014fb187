"""The background stage: order kept, errors carried over, and an early stop stops it."""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from argosy.artifacts.archive import compress, extract_members, read_tar
from argosy.artifacts.archive.pipeline import background
from argosy.artifacts.errors import IntegrityError, InvalidSpec
from tests.archive.helpers import file, tar_bytes


def test_chunks_arrive_in_order_from_the_worker_thread() -> None:
    threads: set[str] = set()

    def source() -> Iterator[bytes]:
        for i in range(100):
            threads.add(threading.current_thread().name)
            yield b"%d" % i

    assert list(background(source(), depth=2)) == [b"%d" % i for i in range(100)]
    assert threads == {"argosy-archive-stage"}


def test_an_error_in_the_stage_is_raised_in_the_consumer() -> None:
    def source() -> Iterator[bytes]:
        yield b"first"
        raise IntegrityError("zstd stream truncated")

    out = background(source())
    assert next(out) == b"first"
    with pytest.raises(IntegrityError, match="truncated"):
        next(out)


def test_a_consumer_that_stops_early_stops_and_closes_the_stage() -> None:
    pulled = []
    closed = threading.Event()

    def source() -> Iterator[bytes]:
        try:
            for i in range(10_000):
                pulled.append(i)
                yield b"x"
        finally:
            closed.set()

    out = background(source(), depth=2)
    assert isinstance(out, Generator)  # so a consumer can close it
    next(out)
    out.close()
    assert closed.is_set() and len(pulled) < 10


def test_a_refused_archive_stops_reading_its_stream_at_once(tmp_path: Path) -> None:
    members = [file(f"f{i}", os.urandom(5000)) for i in range(400)]
    data = b"".join(compress([tar_bytes(file("../evil"), *members)], "gzip"))
    served = []
    closed = threading.Event()

    def download() -> Iterator[bytes]:
        try:
            for i in range(0, len(data), 512):
                served.append(i)
                yield data[i : i + 512]
        finally:
            closed.set()

    held = read_tar(download())  # held here, so only an explicit close stops it
    with pytest.raises(InvalidSpec, match="'../evil'"):
        extract_members(held, tmp_path / "out")
    assert closed.is_set() and len(served) * 512 < len(data)
