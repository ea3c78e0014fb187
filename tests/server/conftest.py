"""`argosy serve` against the Kubernetes test API (workflows with real status objects,
tokens with and without rights) and Ceph RGW: the app on a real socket, real clients."""

from __future__ import annotations

import base64
import io
import os
import tarfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web

from argosy.argo.kube import Kube
from argosy.artifacts.archive.formats import write_archive
from argosy.artifacts.settings import MiB, TransferSettings
from argosy.artifacts.tree import upload_tree
from argosy.artifacts.upload import upload_file
from argosy.server.app import make_app
from argosy.server.settings import ServerSettings
from argosy.testing.faults import FaultProxy
from argosy.testing.kube import KubeTestServer
from tests.conftest import s3_driver, unique_bucket

NS = "argo"
WF = "wf-1"
NODE = "wf-1-123"
READER, NOBODY, STRANGER = "reader-token", "nobody-token", "stranger-token"
SUBMITTER = "submitter-token"  # the reader's rights, and create workflows (uploads)
SEEKABLE_FIRST = os.urandom(10 * MiB)  # spans three 4 MiB frames of the seekable tar.zst
SMALL = TransferSettings(part_size=5 * MiB, multipart_threshold=5 * MiB, stream_part_size=5 * MiB)


@dataclass
class World:
    kube: KubeTestServer
    driver: Any
    bucket: str
    big: bytes  # 12 MiB, uploaded in 5 MiB parts: a record with part CRCs
    small: bytes
    tmp: Path


def _tgz(files: dict[str, bytes], root: str | None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{root}/{name}" if root else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def workflow(bucket: str) -> dict[str, Any]:
    outputs = [
        {"name": "big", "s3": {"key": "wf-1/big.bin"}},
        {"name": "small", "s3": {"key": "wf-1/hello.txt"}},
        {"name": "page", "s3": {"key": "wf-1/page.html"}},
        {"name": "tree", "s3": {"key": "wf-1/tree"}},
        {"name": "site", "s3": {"key": "wf-1/site"}},
        {"name": "bundle", "s3": {"key": "wf-1/bundle.tgz"}},
        {"name": "flat", "s3": {"key": "wf-1/flat.tgz"}},
        {"name": "zipped", "s3": {"key": "wf-1/z.zip"}},
        {"name": "seekable", "s3": {"key": "wf-1/seekable.tar.zst"}},
        {"name": "missing", "s3": {"key": "wf-1/nothing-here"}},
        {"name": "main-logs", "s3": {"key": "wf-1/main.log"}},
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": WF, "namespace": NS},
        "spec": {"templates": [{"name": "main", "container": {"image": "x"}}]},
        "status": {
            "phase": "Succeeded",
            "artifactRepositoryRef": {"configMap": "artifact-repositories", "key": "rgw"},
            "nodes": {
                NODE: {
                    "id": NODE,
                    "type": "Pod",
                    "templateName": "main",
                    "outputs": {"artifacts": outputs},
                    "inputs": {"artifacts": [{"name": "seed", "s3": {"key": "wf-1/hello.txt"}}]},
                }
            },
        },
    }


@pytest.fixture(scope="module")
def world(rgw: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("serve")
    bucket = unique_bucket("serve")
    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"], rgw["AWS_ACCESS_KEY_ID"], rgw["AWS_SECRET_ACCESS_KEY"], bucket
    )
    big = os.urandom(12 * MiB)
    small = b"hello, argosy\n"
    files = {
        "wf-1/big.bin": big,
        "wf-1/hello.txt": small,
        "wf-1/page.html": b"<script>alert(1)</script>",
        "wf-1/main.log": b"log line\n",
        "wf-1/bundle.tgz": _tgz({"a.txt": b"A" * 1000, "sub/b.txt": b"B" * 10}, "out"),
        "wf-1/flat.tgz": _tgz({"x.txt": b"x", "y.txt": b"yy"}, None),
        "wf-1/z.zip": _zip({"one.txt": b"1" * 5000, "dir/two.txt": b"two"}),
    }
    for key, data in files.items():
        path = tmp / "f"
        path.write_bytes(data)
        upload_file(driver, key, path, settings=SMALL)
    tree = tmp / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("bb")
    upload_tree(driver, "wf-1/tree", tree, settings=SMALL)
    packed = tmp / "packed"
    (packed / "zz").mkdir(parents=True)
    (packed / "first.bin").write_bytes(SEEKABLE_FIRST)
    (packed / "zz" / "last.txt").write_bytes(b"the last member\n")
    (tmp / "seekable.tar.zst").write_bytes(b"".join(write_archive(packed, "tar.zst")))
    upload_file(driver, "wf-1/seekable.tar.zst", tmp / "seekable.tar.zst", settings=SMALL)
    site = tmp / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>hi</h1>")
    upload_tree(driver, "wf-1/site", site, settings=SMALL)

    kube = KubeTestServer(namespaces=("default", NS)).start()
    kube.add_token(READER, "reader")
    kube.add_token(NOBODY, "nobody")
    kube.add_token(STRANGER, "stranger")
    kube.grant(
        "reader", NS, ["get", "list"], ["workflows", "configmaps", "secrets", "workflowtemplates"]
    )
    kube.grant("stranger", "elsewhere", ["get"], ["workflows"])
    kube.add_token(SUBMITTER, "submitter")
    kube.grant(
        "submitter",
        NS,
        ["get", "list"],
        ["workflows", "configmaps", "secrets", "workflowtemplates"],
    )
    kube.grant("submitter", NS, ["create"], ["workflows"])
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rgw-keys", "namespace": NS},
            "data": {
                "access": base64.b64encode(rgw["AWS_ACCESS_KEY_ID"].encode()).decode(),
                "secret": base64.b64encode(rgw["AWS_SECRET_ACCESS_KEY"].encode()).decode(),
            },
        }
    )
    endpoint = rgw["AWS_ENDPOINT_URL"].removeprefix("http://")
    kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "artifact-repositories", "namespace": NS},
            "data": {
                "rgw": (
                    f"s3:\n  bucket: {bucket}\n  endpoint: {endpoint}\n  insecure: true\n"
                    "  accessKeySecret: {name: rgw-keys, key: access}\n"
                    "  secretKeySecret: {name: rgw-keys, key: secret}\n"
                )
            },
        }
    )
    kube.create_object(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTemplate",
            "metadata": {"name": "tmpl", "namespace": NS},
            "spec": {},
        }
    )
    kube.create_object(workflow(bucket))
    yield World(kube, driver, bucket, big, small, tmp)
    kube.stop()


