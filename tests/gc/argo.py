"""Argo, played by the tests: workflows with artifacts in their status, repositories,
secrets and policies, written to the Kubernetes test API the way Argo and users do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client

from argosy.argo.workflow import ARGO_FINALIZER, FINALIZER
from argosy.gc.outcome import ANNOTATION

GROUP, VERSION = "argoproj.io", "v1alpha1"
ACCESS, SECRET = "argosy-test-access", "argosy-test-secret"


def json_object(answer: object) -> dict[str, Any]:
    """A custom object as the client answers it: decoded JSON (typed `object`)."""
    assert isinstance(answer, dict), answer
    return answer


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Art:
    """One output artifact of a pod node: `key` in the repository (key-only, as Argo
    records them), or with its own bucket."""

    name: str
    key: str
    strategy: str | None = None  # artifactGC.strategy; "" = present but empty
    node: str = "pod"
    bucket: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    kind: str = "s3"

    def status(self) -> dict[str, Any]:
        location: dict[str, Any] = {"key": self.key, **self.extra}
        if self.bucket:
            location["bucket"] = self.bucket
        raw: dict[str, Any] = {"name": self.name, self.kind: location}
        if self.strategy is not None:
            raw["artifactGC"] = {"strategy": self.strategy}
        return raw


def repository_entry(
    bucket: str,
    endpoint: str,
    *,
    secret: str = "s3-creds",
    key_format: str = "{{workflow.name}}/{{pod.name}}",
) -> dict[str, Any]:
    return {
        "archiveLogs": True,
        "s3": {
            "bucket": bucket,
            "endpoint": endpoint.removeprefix("http://"),
            "insecure": True,
            "region": "us-east-1",
            "keyFormat": key_format,
            "accessKeySecret": {"name": secret, "key": "accesskey"},
            "secretKeySecret": {"name": secret, "key": "secretkey"},
        },
    }


class Argo:
    """Writes what Argo's controller and its users would, through the official client."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    # -- setup of a namespace ------------------------------------------------------------
    def namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def secret(
        self, namespace: str, name: str = "s3-creds", access: str = ACCESS, secret: str = SECRET
    ) -> None:
        self.core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                string_data={"accesskey": access, "secretkey": secret},
            ),
        )

    def repositories(
        self, namespace: str, entries: dict[str, dict[str, Any]], *, default: str | None = None
    ) -> None:
        import yaml

        meta = client.V1ObjectMeta(name="artifact-repositories")
        if default:
            meta.annotations = {"workflows.argoproj.io/default-artifact-repository": default}
        self.core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=meta, data={k: yaml.safe_dump(v) for k, v in entries.items()}
            ),
        )

    def policy(self, namespace: str, spec: dict[str, Any], name: str = "default") -> None:
        body = {
            "apiVersion": "argosy.io/v1alpha1",
            "kind": "ArtifactGCPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
        try:
            current = json_object(
                self.custom.get_namespaced_custom_object(
                    "argosy.io", "v1alpha1", namespace, "artifactgcpolicies", name
                )
            )
        except client.ApiException:
            self.custom.create_namespaced_custom_object(
                "argosy.io", "v1alpha1", namespace, "artifactgcpolicies", body
            )
            return
        current["spec"] = spec
        self.custom.replace_namespaced_custom_object(
            "argosy.io", "v1alpha1", namespace, "artifactgcpolicies", name, current
        )

    def get_policy(self, namespace: str, name: str = "default") -> dict[str, Any]:
        return json_object(
            self.custom.get_namespaced_custom_object(
                "argosy.io", "v1alpha1", namespace, "artifactgcpolicies", name
            )
        )

    # -- workflows -----------------------------------------------------------------------
    def submit(
        self,
        namespace: str,
        name: str,
        artifacts: Iterable[Art] = (),
        *,
        strategy: str | None = None,
        labels: dict[str, str] | None = None,
        argo_finalizer: bool = False,
        repository: dict[str, Any] | None = None,
        templates: list[dict[str, Any]] | None = None,
        phase: str = "Running",
    ) -> dict[str, Any]:
        """A running workflow whose pods already reported `artifacts`."""
        spec: dict[str, Any] = {"entrypoint": "main", "templates": templates or []}
        if strategy is not None:
            spec["artifactGC"] = {"strategy": strategy}
        meta: dict[str, Any] = {"name": name, "labels": labels or {}}
        if argo_finalizer:
            meta["finalizers"] = [ARGO_FINALIZER]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workflow",
            "metadata": meta,
            "spec": spec,
            "status": self._status(name, list(artifacts), phase, None, repository),
        }
        return json_object(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "workflows", body
            )
        )

    @staticmethod
    def _status(
        name: str,
        artifacts: list[Art],
        phase: str,
        finished: datetime | None,
        repository: dict[str, Any] | None,
    ) -> dict[str, Any]:
        nodes: dict[str, Any] = {name: {"id": name, "name": name, "type": "Steps", "phase": phase}}
        for art in artifacts:
            node_id = f"{name}-{art.node}"
            node = nodes.setdefault(
                node_id,
                {
                    "id": node_id,
                    "name": f"{name}.{art.node}",
                    "type": "Pod",
                    "phase": phase,
                    "outputs": {"artifacts": []},
                },
            )
            node["outputs"]["artifacts"].append(art.status())
        status: dict[str, Any] = {"phase": phase, "nodes": nodes}
        if finished is not None:
            status["finishedAt"] = stamp(finished)
        ref: dict[str, Any] = {"configMap": "artifact-repositories", "key": "default"}
        if repository is not None:
            ref["artifactRepository"] = repository
        status["artifactRepositoryRef"] = ref
        return status

    def finish(self, namespace: str, name: str, phase: str, at: datetime) -> dict[str, Any]:
        """The workflow completed: Argo sets the phase, finishedAt and the completed label."""
        return json_object(
            self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "workflows",
                name,
                {
                    "metadata": {"labels": {"workflows.argoproj.io/completed": "true"}},
                    "status": {"phase": phase, "finishedAt": stamp(at)},
                },
                _content_type="application/merge-patch+json",
            )
        )

    def delete(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", name)

    def drop_argo_finalizer(self, namespace: str, name: str) -> None:
        wf = self.get(namespace, name)
        assert wf is not None
        left = [f for f in wf["metadata"].get("finalizers", []) if f != ARGO_FINALIZER]
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "workflows",
            name,
            {
                "metadata": {
                    "finalizers": left,
                    "resourceVersion": wf["metadata"]["resourceVersion"],
                }
            },
            _content_type="application/merge-patch+json",
        )

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return json_object(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "workflows", name
                )
            )
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def finalizers(self, namespace: str, name: str) -> list[str]:
        wf = self.get(namespace, name)
        return list((wf or {}).get("metadata", {}).get("finalizers") or [])

    def record(self, namespace: str, name: str) -> dict[str, Any]:
        import json

        wf = self.get(namespace, name) or {}
        raw = (wf.get("metadata", {}).get("annotations") or {}).get(ANNOTATION)
        return json.loads(raw) if raw else {}

    def events(self, namespace: str, name: str | None = None) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_event(namespace).items
        return [
            {
                "reason": e.reason,
                "type": e.type,
                "message": e.message,
                "object": e.involved_object.name,
            }
            for e in items
            if name is None or e.involved_object.name == name
        ]


def later(start: datetime, **delta: float) -> datetime:
    return start + timedelta(**delta)


__all__ = ["ARGO_FINALIZER", "FINALIZER", "Argo", "Art", "repository_entry", "stamp", "later"]
