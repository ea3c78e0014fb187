"""The one Kubernetes client wrapper: the only module that imports the `kubernetes` package.

Why a wrapper: the client's typed models are slow to build and awkward to patch, its
errors are one class for everything, and its watch helper hides 410 Gone behind a silent
retry. Here the client only loads the configuration (kubeconfig, in-cluster service
account, exec plugins and token refresh) and holds the TLS connection pool; every call is
plain JSON in and out on a small typed surface (`get`, `find`, `list_pages`, `watch`,
`patch`, `create`, `replace`), and every failure is one of the project's errors:

    KubeError (an ArtifactError)          status, reason and message of the answer
    ├── KubeNotFound      (NotFound)      404
    ├── KubeForbidden     (AccessDenied)  401, 403: the message names verb and resource
    ├── KubeConflict      (Conflict)      409: a stale update, a name already taken
    ├── KubeGone          (Gone)          410: a watch from a compacted resourceVersion
    ├── KubeUnavailable   (TransientError) unreachable, timed out, 5xx, 429
    └── KubeRefused       (PermanentError) any other 4xx

Credentials per call: `token=` sends that bearer token instead of the configuration's
user (the server reads workflows as its caller). Such calls go through a second pool
that carries only the API server's address and CA, never the kubeconfig's client
certificate. Async code calls these methods through `asyncio.to_thread`; one `Kube` is
safe to share between threads (urllib3's pools are).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config

from argosy.argo.resources import SA_NAMESPACE, SECRETS, Resource
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    Conflict,
    Gone,
    InvalidSpec,
    NotFound,
    PermanentError,
    TransientError,
)

JsonDict = dict[str, Any]
MERGE = "application/merge-patch+json"
POOL_SIZE = 32  # connections kept to the API server (workers and watches at once)


class KubeError(ArtifactError):
    """A failed call to the Kubernetes API (status 0: the server could not be reached)."""

    def __init__(self, status: int, reason: str, message: str = "", *, what: str = "") -> None:
        text = f"{status} {reason}: {message}".strip(": ") if status else message or reason
        super().__init__(f"{what}: {text}" if what else text, code=reason or str(status))
        self.status, self.reason, self.detail = status, reason, message


class KubeNotFound(KubeError, NotFound):
    pass


class KubeForbidden(KubeError, AccessDenied):
    """RBAC said no (or the token is not accepted); the message names verb and resource."""


class KubeConflict(KubeError, Conflict):
    pass


class KubeGone(KubeError, Gone):
    """The resourceVersion a watch started from is too old: list again."""


class KubeUnavailable(KubeError, TransientError):
    """The server could not be reached, timed out, or answered 5xx / 429."""


class KubeRefused(KubeError, PermanentError):
    """Any other 4xx: the request itself was wrong (422 Invalid, 400 BadRequest, ...)."""


def api_error(status: int, reason: str, message: str, *, what: str = "") -> KubeError:
    if status == 0 or status >= 500 or status == 429:
        cls: type[KubeError] = KubeUnavailable
    else:
        cls = {
            404: KubeNotFound,
            401: KubeForbidden,
            403: KubeForbidden,
            409: KubeConflict,
            410: KubeGone,
        }.get(status, KubeRefused)
    return cls(status, reason, message, what=what)


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: JsonDict


class WatchStream:
    """One watch request's events; `close()` from another thread ends it early."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = False

    def __iter__(self) -> Iterator[WatchEvent]:
        try:
            pending = b""
            for chunk in self._response.stream(64 * 1024, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(line)
            if pending.strip():
                yield self._event(pending)
        except (urllib3.exceptions.HTTPError, OSError, AttributeError) as error:
            # AttributeError: urllib3 reading a response closed under it by `close()`
            if not self._closed:
                raise KubeUnavailable(0, type(error).__name__, str(error)[:200]) from error
        finally:
            self.close()

    @staticmethod
    def _event(line: bytes) -> WatchEvent:
        try:
            event = json.loads(line)
        except ValueError as error:
            raise KubeUnavailable(0, "BadWatchEvent", str(error)[:200]) from None
        kind, obj = str(event.get("type", "")), event.get("object") or {}
        if kind == "ERROR":
            raise api_error(
                int(obj.get("code") or 0), str(obj.get("reason", "")), str(obj.get("message", ""))
            )
        return WatchEvent(kind, obj)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            shutdown = getattr(self._response, "shutdown", None)
            if shutdown is not None:  # urllib3 >= 2.3: unblocks a read in another thread
                shutdown()
            self._response.close()
            self._response.release_conn()
        except Exception:  # noqa: BLE001 - closing a dead stream may fail; nothing to do
            pass


def _load(
    kubeconfig: str | None, context: str | None, in_cluster: bool | None
) -> tuple[Any, str | None]:
    """The client configuration and the namespace the kubeconfig's context names."""
    import yaml

    configuration = client.Configuration()
    namespace = None
    where = kubeconfig or "(default)"
    if in_cluster is None:
        in_cluster = not kubeconfig and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    try:
        if in_cluster:
            where = "(in-cluster service account)"
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
            contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=kubeconfig
            )
            chosen = (
                next((c for c in contexts if c.get("name") == context), active)
                if context
                else active
            )
            namespace = ((chosen or {}).get("context") or {}).get("namespace")
    except (
        config.ConfigException,
        OSError,
        TypeError,
        ValueError,
        KeyError,
        yaml.YAMLError,
    ) as error:
        # any kubeconfig problem is bad input; its text names the file, never a token
        why = " ".join(str(error).split()) or repr(error)
        raise InvalidSpec(f"cannot load the Kubernetes configuration {where}: {why}") from None
    return configuration, namespace