class Starter:
    """`await start(**settings)` -> the base URL of a new server; `apps` holds them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.apps: list[web.Application] = []
        self.runners: list[web.AppRunner] = []
        self.kubes: list[Kube] = []

    async def __call__(self, **overrides: Any) -> str:
        kube = Kube.from_configuration(self.world.kube.client_configuration())
        self.kubes.append(kube)
        settings = ServerSettings(port=0, **overrides)
        app = make_app(settings, kube)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.apps.append(app)
        self.runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"


@pytest_asyncio.fixture
async def serve(world: World) -> AsyncIterator[Any]:
    """A factory: `await serve(**settings)` -> (base URL, session)."""
    start = Starter(world)
    runners, kubes = start.runners, start.kubes
    session = ClientSession()
    yield start, session
    await session.close()
    for runner in runners:
        await runner.cleanup()
    for kube in kubes:
        kube.close()


PROXIED_WF = "wf-proxied"


@pytest.fixture(scope="module")
def proxied(world: World, rgw: dict[str, str]) -> Iterator[FaultProxy]:
    """The fault proxy in front of RGW, and workflow `wf-proxied` (the same artifacts as
    `wf-1`) whose repository reaches RGW through it. Tests add rules and clear them."""
    with FaultProxy(rgw["AWS_ENDPOINT_URL"]) as proxy:
        repos = world.kube.get_object("v1", "configmaps", "artifact-repositories", NS)
        assert repos is not None
        endpoint = rgw["AWS_ENDPOINT_URL"].removeprefix("http://")
        text = repos["data"]["rgw"].replace(endpoint, proxy.url.removeprefix("http://"))
        world.kube.create_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "proxied-repositories", "namespace": NS},
                "data": {"rgw": text},
            }
        )
        wf = workflow(world.bucket)
        wf["metadata"]["name"] = PROXIED_WF
        wf["status"]["artifactRepositoryRef"]["configMap"] = "proxied-repositories"
        world.kube.create_object(wf)
        yield proxy


def art(name: str, wf: str = WF) -> str:
    return f"/artifacts/{NS}/{wf}/{NODE}/{name}"


def files(name: str, tail: str = "") -> str:
    return f"/artifact-files/{NS}/workflows/{WF}/{NODE}/outputs/{name}{tail}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def fuzz_base(world: World) -> Iterator[tuple[str, list[str]]]:
    """The server in a thread of its own, for synchronous property tests."""
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def up() -> None:
        kube = Kube.from_configuration(world.kube.client_configuration())
        runner = web.AppRunner(make_app(ServerSettings(port=0), kube), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        box["runner"], box["kube"] = runner, kube
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(up())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    yield box["url"], []
    asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    box["kube"].close()
