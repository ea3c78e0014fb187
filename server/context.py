"""The state one server shares between its requests, and the way blocking work leaves
the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from argosy.argo.kube import Kube
from argosy.artifacts.settings import TransferSettings
from argosy.server.indexes import IndexCache
from argosy.server.metrics import Metrics
from argosy.server.resolve import Resolver
from argosy.server.settings import ServerSettings
from argosy.server.stream import Budget


@dataclass
class Context:
    settings: ServerSettings
    kube: Kube
    resolver: Resolver
    budget: Budget
    metrics: Metrics
    transfer: TransferSettings
    indexes: IndexCache = field(default_factory=IndexCache)  # seekable tar.zst indexes
    ready: bool = True
    draining: bool = False


CONTEXT = web.AppKey("argosy", Context)
CAUSE = web.RequestKey("argosy_cause", str)  # why a request failed, for logs and metrics


async def blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))
