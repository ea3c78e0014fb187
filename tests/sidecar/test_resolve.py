"""Where artifacts live: Argo's merge of an artifact's location with its repository, and
one driver per location however many artifacts use it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from argosy.argo.location import Target
from argosy.argo.template import parse_template
from argosy.artifacts.errors import InvalidSpec
from argosy.sidecar.resolve import Context, DriverCache, target_for

CTX = Context(
    variables={"workflow.name": "wf", "pod.name": "pod"},
    secrets_dir=Path("/nonexistent"),
    local_root="/nonexistent",
    repository={
        "keyFormat": "runs/{{workflow.name}}",
        "s3": {"bucket": "repo-bucket", "endpoint": "http://s3:9000"},
    },
)


def _target(artifact: dict[str, Any], *, output: bool = True, fmt: str = "tar.gz") -> Target:
    side = "outputs" if output else "inputs"
    template = parse_template({"name": "t", side: {"artifacts": [artifact]}})
    found = (template.outputs if output else template.inputs)[0]
    return target_for(found, ctx=CTX, template=template, fmt=fmt, output=output)


def test_an_output_with_no_location_goes_under_the_key_format_with_argos_file_name() -> None:
    target = _target({"name": "model", "path": "/tmp/model"})
    assert (target.kind, target.bucket, target.key) == ("s3", "repo-bucket", "runs/wf/model.tgz")
    assert target.config["endpoint"] == "http://s3:9000"


def test_a_key_only_artifact_takes_everything_but_its_key_from_the_repository() -> None:
    target = _target({"name": "in", "path": "/in", "s3": {"key": "data/x"}}, output=False)
    assert (target.bucket, target.key, target.config["endpoint"]) == (
        "repo-bucket",
        "data/x",
        "http://s3:9000",
    )


def test_an_artifact_with_its_own_bucket_is_used_as_it_is() -> None:
    target = _target(
        {
            "name": "in",
            "path": "/in",
            "s3": {"bucket": "theirs", "key": "k", "endpoint": "http://other:9000"},
        },
        output=False,
    )
    assert (target.bucket, target.key, target.config["endpoint"]) == (
        "theirs",
        "k",
        "http://other:9000",
    )


def test_a_key_only_artifact_of_another_kind_than_the_repository_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="key-only oss artifact but the repository is s3"):
        _target({"name": "in", "path": "/in", "oss": {"key": "k"}}, output=False)


def test_the_driver_cache_opens_one_driver_per_location_even_when_asked_at_once() -> None:
    opened: list[Target] = []

    def slow_open(target: Target, ctx: Context) -> Any:
        time.sleep(0.05)
        opened.append(target)
        return object()

    cache = DriverCache(slow_open)
    same = _target({"name": "a", "path": "/a"})
    other = _target({"name": "b", "path": "/b", "s3": {"bucket": "theirs", "key": "k"}})
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(cache(same, CTX))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(driver) for driver in got}) == 1
    assert cache(other, CTX) is not got[0]
    assert len(opened) == 2
