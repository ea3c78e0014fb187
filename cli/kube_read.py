"""Read one namespace's ConfigMap and Secrets for `argosy repo check --namespace`.

The command layer's only door to the official `kubernetes` client, opened only when
--namespace is given: the client is an optional extra (`argosy[k8s]`) and slow to import,
and `argosy repo check FILE` needs neither. It only reads, and answers in Argosy's error
tree so the command reports a refused or missing object like any other failure:
401/403 AccessDenied, 404 NotFound (or None where absence is an answer), an unreachable
API server TransientError.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    InvalidSpec,
    NotFound,
    PermanentError,
    TransientError,
)

JsonDict = dict[str, Any]


def _api_error(status: int, reason: str, what: str) -> ArtifactError:
    if status in (401, 403):
        return AccessDenied(f"{what}: the Kubernetes API refused ({status} {reason})",
                            code="Forbidden")
    if status == 404:
        return NotFound(f"{what}: not found", code="NotFound")
    if status >= 500 or status == 429:
        return TransientError(f"{what}: the Kubernetes API answered {status} {reason}",
                              code=str(status))
    return PermanentError(f"{what}: the Kubernetes API answered {status} {reason}",
                          code=str(status))


class KubeReader:
    """GETs of ConfigMaps and Secrets, as the API's JSON."""

    def __init__(self, api_client: Any, *, timeout: float) -> None:
        from kubernetes import client

        self._api_client = api_client
        self._core = client.CoreV1Api(api_client)
        self._timeout = timeout

    @classmethod
    def connect(cls, *, kubeconfig: str | None, context: str | None, in_cluster: bool,
                timeout: float = 30.0) -> KubeReader:
        """A kubeconfig file if given; in a pod, its service account; else the default
        kubeconfig (KUBECONFIG or ~/.kube/config)."""
        try:
            import yaml
            from kubernetes import client, config
        except ImportError:
            raise InvalidSpec("--namespace needs the kubernetes client: "
                              "pip install 'argosy[k8s]'") from None
        configuration = client.Configuration()
        try:
            if in_cluster and not kubeconfig:
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration)
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context,
                    client_configuration=configuration)
        except (config.ConfigException, OSError, TypeError, ValueError,
                yaml.YAMLError) as error:
            # any kubeconfig problem is bad input; its text names the file, not a token
            why = " ".join(str(error).split()) or repr(error)
            raise InvalidSpec(f"cannot load the Kubernetes configuration "
                              f"{kubeconfig or '(default)'}: {why}") from None
        return cls(client.ApiClient(configuration), timeout=timeout)

    def close(self) -> None:
        self._api_client.close()

    def _get(self, fn: Callable[..., Any], name: str, namespace: str, what: str) -> JsonDict:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            response = fn(name, namespace, _preload_content=False,
                          _request_timeout=self._timeout)
            data = response.data
        except ApiException as error:
            raise _api_error(int(error.status or 0), str(error.reason or ""), what) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TransientError(f"{what}: cannot reach the Kubernetes API "
                                 f"({type(error).__name__})", code="EndpointUnreachable"
                                 ) from None
        found = json.loads(data) if data else {}
        if not isinstance(found, dict):
            raise PermanentError(f"{what}: the Kubernetes API answered something other "
                                 "than an object", code="BadAnswer")
        return found

    def configmap(self, namespace: str, name: str) -> JsonDict:
        return self._get(self._core.read_namespaced_config_map, name, namespace,
                         f"ConfigMap {namespace}/{name}")

    def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The Secret's data, decoded; None when there is no such Secret."""
        what = f"Secret {namespace}/{name}"
        try:
            found = self._get(self._core.read_namespaced_secret, name, namespace, what)
        except NotFound:
            return None
        decoded: dict[str, bytes] = {}
        for key, value in (found.get("data") or {}).items():
            try:
                decoded[str(key)] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidSpec(f"{what}: key {key} is not base64") from None
        return decoded
