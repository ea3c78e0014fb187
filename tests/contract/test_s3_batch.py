"""A tree's small files move in the S3 driver's batch (one thread, many requests in flight
on non-blocking sockets), against Ceph RGW through the fault proxy: many at once, within
their memory bound, and every exchange the batch cannot finish is done again by the
pool of threads, so a tree still ends whole and verified."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from argosy.artifacts import tree
from argosy.artifacts.drivers.s3 import S3Driver, S3Settings
from argosy.artifacts.drivers.s3.multiplex import Multiplexer
from argosy.artifacts.errors import ArtifactError
from argosy.artifacts.protocol import Exchange
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings
from argosy.testing.faults import Answer, BlackHole, Delay, FaultProxy, Reset, Rule
from tests.conftest import unique_bucket
from tests.tls_proxy import TlsProxy, make_cert

pytestmark = pytest.mark.rgw

SETTINGS = TransferSettings(retry=RetryPolicy(attempts=3, base=0.01, cap=0.05))
KiB = 1 << 10


class Watched:
    """The driver's batch, watched: every exchange it finished or failed, and the most it
    had in flight and in memory at once."""

    def __init__(self, driver: S3Driver) -> None:
        self.done: list[Exchange] = []
        self.failed: list[Exchange] = []
        self.most_in_flight = 0
        self.most_in_flight_after_a_failure = 0
        self.most_held = 0
        make = driver.batch

        def batch(connections: int, memory: int) -> Multiplexer | None:
            mux = make(connections, memory)
            assert mux is not None, "the driver offers no batch"
            run, start = mux.run, mux._start

            def watched_start(exchange: Exchange, finished: Any, budget: Any) -> bool:
                ok = start(exchange, finished, budget)
                self.most_in_flight = max(self.most_in_flight, len(mux._busy))
                if self.failed:
                    self.most_in_flight_after_a_failure = max(
                        self.most_in_flight_after_a_failure, len(mux._busy)
                    )
                self.most_held = max(self.most_held, mux._held)
                return ok

            def watched_run(
                exchanges: Iterator[Exchange], finished: Callable[[Exchange], None], *rest: Any
            ) -> None:
                def seen(exchange: Exchange) -> None:
                    (self.failed if exchange.failed else self.done).append(exchange)
                    finished(exchange)

                run(exchanges, seen, *rest)

            mux._start = watched_start  # type: ignore[method-assign]
            mux.run = watched_run  # type: ignore[method-assign, assignment]
            return mux

        driver.batch = batch  # type: ignore[method-assign]


def _driver(
    endpoint: str, env: dict[str, str], bucket: str, read_timeout: float = 60, **more: Any
) -> S3Driver:
    return S3Driver(
        S3Settings(
            endpoint=endpoint,
            region="us-east-1",
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            addressing_style="path",
            read_timeout=read_timeout,
            **more,
        ),
        bucket,
    )


def _tree(root: Path, files: int, size: int = 3 * KiB) -> dict[str, bytes]:
    made = {}
    for i in range(files):
        rel = f"d{i % 4}/f{i:03}.bin"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        made[rel] = os.urandom(size + i)
        (root / rel).write_bytes(made[rel])
    return made


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _download_through_proxy(
    rgw: dict[str, str],
    bucket: str,
    rules: list[Rule],
    dest: Path,
    settings: TransferSettings = SETTINGS,
    read_timeout: float = 60,
) -> tuple[tree.TreeResult, Watched]:
    """`run/` of `bucket` downloaded into `dest` through the fault proxy with `rules`."""
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], rules) as proxy:
        driver = _driver(proxy.url, rgw, bucket, read_timeout=read_timeout)
        watched = Watched(driver)
        return tree.download_tree(driver, "run", dest, settings=settings), watched


@pytest.fixture
def uploaded(rgw: dict[str, str], tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    """A bucket holding a tree of 40 small files under `run/`, with its manifest."""
    bucket = unique_bucket("batch")
    driver = _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket)
    driver.create_bucket()
    files = _tree(tmp_path / "src", 40)
    tree.upload_tree(driver, "run", tmp_path / "src", settings=SETTINGS, manifest=True)
    return bucket, files


def test_small_files_come_down_many_at_once_in_the_batch(
    rgw: dict[str, str], uploaded: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    bucket, files = uploaded
    rules = [Rule(Delay(head=0.3), method="GET", query="^$", times=None)]
    result, watched = _download_through_proxy(rgw, bucket, rules, tmp_path / "back")
    assert result.files == result.verified == 40
    assert _read_tree(tmp_path / "back") == files
    assert len(watched.done) == 40 and not watched.failed
    assert watched.most_in_flight >= 20  # each answer held 0.3 s: they overlapped


def test_the_batch_holds_no_more_bodies_than_its_memory_allows(
    rgw: dict[str, str], uploaded: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    bucket, files = uploaded
    settings = TransferSettings(batch_memory=10 * KiB, retry=SETTINGS.retry)
    rules = [Rule(Delay(head=0.05), method="GET", query="^$", times=None)]
    _, watched = _download_through_proxy(rgw, bucket, rules, tmp_path / "back", settings)
    assert _read_tree(tmp_path / "back") == files
    # the files are 3-4 KiB: past 10 KiB held, no exchange starts
    assert 1 < watched.most_in_flight <= 4 and watched.most_held < 10 * KiB + 4 * KiB


@pytest.mark.parametrize(
    "fault",
    [Answer(503), Reset(response_bytes=100), Answer(403, code="AccessDenied")],
    ids=["503 SlowDown", "reset mid-answer", "403 once"],
)
def test_a_get_the_batch_cannot_finish_is_done_again_by_the_pool(
    rgw: dict[str, str], uploaded: tuple[str, dict[str, bytes]], tmp_path: Path, fault: Any
) -> None:
    bucket, files = uploaded
    rules = [Rule(fault, method="GET", path=r"/f01\d\.bin$", times=3)]
    result, watched = _download_through_proxy(rgw, bucket, rules, tmp_path / "back")
    assert result.files == result.verified == 40
    assert _read_tree(tmp_path / "back") == files
    assert len(watched.failed) == 3 and len(watched.done) == 37


def test_an_answer_that_never_comes_times_out_and_the_pool_fetches_the_file(
    rgw: dict[str, str], uploaded: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    bucket, files = uploaded
    rules = [Rule(BlackHole(), method="GET", path=r"/f007\.bin$", times=1)]
    _, watched = _download_through_proxy(rgw, bucket, rules, tmp_path / "back", read_timeout=1)
    assert _read_tree(tmp_path / "back") == files
    assert [e.failed for e in watched.failed] == ["timed out"]


def test_small_files_go_up_in_the_batch_with_their_checksum_records(
    rgw: dict[str, str], tmp_path: Path
) -> None:
    bucket = unique_bucket("batch")
    files = _tree(tmp_path / "src", 30)
    rules = [Rule(Answer(503), method="PUT", path=r"/f00\d\.bin$", times=2)]
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], rules) as proxy:
        driver = _driver(proxy.url, rgw, bucket)
        driver.create_bucket()
        watched = Watched(driver)
        result = tree.upload_tree(driver, "run", tmp_path / "src", settings=SETTINGS)
    assert result.files == 30 and result.verified == 30
    assert len(watched.done) == 28 and len(watched.failed) == 2
    direct = _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket)
    for rel, data in files.items():
        info = direct.stat(f"run/{rel}")
        assert info.size == len(data) and "argosy-checksum" in info.metadata
    back = tree.download_tree(direct, "run", tmp_path / "back", settings=SETTINGS)
    assert back.verified == 30 and _read_tree(tmp_path / "back") == files


def test_files_of_a_megabyte_or_more_go_through_the_pool_beside_the_batch(
    rgw: dict[str, str], tmp_path: Path
) -> None:
    bucket = unique_bucket("batch")
    driver = _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket)
    driver.create_bucket()
    files = _tree(tmp_path / "src", 10)
    (tmp_path / "src" / "big.bin").write_bytes(big := os.urandom(driver.batch_limit))
    files["big.bin"] = big
    watched = Watched(driver)
    tree.upload_tree(driver, "run", tmp_path / "src", settings=SETTINGS, manifest=True)
    tree.download_tree(driver, "run", tmp_path / "back", settings=SETTINGS)
    assert _read_tree(tmp_path / "back") == files
    assert sorted(e.key for e in watched.done) == sorted(
        [f"run/{r}" for r in files if r != "big.bin"] * 2
    )


@pytest.fixture
def tls_rgw(rgw: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """RGW behind a TLS front with a throwaway CA: (https endpoint, the CA's file)."""
    cert, key = make_cert(tmp_path)
    proxy = TlsProxy(int(rgw["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]), cert, key)
    yield f"https://127.0.0.1:{proxy.port}", cert
    proxy.close()


def test_the_batch_speaks_tls_with_the_driver_s_certificate_checks(
    rgw: dict[str, str], tls_rgw: tuple[str, Path], tmp_path: Path
) -> None:
    endpoint, ca = tls_rgw
    bucket = unique_bucket("batch")
    driver = _driver(endpoint, rgw, bucket, verify=str(ca))
    driver.create_bucket()
    files = _tree(tmp_path / "src", 30, size=40 * KiB)  # answers of several TLS records
    watched = Watched(driver)
    tree.upload_tree(driver, "run", tmp_path / "src", settings=SETTINGS, manifest=True)
    result = tree.download_tree(driver, "run", tmp_path / "back", settings=SETTINGS)
    assert result.verified == 30 and _read_tree(tmp_path / "back") == files
    assert len(watched.done) == 60 and not watched.failed
    untrusted = _driver(endpoint, rgw, bucket)  # no CA bundle: the handshake fails
    with pytest.raises(ArtifactError, match="certificate"):
        tree.upload_tree(untrusted, "again", tmp_path / "src", settings=SETTINGS)
    assert driver.list("again/").objects == []


def test_an_object_grown_since_the_manifest_is_refused_before_its_bytes_are_held(
    rgw: dict[str, str], uploaded: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    bucket, files = uploaded
    driver = _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket)
    grown = b"x" * 200 * KiB  # the manifest says 3 KiB: the memory bound counted that
    driver.put("run/d1/f005.bin", grown, size=len(grown), metadata={})
    watched = Watched(driver)
    with pytest.raises(ArtifactError, match="f005"):
        tree.download_tree(driver, "run", tmp_path / "back", settings=SETTINGS)
    assert [e.key for e in watched.failed] == ["run/d1/f005.bin"]
    assert "expected" in watched.failed[0].failed
    assert not (tmp_path / "back").exists()


def test_a_server_serving_only_the_batch_s_connections_still_serves_the_pool_after_it(
    rgw: dict[str, str], tmp_path: Path
) -> None:
    bucket = unique_bucket("batch")
    _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket).create_bucket()
    files = _tree(tmp_path / "src", 30)
    settings = TransferSettings(batch_concurrency=4, stall_timeout=20, retry=SETTINGS.retry)
    rules = [Rule(Answer(503), method="PUT", path=r"/f00[01]\.bin$", times=2)]
    # the proxy serves 4 connections at once, the next wait: all the batch holds
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], rules, max_connections=4) as proxy:
        driver = _driver(proxy.url, rgw, bucket, read_timeout=10)
        watched = Watched(driver)
        result = tree.upload_tree(driver, "run", tmp_path / "src", settings=settings)
    assert result.files == result.verified == 30
    assert len(watched.failed) == 2 and watched.most_in_flight == 4
    back = tree.download_tree(
        _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket), "run", tmp_path / "back", settings=SETTINGS
    )
    assert back.verified == 30 and _read_tree(tmp_path / "back") == files


