"""What `argosy` says when S3 fails it, against Ceph RGW as a user runs it: every error
names the object, and a failed download leaves no file."""

from __future__ import annotations

import os

import pytest

from argosy.testing.faults import Answer, FaultProxy, Reset, Rule
from tests.conftest import unique_bucket

pytestmark = pytest.mark.rgw
MiB = 1 << 20


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def big(argosy_rgw, rgw_bucket, tmp_path) -> str:
    """A 12 MiB object in parts of 5 MiB; its URL."""
    (tmp_path / "big").write_bytes(os.urandom(12 * MiB))
    url = f"s3://{rgw_bucket}/dir/big"
    assert argosy_rgw("cp", "-q", "--part-size", "5", "big", url).code == 0
    (tmp_path / "big").unlink()
    return url


def test_a_download_whose_connection_keeps_resetting_mid_body_names_the_object(
    argosy_rgw, rgw, big, tmp_path
) -> None:
    every_get_cut = Rule(Reset(response_bytes=100_000), method="GET", times=None)
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], [every_get_cut]) as proxy:
        for command in (["cp", big, "out"], ["cat", big]):
            run = argosy_rgw(*command, "--endpoint", proxy.url)
            assert run.code == 1
            assert _one_line(run.err).startswith(f"argosy: error: {big}: connection failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_download_cut_off_then_answered_500_names_the_object(
    argosy_rgw, rgw, big, tmp_path
) -> None:
    first_get_cut = Rule(Reset(response_bytes=100_000), method="GET")
    then_500 = Rule(Answer(500, "InternalError", "injected"), method="GET", times=None)
    with FaultProxy(rgw["AWS_ENDPOINT_URL"], [first_get_cut, then_500]) as proxy:
        run = argosy_rgw("cp", "--part-size", "5", big, "out", "--endpoint", proxy.url)
    assert run.code == 1
    assert _one_line(run.err).startswith(f"argosy: error: {big}: internal server error")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["stat", "{url}"],
        ["cat", "{url}"],
        ["cp", "{url}", "out"],
        ["cp", "{url}", "-"],
        ["cp", "--archive", "auto", "{url}", "out"],
        ["ls", "--archive-contents", "{url}"],
    ],
    ids=" ".join,
)
def test_a_key_in_a_missing_bucket_is_said_to_have_no_bucket(argosy_rgw, tmp_path, command):
    url = f"s3://{unique_bucket('missing')}/dir/key"
    run = argosy_rgw(*(arg.format(url=url) for arg in command))
    assert run.code == 3
    assert _one_line(run.err) == f"argosy: error: {url}: no such bucket (NoSuchBucket)"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_key_in_a_bucket_is_still_no_such_key(argosy_rgw, rgw_bucket) -> None:
    url = f"s3://{rgw_bucket}/dir/key"
    for command in ("stat", "cat"):
        run = argosy_rgw(command, url)
        assert run.code == 3
        assert _one_line(run.err) == f"argosy: error: {url}: no such key (404)"
