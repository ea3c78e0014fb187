"""`argosy cp` through the fault proxy in front of Ceph RGW: files, folders and archives,
up and down, while requests are refused, reset, truncated, corrupted or lose their answer.

Every run ends one of two ways: exit 0 with the right bytes, verified (a transient fault
is retried), or a one-line error with the fault's exit code and nothing half-written:
no object under the final key, nothing at the local destination and no temporary file
beside it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from argosy.artifacts.download import download_file
from argosy.artifacts.drivers.s3 import S3Driver, S3Settings
from argosy.artifacts.errors import TransientError
from argosy.artifacts.settings import TransferSettings
from argosy.testing.faults import (
    Answer,
    BlackHole,
    Corrupt,
    FaultProxy,
    LoseAnswer,
    Reset,
    Rule,
    Truncate,
)
from tests.hostile.conftest import SEED, iterations
from tests.hostile.helpers import (
    MiB,
    argosy,
    keys,
    leftovers,
    make_tree,
    new_bucket,
    read_object,
    rgw_env,
    tree_files,
)

pytestmark = [pytest.mark.hostile, pytest.mark.rgw]

OBJECT = 12 * MiB + 7  # three parts of 5 MiB


@dataclass(frozen=True)
class Fault:
    """Rules for the proxy, given whether the operation uploads; the exit code it must
    end with when it does not succeed (None: it must succeed)."""

    rules: Callable[[bool], list[Rule]]
    fails_with: int | None


def _on_objects(fault: Any, up: bool, times: int | None) -> Rule:
    """`fault` on the requests that carry an object's bytes: PUTs up, GETs of objects down."""
    if up:
        return Rule(fault, method="PUT", times=times)
    return Rule(fault, method="GET", query="^$", times=times)


FAULTS: dict[str, Fault] = {
    "two 503 SlowDown": Fault(lambda up: [_on_objects(Answer(503), up, 2)], None),
    "503 on every request": Fault(lambda up: [Rule(Answer(503), times=None)], 1),
    "500 once, on the first request": Fault(
        lambda up: [Rule(Answer(500, code="InternalError"), times=1)], None
    ),
    "resets mid-body": Fault(
        lambda up: [
            _on_objects(Reset(request_bytes=70000) if up else Reset(response_bytes=70000), up, 2)
        ],
        None,
    ),
    "truncated answers": Fault(
        lambda up: [Rule(Truncate(after=50000), method="GET", query="^$", times=2)], None
    ),
    "every body corrupted": Fault(
        lambda up: [Rule(Corrupt(count=2, seed=SEED), method="GET", query="^$", times=None)], 4
    ),
    "one body corrupted": Fault(
        lambda up: [Rule(Corrupt(count=1, seed=SEED), method="GET", query="^$", times=1)], 4
    ),
    "lost answers of writes": Fault(
        lambda up: [Rule(LoseAnswer(), method="PUT|POST", times=2)], None
    ),
}


class Operation:
    """One kind of transfer: `prepare` puts its source in place, `run` is the command,
    `check` verifies a success, `untouched` that a failure left nothing."""

    up = False

    def __init__(self, bucket: Any, home: Path, rgw: dict[str, str], seed: int) -> None:
        self.bucket, self.home, self.rgw, self.seed = bucket, home, rgw, seed
        self.url = f"s3://{bucket.bucket}"
        (home / "out").mkdir()

    def direct(self, *args: str) -> None:
        done = argosy(*args, env=rgw_env(self.rgw, self.home), cwd=self.home)
        assert done.code == 0, done.err

    def prepare(self) -> None: ...

    def args(self) -> list[str]:
        raise NotImplementedError

    def check(self) -> None:
        raise NotImplementedError

    def untouched(self) -> None:
        """A download left nothing in out/; an upload, no object."""
        if self.up:
            assert keys(self.bucket, "") == [], "an object was left under the final key"
        else:
            assert os.listdir(self.home / "out") == []


class UploadFile(Operation):
    up = True

    def prepare(self) -> None:
        self.data = random.Random(self.seed).randbytes(OBJECT)
        (self.home / "big.bin").write_bytes(self.data)

    def args(self) -> list[str]:
        return ["cp", "--part-size", "5", "big.bin", f"{self.url}/big.bin"]

    def check(self) -> None:
        assert read_object(self.bucket, "big.bin") == self.data


class DownloadFile(UploadFile):
    up = False

    def prepare(self) -> None:
        super().prepare()
        self.direct("cp", "--part-size", "5", "big.bin", f"{self.url}/big.bin")

    def args(self) -> list[str]:
        return ["cp", "--part-size", "5", f"{self.url}/big.bin", "out/big.bin"]

    def check(self) -> None:
        assert (self.home / "out" / "big.bin").read_bytes() == self.data


class UploadTree(Operation):
    up = True

    def prepare(self) -> None:
        self.files = make_tree(self.home / "tree", self.seed)

    def args(self) -> list[str]:
        return ["cp", "-r", "--part-size", "5", "tree", f"{self.url}/run/"]

    def check(self) -> None:
        for rel, data in self.files.items():
            assert read_object(self.bucket, f"run/{rel}") == data, rel


