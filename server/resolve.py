"""From a URL's workflow, node and artifact name to the object and the driver that reads it.

As Argo Server does it (`getArtifactAndDriver`): the artifact is found by name in the
node's outputs (logs included: Argo records them as `main-logs`) or inputs, in the
workflow's status; an artifact that names only a key takes the rest of its location from
the node's template's `archiveLocation`, else from the repository the workflow recorded.
Argosy's plugin locations are opened through the storage their configuration names. Every
Kubernetes read (the workflow, the repository's ConfigMap, the Secrets) carries the
caller's token (`Caller.token`), so RBAC decides what a caller reaches.

Drivers are cached by where they go and with which credentials (a SHA-256 of the storage
settings, never the secrets in clear): opening a client costs ~0.1 s and ~12 MiB, and the
time to first byte of a small artifact is mostly that otherwise.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argosy.argo.kube import Kube, KubeForbidden, KubeNotFound
from argosy.argo.location import Location, Target, relocate, unwrap_plugins
from argosy.argo.names import LOCATION_KINDS, STORAGE_KINDS
from argosy.argo.repository import storage_for
from argosy.argo.resources import CONFIGMAPS, WORKFLOWS
from argosy.argo.secrets import ApiSecrets
from argosy.argo.workflow import entry_location, parse_workflow, recorded_repository
from argosy.artifacts.connect import default_local_root, open_driver
from argosy.artifacts.errors import ArtifactError, InvalidSpec, NotFound
from argosy.artifacts.protocol import Driver
from argosy.server.auth import Caller, Forbidden, Unauthenticated

JsonDict = dict[str, Any]


class Offloaded(ArtifactError):
    """The workflow's node status is in Argo's database (offloaded), which Argosy cannot
    read: 501, not a missing artifact."""


@dataclass(frozen=True)
class Resolved:
    """One artifact: where it is, the driver to read it, and its name for downloads."""

    name: str
    target: Target
    driver: Driver
    raw: Mapping[str, Any]  # the artifact as the status records it

    @property
    def key(self) -> str:
        return self.target.key


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def read_workflow(kube: Kube, caller: Caller, namespace: str, name: str) -> JsonDict:
    """The workflow, read as the caller: 401 for a token Kubernetes refuses, 403 for one
    that may not read it, 404 (only where the token may read workflows) for none."""
    try:
        return kube.get(WORKFLOWS, namespace, name, token=caller.token)
    except KubeForbidden as error:
        if error.status == 401:
            raise Unauthenticated("the bearer token is not accepted by Kubernetes") from None
        raise Forbidden(f"may not read workflow {namespace}/{name}: {error.detail}") from None
    except KubeNotFound:
        raise NotFound(f"workflow {namespace}/{name} not found") from None


def _template(workflow: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The node's template, as Argo's GetTemplateFromNode and GetTemplateByName find it."""
    name = node.get("templateName") or _mapping(node.get("templateRef")).get("template")
    if not name:
        return None
    spec, status = _mapping(workflow.get("spec")), _mapping(workflow.get("status"))
    stored = _mapping(status.get("storedWorkflowTemplateSpec"))
    candidates = list(spec.get("templates") or []) + list(stored.get("templates") or [])
    candidates += list(_mapping(status.get("storedTemplates")).values())
    for template in candidates:
        if isinstance(template, Mapping) and template.get("name") == name:
            return template
    return None


def find_artifact(
    workflow: Mapping[str, Any], node_id: str, name: str, *, inputs: bool
) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """The artifact recorded for the node, and its template's archiveLocation."""
    where = f"{_mapping(workflow.get('metadata')).get('name')}"
    status = _mapping(workflow.get("status"))
    nodes = _mapping(status.get("nodes"))
    offloaded = status.get("offloadNodeStatusVersion")
    if offloaded and not nodes:
        raise Offloaded(
            f"workflow {where} keeps its node status in Argo's database (offloaded,"
            f" version {offloaded}); Argosy reads no database: use Argo Server for it"
        )
    node = _mapping(nodes.get(node_id))
    if not node:
        raise NotFound(f"workflow {where} has no node {node_id!r}")
    side = _mapping(node.get("inputs" if inputs else "outputs"))
    for raw in side.get("artifacts") or []:
        if isinstance(raw, Mapping) and raw.get("name") == name:
            template = _template(workflow, node)
            archive = _mapping(template.get("archiveLocation")) if template else {}
            return raw, archive or None
    kind = "input" if inputs else "output"
    raise NotFound(f"node {node_id} of workflow {where} has no {kind} artifact {name!r}")


def _location(raw: Mapping[str, Any]) -> Location | None:
    kinds = [k for k in LOCATION_KINDS if isinstance(raw.get(k), Mapping)]
    return Location(kinds[0], raw[kinds[0]]) if kinds else None


class Resolver:
    """Artifacts of live workflows, with drivers cached across requests."""

    def __init__(
        self,
        kube: Kube,
        *,
        local_root: str | None = None,
        default_repository: Mapping[str, Any] | None = None,
        cache_size: int = 32,
    ) -> None:
        self.kube = kube
        self.local_root = local_root
        self.default_repository = default_repository
        self.cache_size = cache_size
        self._drivers: OrderedDict[str, Driver] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(
        self,
        caller: Caller,
        namespace: str,
        workflow: str,
        node_id: str,
        name: str,
        *,
        inputs: bool,
    ) -> Resolved:
        """Blocking (Kubernetes and storage calls): run it in a thread."""
        obj = read_workflow(self.kube, caller, namespace, workflow)
        raw, archive = find_artifact(obj, node_id, name, inputs=inputs)
        what = f"artifact {name} of {namespace}/{workflow} node {node_id}"
        own = _location(raw)
        if own is None or not own.key:
            raise InvalidSpec(f"{what} records no storage location")

        def repository() -> Location | None:
            if archive and _location(archive) is not None:
                return _location(archive)
            wf = parse_workflow(obj)
            entry = recorded_repository(
                wf,
                lambda ns, cm: self.kube.find(CONFIGMAPS, ns, cm, token=caller.token),
                default=self.default_repository,
            )
            return entry_location(entry)

        repo = None if own.bucket else repository()
        own_loc, repo, plugin = unwrap_plugins(own, repo, what=what)
        if own_loc is not None and own_loc.kind not in STORAGE_KINDS:
            raise InvalidSpec(f"{what}: {own_loc.kind} artifacts are not served by Argosy")
        target = relocate(own_loc, lambda: repo, key=str(own.key), what=what, plugin=plugin)
        return Resolved(name, target, self._driver(target, namespace, caller), raw)

    def _driver(self, target: Target, namespace: str, caller: Caller) -> Driver:
        where = {k: v for k, v in target.config.items() if k not in ("key", "keyFormat")}
        source = ApiSecrets(
            lambda secret: self.kube.secret_data(namespace, secret, token=caller.token),
            namespace=namespace,
        )
        try:
            storage = storage_for(target.kind, where, source)
        except KubeForbidden as error:
            raise Forbidden(f"may not read the artifact's credentials: {error.detail}") from None
        cache_key = hashlib.sha256(repr((storage, target.bucket)).encode()).hexdigest()
        with self._lock:
            driver = self._drivers.get(cache_key)
            if driver is not None:
                self._drivers.move_to_end(cache_key)
                return driver
        driver = open_driver(
            storage,
            target.bucket,
            default_local_root=self.local_root or default_local_root({}),
            max_connections=64,
        )
        with self._lock:
            self._drivers[cache_key] = driver
            while len(self._drivers) > self.cache_size:
                self._drivers.popitem(last=False)
        return driver
