"""`argosy cp` killed with SIGKILL at seeded random moments of an upload, a download and
an archive's extraction, then run again.

In between, nothing half-written is visible under the final key or path (it is absent,
or whole and right); the rerun completes and verifies.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from argosy.testing.faults import Delay, FaultProxy, Rule
from tests.hostile.conftest import SEED, iterations
from tests.hostile.helpers import (
    MiB,
    argosy,
    command,
    keys,
    leftovers,
    make_tree,
    new_bucket,
    read_object,
    rgw_env,
    tree_files,
)

pytestmark = [pytest.mark.hostile, pytest.mark.rgw]

SIZE = 24 * MiB + 3


@pytest.fixture
def slow(rgw: dict[str, str]) -> Iterator[FaultProxy]:
    """RGW 30 ms further away, bodies paced, so a transfer lasts long enough to be killed
    in the middle."""
    rule = Rule(Delay(head=0.03, between_chunks=0.002, chunk=256 << 10), times=None)
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], [rule]) as proxy:
        yield proxy


class Case:
    def __init__(self, rgw: dict[str, str], home: Path, seed: int) -> None:
        self.rgw, self.home, self.seed = rgw, home, seed
        self.bucket = new_bucket(rgw)
        self.url = f"s3://{self.bucket.bucket}"
        self.data = random.Random(seed).randbytes(SIZE)
        (home / "out").mkdir()

    def direct(self, *args: str) -> None:
        done = argosy(*args, env=rgw_env(self.rgw, self.home), cwd=self.home)
        assert done.code == 0, done.err


def _upload(case: Case) -> tuple[list[str], Any, Any]:
    (case.home / "big.bin").write_bytes(case.data)

    def between() -> None:
        assert keys(case.bucket) in ([], ["big.bin"])
        if keys(case.bucket):
            assert read_object(case.bucket, "big.bin") == case.data

    def after() -> None:
        assert read_object(case.bucket, "big.bin") == case.data

    args = ["cp", "-q", "--part-size", "5", "--concurrency", "2", "big.bin", f"{case.url}/big.bin"]
    return args, between, after


def _download(case: Case) -> tuple[list[str], Any, Any]:
    (case.home / "big.bin").write_bytes(case.data)
    case.direct("cp", "--part-size", "5", "big.bin", f"{case.url}/big.bin")
    final = case.home / "out" / "big.bin"

    def between() -> None:
        assert not final.exists() or final.read_bytes() == case.data

    def after() -> None:
        assert final.read_bytes() == case.data

    args = [
        "cp",
        "-q",
        "--part-size",
        "5",
        "--concurrency",
        "2",
        f"{case.url}/big.bin",
        "out/big.bin",
    ]
    return args, between, after


def _extract(case: Case) -> tuple[list[str], Any, Any]:
    files = make_tree(case.home / "tree", case.seed, files=30)
    case.direct("cp", "--archive", "tar.gz", "tree", f"{case.url}/tree.tgz")
    final = case.home / "out" / "tree"

    def between() -> None:
        assert not final.exists() or tree_files(final) == files

    def after() -> None:
        assert tree_files(final) == files

    return ["cp", "-q", "--archive", "auto", f"{case.url}/tree.tgz", "out/tree"], between, after


OPERATIONS = {"an upload": _upload, "a download": _download, "an extraction": _extract}


def _cases() -> list[Any]:
    count = iterations(2)
    return [
        pytest.param(op, SEED + i, id=f"{op} killed, seed {SEED + i}")
        for op in OPERATIONS
        for i in range(count)
    ]


@pytest.mark.parametrize(("operation", "seed"), _cases())
def test_a_transfer_killed_at_a_random_moment_leaves_nothing_half_written_and_reruns_whole(
    operation: str, seed: int, rgw: dict[str, str], slow: FaultProxy, tmp_path: Path
) -> None:
    case = Case(rgw, tmp_path, seed)
    args, between, after = OPERATIONS[operation](case)
    proc = subprocess.Popen(
        command(*args),
        env=rgw_env(rgw, tmp_path, slow.url),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(random.Random(seed).uniform(0.2, 1.2))
    proc.send_signal(signal.SIGKILL)
    finished = proc.wait(timeout=30) == 0  # done before the kill: nothing to rerun
    between()
    if not finished:
        rerun = argosy(*args, env=rgw_env(rgw, tmp_path), cwd=tmp_path)
        assert rerun.code == 0, rerun.err
    after()


def test_after_a_killed_download_the_rerun_leaves_no_temporary_file_beside_it(
    rgw: dict[str, str], slow: FaultProxy, tmp_path: Path
) -> None:
    case = Case(rgw, tmp_path, SEED)
    args, _, after = _download(case)
    proc = subprocess.Popen(
        command(*args),
        env=rgw_env(rgw, tmp_path, slow.url),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not leftovers(tmp_path / "out") and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert leftovers(tmp_path / "out"), "the download was killed before it wrote anything"
    rerun = argosy(*args, env=rgw_env(rgw, tmp_path), cwd=tmp_path)
    assert rerun.code == 0, rerun.err
    after()
    assert leftovers(tmp_path / "out") == []
    assert os.listdir(tmp_path / "out") == ["big.bin"]
