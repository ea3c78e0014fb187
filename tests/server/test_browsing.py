"""Folders and archives through `argosy serve`: listings, index.html, members, whole-folder
downloads, uploads, operations, and a fuzz of the routes' paths."""

from __future__ import annotations

import io
import tarfile
import zipfile
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import s3_driver, unique_bucket
from tests.server.conftest import (
    NOBODY,
    NS,
    READER,
    SEEKABLE_FIRST,
    SUBMITTER,
    art,
    bearer,
    files,
)

MiB = 1 << 20

pytestmark = [pytest.mark.rgw]
H = bearer(READER)


@pytest.mark.asyncio
async def test_a_folder_redirects_to_its_slash_then_lists_without_the_manifest(serve):
    start, session = serve
    base = await start()
    async with session.get(base + files("tree"), headers=H, allow_redirects=False) as r:
        assert r.status == 307 and r.headers["Location"].endswith("/tree/")
    async with session.get(base + files("tree", "/"), headers=H) as r:
        page = await r.text()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        assert "a.txt" in page and "sub/" in page
        assert "manifest" not in page and "<script" not in page
    async with session.get(
        base + files("tree", "/"), headers={**H, "Accept": "application/json"}
    ) as r:
        names = [i["name"] for i in (await r.json())["items"]]
        assert names == ["a.txt", "sub/"]
    async with session.get(base + files("tree", "/sub/b.txt"), headers=H) as r:
        assert r.status == 200 and await r.read() == b"bb"
    async with session.get(base + art("tree"), headers=H, allow_redirects=False) as r:
        assert r.status == 307 and "/artifact-files/" in r.headers["Location"]


@pytest.mark.asyncio
async def test_a_folder_with_index_html_redirects_to_it(serve):
    start, session = serve
    base = await start()
    async with session.get(base + files("site", "/"), headers=H, allow_redirects=False) as r:
        assert r.status == 307 and r.headers["Location"].endswith("/site/index.html")
    async with session.get(base + files("site", "/index.html"), headers=H) as r:
        assert await r.read() == b"<h1>hi</h1>"
        assert "sandbox" in r.headers["Content-Security-Policy"]


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", ["tar.gz", "tar.zst", "zip"])
async def test_a_folder_downloads_whole_as_one_archive(serve, fmt):
    start, session = serve
    base = await start()
    async with session.get(base + files("tree", f"/?format={fmt}"), headers=H) as r:
        assert r.status == 200
        assert "Content-Length" not in r.headers
        assert r.headers["Content-Disposition"].startswith("attachment;")
        body = await r.read()
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            got = {n: z.read(n) for n in z.namelist()}
    else:
        raw = (
            body
            if fmt == "tar.gz"
            else zstandard.ZstdDecompressor().decompressobj().decompress(body)
        )
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz" if fmt == "tar.gz" else "r:") as t:
            got = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert got == {"a.txt": b"a", "sub/b.txt": b"bb"}


@pytest.mark.asyncio
async def test_a_tgz_with_one_top_folder_is_browsed_from_inside_it(serve):
    start, session = serve
    base = await start()
    async with session.get(
        base + files("bundle", "/"), headers={**H, "Accept": "application/json"}
    ) as r:
        assert r.status == 200
        assert [i["name"] for i in (await r.json())["items"]] == ["a.txt", "sub/"]
    async with session.get(base + files("bundle", "/sub/b.txt"), headers=H) as r:
        assert r.status == 200 and await r.read() == b"B" * 10
        first = r.headers["ETag"]
    async with session.get(base + files("bundle", "/a.txt"), headers=H) as r:
        assert await r.read() == b"A" * 1000
        assert r.headers["ETag"] != first  # the member's path is part of its ETag
    async with session.get(
        base + files("bundle", "/a.txt"), headers={**H, "If-None-Match": r.headers["ETag"]}
    ) as r2:
        assert r2.status == 304
        # as for a whole object: the validators and the sandbox come with the 304
        assert r2.headers["ETag"] == r.headers["ETag"]
        assert r2.headers["Last-Modified"] == r.headers["Last-Modified"]
        assert r2.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert r2.headers["Content-Security-Policy"] == r.headers["Content-Security-Policy"]
    async with session.get(base + files("bundle", "/nope.txt"), headers=H) as r:
        assert r.status == 404


