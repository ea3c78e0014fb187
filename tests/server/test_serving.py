"""Argo Server's artifact URLs through `argosy serve`: authentication, resolution from a
workflow's status, HTTP's rules for files, verified streaming."""

from __future__ import annotations

import hashlib

import pytest

from tests.server.conftest import NOBODY, NODE, NS, READER, STRANGER, art, bearer, files, workflow

pytestmark = [pytest.mark.rgw, pytest.mark.asyncio]


async def test_no_token_is_401_and_a_token_without_rights_is_403(serve):
    start, session = serve
    base = await start()
    async with session.get(base + art("small")) as r:
        assert r.status == 401
        assert "Bearer" in r.headers["WWW-Authenticate"]
    async with session.get(base + art("small"), headers=bearer("not-a-token")) as r:
        assert r.status == 401
    async with session.get(base + art("small"), headers=bearer(NOBODY)) as r:
        assert r.status == 403
    # a workflow that does not exist is 403 to a token that may not read workflows here,
    # 404 only to one that may
    async with session.get(base + "/artifacts/argo/no-such-wf/n/a", headers=bearer(STRANGER)) as r:
        assert r.status == 403
    async with session.get(base + "/artifacts/argo/no-such-wf/n/a", headers=bearer(READER)) as r:
        assert r.status == 404


async def test_an_output_is_served_with_its_length_checksum_and_validators(serve, world):
    start, session = serve
    base = await start()
    async with session.get(base + art("big"), headers=bearer(READER)) as r:
        body = await r.read()
        assert r.status == 200
        assert body == world.big
        assert r.headers["Content-Length"] == str(len(world.big))
        assert r.headers["Accept-Ranges"] == "bytes"
        assert r.headers["ETag"].startswith('"')
        assert r.headers["Last-Modified"].endswith("GMT")
        assert r.headers["X-Argosy-Checksum"].startswith("crc32c:")
        assert r.headers["X-Argosy-Verified"] == "full"
        assert r.headers["Content-Security-Policy"] == (  # Argo Server's default
            "sandbox; base-uri 'none'; default-src 'none'; img-src 'self'; "
            "style-src 'self' 'unsafe-inline'"
        )
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_cookie_authenticates_as_argo_ui_sets_it(serve, world):
    start, session = serve
    base = await start()
    async with session.get(
        base + art("small"), headers={"Cookie": f"authorization=Bearer%20{READER}"}
    ) as r:
        assert r.status == 200
        assert await r.read() == world.small


async def test_inputs_and_logs_are_found_by_name(serve, world):
    start, session = serve
    base = await start()
    url = base + art("seed").replace("/artifacts/", "/input-artifacts/")
    async with session.get(url, headers=bearer(READER)) as r:
        assert r.status == 200 and await r.read() == world.small
    async with session.get(base + art("main-logs"), headers=bearer(READER)) as r:
        assert r.status == 200 and await r.read() == b"log line\n"
    async with session.get(base + art("no-such"), headers=bearer(READER)) as r:
        assert r.status == 404
    async with session.get(base + art("missing"), headers=bearer(READER)) as r:
        assert r.status == 404


