"""POST /upload-artifacts/{ns}/{wftmpl}/{name}: a file for a WorkflowTemplate's input.

The caller must be allowed what Argo's handler asks `auth.CanI` for: `get
workflowtemplates` and `create workflows` in the namespace (403 otherwise), and the
WorkflowTemplate must exist (404). The form field `file` is streamed straight into a
multipart upload to the repository a workflow of the template would use (`_repository`) under
`uploads/{ns}/{uuid}/{file}`, through a bounded queue (no spool to disk, no whole body in
memory), capped by `max_upload_bytes` (413, the upload aborted, nothing left under the
key). The answer is the artifact, key-only, as a workflow's `arguments.artifacts` entry
takes it.
"""

from __future__ import annotations

import asyncio
import queue
import uuid
from typing import Any

from aiohttp import web

from argosy.argo.kube import KubeForbidden, KubeNotFound
from argosy.argo.location import Location
from argosy.argo.names import REPOSITORIES_CONFIGMAP
from argosy.argo.resources import CONFIGMAPS, WORKFLOW_TEMPLATES
from argosy.argo.workflow import entry_from_configmap, entry_location
from argosy.artifacts.errors import AccessDenied, InvalidSpec, NotFound
from argosy.artifacts.upload import upload_stream
from argosy.server.auth import Caller, Forbidden, may

_DONE = object()


class TooLarge(InvalidSpec):
    pass


class _QueueReader:
    """A blocking reader over chunks an event loop puts in a bounded queue."""

    def __init__(self, limit: int) -> None:
        self.chunks: queue.Queue[Any] = queue.Queue(maxsize=4)
        self.pending = b""
        self.limit = limit
        self.total = 0
        self.ended = False

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, amount: int = -1) -> bytes:
        while not self.ended and (amount < 0 or len(self.pending) < amount):
            item = self.chunks.get()
            if item is _DONE:
                self.ended = True
                break
            if isinstance(item, BaseException):
                raise item
            self.pending += item
        if amount < 0:
            out, self.pending = self.pending, b""
        else:
            out, self.pending = self.pending[:amount], self.pending[amount:]
        return out


def _repository(ctx: Any, caller: Caller, namespace: str, template: str) -> Location:
    """The repository a workflow of the template would write to, as Argo's handler takes
    it: the WorkflowTemplate's `artifactRepositoryRef` (its ConfigMap, default
    `artifact-repositories`, and key), else the namespace's `artifact-repositories` and
    its default entry, else the controller's default (`--default-repository`)."""
    kube = ctx.kube
    for verb, resource in (("get", "workflowtemplates"), ("create", "workflows")):
        if not may(kube, caller, verb, resource, namespace):
            raise Forbidden(f"may not {verb} {resource} in namespace {namespace}")
    try:
        found = kube.get(WORKFLOW_TEMPLATES, namespace, template, token=caller.token)
    except KubeForbidden as error:
        raise Forbidden(
            f"may not read WorkflowTemplate {namespace}/{template}: {error.detail}"
        ) from None
    except KubeNotFound:
        raise NotFound(f"WorkflowTemplate {namespace}/{template} not found") from None
    spec = found.get("spec") if isinstance(found, dict) else None
    ref = spec.get("artifactRepositoryRef") if isinstance(spec, dict) else None
    ref = ref if isinstance(ref, dict) else {}
    name = str(ref.get("configMap") or REPOSITORIES_CONFIGMAP)
    try:
        configmap = kube.find(CONFIGMAPS, namespace, name, token=caller.token)
    except KubeForbidden as error:
        raise Forbidden(f"may not read ConfigMap {namespace}/{name}: {error.detail}") from None
    if configmap is not None:
        key = str(ref["key"]) if ref.get("key") else None
        entry = entry_from_configmap(configmap, key, f"ConfigMap {namespace}/{name}")
    elif ref:
        raise NotFound(
            f"WorkflowTemplate {namespace}/{template} names ConfigMap {namespace}/{name}, "
            "which is not there"
        )
    elif ctx.settings.default_repository is not None:
        entry = ctx.settings.default_repository
    else:
        raise NotFound(
            f"no artifact repository in namespace {namespace} "
            "(and no --default-repository for the controller's)"
        )
    location = entry_location(entry)
    if location is None:
        raise InvalidSpec(f"the repository for namespace {namespace} is not s3, oss or local")
    return location


async def handle_upload(request: web.Request) -> web.StreamResponse:
    from argosy.argo.location import Target
    from argosy.server.context import CONTEXT, blocking
    from argosy.server.respond import caller_of, safe_segments

    ctx = request.app[CONTEXT]
    m = request.match_info
    namespace, template, name = m["ns"], m["tmpl"], m["name"]
    safe_segments(request, name)
    caller = await caller_of(request, namespace)
    limit = ctx.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    location: Location = await blocking(_repository, ctx, caller, namespace, template)
    reader = await request.multipart()
    field: Any = await reader.next()
    while field is not None and getattr(field, "name", None) != "file":
        await field.release()
        field = await reader.next()
    if field is None:
        raise web.HTTPBadRequest(text="the form has no field named file\n")
    filename = (field.filename or name).replace("\\", "/").rsplit("/", 1)[-1]
    if filename in ("", ".", "..") or "\x00" in filename:
        raise web.HTTPBadRequest(text="the file name is not allowed\n")
    key = f"uploads/{namespace}/{uuid.uuid4()}/{filename}"
    bucket = str(location.config.get("bucket") or "")
    target = Target(location.kind, bucket, key, dict(location.config))
    driver = await blocking(ctx.resolver._driver, target, namespace, caller)
    source = _QueueReader(limit)
    loop = asyncio.get_running_loop()
    settings = ctx.transfer
    task = loop.run_in_executor(
        None,
        lambda: upload_stream(driver, key, source, settings=settings),  # type: ignore[arg-type]
    )
    too_large = False
    try:
        while True:
            chunk = await field.read_chunk(1 << 20)
            if not chunk:
                break
            source.total += len(chunk)
            ctx.metrics.received(len(chunk))
            if source.total > limit:
                too_large = True
                await _put(source, TooLarge(f"upload larger than {limit} bytes"))
                break
            await _put(source, chunk)
        if not too_large:
            await _put(source, _DONE)
    except BaseException as error:
        await _put(source, InvalidSpec(f"upload interrupted: {error}"))
        await asyncio.shield(asyncio.wait([task]))
        raise
    try:
        await task
    except TooLarge:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=source.total) from None
    except AccessDenied:
        raise
    return web.json_response({"name": name, location.kind: {"key": key}}, status=200)


async def _put(source: _QueueReader, item: Any) -> None:
    while True:
        try:
            source.chunks.put_nowait(item)
            return
        except queue.Full:
            await asyncio.sleep(0.005)