@pytest.mark.asyncio
async def test_a_flat_tgz_and_a_zip_are_browsed_from_their_root(serve):
    start, session = serve
    base = await start()
    async with session.get(base + files("flat", "/y.txt"), headers=H) as r:
        assert await r.read() == b"yy"
    async with session.get(
        base + files("zipped", "/"), headers={**H, "Accept": "application/json"}
    ) as r:
        assert [i["name"] for i in (await r.json())["items"]] == ["dir/", "one.txt"]
    async with session.get(base + files("zipped", "/dir/two.txt"), headers=H) as r:
        assert await r.read() == b"two"
    async with session.get(base + files("zipped", "/one.txt"), headers=H) as r:
        assert await r.read() == b"1" * 5000


@pytest.mark.asyncio
async def test_stored_zip_and_seekable_members_answer_ranges_other_members_do_not(serve):
    start, session = serve
    base = await start()
    ranged = {**H, "Range": "bytes=10-19"}
    async with session.get(base + files("zipped", "/one.txt"), headers=ranged) as r:
        assert r.status == 206 and r.headers["Content-Range"] == "bytes 10-19/5000"
        assert r.headers["Accept-Ranges"] == "bytes" and r.headers["X-Argosy-Verified"] == "partial"
        assert await r.read() == b"1" * 10
    async with session.get(base + files("zipped", "/dir/two.txt"), headers=H) as r:
        assert r.status == 200 and r.headers["Accept-Ranges"] == "bytes"
        assert await r.read() == b"two"
    beyond = {**H, "Range": "bytes=9000-"}
    async with session.get(base + files("zipped", "/one.txt"), headers=beyond) as r:
        assert r.status == 416 and r.headers["Content-Range"] == "bytes */5000"
    # across the frames of a seekable tar.zst member (4 MiB frames; the member is 10 MiB)
    first, last = 4 * MiB - 100, 8 * MiB + 99
    wanted = {**H, "Range": f"bytes={first}-{last}"}
    async with session.get(base + files("seekable", "/first.bin"), headers=wanted) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{len(SEEKABLE_FIRST)}"
        assert await r.read() == SEEKABLE_FIRST[first : last + 1]
    # a tgz member streams from the archive's start: no ranges, the whole member
    async with session.get(base + files("bundle", "/a.txt"), headers=ranged) as r:
        assert r.status == 200 and r.headers["Accept-Ranges"] == "none"


@pytest.mark.asyncio
async def test_archive_members_are_listed_a_page_at_a_time(serve):
    start, session = serve
    base = await start(listing_page=1)
    wants = {**H, "Accept": "application/json"}
    async with session.get(base + files("zipped", "/"), headers=wants) as r:
        body = await r.json()
    assert [i["name"] for i in body["items"]] == ["dir/"] and body["next"] == "dir/"
    async with session.get(base + files("zipped", "/?token=dir%2F"), headers=wants) as r:
        body = await r.json()
    assert [i["name"] for i in body["items"]] == ["one.txt"] and body["next"] is None
    async with session.get(base + files("seekable", "/"), headers=H) as r:
        page = await r.text()
    assert "first.bin" in page and "zz/" not in page and "?token=first.bin" in page


@pytest.mark.asyncio
async def test_a_seekable_tar_zst_is_listed_and_served_from_its_member_index(serve):
    start, session = serve
    base = await start()
    async with session.get(
        base + files("seekable", "/"), headers={**H, "Accept": "application/json"}
    ) as r:
        assert r.status == 200
        assert [i["name"] for i in (await r.json())["items"]] == ["first.bin", "zz/"]
    async with session.get(base + files("seekable", "/zz/last.txt"), headers=H) as r:
        assert r.status == 200 and await r.read() == b"the last member\n"
    async with session.get(base + files("seekable", "/first.bin"), headers=H) as r:
        assert r.status == 200 and await r.read() == SEEKABLE_FIRST
    async with session.get(base + files("seekable", "/nope"), headers=H) as r:
        assert r.status == 404