@pytest.mark.parametrize("cap", [4, None])
def test_connections_a_capped_server_leaves_unanswered_fail_early_and_the_batch_keeps_the_rest(
    rgw: dict[str, str], tmp_path: Path, cap: int | None
) -> None:
    bucket = unique_bucket("unserved")
    _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket).create_bucket()
    files = _tree(tmp_path / "src", 400, size=KiB)
    settings = TransferSettings(batch_concurrency=8, retry=SETTINGS.retry)
    slow = [Rule(Delay(head=0.03), times=None)]  # so that the lane is still at work past 2 s
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], slow, max_connections=cap or 256) as proxy:
        # a read timeout the test would wait out, were the unanswered noticed only then
        driver = _driver(proxy.url, rgw, bucket, read_timeout=600)
        watched = Watched(driver)
        result = tree.upload_tree(driver, "run", tmp_path / "src", settings=settings)
    assert result.files == result.verified == 400
    if cap is None:  # every connection answered: none is taken for unanswered
        assert watched.failed == []
    else:  # the 4 beyond the cap fail, for that reason, and the batch goes on with 4
        assert len(watched.failed) == 4
        assert all("serves only so many connections" in e.failed for e in watched.failed)
        assert watched.most_in_flight == 8 and watched.most_in_flight_after_a_failure == 4
    back = tree.download_tree(
        _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket), "run", tmp_path / "back", settings=SETTINGS
    )
    assert back.verified == 400 and _read_tree(tmp_path / "back") == files


