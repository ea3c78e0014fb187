"""Streams under stress: storage that breaks mid-body (the fault proxy between the server
and RGW), clients that leave, and the shared memory budget with many streams in flight."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from aiohttp import ClientPayloadError

from argosy.artifacts.settings import MiB
from argosy.server.context import CONTEXT
from argosy.testing.faults import Delay, FaultProxy, Reset, Rule, Truncate
from tests.server.conftest import PROXIED_WF, READER, art, bearer

pytestmark = [pytest.mark.rgw, pytest.mark.asyncio]
H = bearer(READER)
BIG = art("big", PROXIED_WF)
# one sequential GET (the budget holds one part), or parts fetched ahead in parallel (of
# 1 MiB, two ahead, so that a stream has only some of the object under way at a time)
MODES = {
    "sequential": {"memory_budget": 8 * MiB},
    "read-ahead": {"part_size": 1 * MiB, "read_ahead": 2},
}


@pytest.fixture
def proxy(proxied: FaultProxy):
    proxied.clear()
    yield proxied
    proxied.clear()


async def until(condition: Callable[[], bool], *, within: float = 20.0) -> None:
    """Wait for `condition`, a bounded number of times (no speed is asserted)."""
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", [Reset, Truncate])
async def test_storage_breaking_mid_body_aborts_the_connection(serve, world, proxy, mode, fault):
    start, session = serve
    base = await start(**MODES[mode])
    hits = len(proxy.hits)
    if mode == "sequential":  # the one GET breaks after 512 KiB
        broken = fault(response_bytes=512 << 10) if fault is Reset else fault(after=512 << 10)
        proxy.add(Rule(broken, method="^GET$", path="big.bin", times=None))
    else:  # the first two parts arrive, every GET after them breaks before its first byte
        broken = fault(response_bytes=0) if fault is Reset else fault(after=0)
        proxy.add(Rule(broken, method="^GET$", path="big.bin", times=None, skip=2))
    got = bytearray()
    with pytest.raises(ClientPayloadError):
        async with session.get(base + BIG, headers=H) as r:
            assert r.status == 200
            assert r.headers["Content-Length"] == str(len(world.big))
            async for chunk in r.content.iter_chunked(1 << 16):
                got += chunk
    assert len(got) < len(world.big)
    assert world.big.startswith(bytes(got))  # what came is right, and nothing was appended
    assert len(proxy.hits) > hits  # the fault really fired
    metrics = await (await session.get(base + "/metrics")).text()
    # counted by cause: the storage failure, not the client
    assert re.search(r'argosy_server_errors_total\{cause="(unavailable|integrity)"\} 1\n', metrics)
    assert 'cause="client_gone"' not in metrics


async def test_parts_fetched_ahead_resume_where_storage_broke_off(serve, world, proxy):
    start, session = serve
    base = await start(**MODES["read-ahead"])
    # every GET ends after 512 KiB: each part of 1 MiB is read again from where it
    # broke off (pinned to the ETag), never restarted, so the object still arrives whole
    hits = len(proxy.hits)
    proxy.add(Rule(Truncate(after=512 << 10), method="^GET$", path="big.bin", times=None))
    async with session.get(base + BIG, headers=H) as r:
        assert r.status == 200 and r.headers["X-Argosy-Verified"] == "full"
        assert await r.read() == world.big
    assert len(proxy.hits) - hits >= len(world.big) // MiB


async def test_a_part_fetched_ahead_that_breaks_once_is_fetched_again(serve, world, proxy):
    start, session = serve
    base = await start()
    hits = len(proxy.hits)
    proxy.add(Rule(Reset(response_bytes=1 * MiB), method="^GET$", path="big.bin", times=1))
    async with session.get(base + BIG, headers=H) as r:
        assert r.status == 200
        assert await r.read() == world.big
    assert len(proxy.hits) == hits + 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_leaves_stops_the_upstream_read(serve, world, proxy, mode):
    start, session = serve
    base = await start(**MODES[mode])
    # storage at ~1.3 MB/s: the whole object takes seconds to relay
    proxy.add(Rule(Delay(between_chunks=0.05, chunk=64 << 10), method="^GET$", times=None))
    before = proxy.stats.bytes_down
    async with session.get(base + BIG, headers=H) as r:
        assert r.status == 200
        await r.content.readexactly(256 << 10)
        r.close()  # the client goes away
    stats = proxy.stats
    # every GET the server had under way is cut (its connection dropped), not finished
    await until(
        lambda: stats.answers_cut >= 1 and stats.answers == stats.answers_done + stats.answers_cut
    )
    relayed = stats.bytes_down - before
    assert relayed < len(world.big) // 2, relayed
    ctx = serve[0].apps[-1][CONTEXT]
    await until(lambda: ctx.budget.used == 0 and ctx.metrics.in_flight == 0)


async def test_the_budget_is_shared_never_exceeded_and_each_stream_gets_a_part(serve, world, proxy):
    start, session = serve
    # three parts of 1 MiB; a full GET would take five (four ahead)
    base = await start(memory_budget=3 * MiB, part_size=1 * MiB, read_ahead=4)
    budget = start.apps[-1][CONTEXT].budget
    proxy.add(Rule(Delay(between_chunks=0.01, chunk=64 << 10), method="^GET$", times=None))
    responses = []
    try:
        for n in range(4):
            r = await session.get(base + BIG, headers=H)
            assert r.status == 200
            responses.append(r)
            # this stream has bytes while the others are in flight: it got its part
            first = await r.content.readexactly(64 << 10)
            assert first == world.big[: 64 << 10]
            if n == 0:
                assert budget.used == 3  # alone, it reads ahead with the whole budget
            else:
                assert budget.used == max(3, n + 1)  # never more than the budget or one each
        bodies = await asyncio.gather(*(r.read() for r in responses))
    finally:
        for r in responses:
            r.close()
    assert all(b == world.big[64 << 10 :] for b in bodies)
    assert budget.peak_streams == 4
    assert budget.peak <= max(budget.total, budget.peak_streams) == 4
    assert budget.revoked >= 2  # the first stream's read-ahead made room for the others
    await until(lambda: budget.used == 0)


async def test_a_stream_reuses_a_few_budget_buffers_and_idle_memory_goes_back(serve, world):
    start, session = serve
    # 12 parts of 1 MiB, two fetched ahead: three buffers in turn, whatever the length
    base = await start(part_size=1 * MiB, read_ahead=2)
    budget = start.apps[-1][CONTEXT].budget
    async with session.get(base + art("big"), headers=H) as r:
        assert await r.read() == world.big
    assert 2 <= budget.buffers_made <= 3
    # nothing in flight: no buffer is kept
    await until(lambda: budget.used == 0)
    assert budget.buffers_free == 0
    async with session.get(base + art("big"), headers=H) as r:
        assert await r.read() == world.big
    assert budget.buffers_made <= 6


@pytest.mark.parametrize("mode", MODES)
async def test_streams_over_tls_send_every_byte_of_their_reused_buffers(world, tmp_path, mode):
    """TLS transports keep what they are given until it is encrypted: a buffer reused
    too early would send another part's bytes."""
    import ssl

    from aiohttp import ClientSession, TCPConnector, web

    from argosy.argo.kube import Kube
    from argosy.server.app import make_app
    from argosy.server.settings import ServerSettings
    from tests.tls_proxy import make_cert

    cert, key = make_cert(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    kube = Kube.from_configuration(world.kube.client_configuration())
    settings = ServerSettings(port=0, **MODES[mode])  # type: ignore[arg-type]
    runner = web.AppRunner(make_app(settings, kube))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=served)
        await site.start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}" + art("big")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with ClientSession(connector=TCPConnector(ssl=trusted)) as session:
            for _ in range(2):
                async with session.get(url, headers=H) as r:
                    assert r.status == 200
                    got = bytearray()
                    async for chunk in r.content.iter_chunked(1 << 16):
                        got += chunk
                        await asyncio.sleep(0.001)  # a client slower than the server
                    assert bytes(got) == world.big
    finally:
        await runner.cleanup()
        kube.close()