class Kube:
    """Calls to one API server, JSON dicts in and out."""

    def __init__(
        self, configuration: Any, *, namespace: str | None = None, request_timeout: float = 30.0
    ) -> None:
        self.configuration = configuration
        self.timeout = request_timeout
        self._namespace = namespace
        # the client's default pool keeps 5 connections per CPU: a controller whose
        # workers patch at once, beside its open watches, would reconnect for every call
        configuration.connection_pool_maxsize = max(
            configuration.connection_pool_maxsize or 0, POOL_SIZE
        )
        self._api_client = client.ApiClient(configuration)
        self._pool = self._api_client.rest_client.pool_manager
        self._token_pool: Any = None
        self._lock = threading.Lock()

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        context: str | None = None,
        in_cluster: bool | None = None,
        request_timeout: float = 30.0,
    ) -> Kube:
        """A kubeconfig file if given; in a pod, its service account; else the default
        kubeconfig (KUBECONFIG or ~/.kube/config). A broken or missing configuration is
        one InvalidSpec naming it."""
        configuration, namespace = _load(kubeconfig, context, in_cluster)
        return cls(configuration, namespace=namespace, request_timeout=request_timeout)

    @classmethod
    def from_configuration(cls, configuration: Any, **kwargs: Any) -> Kube:
        return cls(configuration, **kwargs)

    @property
    def namespace(self) -> str:
        """The kubeconfig context's namespace; in a pod, the service account's; else
        'default'."""
        if self._namespace:
            return self._namespace
        try:
            return SA_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]
        if self._token_pool is not None:
            self._token_pool.clear()

    # -- the wire ------------------------------------------------------------------------
    def _pool_for(self, token: str | None) -> tuple[Any, dict[str, str]]:
        if token is None:
            headers: dict[str, str] = {}
            bearer = self.configuration.auth_settings().get("BearerToken")
            if bearer and bearer.get("value"):
                headers["Authorization"] = str(bearer["value"])
            return self._pool, headers
        with self._lock:
            if self._token_pool is None:  # the API server's address and CA, no user
                bare = copy.copy(self.configuration)
                bare.cert_file = bare.key_file = None
                bare.api_key, bare.api_key_prefix = {}, {}
                bare.refresh_api_key_hook = None
                bare.username = bare.password = None
                self._token_pool = client.ApiClient(bare).rest_client.pool_manager
        return self._token_pool, {"Authorization": f"Bearer {token}"}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        token: str | None = None,
        what: str = "",
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        """One call; JSON back (or, with `stream`, the open response)."""
        pool, headers = self._pool_for(token)
        headers["Accept"] = "application/json"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        url = self.configuration.host.rstrip("/") + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        limit = timeout if timeout is not None else self.timeout
        how = (
            urllib3.Timeout(connect=limit[0], read=limit[1])
            if isinstance(limit, tuple)
            else urllib3.Timeout(total=limit)
        )
        try:
            response = pool.request(
                method,
                url,
                body=data,
                headers=headers,
                timeout=how,
                preload_content=False,
                retries=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeUnavailable(
                0,
                type(error).__name__,
                f"cannot reach the Kubernetes API ({str(error)[:200]})",
                what=what,
            ) from None
        if response.status >= 400:
            raise self._failure(response, what)
        if stream:
            return response
        try:
            raw = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeUnavailable(0, type(error).__name__, str(error)[:200], what=what) from None
        finally:
            response.release_conn()
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise KubeUnavailable(
                response.status,
                "BadAnswer",
                "the Kubernetes API answered something other than JSON",
                what=what,
            ) from None

    @staticmethod
    def _failure(response: Any, what: str) -> KubeError:
        try:
            raw = response.read()
        except (urllib3.exceptions.HTTPError, OSError):
            raw = b""
        finally:
            response.release_conn()
        reason, message = str(response.reason or ""), ""
        try:
            status = json.loads(raw) if raw else {}
            reason = str(status.get("reason") or reason)
            message = str(status.get("message") or "")
        except (ValueError, AttributeError):
            message = raw[:200].decode(errors="replace")
        return api_error(int(response.status), reason, message, what=what)

    # -- the typed surface ---------------------------------------------------------------
    def get(
        self, resource: Resource, namespace: str | None, name: str, *, token: str | None = None
    ) -> JsonDict:
        """The object; KubeNotFound when there is none."""
        return dict(
            self.request(
                "GET",
                resource.path(namespace, name),
                token=token,
                what=_what(resource, namespace, name),
            )
        )

    def find(
        self, resource: Resource, namespace: str | None, name: str, *, token: str | None = None
    ) -> JsonDict | None:
        """The object, or None when there is none (absence is an answer)."""
        try:
            return self.get(resource, namespace, name, token=token)
        except KubeNotFound:
            return None

    def list_pages(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        limit: int = 500,
        label_selector: str | None = None,
        token: str | None = None,
    ) -> Iterator[tuple[list[JsonDict], str]]:
        """Pages of objects (`namespace` None: every namespace), each with the list's
        resourceVersion (the first page's is the snapshot to watch from)."""
        cont: str | None = None
        while True:
            page = self.request(
                "GET",
                resource.path(namespace),
                token=token,
                query={"limit": limit, "continue": cont, "labelSelector": label_selector},
                what=_what(resource, namespace),
            )
            meta = page.get("metadata") or {}
            yield list(page.get("items") or []), str(meta.get("resourceVersion") or "")
            cont = meta.get("continue")
            if not cont:
                return

    def list(self, resource: Resource, namespace: str | None, **kwargs: Any) -> list[JsonDict]:
        return [item for page, _ in self.list_pages(resource, namespace, **kwargs) for item in page]

    def watch(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int,
        token: str | None = None,
    ) -> WatchStream:
        response = self.request(
            "GET",
            resource.path(namespace),
            token=token,
            stream=True,
            query={
                "watch": "true",
                "resourceVersion": resource_version,
                "timeoutSeconds": timeout_seconds,
                "allowWatchBookmarks": "true",
            },
            timeout=(self.timeout, timeout_seconds + 15),
            what=_what(resource, namespace),
        )
        return WatchStream(response)

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: JsonDict,
        *,
        subresource: str | None = None,
        token: str | None = None,
    ) -> JsonDict:
        """A JSON merge patch; put `metadata.resourceVersion` in it to get 409 when stale."""
        return dict(
            self.request(
                "PATCH",
                resource.path(namespace, name, subresource),
                body=patch,
                content_type=MERGE,
                token=token,
                what=_what(resource, namespace, name),
            )
        )

    def create(
        self, resource: Resource, namespace: str | None, body: JsonDict, *, token: str | None = None
    ) -> JsonDict:
        name = (body.get("metadata") or {}).get("name")
        return dict(
            self.request(
                "POST",
                resource.path(namespace),
                body=body,
                token=token,
                what=_what(resource, namespace, name),
            )
        )

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JsonDict,
        *,
        token: str | None = None,
    ) -> JsonDict:
        return dict(
            self.request(
                "PUT",
                resource.path(namespace, name),
                body=body,
                token=token,
                what=_what(resource, namespace, name),
            )
        )

    def secret_data(
        self, namespace: str, name: str, *, token: str | None = None
    ) -> dict[str, bytes] | None:
        """A Secret's data, decoded; None when there is no such Secret."""
        found = self.find(SECRETS, namespace, name, token=token)
        if found is None:
            return None
        decoded: dict[str, bytes] = {}
        for key, value in (found.get("data") or {}).items():
            try:
                decoded[str(key)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidSpec(f"Secret {namespace}/{name}: key {key} is not base64") from None
        return decoded


def _what(resource: Resource, namespace: str | None, name: str | None = None) -> str:
    """How a message names the object: `ConfigMap team/artifact-repositories`."""
    where = "/".join(p for p in (namespace if resource.namespaced else None, name) if p)
    return f"{resource.kind} {where}".strip()