@pytest.mark.parametrize("files", [None, 8, 1])
def test_files_in_flight_bound_the_lane_and_the_pool_together_at_the_server(
    rgw: dict[str, str], tmp_path: Path, files: int | None
) -> None:
    bucket = unique_bucket("files")
    _driver(rgw["AWS_ENDPOINT_URL"], rgw, bucket).create_bucket()
    made = _tree(tmp_path / "src", 60)
    for i in range(3):  # the pool's: 1 MiB or more
        made[f"big{i}.bin"] = os.urandom((1 << 20) + i)
        (tmp_path / "src" / f"big{i}.bin").write_bytes(made[f"big{i}.bin"])
    settings = TransferSettings(files=files, retry=SETTINGS.retry)
    delayed = [Rule(Delay(head=0.05), times=None)]  # so that requests overlap
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], delayed) as proxy:
        driver = _driver(proxy.url, rgw, bucket)
        up = tree.upload_tree(driver, "run", tmp_path / "src", settings=settings)
        most_up, proxy.stats.most_in_flight = proxy.stats.most_in_flight, 0
        down = tree.download_tree(driver, "run", tmp_path / "back", settings=settings)
        most_down = proxy.stats.most_in_flight
    assert up.files == down.files == 63 and _read_tree(tmp_path / "back") == made
    if files is None:  # the defaults: far more than 8 at once
        assert most_up > 8 and most_down > 8
    else:
        assert most_up <= files and most_down <= files
        assert files == 1 or max(most_up, most_down) > 1
