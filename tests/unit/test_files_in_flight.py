"""`files` bounds the files a tree has in flight, the pool of threads and the S3 batch lane
together: beside a lane the pool takes a quarter and the lane the rest; with no lane (any
other driver) the pool takes them all; 1 runs no lane. Left unset, the two defaults stand."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from argosy.artifacts import tree
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.settings import TransferSettings


@pytest.mark.parametrize(
    ("files", "pool", "lane"),
    [
        (None, 32, 128),
        (160, 32, 128),
        (1000, 32, 968),
        (64, 16, 48),
        (8, 2, 6),
        (2, 1, 1),
        (1, 1, 0),
    ],
)
def test_beside_a_lane_the_pool_takes_a_quarter_and_the_lane_the_rest(
    files: int | None, pool: int, lane: int
) -> None:
    settings = TransferSettings(files=files)
    assert (settings.tree_pool(beside_lane=True), settings.tree_lane) == (pool, lane)


@pytest.mark.parametrize(("files", "pool"), [(None, 32), (1, 1), (5, 5), (200, 200)])
def test_without_a_lane_the_pool_takes_them_all(files: int | None, pool: int) -> None:
    assert TransferSettings(files=files).tree_pool(beside_lane=False) == pool


@pytest.mark.parametrize("files", [0, -4])
def test_fewer_than_one_file_in_flight_is_refused(files: int) -> None:
    with pytest.raises(InvalidSpec, match=f"files in flight must be at least 1, not {files}"):
        TransferSettings(files=files)


class Counting(LocalDriver):
    """Counts the PUTs under way at once, each held long enough for the others to start."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, "bucket")
        self._lock = threading.Lock()
        self.now = self.most = 0

    def put(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.02)
            return super().put(*args, **kwargs)
        finally:
            with self._lock:
                self.now -= 1


@pytest.mark.parametrize(("files", "most"), [(3, 3), (None, 4)])
def test_a_tree_on_a_driver_without_a_lane_has_at_most_files_puts_at_once(
    tmp_path: Path, files: int | None, most: int
) -> None:
    (tmp_path / "src").mkdir()
    for i in range(20):
        (tmp_path / "src" / f"f{i:02}").write_bytes(b"x" * i)
    driver = Counting(tmp_path / "store")
    driver.create_bucket()
    settings = TransferSettings(files=files)
    result = tree.upload_tree(driver, "run", tmp_path / "src", settings=settings)
    assert result.files == 20
    assert driver.most == most if files else driver.most >= most
