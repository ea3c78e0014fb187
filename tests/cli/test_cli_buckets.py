"""`argosy mb URL` makes a bucket and `argosy ls s3://` (no bucket) lists them, for
s3://, oss:// and local:// alike, as `aws s3 mb` and `aws s3 ls` do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, unique_bucket


def _one_line_error(got, code: int) -> None:
    assert got.code == code, got.err
    assert got.err.count("\n") == 1 and got.err.startswith("argosy: error: "), got.err


def test_a_local_bucket_is_made_once_and_then_used(argosy_local, tmp_path: Path) -> None:
    first = argosy_local("mb", "local://fresh")
    again = argosy_local("mb", "local://fresh/")

    assert first.code == 0 and first.err == "made bucket local://fresh\n"
    assert again.code == 0 and "local://fresh already exists and is yours" in again.err
    (tmp_path / "f").write_text("f")
    assert argosy_local("cp", "f", "local://fresh/k").code == 0


def test_a_missing_local_bucket_says_how_to_make_it(argosy_local) -> None:
    got = argosy_local("ls", "local://nope/")
    _one_line_error(got, 3)
    assert "make it with `argosy mb local://nope`" in got.err


def test_ls_with_no_bucket_lists_the_local_buckets(argosy_local) -> None:
    argosy_local("mb", "local://second")

    rows = argosy_local("ls", "local://").text.splitlines()
    as_json = [json.loads(x) for x in argosy_local("ls", "--json", "local://").text.splitlines()]

    assert [row.split()[-1] for row in rows] == ["local://bkt/", "local://second/"]
    assert as_json == [
        {"bucket": "local://bkt/", "created": None},
        {"bucket": "local://second/", "created": None},
    ]


@pytest.mark.parametrize(
    "url, code",
    [
        ("local://.hidden", 2),  # where Argosy keeps its own folders
        ("local://b/key", 2),
        ("s3://", 2),
        ("/tmp/folder", 2),
    ],
)
def test_mb_refuses_what_is_not_a_bucket_in_one_line(argosy_local, url: str, code: int) -> None:
    _one_line_error(argosy_local("mb", url), code)


@pytest.mark.rgw
def test_an_s3_bucket_is_made_once_and_listed(argosy_rgw) -> None:
    bucket = unique_bucket("mb")

    first = argosy_rgw("mb", f"s3://{bucket}")
    again = argosy_rgw("mb", f"s3://{bucket}")
    listed = argosy_rgw("ls", "s3://")

    assert first.code == 0 and f"made bucket s3://{bucket}" in first.err, first.err
    assert again.code == 0 and "already exists and is yours" in again.err, again.err
    row = next(r for r in listed.text.splitlines() if r.endswith(f"s3://{bucket}/"))
    assert row.split()[0] == "BUCKET" and row.split()[1].endswith("Z")


@pytest.mark.rgw
def test_an_invalid_s3_bucket_name_is_one_line(argosy_rgw) -> None:
    _one_line_error(argosy_rgw("mb", "s3://No_Such..Name"), 2)


def test_an_oss_bucket_is_made_once_and_listed(argosy_local, oss_server: Any) -> None:
    env = {
        "OSS_ENDPOINT": oss_server.endpoint,
        "OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY,
        "OSS_ACCESS_KEY_SECRET": OSS_SECRET,
    }
    bucket = unique_bucket("mb")

    first = argosy_local("mb", f"oss://{bucket}", env=env)
    again = argosy_local("mb", f"oss://{bucket}", env=env)
    listed = argosy_local("ls", "oss://", env=env)

    assert first.code == 0 and f"made bucket oss://{bucket}" in first.err, first.err
    assert again.code == 0 and "already exists and is yours" in again.err, again.err
    assert f"oss://{bucket}/" in listed.text.split()
