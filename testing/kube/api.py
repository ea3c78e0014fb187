"""A Kubernetes API server for tests, because no kube-apiserver can be installed here.

Argosy's artifact GC controller and sidecar talk to Kubernetes through the official
``kubernetes`` client: they watch Argo Workflows, read ConfigMaps and Secrets, write Events,
hold a Lease, patch finalizers. To test them against real HTTP with real semantics
(resourceVersions, 409 on stale writes, 410 on expired watches, finalizers), this module
runs an in-process server on a background thread and writes a kubeconfig for it::

    with KubeTestServer() as server:
        server.write_kubeconfig(path)
        api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(path)))

Tests steer it from Python: ``inject_fault`` (canned 500/429/403 ...), ``compact`` (force
410), ``close_watches`` (drop streams), ``clock`` (pin timestamps), ``authorizer`` (simulate
RBAC denial) and ``requests`` (what the client sent). Run ``python -m argosy.testing.kube_api``
to serve it standalone. Storage rules live in ``store``, HTTP in ``http``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import yaml
from aiohttp import web

from argosy.testing.kube.http import (
    Authorizer,
    Fault,
    HttpSettings,
    KubeHttpApp,
    RequestAttributes,
    RequestRecord,
)
from argosy.testing.kube.model import (
    DEFAULT_RESOURCES,
    Clock,
    JsonDict,
    KubeError,
    ManualClock,
    ResourceRegistry,
    ResourceSpec,
    utc_now,
)
from argosy.testing.kube.reviews import Grant, Grants
from argosy.testing.kube.store import Store

__all__ = [
    "Fault",
    "KubeError",
    "KubeTestServer",
    "ManualClock",
    "RequestAttributes",
    "RequestRecord",
    "ResourceSpec",
    "main",
]
DEFAULT_TOKEN = "argosy-test-token"


class KubeTestServer:
    """In-process Kubernetes API server on ``host:port`` (port 0 picks a free port)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = DEFAULT_TOKEN,
        clock: Clock = utc_now,
        history_limit: int = 1000,
        bookmark_interval: float = 5.0,
        default_watch_timeout: float = 1800.0,
        resources: Iterable[ResourceSpec] = DEFAULT_RESOURCES,
        strict_resources: bool = False,
        require_namespaces: bool = False,
        namespaces: Iterable[str] = ("default", "kube-system"),
    ) -> None:
        """
        ``token``: the bearer token clients must send (None: no authentication).
        ``history_limit``: events kept for watch resumption; older versions get 410.
        ``bookmark_interval``: seconds between BOOKMARKs for ``allowWatchBookmarks`` watches.
        ``default_watch_timeout``: seconds a watch lasts when the client gives no timeout.
        ``strict_resources``: unknown group/plural answer 404 instead of being admitted.
        ``require_namespaces``: creating in a missing namespace answers 404, as for real.
        """
        self.host, self._port = host, port
        self.token = token
        self.registry = ResourceRegistry(tuple(resources), strict=strict_resources)
        self.store = Store(
            clock=clock, history_limit=history_limit, require_namespaces=require_namespaces
        )
        self._http = KubeHttpApp(
            self.store,
            self.registry,
            HttpSettings(
                token=token,
                bookmark_interval=bookmark_interval,
                default_watch_timeout=default_watch_timeout,
            ),
        )
        self._grants: Grants | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        for namespace in namespaces:
            self.create_object(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="kube-test-server", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which re-raises it
            failure.append(exc)
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _startup(self) -> None:
        runner = web.AppRunner(
            self._http.application(),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def _shutdown(self) -> None:
        self.store.close_watches()
        await asyncio.sleep(0.05)  # let closed watches flush their last chunk
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Close watches and the listener, then the loop; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    # -- clients -------------------------------------------------------------------------
    def kubeconfig(self, *, namespace: str = "default", name: str = "argosy-test") -> JsonDict:
        user: JsonDict = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": user}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
            "current-context": name,
        }

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig (token user, plain http) that any Kubernetes client can load."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace=namespace), sort_keys=False))
        return target

    def client_configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointing here (the client is imported lazily)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
            self.kubeconfig(), client_configuration=configuration
        )
        return configuration

    # -- test hooks ----------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self.store.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.store.clock = clock

    @property
    def authorizer(self) -> Authorizer | None:
        """``f(RequestAttributes) -> bool``; False answers 403 Forbidden. None allows all."""
        return self._http.authorizer

    @authorizer.setter
    def authorizer(self, authorizer: Authorizer | None) -> None:
        self._http.authorizer = authorizer

    def add_token(self, token: str, user: str) -> None:
        """Accept another bearer token, authenticated as ``user`` (for the authorizer)."""
        self._http.settings.users[token] = user

    @property
    def users(self) -> dict[str, str]:
        """Every accepted token and its user (the kubeconfig's as ``argosy-test``)."""
        found = dict(self._http.settings.users)
        if self.token:
            found[self.token] = "argosy-test"
        return found

    def grant(
        self, user: str, namespace: str, verbs: Iterable[str], resources: Iterable[str]
    ) -> None:
        """Let ``user`` do ``verbs`` on ``resources`` (plural, or plural.group) in
        ``namespace`` ("*": any). The first grant installs the grant table as the
        authorizer: from then on a user has only what was granted, except the
        kubeconfig's own user, who keeps every right."""
        if self._grants is None:
            self._grants = Grants(admins={"argosy-test"})
            table = self._grants
            self.authorizer = lambda a: table.allows(
                a.user, a.verb, a.group, a.resource, a.namespace
            )
        self._grants.add(Grant(user, namespace, frozenset(verbs), frozenset(resources)))

    def register_resource(self, spec: ResourceSpec) -> None:
        self.registry.register(spec)

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int | None = 1,
        *,
        message: str = "injected fault",
        retry_after: int | None = None,
        watch: bool | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests whose method (or "*") and path match with a
        ``Status`` of ``status``; ``watch`` narrows it to watches (True) or non-watches."""
        fault = Fault(method.upper(), path_regex, status, times, message, retry_after, watch)
        with self._http.lock:
            self._http.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._http.lock:
            self._http.faults.clear()

    def compact(self, resource_version: int | str | None = None) -> None:
        """Drop watch history up to ``resource_version`` (default: now); older watches get 410."""
        self.store.compact(None if resource_version is None else int(resource_version))

    def close_watches(self, *, abort: bool = False) -> int:
        """End all open watch streams: cleanly, or (``abort``) by dropping the connection."""
        return self.store.close_watches(abort=abort)

    @property
    def open_watches(self) -> int:
        """How many watch streams are open now (tests wait for 1 before writing)."""
        return self.store.open_watches

    @property
    def requests(self) -> list[RequestRecord]:
        with self._http.lock:
            return list(self._http.log)

    def clear_requests(self) -> None:
        with self._http.lock:
            self._http.log.clear()

    @property
    def resource_version(self) -> str:
        return str(self.store.resource_version)

    # -- direct object access (no HTTP, no auth, no faults) ------------------------------
    def _spec(
        self, api_version: str, plural: str | None, kind: str | None, namespaced: bool
    ) -> ResourceSpec:
        group, _, version = api_version.rpartition("/")
        if plural is None:
            found = self.registry.find_kind(api_version, kind or "")
            if found is None:
                raise KubeError(404, f"no plural known for {api_version} {kind}; pass plural=")
            return found
        return self.registry.resolve(group, version, plural, namespaced=namespaced)

    def create_object(self, obj: JsonDict, *, plural: str | None = None) -> JsonDict:
        """Create ``obj`` as if POSTed (events fire); the plural is looked up from its kind."""
        meta = obj.get("metadata") or {}
        spec = self._spec(obj["apiVersion"], plural, obj.get("kind"), "namespace" in meta)
        namespace = str(meta.get("namespace") or "default") if spec.namespaced else ""
        return self.store.create(spec, namespace, obj)

    def get_object(
        self, api_version: str, plural: str, name: str, namespace: str | None = None
    ) -> JsonDict | None:
        spec = self._spec(api_version, plural, None, namespace is not None)
        try:
            return self.store.get(spec, namespace or "", name)
        except KubeError:
            return None

    def list_objects(
        self, api_version: str, plural: str, namespace: str | None = None
    ) -> list[JsonDict]:
        spec = self._spec(api_version, plural, None, True)
        return self.store.select(spec, namespace, [], [])[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m argosy.testing.kube_api",
        description="Serve the Kubernetes test API server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for it here")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help='bearer token; "" disables auth')
    parser.add_argument("--history", type=int, default=1000, help="watch events retained")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="TOKEN=NAME",
        help="accept another bearer token as user NAME (repeatable)",
    )
    parser.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="NAME:NAMESPACE:VERBS:RESOURCES",
        help="give user NAME these verbs on these resources (comma lists, * for any); "
        "with any grant, users have only what they were granted (repeatable)",
    )
    args = parser.parse_args(argv)
    users: list[tuple[str, str]] = []
    grants: list[Grant] = []
    try:
        for text in args.user:
            token, sep, name = text.partition("=")
            if not sep or not token or not name:
                raise ValueError(f"--user is TOKEN=NAME, not {text!r}")
            users.append((token, name))
        grants = [Grant.parse(text) for text in args.grant]
    except ValueError as error:
        parser.error(str(error))
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop it, also when started with SIGINT ignored (as a
    # shell's background job is), where Python would not raise KeyboardInterrupt.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = KubeTestServer(
        host=args.host, port=args.port, token=args.token or None, history_limit=args.history
    ).start()
    for token, name in users:
        server.add_token(token, name)
    for grant in grants:
        server.grant(grant.user, grant.namespace, grant.verbs, grant.resources)
    try:
        print(f"Kubernetes test API server listening on {server.url}")
        if args.kubeconfig:
            server.write_kubeconfig(args.kubeconfig)
            print(
                f"kubeconfig written to {args.kubeconfig}\n"
                f"  export KUBECONFIG={args.kubeconfig.resolve()}\n"
                f"  python: kubernetes.config.load_kube_config({str(args.kubeconfig)!r})"
            )
        if server.token:
            print(f"  bearer token: {server.token}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
