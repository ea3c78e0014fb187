"""The one module that imports the official `kubernetes` client; everything else in the
GC sees plain dicts and the small error tree below.

Why a wrapper: the client's typed models are slow to build and awkward to patch, its
errors are one class for everything, and its watch helper hides 410 Gone behind a
silent retry. Here every call returns the API's JSON as dicts (`_preload_content=False`),
errors are split into NotFound / Conflict / Gone / Forbidden / Unavailable, and a watch is
an iterator of events that raises GoneError, so the informer decides to relist.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from argosy.gc.policy import GROUP as POLICY_GROUP
from argosy.gc.policy import PLURAL as POLICY_PLURAL
from argosy.gc.policy import VERSION as POLICY_VERSION

JsonDict = dict[str, Any]
ARGO = ("argoproj.io", "v1alpha1", "workflows")
MERGE = "application/merge-patch+json"


class KubeApiError(Exception):
    """A failed call to the Kubernetes API (status 0: the server could not be reached)."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}".strip(": "))
        self.status, self.reason, self.message = status, reason, message


class NotFoundError(KubeApiError):
    pass


class ConflictError(KubeApiError):
    pass


class GoneError(KubeApiError):
    """The resourceVersion a watch started from is too old: list again."""


class ForbiddenError(KubeApiError):
    """RBAC said no; the message names the verb and resource, as the server wrote it."""


class UnavailableError(KubeApiError):
    """The server could not be reached, timed out, or answered 5xx / 429."""


def _error(status: int, reason: str, message: str) -> KubeApiError:
    cls: type[KubeApiError] = {404: NotFoundError, 409: ConflictError, 410: GoneError,
                               403: ForbiddenError}.get(status, KubeApiError)
    if status == 0 or status >= 500 or status == 429:
        cls = UnavailableError
    return cls(status, reason, message)


def _from_api_exception(error: ApiException) -> KubeApiError:
    message, reason = "", str(error.reason or "")
    try:
        body = json.loads(error.body) if error.body else {}
        message, reason = str(body.get("message", "")), str(body.get("reason") or reason)
    except (ValueError, TypeError, AttributeError):
        message = str(error.body or "")[:200]
    return _error(int(error.status or 0), reason, message)


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
            for line in iter_resp_lines(self._response):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = str(event.get("type", "")), event.get("object") or {}
                if kind == "ERROR":
                    raise _error(int(obj.get("code") or 0), str(obj.get("reason", "")),
                                 str(obj.get("message", "")))
                yield WatchEvent(kind, obj)
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as error:
            # AttributeError: urllib3 reading a response closed under it by `close()`
            if not self._closed:
                raise UnavailableError(0, type(error).__name__, str(error)[:200]) from error
        finally:
            self.close()

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


