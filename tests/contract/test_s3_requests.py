"""What the S3 driver puts on the wire, on moto and Ceph RGW: a file download is GETs
only, small bodies go without `Expect: 100-continue`, and a GET read to its end gives its
connection back to the pool."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from argosy.artifacts import download, tree, upload
from argosy.artifacts.drivers.s3 import EXPECT_CONTINUE_MIN, S3Driver, wire
from argosy.artifacts.drivers.s3.multiplex import Multiplexer
from argosy.artifacts.settings import TransferSettings
from tests.conftest import s3_driver, unique_bucket

MiB = 1 << 20
SETTINGS = TransferSettings(part_size=5 * MiB, multipart_threshold=5 * MiB, concurrency=2)


@pytest.fixture(params=["moto", pytest.param("rgw", marks=pytest.mark.rgw)])
def driver(request: pytest.FixtureRequest) -> S3Driver:
    if request.param == "moto":
        endpoint = request.getfixturevalue("moto_endpoint")
        return s3_driver(endpoint, "moto-key", "moto-secret", unique_bucket())
    env = request.getfixturevalue("rgw")
    return s3_driver(
        env["AWS_ENDPOINT_URL"],
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        unique_bucket(),
    )


class Wire:
    """Every request the driver's client sends: (method, path, headers)."""

    def __init__(self, driver: S3Driver) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []
        driver._client.meta.events.register("before-send.s3", self._record)
        if driver._direct is not None:  # small PUTs and GETs that skip botocore
            pool = driver._direct._pool
            send = pool.request

            def recorded(
                method: str, target: str, *, headers: Mapping[str, str], body: Any = None
            ) -> wire.Response:
                self.sent.append((method, target, {k.lower(): str(v) for k, v in headers.items()}))
                return send(method, target, headers=headers, body=body)

            pool.request = recorded  # type: ignore[method-assign]
            batch = driver.batch

            def recorded_batch(connections: int, memory: int) -> Multiplexer | None:
                """The tree's batch lane, recording each request's head as it is sent."""
                mux = batch(connections, memory)
                if mux is not None:
                    build = mux._request

                    def recorded_request(exchange: Any) -> bytes:
                        request = build(exchange)
                        head = request.split(b"\r\n\r\n")[0].decode("latin-1")
                        first, *lines = head.split("\r\n")
                        method, target, _ = first.split(" ")
                        fields = (line.partition(": ") for line in lines)
                        self.sent.append((method, target, {k.lower(): v for k, _, v in fields}))
                        return request

                    mux._request = recorded_request  # type: ignore[method-assign]
                return mux

            driver.batch = recorded_batch  # type: ignore[method-assign]

    def _record(self, request: Any, **_: Any) -> None:
        self.sent.append(
            (
                request.method,
                request.url.split("?")[0],
                {
                    k.lower(): v.decode() if isinstance(v, bytes) else str(v)
                    for k, v in request.headers.items()
                },
            )
        )

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.sent]


def test_a_file_download_sends_gets_only(driver: S3Driver, tmp_path: Path) -> None:
    data = os.urandom(12 * MiB)
    (tmp_path / "src").write_bytes(data)
    upload.upload_file(driver, "big", tmp_path / "src", settings=SETTINGS)
    (tmp_path / "small").write_bytes(b"tiny")
    upload.upload_file(driver, "small", tmp_path / "small", settings=SETTINGS)
    wire = Wire(driver)
    got = download.download_file(driver, "big", tmp_path / "out", settings=SETTINGS)
    assert got.verified and (tmp_path / "out").read_bytes() == data
    assert wire.methods() == ["GET", "GET", "GET"]
    first, *rest = wire.sent
    assert "if-match" not in first[2]
    assert all(h["if-match"] == f'"{got.etag}"' for _, _, h in rest)
    wire.sent.clear()
    small = download.download_file(driver, "small", tmp_path / "out2", settings=SETTINGS)
    assert small.verified and wire.methods() == ["GET"]


def test_an_empty_object_downloads_after_its_first_range_is_refused(
    driver: S3Driver, tmp_path: Path
) -> None:
    (tmp_path / "empty").write_bytes(b"")
    upload.upload_file(driver, "empty", tmp_path / "empty", settings=SETTINGS)
    got = download.download_file(driver, "empty", tmp_path / "out", settings=SETTINGS)
    assert got.verified and (tmp_path / "out").read_bytes() == b""


def test_a_tree_with_a_manifest_downloads_with_one_get_per_small_file(
    driver: S3Driver, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    src.mkdir()
    for i in range(4):
        (src / f"{i}.txt").write_text(f"file {i}")
    tree.upload_tree(driver, "run", src, settings=SETTINGS, manifest=True)
    wire = Wire(driver)
    back = tree.download_tree(driver, "run", tmp_path / "back", settings=SETTINGS)
    assert back.files == 4 and back.verified == 4
    # the manifest (HEAD + GET), one listing, then one GET per file
    assert sorted(wire.methods()) == ["GET"] * (4 + 2) + ["HEAD"]


def test_small_bodies_go_without_expect_100_continue_and_large_ones_with_it(
    driver: S3Driver, tmp_path: Path
) -> None:
    wire = Wire(driver)
    driver._direct = None  # botocore's path: the direct one never sends Expect
    driver.put("small", b"x" * 1000, size=1000, metadata={})
    (tmp_path / "src").write_bytes(os.urandom(EXPECT_CONTINUE_MIN + 5 * MiB))
    upload.upload_file(driver, "parts", tmp_path / "src", settings=SETTINGS)
    puts = [(path.rsplit("/", 1)[-1], h) for method, path, h in wire.sent if method == "PUT"]
    small = [h for name, h in puts if name == "small"]
    parts = [h for name, h in puts if name == "parts" and "expect" in h]
    assert small and "expect" not in small[0]
    assert parts and all(int(h["content-length"]) >= EXPECT_CONTINUE_MIN for h in parts)


def test_a_get_read_to_its_end_gives_its_connection_back(driver: S3Driver) -> None:
    driver.put("k", b"abc" * 100, size=300, metadata={})
    for _ in range(5):
        stream = driver.read("k", start=0, end=299)
        buffer = bytearray(300)
        assert stream.readinto(memoryview(buffer)) == 300
        stream.close()
    endpoint = driver._client._endpoint
    pool = endpoint.http_session._manager.connection_from_url(endpoint.host)
    assert pool.num_connections == 1
