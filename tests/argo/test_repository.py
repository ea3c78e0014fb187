"""An Argo repository entry means one bucket URL wherever it is read: in a pod (secrets as
files) and in the GC (secrets through the API), by Argo's addressing rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from argosy.argo.location import Target
from argosy.argo.repository import addressing_style
from argosy.argo.workflow import Artifact, artifact_target
from argosy.artifacts.drivers.s3 import S3Driver
from argosy.gc.storage import DriverFactory
from argosy.sidecar.resolve import Context, open_driver

KEYS = {
    "accessKeySecret": {"name": "s3-creds", "key": "accessKey"},
    "secretKeySecret": {"name": "s3-creds", "key": "secretKey"},
}


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS settings of the machine's own may change where a request goes."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))


def _pod_url(entry: dict[str, Any], tmp_path: Path) -> str | None:
    folder = tmp_path / "secrets" / "s3-creds"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "accessKey").write_text("AK")
    (folder / "secretKey").write_text("SK")
    ctx = Context(variables={}, secrets_dir=tmp_path / "secrets", local_root=str(tmp_path))
    driver = open_driver(Target("s3", "my-bucket", "k", {**entry, **KEYS}), ctx)
    assert isinstance(driver, S3Driver)
    return driver.bucket_url


def _gc_url(entry: dict[str, Any]) -> str | None:
    def secret(namespace: str, name: str) -> dict[str, bytes]:
        assert (namespace, name) == ("team", "s3-creds")
        return {"accessKey": b"AK", "secretKey": b"SK"}

    artifact = Artifact("node", "out", "s3", {"key": "wf/out.tgz"})
    target = artifact_target(artifact, lambda: {"s3": {"bucket": "my-bucket", **entry, **KEYS}})
    driver = DriverFactory(secret).open(target, "team")
    assert isinstance(driver, S3Driver)
    return driver.bucket_url


@pytest.mark.parametrize(
    ("entry", "url"),
    [
        (
            {"endpoint": "minio.team.svc:9000", "insecure": True},
            "http://minio.team.svc:9000/my-bucket/",
        ),
        ({"endpoint": "10.0.0.7:7480", "insecure": True}, "http://10.0.0.7:7480/my-bucket/"),
        (
            {"endpoint": "minio.team.svc:9000", "addressingStyle": "virtual-hosted"},
            "https://my-bucket.minio.team.svc:9000/",
        ),
        (
            {"endpoint": "s3.eu-west-1.amazonaws.com", "region": "eu-west-1"},
            "https://my-bucket.s3.eu-west-1.amazonaws.com/",
        ),
        (
            {"endpoint": "oss-cn-hangzhou.aliyuncs.com", "region": "cn-hangzhou"},
            "https://my-bucket.oss-cn-hangzhou.aliyuncs.com/",
        ),
        (
            {
                "endpoint": "s3.eu-west-1.amazonaws.com",
                "region": "eu-west-1",
                "addressingStyle": "path",
            },
            "https://s3.eu-west-1.amazonaws.com/my-bucket/",
        ),
    ],
)
def test_a_pod_and_the_gc_reach_the_same_bucket_url_for_one_entry(
    entry: dict[str, Any], url: str, tmp_path: Path
) -> None:
    assert _pod_url(entry, tmp_path) == _gc_url(entry) == url


def test_addressing_follows_argo_when_the_entry_does_not_say() -> None:
    assert addressing_style({}, None, "s3") == "auto"  # AWS by region: botocore's choice
    assert addressing_style({}, "https://s3.amazonaws.com", "s3") == "virtual"
    assert addressing_style({}, "https://oss-cn-beijing.aliyuncs.com", "s3") == "virtual"
    assert addressing_style({}, "http://minio:9000", "s3") == "path"
    assert addressing_style({"addressingStyle": "path"}, "https://s3.amazonaws.com", "s3") == "path"


def test_an_entry_parsed_once_is_handed_out_as_a_new_copy_each_time() -> None:
    """The parsed YAML of an entry is kept (the GC resolves one entry per workflow), so
    what a caller changes in its entry must never reach the next caller's."""
    from argosy.argo.repository import choose_entry

    configmap = {"data": {"default": "s3:\n  bucket: b\n  keyFormat: k\n"}}
    first = choose_entry(configmap, None, where="cm")[1]
    first["s3"]["bucket"] = "changed"
    first["s3"].pop("keyFormat")
    again = choose_entry(configmap, None, where="cm")[1]
    assert again == {"s3": {"bucket": "b", "keyFormat": "k"}}
    assert again is not first and again["s3"] is not first["s3"]


def test_workflows_decoded_one_by_one_share_the_names_that_repeat() -> None:
    """The GC caches every workflow it watches, each decoded from its own watch event:
    label names and values, annotation names, the phase and the location's field names
    are one object across workflows, not a copy each (10,000 workflows held ~22 more
    objects each without this)."""
    import json

    from argosy.argo.workflow import parse_workflow

    def decoded(name: str) -> dict[str, Any]:
        node = {
            "id": f"{name}-pod",
            "type": "Pod",
            "outputs": {"artifacts": [{"name": "out", "s3": {"key": f"{name}/out"}}]},
        }
        raw = {
            "metadata": {
                "namespace": "team-a",
                "name": name,
                "labels": {"workflows.argoproj.io/completed": "true"},
                "annotations": {"argosy.io/gc": f"{{{name}}}"},
            },
            "status": {"phase": "Succeeded", "nodes": {f"{name}-pod": node}},
        }
        loaded: dict[str, Any] = json.loads(json.dumps(raw))
        return loaded

    a, b = parse_workflow(decoded("a")), parse_workflow(decoded("b"))
    for mine, theirs in (
        (next(iter(a.labels)), next(iter(b.labels))),
        (a.labels["workflows.argoproj.io/completed"], b.labels["workflows.argoproj.io/completed"]),
        (next(iter(a.annotations)), next(iter(b.annotations))),
        (a.phase, b.phase),
        (a.namespace, b.namespace),
        (next(iter(a.artifacts[0].location)), next(iter(b.artifacts[0].location))),
    ):
        assert mine == theirs and mine is theirs
    assert (a.annotations["argosy.io/gc"], b.artifacts[0].key) == ("{a}", "b/out")
