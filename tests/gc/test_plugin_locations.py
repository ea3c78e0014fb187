"""Artifacts written through Argosy's Argo plugin (`plugin: {name: argosy, configuration,
key}`) are collected like S3 ones: the configuration is read by the plugin's own parser,
a key-only plugin artifact takes its repository's configuration, another plugin's
artifacts are kept, and a configuration that does not parse is a failure naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from argosy.artifacts.protocol import Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import ManualClock
from tests.gc.argo import Argo, Art, repository_entry
from tests.gc.conftest import NS, keys, put


def configuration(bucket: str, endpoint: str, **extra: Any) -> str:
    """Argo's S3 location fields, as the plugin's configuration string."""
    s3 = repository_entry(bucket, endpoint)["s3"]
    s3.pop("keyFormat")
    return yaml.safe_dump({**s3, **extra})


def plugin(key: str, config: str | None, name: str | None = "argosy") -> Art:
    extra: dict[str, Any] = {}
    if name is not None:
        extra["name"] = name
    if config is not None:
        extra["configuration"] = config
    return Art(key.rsplit("/", 1)[-1], key, kind="plugin", extra=extra)


@pytest.mark.usefixtures("on_completion")
def test_plugin_artifacts_are_deleted_where_their_configuration_points(
    argo: Argo,
    team: Driver,
    bucket: tuple[str, Driver],
    moto_endpoint: str,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "wf/pod/out.tgz", "wf/pod/dir/a", "wf/pod/dir/b/c", "wf/pod/dirx/keep")
    config = configuration(bucket[0], moto_endpoint)
    argo.submit(NS, "wf", [plugin("wf/pod/out.tgz", config), plugin("wf/pod/dir", config)])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert (summary.artifacts, summary.objects, summary.failed) == (2, 3, False)
    assert keys(team) == ["wf/pod/dirx/keep"]
    assert argo.record(NS, "wf")["objects"] == 3


def test_a_key_only_plugin_artifact_takes_the_configuration_of_its_plugin_repository(
    argo: Argo,
    bucket: tuple[str, Driver],
    moto_endpoint: str,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    name, driver = bucket
    argo.secret(NS)
    argo.policy(NS, {"strategy": "OnWorkflowCompletion"})
    repository = {"plugin": {"name": "argosy", "configuration": configuration(name, moto_endpoint)}}
    put(driver, "wf/pod/out.tgz", "wf/pod/logs/main.log", "other/keep")
    argo.submit(
        NS,
        "wf",
        [plugin("wf/pod/out.tgz", None, name=None), plugin("wf/pod/logs/main.log", None)],
        repository=repository,
    )
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert (summary.artifacts, summary.objects, summary.failed) == (2, 2, False)
    assert keys(driver) == ["other/keep"]


@pytest.mark.usefixtures("on_completion")
def test_another_plugins_artifacts_are_kept_and_a_bad_configuration_is_a_failure(
    argo: Argo,
    team: Driver,
    bucket: tuple[str, Driver],
    moto_endpoint: str,
    clock: ManualClock,
    make_controller: Callable[..., Controller],
) -> None:
    put(team, "wf/pod/theirs", "wf/pod/bad")
    good = configuration(bucket[0], moto_endpoint)
    bad = configuration(bucket[0], moto_endpoint, colour="blue")
    argo.submit(NS, "wf", [plugin("wf/pod/theirs", good, name="other"), plugin("wf/pod/bad", bad)])
    argo.finish(NS, "wf", "Succeeded", clock())

    summary = make_controller().run_once()

    assert keys(team) == ["wf/pod/bad", "wf/pod/theirs"]
    assert summary.artifacts == 0
    [(where, failure)] = summary.failures
    assert where == f"{NS}/wf"
    assert failure.cause == "InvalidLocation"
    assert "unknown field(s) colour" in failure.message
    events = argo.events(NS, "wf")
    assert [e["reason"] for e in events] == ["ArtifactGCInvalidLocation"]