class Kube:
    """Calls the controller makes, with JSON dicts in and out."""

    def __init__(self, api_client: Any, *, request_timeout: float = 30.0) -> None:
        self.api_client = api_client
        self.timeout = request_timeout
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._leases = client.CoordinationV1Api(api_client)
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, kubeconfig: str | None = None, *, context: str | None = None,
                request_timeout: float = 30.0) -> Kube:
        """A kubeconfig file if given; in a pod, its service account; else the default
        kubeconfig (KUBECONFIG or ~/.kube/config)."""
        configuration = client.Configuration()
        if kubeconfig:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                context=context, client_configuration=configuration)
        return cls(client.ApiClient(configuration), request_timeout=request_timeout)

    @classmethod
    def from_configuration(cls, configuration: Any, **kwargs: Any) -> Kube:
        return cls(client.ApiClient(configuration), **kwargs)

    def close(self) -> None:
        self.api_client.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> JsonDict:
        try:
            response = fn(*args, _preload_content=False, _request_timeout=self.timeout,
                          **kwargs)
            data = response.data
        except ApiException as error:
            raise _from_api_exception(error) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise UnavailableError(0, type(error).__name__, str(error)[:200]) from error
        return json.loads(data) if data else {}

    # -- workflows -----------------------------------------------------------------------
    def list_workflow_pages(self, namespace: str | None, *,
                            limit: int = 500) -> Iterator[tuple[list[JsonDict], str]]:
        """Pages of workflows, each with the list's resourceVersion (the first page's is
        the snapshot to watch from)."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": limit}
            if token:
                kwargs["_continue"] = token
            if namespace is None:
                page = self._call(self._custom.list_cluster_custom_object, *ARGO, **kwargs)
            else:
                page = self._call(self._custom.list_namespaced_custom_object, ARGO[0], ARGO[1],
                                  namespace, ARGO[2], **kwargs)
            meta = page.get("metadata") or {}
            yield list(page.get("items") or []), str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                return

    def watch_workflows(self, namespace: str | None, resource_version: str, *,
                        timeout_seconds: int) -> WatchStream:
        kwargs: dict[str, Any] = {"watch": True, "resource_version": resource_version,
                                  "timeout_seconds": timeout_seconds,
                                  "allow_watch_bookmarks": True}
        try:
            if namespace is None:
                fn: Any = self._custom.list_cluster_custom_object
                args: tuple[Any, ...] = ARGO
            else:
                fn, args = self._custom.list_namespaced_custom_object, (
                    ARGO[0], ARGO[1], namespace, ARGO[2])
            response = fn(*args, _preload_content=False,
                          _request_timeout=(self.timeout, timeout_seconds + 15), **kwargs)
        except ApiException as error:
            raise _from_api_exception(error) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise UnavailableError(0, type(error).__name__, str(error)[:200]) from error
        return WatchStream(response)

    def get_workflow(self, namespace: str, name: str) -> JsonDict:
        return self._call(self._custom.get_namespaced_custom_object, ARGO[0], ARGO[1],
                          namespace, ARGO[2], name)

    def patch_workflow(self, namespace: str, name: str, patch: JsonDict) -> JsonDict:
        """A JSON merge patch; put `metadata.resourceVersion` in it to get 409 when stale."""
        return self._call(self._custom.patch_namespaced_custom_object, ARGO[0], ARGO[1],
                          namespace, ARGO[2], name, patch, _content_type=MERGE)

    # -- policies ------------------------------------------------------------------------
    def get_policy(self, namespace: str, name: str) -> JsonDict | None:
        try:
            return self._call(self._custom.get_namespaced_custom_object, POLICY_GROUP,
                              POLICY_VERSION, namespace, POLICY_PLURAL, name)
        except NotFoundError:
            return None

    def list_policies(self, namespace: str | None) -> list[JsonDict]:
        if namespace is None:
            page = self._call(self._custom.list_cluster_custom_object, POLICY_GROUP,
                              POLICY_VERSION, POLICY_PLURAL)
        else:
            page = self._call(self._custom.list_namespaced_custom_object, POLICY_GROUP,
                              POLICY_VERSION, namespace, POLICY_PLURAL)
        return list(page.get("items") or [])

    def patch_policy_status(self, namespace: str, name: str, status: JsonDict) -> None:
        self._call(self._custom.patch_namespaced_custom_object_status, POLICY_GROUP,
                   POLICY_VERSION, namespace, POLICY_PLURAL, name, {"status": status},
                   _content_type=MERGE)

    # -- core ----------------------------------------------------------------------------
    def get_configmap(self, namespace: str, name: str) -> JsonDict | None:
        try:
            return self._call(self._core.read_namespaced_config_map, name, namespace)
        except NotFoundError:
            return None

    def get_secret(self, namespace: str, name: str) -> JsonDict | None:
        try:
            return self._call(self._core.read_namespaced_secret, name, namespace)
        except NotFoundError:
            return None

    def create_event(self, namespace: str, event: JsonDict) -> None:
        self._call(self._core.create_namespaced_event, namespace, event)

    # -- leases --------------------------------------------------------------------------
    def get_lease(self, namespace: str, name: str) -> JsonDict | None:
        try:
            return self._call(self._leases.read_namespaced_lease, name, namespace)
        except NotFoundError:
            return None

    def create_lease(self, namespace: str, lease: JsonDict) -> JsonDict:
        return self._call(self._leases.create_namespaced_lease, namespace, lease)

    def replace_lease(self, namespace: str, name: str, lease: JsonDict) -> JsonDict:
        return self._call(self._leases.replace_namespaced_lease, name, namespace, lease)
