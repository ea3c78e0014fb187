"""Operations: /healthz (the process answers), /readyz (it can reach Kubernetes and is
not draining), /metrics (Prometheus text), and one access-log line per request.

The access log never holds a token: the `Authorization` header and the cookie are not
logged, and neither is the query string (links may carry one).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from argosy.server.context import CAUSE, CONTEXT, Context, blocking

access = logging.getLogger("argosy.server.access")


@web.middleware
async def access_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:

    ctx = request.app[CONTEXT]
    began = time.monotonic()
    status = 500
    counted = not request.path.startswith(("/healthz", "/readyz", "/metrics"))
    if counted:
        with ctx.metrics._lock:
            ctx.metrics.in_flight += 1
    try:
        response = await handler(request)
        status = 499 if request.get(CAUSE) == "client_gone" else response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except BaseException:
        status = 499 if request.get(CAUSE) == "client_gone" else 500
        raise
    finally:
        seconds = time.monotonic() - began
        if counted:
            with ctx.metrics._lock:
                ctx.metrics.in_flight -= 1
            ctx.metrics.done(request.method, status, seconds, request.get(CAUSE))
        _log_line(ctx, request, status, seconds)


def _log_line(ctx: Context, request: web.Request, status: int, seconds: float) -> None:
    if not access.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "seconds": round(seconds, 6),
        "remote": request.remote,
    }
    if request.get(CAUSE):
        fields["cause"] = request[CAUSE]
    if ctx.settings.log_format == "json":
        access.info(json.dumps(fields, sort_keys=True))
    else:
        access.info(" ".join(f"{k}={v}" for k, v in fields.items()))


def add_ops_routes(app: web.Application, ctx: Context) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if ctx.draining:
            return web.Response(status=503, text="draining\n")

        try:
            await blocking(ctx.kube.request, "GET", "/version", what="the API server")
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            return web.Response(status=503, text=f"cannot reach Kubernetes: {error}\n")
        return web.Response(text="ready\n")

    async def metrics(request: web.Request) -> web.Response:
        body = ctx.metrics.render(ctx.budget.used, ctx.budget.total)
        return web.Response(text=body, content_type="text/plain")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
