"""The HTTP face of the Kubernetes test API server (aiohttp.web).

It turns the official client's REST calls into store operations and back: URL routing for
core (``/api/v1``) and grouped (``/apis/{group}/{version}``) resources, namespaced and
cluster-wide; bearer-token authentication and an optional authorization hook; fault
injection and a request log for tests; discovery documents; and streaming watches. A watch
is an asyncio task fed through a queue, so any number of open watches never block other
requests, and they end on ``timeoutSeconds``, on ``close_watches`` or when the client leaves.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from argosy.testing.kube.discovery import discovery_document
from argosy.testing.kube.model import (
    JsonDict,
    KubeError,
    ResourceRegistry,
    ResourceSpec,
    status_object,
)
from argosy.testing.kube.reviews import (
    ACCESS_REVIEW_PATH,
    SELF_REVIEW_PATH,
    TOKEN_REVIEW_PATH,
    access_review,
    token_review,
)
from argosy.testing.kube.semantics import (
    json_patch,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    strip_directives,
)
from argosy.testing.kube.store import ABORT, CLOSE, Store, Watcher


@dataclass(frozen=True)
class RequestAttributes:
    """What an authorization hook gets to decide on, like a SubjectAccessReview."""

    user: str
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str


Authorizer = Callable[[RequestAttributes], bool]


@dataclass
class Fault:
    """A canned failure for requests matching ``method`` and ``path_regex``."""

    method: str
    path_regex: str
    status: int
    times: int | None = 1  # None: every matching request, forever
    message: str = "injected fault"
    retry_after: int | None = None
    watch: bool | None = None  # None: watches and plain requests alike
    hits: int = 0

    def matches(self, method: str, path: str, watch: bool) -> bool:
        return (
            (self.method in ("*", method))
            and re.search(self.path_regex, path) is not None
            and (self.watch is None or self.watch == watch)
            and (self.times is None or self.hits < self.times)
        )


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    content_type: str | None
    body: Any
    watch: bool = False


@dataclass
class Target:
    spec: ResourceSpec
    namespace: str | None  # None: all namespaces (or a cluster-scoped resource)
    name: str | None
    subresource: str | None = None


@dataclass
class HttpSettings:
    token: str | None
    bookmark_interval: float = 5.0  # seconds between BOOKMARKs on watches that allow them
    default_watch_timeout: float = 1800.0  # seconds, when the client sends no timeoutSeconds
    users: dict[str, str] = field(default_factory=dict)  # extra token -> user name


def _is_watch(query: Any) -> bool:
    return str(query.get("watch", "")).lower() in ("true", "1")


class KubeHttpApp:
    """Request handling; one instance per server, shared by all connections."""

    def __init__(self, store: Store, registry: ResourceRegistry, settings: HttpSettings) -> None:
        self.store, self.registry, self.settings = store, registry, settings
        self.authorizer: Authorizer | None = None
        self.faults: list[Fault] = []
        self.log: deque[RequestRecord] = deque(maxlen=10000)
        self.lock = threading.Lock()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- entry point ---------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        query = dict(request.query)
        watch = request.method == "GET" and _is_watch(query)
        status = 500
        try:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise KubeError(400, f"invalid JSON body: {exc}") from exc
            faulted = self._fault(request.method, request.path, watch)
            if faulted is not None:
                status = faulted.status
                return faulted
            user = self._authenticate(request)
            response = await self._dispatch(request, user, body, watch)
            status = response.status
            return response
        except KubeError as error:
            status = error.code
            return web.json_response(error.status(), status=error.code)
        except ValueError as error:  # a query parameter that is not a number
            status = 400
            return web.json_response(status_object(400, str(error)), status=400)
        finally:
            with self.lock:
                self.log.append(
                    RequestRecord(
                        request.method,
                        request.path,
                        query,
                        status,
                        request.headers.get("Content-Type"),
                        body,
                        watch,
                    )
                )

    def _fault(self, method: str, path: str, watch: bool) -> web.Response | None:
        with self.lock:
            fault = next((f for f in self.faults if f.matches(method, path, watch)), None)
            if fault is None:
                return None
            fault.hits += 1
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return web.json_response(
            status_object(fault.status, fault.message), status=fault.status, headers=headers
        )

    def _authenticate(self, request: web.Request) -> str:
        if self.settings.token is None:
            return "system:anonymous"
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token and token == self.settings.token:
            return "argosy-test"
        if token and token in self.settings.users:
            return self.settings.users[token]
        raise KubeError(401, "Unauthorized")

    # -- routing -------------------------------------------------------------------------
    async def _dispatch(
        self, request: web.Request, user: str, body: Any, watch: bool
    ) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 1 and parts[0] in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        discovery = discovery_document(parts, self.registry.all(), request.host)
        if discovery is not None:
            return web.json_response(discovery)
        review = self._review(request.method, request.path.rstrip("/"), user, body)
        if review is not None:
            return review
        target = self._route(parts)
        verb = self._verb(request.method, target, watch)
        self._authorize(user, verb, target)
        spec, ns, name = target.spec, target.namespace or "", target.name or ""
        query = request.query
        if "dryRun" in query and verb not in ("get", "list", "watch"):
            # better loud than a dry run that silently writes
            raise KubeError(400, "dryRun is not supported by the Kubernetes test API server")
        if verb == "watch":
            return await self._watch(request, target)
        if verb == "list":
            return web.json_response(self._list(target, query))
        if verb == "get":
            return web.json_response(self.store.get(spec, ns, name))
        if not isinstance(body, dict) and verb in ("create", "update"):
            raise KubeError(400, "the request body must be a JSON object")
        if verb == "create":
            return web.json_response(self.store.create(spec, ns, body), status=201)
        if verb == "update":
            return web.json_response(
                self.store.update(
                    spec,
                    ns,
                    name,
                    body,
                    subresource=target.subresource,
                    require_rv=not spec.builtin,
                )
            )
        if verb == "patch":
            return web.json_response(self._patch(target, request.content_type, body))
        if verb == "delete":
            return web.json_response(self._delete(spec, ns, name, body))
        return web.json_response(self._delete_collection(target, query))

    def _review(self, method: str, path: str, user: str, body: Any) -> web.Response | None:
        """TokenReview and SubjectAccessReview: answered from the token table and the
        authorizer, never stored (POST only, as for real)."""
        if path not in (TOKEN_REVIEW_PATH, ACCESS_REVIEW_PATH, SELF_REVIEW_PATH):
            return None
        if method != "POST":
            raise KubeError(405, f"the server does not allow this method on the reviews ({method})")
        group, plural = path.split("/")[2], path.rsplit("/", 1)[1]
        if path != SELF_REVIEW_PATH:  # asking about oneself needs no right
            self._check(user, "create", group, "v1", plural, "", "", "")
        if path == TOKEN_REVIEW_PATH:
            users = dict(self.settings.users)
            if self.settings.token is not None:
                users[self.settings.token] = "argosy-test"
            return web.json_response(token_review(body, users), status=201)

        def allows(
            who: str, verb: str, group: str, resource: str, sub: str, ns: str, name: str
        ) -> bool:
            if self.authorizer is None:
                return True
            return self.authorizer(RequestAttributes(who, verb, group, "", resource, sub, ns, name))

        caller = user if path == SELF_REVIEW_PATH else None
        return web.json_response(access_review(body, allows, caller=caller), status=201)

    def _check(
        self,
        user: str,
        verb: str,
        group: str,
        version: str,
        plural: str,
        sub: str,
        ns: str,
        name: str,
    ) -> None:
        if self.authorizer is None or self.authorizer(
            RequestAttributes(user, verb, group, version, plural, sub, ns, name)
        ):
            return
        raise KubeError(
            403,
            f'{plural}.{group} is forbidden: User "{user}" cannot {verb} resource "{plural}" '
            f'in API group "{group}" at the cluster scope',
        )

    def _route(self, parts: list[str]) -> Target:
        if parts[:2] == ["api", "v1"]:
            group, version, rest, core = "", "v1", parts[2:], True
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest, core = parts[1], parts[2], parts[3:], False
        else:
            raise KubeError(404, "the server could not find the requested resource")
        namespace: str | None = None
        namespaced_form = rest[:1] == ["namespaces"] and len(rest) >= 3
        if core and namespaced_form and len(rest) == 3 and rest[2] in ("status", "finalize"):
            namespaced_form = False
        if namespaced_form:
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise KubeError(404, "the server could not find the requested resource")
        spec = self.registry.resolve(group, version, rest[0], namespaced=namespace is not None)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (namespace is not None and not spec.namespaced) or (
            spec.namespaced and namespace is None and name is not None
        ):
            raise KubeError(404, "the server could not find the requested resource")
        if sub is not None and not (sub == "status" and spec.status_subresource):
            raise KubeError(404, "the server could not find the requested resource")
        return Target(spec, namespace, name, sub)

    @staticmethod
    def _verb(method: str, target: Target, watch: bool) -> str:
        table = {
            ("GET", True): "watch" if watch else "get",
            ("GET", False): "watch" if watch else "list",
            ("POST", False): "create",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
            ("DELETE", False): "deletecollection",
        }
        verb = table.get((method, target.name is not None))
        if verb is None or (
            verb == "create" and target.spec.namespaced and target.namespace is None
        ):
            raise KubeError(
                405, f"the server does not allow this method on the requested resource ({method})"
            )
        return verb

    def _authorize(self, user: str, verb: str, target: Target) -> None:
        if self.authorizer is None:
            return
        spec = target.spec
        attrs = RequestAttributes(
            user,
            verb,
            spec.group,
            spec.version,
            spec.plural,
            target.subresource or "",
            target.namespace or "",
            target.name or "",
        )
        if self.authorizer(attrs):
            return
        where = (
            f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
        )
        subject = f'{spec.qualified} "{attrs.name}"' if attrs.name else spec.qualified
        raise KubeError(
            403,
            f'{subject} is forbidden: User "{user}" cannot {verb} resource '
            f'"{spec.plural}" in API group "{spec.group}"{where}',
            details={"name": attrs.name, "group": spec.group, "kind": spec.plural},
        )

    # -- verbs ---------------------------------------------------------------------------
    def _list(self, target: Target, query: Any) -> JsonDict:
        spec = target.spec
        items, rv = self.store.select(
            spec,
            target.namespace,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(query.get("fieldSelector")),
        )
        meta: JsonDict = {"resourceVersion": str(rv)}
        token = query.get("continue")
        if token:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(token)))
            except ValueError as exc:
                raise KubeError(400, "invalid continue token") from exc
            items = [
                i
                for i in items
                if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > after
            ]
        limit = int(query.get("limit") or 0)
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps([last.get("namespace", ""), last["name"]]).encode()
            ).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": spec.list_kind,
            "apiVersion": spec.api_version,
            "metadata": meta,
            "items": items,
        }

    def _patch(self, target: Target, content_type: str, body: Any) -> JsonDict:
        spec = target.spec
        accepted = ["application/json-patch+json", "application/merge-patch+json"]
        if spec.builtin:  # custom resources have no schema to merge strategically by
            accepted.append("application/strategic-merge-patch+json")
        if content_type not in accepted:
            raise KubeError(
                415,
                "the body of the request was in an unknown format - accepted "
                f"media types include: {', '.join(accepted)}",
            )
        if content_type != accepted[0] and not isinstance(body, dict):
            raise KubeError(400, "a merge patch must be a JSON object")

        def apply(obj: JsonDict) -> Any:
            if content_type == accepted[0]:
                return json_patch(obj, body)
            return merge_patch(obj, strip_directives(body))

        return self.store.patch(
            spec, target.namespace or "", target.name or "", apply, subresource=target.subresource
        )

    def _delete(self, spec: ResourceSpec, ns: str, name: str, body: Any) -> JsonDict:
        preconditions = body.get("preconditions") if isinstance(body, dict) else None
        obj, deleted = self.store.delete(spec, ns, name, preconditions)
        if not deleted:
            return obj
        details = {"name": name, "kind": spec.plural, "uid": obj["metadata"].get("uid")}
        if spec.group:
            details["group"] = spec.group
        return status_object(200, "", details=details)

    def _delete_collection(self, target: Target, query: Any) -> JsonDict:
        listed = self._list(target, query)
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                self.store.delete(target.spec, meta.get("namespace", ""), meta["name"])
            except KubeError as error:
                if error.code != 404:
                    raise
        return listed

    # -- watch ---------------------------------------------------------------------------
    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query, spec = request.query, target.spec
        raw_rv = query.get("resourceVersion") or "0"
        if not raw_rv.isdigit():
            raise KubeError(400, f"invalid resourceVersion {raw_rv!r}")
        timeout = float(query.get("timeoutSeconds") or self.settings.default_watch_timeout)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, JsonDict]] = asyncio.Queue()

        def deliver(item: tuple[str, JsonDict]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the server's loop is already closed
                pass

        watcher = Watcher(
            spec.group,
            spec.plural,
            target.namespace,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(query.get("fieldSelector")),
            deliver,
            query.get("allowWatchBookmarks", "").lower() in ("true", "1"),
            {"kind": spec.kind, "apiVersion": spec.api_version},
        )
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            initial = self.store.watch(watcher, None if raw_rv == "0" else int(raw_rv))
        except KubeError as error:  # 410 arrives as an ERROR event on a 200 stream
            await response.prepare(request)
            await response.write(_line("ERROR", error.status()))
            await response.write_eof()
            return response
        try:
            await response.prepare(request)
            for event_type, obj in initial:
                await response.write(_line(event_type, obj))
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                wait = (
                    min(remaining, self.settings.bookmark_interval)
                    if watcher.bookmarks
                    else remaining
                )
                try:
                    event_type, obj = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if watcher.bookmarks:
                        self.store.bookmark(watcher)
                    continue
                if event_type == CLOSE:
                    break
                if event_type == ABORT:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(_line(event_type, obj))
        except ConnectionError:  # the client went away; nothing left to tell it
            return response
        finally:
            self.store.unwatch(watcher)
        await response.write_eof()
        return response


def _line(event_type: str, obj: JsonDict) -> bytes:
    return (json.dumps({"type": event_type, "object": obj}) + "\n").encode()