@pytest.mark.asyncio
async def test_each_server_keeps_its_own_seekable_indexes(serve):
    from argosy.server.context import CONTEXT

    start, session = serve
    first, second = await start(), await start()
    async with session.get(
        first + files("seekable", "/"), headers={**H, "Accept": "application/json"}
    ) as r:
        assert r.status == 200
    mine, other = (app[CONTEXT].indexes for app in start.apps)
    assert mine is not other and len(mine) == 1 and len(other) == 0
    async with session.get(second + files("seekable", "/zz/last.txt"), headers=H) as r:
        assert await r.read() == b"the last member\n"
    assert len(other) == 1


def test_the_server_reads_a_seekable_members_frames_not_the_archive(world):
    from argosy.artifacts.archive import seekable
    from argosy.server import browse

    info = world.driver.stat("wf-1/seekable.tar.zst")
    indexes = browse.IndexCache()
    index = indexes.get(world.driver, info)
    assert index is not None and index.frames.count >= 3
    last = index.member("zz/last.txt")
    assert last is not None
    # the last member lies in the last frames: the first 8 MiB of tar are never read
    assert index.frames_for(last).start >= 2
    reads: list[tuple[int, int]] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(world.driver, name)

        def read(self, key: str, *, start: int = 0, end: int | None = None, **kw: Any) -> Any:
            reads.append((start, -1 if end is None else end))
            return world.driver.read(key, start=start, end=end, **kw)

    got = b"".join(browse.tar_member(Counting(), info, "zz/last.txt", "zz/last.txt", indexes))
    assert got == b"the last member\n"
    frames = index.frames_for(last)
    first, stop = index.frames.packed[frames.start], index.frames.packed[frames.stop]
    assert reads and all(first <= s and e < stop for s, e in reads), (reads, first, stop)
    assert (
        seekable.read_index(
            world.driver, "wf-1/bundle.tgz", info=world.driver.stat("wf-1/bundle.tgz")
        )
        is None
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("auth", ["client", "server"])
async def test_an_upload_streams_into_the_repository_and_is_capped(serve, world, auth):
    import aiohttp

    start, session = serve
    base = await start(max_upload_bytes=1000, auth=auth)
    url = base + "/upload-artifacts/argo/tmpl/input"

    def form(data: bytes) -> aiohttp.FormData:
        f = aiohttp.FormData()
        f.add_field("file", data, filename="in.bin")
        return f

    async with session.post(url, data=form(b"x" * 500), headers=bearer(SUBMITTER)) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    key = body["s3"]["key"]
    assert body["name"] == "input"
    assert key.startswith("uploads/argo/") and key.endswith("/in.bin")
    assert world.driver.stat(key).size == 500
    async with session.post(url, data=form(b"x" * 5000), headers=bearer(SUBMITTER)) as r:
        assert r.status == 413
    # Argo's check: get workflowtemplates and create workflows; a reader may not create
    async with session.post(url, data=form(b"x"), headers=H) as r:
        assert r.status == 403 and "create workflows" in await r.text()
    async with session.post(url, data=form(b"x"), headers=bearer(NOBODY)) as r:
        assert r.status == 403
    missing = base + "/upload-artifacts/argo/no-such-template/input"
    async with session.post(missing, data=form(b"x"), headers=bearer(SUBMITTER)) as r:
        assert r.status == 404
    assert not world.driver.list_uploads("uploads/")


def _entry(rgw: dict[str, str], bucket: str) -> str:
    endpoint = rgw["AWS_ENDPOINT_URL"].removeprefix("http://")
    return (
        f"s3:\n  bucket: {bucket}\n  endpoint: {endpoint}\n  insecure: true\n"
        "  accessKeySecret: {name: rgw-keys, key: access}\n"
        "  secretKeySecret: {name: rgw-keys, key: secret}\n"
    )


async def _upload(session: Any, url: str) -> tuple[int, Any]:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", b"data", filename="in.bin")
    async with session.post(url, data=form, headers=bearer(SUBMITTER)) as r:
        return r.status, (await r.json() if r.status == 200 else await r.text())


@pytest.mark.asyncio
async def test_an_upload_goes_to_the_repository_the_templates_artifact_repository_ref_names(
    serve: Any, world: Any, rgw: dict[str, str]
) -> None:
    other = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket("upload"),
    )
    world.kube.create_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "team-repositories", "namespace": NS},
            "data": {"first": _entry(rgw, world.bucket), "incoming": _entry(rgw, other.bucket)},
        }
    )
    for name, ref in (
        ("by-ref", {"configMap": "team-repositories", "key": "incoming"}),
        ("by-missing-ref", {"configMap": "no-such-repositories"}),
    ):
        world.kube.create_object(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "WorkflowTemplate",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"artifactRepositoryRef": ref},
            }
        )
    start, session = serve
    base = await start()

    status, body = await _upload(session, base + "/upload-artifacts/argo/by-ref/input")
    assert status == 200, body
    assert other.stat(body["s3"]["key"]).size == 4
    assert body["s3"]["key"] not in {o.key for o in world.driver.list("uploads/").objects}
    status, body = await _upload(session, base + "/upload-artifacts/argo/by-missing-ref/input")
    assert status == 404 and "no-such-repositories" in body, body