class DownloadTree(UploadTree):
    up = False

    def prepare(self) -> None:
        super().prepare()
        self.direct("cp", "-r", "tree", f"{self.url}/run/")

    def args(self) -> list[str]:
        return ["cp", "-r", "--part-size", "5", f"{self.url}/run/", "out/tree"]

    def check(self) -> None:
        assert tree_files(self.home / "out" / "tree") == self.files


class UploadArchive(UploadTree):
    def args(self) -> list[str]:
        return ["cp", "--archive", "tar.zst", "tree", f"{self.url}/tree.tzst"]

    def check(self) -> None:
        self.direct("cp", "--archive", "auto", f"{self.url}/tree.tzst", "back")
        assert tree_files(self.home / "back") == self.files


class DownloadArchive(UploadTree):
    up = False

    def prepare(self) -> None:
        super().prepare()
        self.direct("cp", "--archive", "tar.zst", "tree", f"{self.url}/tree.tzst")

    def args(self) -> list[str]:
        return ["cp", "--archive", "auto", f"{self.url}/tree.tzst", "out/tree"]

    def check(self) -> None:
        assert tree_files(self.home / "out" / "tree") == self.files


OPERATIONS: dict[str, type[Operation]] = {
    "a file upload": UploadFile,
    "a file download": DownloadFile,
    "a folder upload": UploadTree,
    "a folder download": DownloadTree,
    "an archive upload": UploadArchive,
    "an archive download": DownloadArchive,
}

KNOWN: dict[tuple[str, str], str] = {}

# the cases run by default: every operation under the faults that concern it
DEFAULT = [
    ("a file upload", "two 503 SlowDown"),
    ("a file upload", "503 on every request"),
    ("a file upload", "resets mid-body"),
    ("a file upload", "lost answers of writes"),
    ("a file download", "two 503 SlowDown"),
    ("a file download", "resets mid-body"),
    ("a file download", "truncated answers"),
    ("a file download", "every body corrupted"),
    ("a file download", "503 on every request"),
    ("a folder upload", "two 503 SlowDown"),
    ("a folder upload", "503 on every request"),
    ("a folder upload", "lost answers of writes"),
    ("a folder download", "resets mid-body"),
    ("a folder download", "one body corrupted"),
    ("a folder download", "500 once, on the first request"),
    ("an archive upload", "resets mid-body"),
    ("an archive upload", "503 on every request"),
    ("an archive download", "truncated answers"),
    ("an archive download", "every body corrupted"),
    ("an archive download", "503 on every request"),
]


def _cases() -> list[Any]:
    chosen = DEFAULT
    if os.environ.get("ARGOSY_HOSTILE_ITERATIONS"):
        rng = random.Random(SEED)
        pairs = [(op, fault) for op in OPERATIONS for fault in FAULTS]
        chosen = [rng.choice(pairs) for _ in range(iterations(len(DEFAULT)))]
    cases = []
    for i, (op, fault) in enumerate(chosen):
        marks = []
        if (op, fault) in KNOWN:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[(op, fault)]))
        cases.append(pytest.param(op, fault, SEED + i, id=f"{op} under {fault}", marks=marks))
    return cases


@pytest.fixture
def proxy(rgw: dict[str, str]) -> Iterator[FaultProxy]:
    with FaultProxy(rgw["AWS_ENDPOINT_URL"]) as running:
        yield running


@pytest.mark.parametrize(("operation", "fault", "seed"), _cases())
def test_a_transfer_under_faults_ends_verified_or_as_one_clean_error_leaving_nothing(
    operation: str,
    fault: str,
    seed: int,
    rgw: dict[str, str],
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    op = OPERATIONS[operation](new_bucket(rgw), tmp_path, rgw, seed)
    op.prepare()
    for rule in FAULTS[fault].rules(op.up):
        proxy.add(rule)
    name, *args = op.args()
    done = argosy(name, "-q", *args, env=rgw_env(rgw, tmp_path, proxy.url), cwd=tmp_path)
    assert proxy.hits, f"the fault never fired: {done.err}"
    expected = FAULTS[fault].fails_with
    if done.code == 0:
        op.check()
    else:
        assert done.code == expected, done.err
        assert done.one_line, done.err
        op.untouched()
    if expected is not None and fault != "one body corrupted":
        assert done.code == expected, "a fault that never passes was survived"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "out") == []


def test_a_download_from_a_server_that_never_answers_fails_and_leaves_nothing(
    rgw: dict[str, str], tmp_path: Path
) -> None:
    bucket = new_bucket(rgw)
    bucket.put("k", b"x" * 1000, size=1000, metadata={})
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], [Rule(BlackHole(), method="GET", times=None)]) as p:
        stalled = S3Driver(
            S3Settings(
                endpoint=p.url,
                region="us-east-1",
                access_key=rgw["AWS_ACCESS_KEY_ID"],
                secret_key=rgw["AWS_SECRET_ACCESS_KEY"],
                addressing_style="path",
                read_timeout=0.5,
            ),
            bucket.bucket,
        )
        with pytest.raises(TransientError):
            download_file(stalled, "k", tmp_path / "k", settings=TransferSettings())
    assert os.listdir(tmp_path) == []