async def test_single_suffix_and_multiple_ranges(serve, world):
    start, session = serve
    base = await start()
    big = world.big
    h = bearer(READER)
    async with session.get(base + art("big"), headers={**h, "Range": "bytes=10-19"}) as r:
        assert r.status == 206
        assert await r.read() == big[10:20]
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(big)}"
        assert r.headers["X-Argosy-Verified"] == "partial"
    async with session.get(base + art("big"), headers={**h, "Range": "bytes=-5"}) as r:
        assert r.status == 206 and await r.read() == big[-5:]
    # the second recorded part (5 MiB parts), whole: verified
    part = 5 * 1024 * 1024
    rng = f"bytes={part}-{2 * part - 1}"
    async with session.get(base + art("big"), headers={**h, "Range": rng}) as r:
        assert r.status == 206 and await r.read() == big[part : 2 * part]
        assert r.headers["X-Argosy-Verified"] == "full"
    async with session.get(base + art("big"), headers={**h, "Range": "bytes=0-1,100-101"}) as r:
        assert r.status == 206
        assert r.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
        body = await r.read()
        assert len(body) == int(r.headers["Content-Length"])
        assert f"Content-Range: bytes 0-1/{len(big)}".encode() in body
        assert big[100:102] in body
    async with session.get(base + art("big"), headers={**h, "Range": f"bytes={len(big)}-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(big)}"


async def test_conditional_requests_and_head(serve, world):
    start, session = serve
    base = await start()
    h = bearer(READER)
    async with session.get(base + art("small"), headers=h) as r:
        etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    async with session.get(base + art("small"), headers={**h, "If-None-Match": etag}) as r:
        assert r.status == 304 and await r.read() == b""
    async with session.get(base + art("small"), headers={**h, "If-None-Match": '"other"'}) as r:
        assert r.status == 200
    async with session.get(base + art("small"), headers={**h, "If-Modified-Since": modified}) as r:
        assert r.status == 304
    async with session.get(
        base + art("small"), headers={**h, "Range": "bytes=0-1", "If-Range": '"stale"'}
    ) as r:
        assert r.status == 200 and await r.read() == world.small
    async with session.get(
        base + art("small"), headers={**h, "Range": "bytes=0-1", "If-Range": etag}
    ) as r:
        assert r.status == 206 and await r.read() == world.small[:2]
    async with session.head(base + art("small"), headers=h) as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == str(len(world.small))
        assert await r.read() == b""


async def test_types_and_dispositions(serve):
    start, session = serve
    base = await start()
    h = bearer(READER)
    async with session.get(base + art("small"), headers=h) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.headers["Content-Disposition"] == 'inline; filename="hello.txt"'
    async with session.get(base + art("small") + "?mode=download", headers=h) as r:
        assert r.headers["Content-Disposition"].startswith("attachment;")
    async with session.get(base + art("bundle"), headers=h) as r:
        assert r.headers["Content-Type"] == "application/gzip"
        assert r.headers["Content-Disposition"] == 'attachment; filename="bundle.tgz"'
    async with session.get(base + art("bundle") + "?mode=inline", headers=h) as r:
        assert r.headers["Content-Disposition"].startswith("inline;")
    async with session.get(base + art("page"), headers=h) as r:
        # the sandbox keeps an HTML artifact's scripts off the server's origin
        assert r.headers["Content-Type"].startswith("text/html")
        assert "sandbox" in r.headers["Content-Security-Policy"]


async def test_a_corrupted_object_aborts_the_connection_instead_of_a_200_with_a_tail(serve, world):
    from aiohttp import ClientPayloadError

    from argosy.artifacts.record import read_record

    start, session = serve
    base = await start()
    info = world.driver.stat("wf-1/big.bin")
    record = read_record(info.metadata, size=info.size).record
    assert record is not None
    # the same bytes, recorded with a wrong checksum: what a corrupted store looks like
    from dataclasses import replace

    bad = replace(record, crc=record.crc ^ 1, part_crcs=())
    world.driver.put(
        "wf-1/hello.txt.bad", world.big, size=len(world.big), metadata=bad.to_metadata()
    )
    world.kube.store  # noqa: B018 - the workflow points at the key below
    wf = world.kube.get_object("argoproj.io/v1alpha1", "workflows", "wf-1", "argo")
    wf["status"]["nodes"]["wf-1-123"]["outputs"]["artifacts"].append(
        {"name": "corrupt", "s3": {"key": "wf-1/hello.txt.bad"}}
    )
    from argosy.testing.kube.model import DEFAULT_RESOURCES  # noqa: F401

    spec = world.kube.registry.resolve("argoproj.io", "v1alpha1", "workflows", namespaced=True)
    world.kube.store.update(spec, "argo", "wf-1", wf, require_rv=False)
    got = b""
    with pytest.raises(ClientPayloadError):
        async with session.get(base + art("corrupt"), headers=bearer(READER)) as r:
            assert r.status == 200
            async for chunk in r.content.iter_chunked(1 << 20):
                got += chunk
    assert len(got) < len(world.big)
    assert hashlib.sha256(got).digest() != hashlib.sha256(world.big).digest()


async def test_archived_workflow_routes_say_there_is_no_archive(serve):
    start, session = serve
    base = await start()
    async with session.get(base + "/artifacts-by-uid/u/n/a", headers=bearer(READER)) as r:
        assert r.status == 404 and "no workflow archive" in await r.text()
    async with session.get(
        base + "/artifact-files/argo/archived-workflows/u/n/outputs/a", headers=bearer(READER)
    ) as r:
        assert r.status == 404 and "no workflow archive" in await r.text()


async def test_a_workflow_whose_node_status_is_offloaded_says_so(serve, world):
    wf = workflow(world.bucket)
    wf["metadata"]["name"] = "wf-offloaded"
    wf["status"]["nodes"] = {}
    wf["status"]["offloadNodeStatusVersion"] = "fnv:1234"
    if world.kube.get_object("argoproj.io/v1alpha1", "workflows", "wf-offloaded", NS) is None:
        world.kube.create_object(wf)
    start, session = serve
    base = await start()
    for path in (
        art("small", "wf-offloaded"),
        f"/artifact-files/{NS}/workflows/wf-offloaded/{NODE}/outputs/tree/a.txt",
    ):
        async with session.get(base + path, headers=bearer(READER)) as r:
            text = await r.text()
            assert r.status == 501, text
            assert "offloaded" in text and "database" in text and text.count("\n") == 1
    # a live workflow with its nodes answers as always, and an unknown node is still 404
    async with session.get(base + art("small"), headers=bearer(READER)) as r:
        assert r.status == 200
    async with session.get(base + art("small").replace(NODE, "nope"), headers=bearer(READER)) as r:
        assert r.status == 404


async def test_auth_none_is_refused_off_loopback():
    from argosy.artifacts.errors import InvalidSpec
    from argosy.server.settings import ServerSettings

    with pytest.raises(InvalidSpec, match="loopback"):
        ServerSettings(host="0.0.0.0", auth="none")
    assert ServerSettings(host="127.0.0.1", auth="none").auth == "none"


async def test_auth_server_reviews_the_token_and_reads_with_its_own_credentials(serve, world):
    start, session = serve
    base = await start(auth="server")
    async with session.get(base + art("small"), headers=bearer(READER)) as r:
        assert r.status == 200 and await r.read() == world.small
    async with session.get(base + art("small"), headers=bearer("bogus")) as r:
        assert r.status == 401
    async with session.get(base + art("small"), headers=bearer(NOBODY)) as r:
        assert r.status == 403
    reviews = [q.path for q in world.kube.requests if "reviews" in q.path]
    assert any("tokenreviews" in p for p in reviews)
    assert any("subjectaccessreviews" in p for p in reviews)


async def test_files_route_serves_a_file_and_refuses_escapes(serve, world):
    start, session = serve
    base = await start()
    h = bearer(READER)
    async with session.get(base + files("small"), headers=h) as r:
        assert r.status == 200 and await r.read() == world.small
    for bad in ("/..%2f..%2fx", "/a%5cb", "/a%00b"):
        async with session.get(base + files("tree") + bad, headers=h) as r:
            assert r.status in (400, 404), bad
            assert r.status == 400 or "not in storage" in await r.text()