@pytest.mark.asyncio
async def test_an_upload_in_a_namespace_without_repositories_takes_the_controllers_default(
    serve: Any, world: Any, rgw: dict[str, str]
) -> None:
    import yaml

    bare = "bare-ns"
    for kind in ("Secret", "WorkflowTemplate"):
        obj = world.kube.get_object(
            "v1" if kind == "Secret" else "argoproj.io/v1alpha1",
            "secrets" if kind == "Secret" else "workflowtemplates",
            "rgw-keys" if kind == "Secret" else "tmpl",
            NS,
        )
        assert obj is not None
        meta = {"name": obj["metadata"]["name"], "namespace": bare}
        world.kube.create_object({**obj, "metadata": meta})
    world.kube.grant("submitter", bare, ["get", "list"], ["workflowtemplates", "secrets"])
    world.kube.grant("submitter", bare, ["create"], ["workflows"])
    start, session = serve
    url = "/upload-artifacts/bare-ns/tmpl/input"

    without = await start()
    # a caller who may not read the namespace's ConfigMaps is told which one
    status, body = await _upload(session, without + url)
    assert status == 403 and "ConfigMap bare-ns/artifact-repositories" in body, body
    world.kube.grant("submitter", bare, ["get", "list"], ["configmaps"])

    status, body = await _upload(session, without + url)
    assert status == 404 and "no artifact repository in namespace bare-ns" in body, body

    with_default = await start(default_repository=yaml.safe_load(_entry(rgw, world.bucket)))
    status, body = await _upload(session, with_default + url)
    assert status == 200, body
    assert body["s3"]["key"].startswith("uploads/bare-ns/")
    assert world.driver.stat(body["s3"]["key"]).size == 4


@pytest.mark.asyncio
async def test_health_readiness_and_metrics(serve):
    start, session = serve
    base = await start()
    async with session.get(base + art("small"), headers=H) as r:
        await r.read()
    async with session.get(base + "/healthz") as r:
        assert r.status == 200
    async with session.get(base + "/readyz") as r:
        assert r.status == 200
    async with session.get(base + "/metrics") as r:
        text = await r.text()
    assert 'argosy_server_requests_total{method="GET",code="200"} 1' in text
    assert "argosy_server_sent_bytes_total 14" in text


_segment = st.one_of(
    st.sampled_from(["..", "%2e%2e", "%2F", "%5c", "%00", "a.txt", "sub", "b.txt", "", "."]),
    st.text(alphabet=list("ab./\\%2fF5cC0.-_\x00"), max_size=12),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(tail=st.lists(_segment, max_size=4))
def test_no_generated_path_reaches_outside_the_artifact(tail, fuzz_base):
    import requests

    base, bucket_keys = fuzz_base
    path = files("tree", "/" + "/".join(tail))
    r = requests.get(base + path, headers=H, timeout=30, allow_redirects=False)
    assert r.status_code in (200, 307, 400, 404), (path, r.status_code)
    if r.status_code == 200 and "text/html" not in r.headers.get("Content-Type", ""):
        # whatever was served is one of the folder's own files
        assert r.content in (b"a", b"bb"), path
