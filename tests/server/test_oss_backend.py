"""`argosy serve` over Alibaba OSS (the OSS test server): a file and a folder of a workflow
whose repository is an OSS bucket, the credentials read from a Secret as the caller."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from argosy.artifacts.tree import upload_tree
from argosy.artifacts.upload import upload_file
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, unique_bucket
from tests.server.conftest import NOBODY, NODE, NS, READER, SMALL, World, bearer, workflow

pytestmark = [pytest.mark.rgw, pytest.mark.asyncio]
H = bearer(READER)
OSS_WF = "wf-oss"


@pytest.fixture(scope="module")
def oss_world(world: World, oss_server: Any) -> Iterator[Any]:
    driver = oss_driver(oss_server.endpoint, unique_bucket("serve-oss"))
    hello = world.tmp / "oss-hello.txt"
    hello.write_bytes(b"hello from oss\n")
    upload_file(driver, "wf-1/hello.txt", hello, settings=SMALL)
    tree = world.tmp / "oss-tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("oss a")
    (tree / "sub" / "b.txt").write_text("oss bb")
    upload_tree(driver, "wf-1/tree", tree, settings=SMALL)
    world.kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "oss-keys", "namespace": NS},
            "data": {
                "accessKey": base64.b64encode(OSS_ACCESS_KEY.encode()).decode(),
                "secretKey": base64.b64encode(OSS_SECRET.encode()).decode(),
            },
        }
    )
    world.kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "oss-repositories", "namespace": NS},
            "data": {
                "oss": (
                    f"oss:\n  bucket: {driver.bucket}\n  endpoint: {oss_server.endpoint}\n"
                    "  accessKeySecret: {name: oss-keys, key: accessKey}\n"
                    "  secretKeySecret: {name: oss-keys, key: secretKey}\n"
                )
            },
        }
    )
    wf = workflow("unused")
    wf["metadata"]["name"] = OSS_WF
    wf["status"]["artifactRepositoryRef"] = {"configMap": "oss-repositories", "key": "oss"}
    outputs = wf["status"]["nodes"][NODE]["outputs"]["artifacts"]
    for artifact in outputs:  # the same names, as OSS artifacts
        artifact["oss"] = artifact.pop("s3")
    world.kube.create_object(wf)
    yield driver


async def test_a_file_of_an_oss_repository_is_served_with_its_headers(serve, oss_world):
    start, session = serve
    base = await start()
    url = f"{base}/artifacts/{NS}/{OSS_WF}/{NODE}/small"
    async with session.get(url, headers=H) as r:
        assert r.status == 200
        assert await r.read() == b"hello from oss\n"
        assert r.headers["Content-Length"] == "15"
        assert r.headers["ETag"].startswith('"')
        assert r.headers["X-Argosy-Verified"] == "full"
    async with session.get(url, headers={**H, "Range": "bytes=6-9"}) as r:
        assert r.status == 206 and await r.read() == b"from"
    async with session.get(url, headers=bearer(NOBODY)) as r:
        assert r.status == 403  # the Secret and the workflow are read as the caller


async def test_a_folder_of_an_oss_repository_lists_and_serves_its_files(serve, oss_world):
    start, session = serve
    base = await start()
    folder = f"{base}/artifact-files/{NS}/workflows/{OSS_WF}/{NODE}/outputs/tree/"
    async with session.get(folder, headers={**H, "Accept": "application/json"}) as r:
        assert r.status == 200
        assert [i["name"] for i in (await r.json())["items"]] == ["a.txt", "sub/"]
    async with session.get(folder + "sub/b.txt", headers=H) as r:
        assert r.status == 200 and await r.read() == b"oss bb"
    async with session.get(folder + "nope.txt", headers=H) as r:
        assert r.status == 404
