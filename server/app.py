"""The aiohttp application: Argo Server's artifact URLs, and the order each request is
worked in: path checked, caller authenticated, workflow read and artifact resolved as
the caller, then the object (or folder, or archive member) served.

    GET|HEAD /artifacts/{ns}/{wf}/{node}/{name}              an output artifact
    GET|HEAD /input-artifacts/{ns}/{wf}/{node}/{name}        an input artifact
    GET|HEAD /artifact-files/{ns}/workflows/{wf}/{node}/{inputs|outputs}/{name}[/{path}]
    POST     /upload-artifacts/{ns}/{wftmpl}/{name}
    /artifacts-by-uid/..., /input-artifacts-by-uid/..., archived-workflows: 404, there is
    no workflow archive
    /healthz, /readyz, /metrics

Errors before the first byte are a status with a one-line text body; after it, the
connection is aborted (`stream.py`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from aiohttp import web

from argosy.argo.kube import Kube
from argosy.artifacts.errors import (
    NotFound,
)
from argosy.artifacts.protocol import ObjectInfo
from argosy.artifacts.settings import TransferSettings
from argosy.server import browse
from argosy.server.context import CONTEXT, Context, blocking
from argosy.server.metrics import Metrics
from argosy.server.ops import access_log, add_ops_routes
from argosy.server.resolve import Resolved, Resolver
from argosy.server.respond import (
    NO_ARCHIVE,
    BadPath,
    _resolved,
    _stat,
    errors,
    safe_segments,
    serve_object,
)
from argosy.server.settings import ServerSettings
from argosy.server.stream import (
    Budget,
)

# -- routes -----------------------------------------------------------------------------


async def get_artifact(request: web.Request) -> web.StreamResponse:
    inputs = request.path.startswith("/input-artifacts/")
    m = request.match_info
    resolved = await _resolved(request, m["ns"], m["wf"], m["node"], m["name"], inputs=inputs)
    info = await _stat(resolved.driver, resolved.key)
    if info is None:
        if await blocking(browse.is_folder, resolved.driver, resolved.key):
            side = "inputs" if inputs else "outputs"
            where = "/".join(
                quote(p, safe="")
                for p in (m["ns"], "workflows", m["wf"], m["node"], side, m["name"])
            )
            raise web.HTTPTemporaryRedirect(f"/artifact-files/{where}/")
        raise NotFound(f"artifact {m['name']}: {resolved.target.url} is not in storage")
    return await serve_object(request, resolved.driver, info, _file_name(resolved, info))


def _file_name(resolved: Resolved, info: ObjectInfo) -> str:
    return info.key.rsplit("/", 1)[-1] or resolved.name


async def get_artifact_file(request: web.Request) -> web.StreamResponse:
    m = request.match_info
    if m["kind"] == "archived-workflows":
        return web.Response(status=404, text=NO_ARCHIVE)
    if m["kind"] != "workflows" or m["side"] not in ("inputs", "outputs"):
        raise BadPath("the path is /artifact-files/NS/workflows/WF/NODE/inputs|outputs/NAME")
    segments = safe_segments(request, m.get("tail", ""))
    resolved = await _resolved(
        request, m["ns"], m["wf"], m["node"], m["name"], inputs=m["side"] == "inputs"
    )
    return await browse.serve_path(request, resolved, segments, request.path.endswith("/"))


async def no_archive(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404, text=NO_ARCHIVE)


async def upload(request: web.Request) -> web.StreamResponse:
    from argosy.server.upload import handle_upload

    return await handle_upload(request)


def make_app(
    settings: ServerSettings, kube: Kube, *, transfer: TransferSettings | None = None
) -> web.Application:
    ctx = Context(
        settings=settings,
        kube=kube,
        resolver=Resolver(
            kube,
            local_root=settings.local_root,
            default_repository=settings.default_repository,
        ),
        budget=Budget(max(1, settings.memory_budget // settings.part_size), settings.part_size),
        metrics=Metrics(),
        transfer=transfer or TransferSettings(),
    )
    app = web.Application(middlewares=[access_log, errors], client_max_size=1 << 20)
    app[CONTEXT] = ctx
    r = app.router
    for prefix in ("artifacts", "input-artifacts"):
        r.add_get(f"/{prefix}/{{ns}}/{{wf}}/{{node}}/{{name}}", get_artifact)
        r.add_get(f"/{prefix}-by-uid/{{tail:.*}}", no_archive)
    r.add_get(
        "/artifact-files/{ns}/{kind}/{wf}/{node}/{side}/{name}{tail:(/.*)?}", get_artifact_file
    )
    r.add_post("/upload-artifacts/{ns}/{tmpl}/{name}", upload)
    add_ops_routes(app, ctx)

    async def executor(app: web.Application) -> Any:
        # each stream holds a worker while it waits on storage: the default pool (cores
        # + 4) would queue every stream behind a few slow ones
        pool = ThreadPoolExecutor(256, thread_name_prefix="argosy-serve")
        asyncio.get_running_loop().set_default_executor(pool)
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(executor)
    return app
