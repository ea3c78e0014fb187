"""A real browser on `argosy serve`: headless Debian chromium driven over the DevTools
protocol (aiohttp's websocket client). The `authorization` cookie Argo's UI sets is what
authenticates; a folder listing and an archive's member list are loaded, a link
followed, the DOM read, and a screenshot saved with the test's files.

`scripts/test` installs chromium (`scripts/chromium.sh`) and sets
ARGOSY_REQUIRE_BROWSER=1, under which a missing chromium fails this test instead of
skipping it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.server.conftest import READER, files

pytestmark = [pytest.mark.rgw, pytest.mark.asyncio]


def _chromium() -> str:
    found = shutil.which(os.environ.get("ARGOSY_CHROMIUM", "chromium"))
    if found is None:
        message = "chromium is not installed (scripts/chromium.sh installs it)"
        if os.environ.get("ARGOSY_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class DevTools:
    """One page's DevTools session: commands by id, events kept for `event()`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ask = self.next_id
        await self.ws.send_json({"id": ask, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            if message.get("id") == ask:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    async def event(self, method: str) -> dict[str, Any]:
        """The next `method` event (those already received first)."""
        while True:
            for i, message in enumerate(self.events):
                if message.get("method") == method:
                    return self.events.pop(i)
            self.events.append(await asyncio.wait_for(self.ws.receive_json(), 30))

    async def load(self, url: str) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        answer = await self.send("Page.navigate", url=url)
        assert "errorText" not in answer, answer
        await self.event("Page.loadEventFired")

    async def js(self, expression: str) -> Any:
        answer = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in answer, answer
        return answer["result"].get("value")

    async def html(self) -> str:
        root = await self.send("DOM.getDocument", depth=0)
        outer = await self.send("DOM.getOuterHTML", nodeId=root["root"]["nodeId"])
        return str(outer["outerHTML"])


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[DevTools]:
    profile = tmp_path / "profile"
    # its own temporary folder (its socket's path must stay short: not under tmp_path),
    # removed after it
    own_tmp = tempfile.mkdtemp(prefix="argosy-chromium-")
    process = subprocess.Popen(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",  # as root, in a container
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1000,700",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "chromium.log").open("w"),
        env={**os.environ, "TMPDIR": own_tmp},
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):  # bounded: chromium writes its port when it listens
            if port_file.exists() and port_file.read_text().count("\n") >= 1:
                break
            if process.poll() is not None:
                raise AssertionError((tmp_path / "chromium.log").read_text()[-2000:])
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in await r.json() if t["type"] == "page"]
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tools = DevTools(ws)
                for domain in ("Page", "Network", "Runtime", "DOM"):
                    await tools.send(f"{domain}.enable")
                yield tools
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(own_tmp, ignore_errors=True)


async def test_a_browser_browses_a_folder_and_an_archive_with_the_cookie(serve, browser, tmp_path):
    start, _ = serve
    base = await start()
    folder = base + files("tree", "/")
    # no cookie yet: the server asks for a token
    await browser.load(folder)
    assert "no bearer token" in await browser.js("document.body.innerText")
    # the cookie Argo's UI sets ("Bearer TOKEN", URL-encoded) is what authenticates now
    await browser.send(
        "Network.setCookie", name="authorization", value=f"Bearer%20{READER}", url=base
    )
    await browser.load(folder)
    links = await browser.js(
        "[...document.querySelectorAll('a')].map(a => [a.textContent.trim(), a.href])"
    )
    names = [name for name, _ in links]
    assert "a.txt" in names and "sub/" in names
    assert not any("manifest" in href for _, href in links)
    assert await browser.js("document.scripts.length") == 0
    # the sandbox lets the page's own inline style apply (Argo's policy allows it)
    assert await browser.js("getComputedStyle(document.body).marginTop") == "28px"
    shot = await browser.send("Page.captureScreenshot", format="png")
    picture = base64.b64decode(shot["data"])
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "folder-listing.png").write_bytes(picture)

    # an archive's members, browsed from inside its one top folder
    await browser.load(base + files("bundle", "/"))
    names = await browser.js("[...document.querySelectorAll('a')].map(a => a.textContent.trim())")
    assert "a.txt" in names and "sub/" in names
    # follow the link to the sub-folder, then to its file
    await browser.js(
        "[...document.querySelectorAll('a')].find(a => a.textContent.trim() == 'sub/').click()"
    )
    await browser.event("Page.loadEventFired")
    assert (await browser.js("location.pathname")).endswith("/bundle/sub/")
    names = await browser.js("[...document.querySelectorAll('a')].map(a => a.textContent.trim())")
    assert "b.txt" in names
    shot = await browser.send("Page.captureScreenshot", format="png")
    (tmp_path / "archive-members.png").write_bytes(base64.b64decode(shot["data"]))
    await browser.js(
        "[...document.querySelectorAll('a')].find(a => a.textContent.trim() == 'b.txt').click()"
    )
    await browser.event("Page.loadEventFired")
    # the member's bytes, shown as text (and sandboxed: no script of its own may run)
    assert "B" * 10 in await browser.html()
    (tmp_path / "devtools.json").write_text(json.dumps({"links": links}, indent=2))
