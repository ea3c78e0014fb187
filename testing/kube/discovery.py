"""Discovery documents of the Kubernetes test API server (``/version``, ``/api``, ``/apis``).

Clients and tools call these before anything else (``kubectl``, ``CustomObjectsApi.
get_api_resources``, version checks). They are derived from the resource registry, so a
resource registered for a test is discoverable the same way a CRD would be.
"""

from __future__ import annotations

from argosy.testing.kube.model import JsonDict, ResourceSpec

KUBE_VERSION: dict[str, str] = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-argosy-test",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _group_versions(specs: list[ResourceSpec]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for spec in specs:
        if spec.group and spec.version not in groups.setdefault(spec.group, []):
            groups[spec.group].append(spec.version)
    return groups


def _group_doc(name: str, versions: list[str]) -> JsonDict:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def _resource_list(specs: list[ResourceSpec], group: str, version: str) -> JsonDict | None:
    resources: list[JsonDict] = []
    for spec in specs:
        if (spec.group, spec.version) != (group, version):
            continue
        resources.append(
            {
                "name": spec.plural,
                "singularName": spec.kind.lower(),
                "namespaced": spec.namespaced,
                "kind": spec.kind,
                "verbs": VERBS,
                "shortNames": list(spec.short_names),
            }
        )
        if spec.status_subresource:
            resources.append(
                {
                    "name": f"{spec.plural}/status",
                    "singularName": "",
                    "namespaced": spec.namespaced,
                    "kind": spec.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    if not resources:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def discovery_document(parts: list[str], specs: list[ResourceSpec], host: str) -> JsonDict | None:
    """The document for a path split into ``parts``, or None if it is not a discovery path."""
    groups = _group_versions(specs)
    if parts == ["version"]:
        return dict(KUBE_VERSION)
    if parts == ["api"]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        }
    if parts == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group_doc(g, groups[g]) for g in sorted(groups)],
        }
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
        return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(parts[1], groups[parts[1]])}
    if parts == ["api", "v1"]:
        return _resource_list(specs, "", "v1")
    if len(parts) == 3 and parts[0] == "apis":
        return _resource_list(specs, parts[1], parts[2])
    return None
