"""deploy/ holds valid Kubernetes objects (checked offline against the API's schemas),
the CRD validates policies the way the controller does, and RBAC grants only what the
controller uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from argosy.argo.names import Strategy
from argosy.commands.gc import add_arguments
from argosy.gc.duration import PATTERN

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
VERSION = "1.30"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def crd_schema() -> dict[str, Any]:
    crd = next(d for _, d in documents() if d["kind"] == "CustomResourceDefinition")
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "argosy.io/v1alpha1",
        "kind": "ArtifactGCPolicy",
        "metadata": {"name": "default"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "where, doc",
    [d for d in documents() if d[1]["kind"] != "ArtifactGCPolicy"],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_manifest_validates_against_the_kubernetes_schemas(
    where: str, doc: dict[str, Any]
) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_offline_validation_does_catch_a_misspelt_field() -> None:
    deployment = next(d for _, d in documents() if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_example_policy_validates_against_the_crd() -> None:
    [example] = [d for _, d in documents() if d["kind"] == "ArtifactGCPolicy"]
    jsonschema.validate(example, crd_schema())


@pytest.mark.parametrize(
    "spec",
    [
        {"strategy": "Sometimes"},
        {"expireAfter": "-1h"},
        {"expireAfter": "30 days"},
        {"dryRun": "yes"},
        {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
    ],
)
def test_the_crd_refuses_what_the_controller_refuses(spec: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(policy(spec), crd_schema())


def test_the_crd_and_the_controller_agree_on_strategies_and_durations() -> None:
    spec = crd_schema()["properties"]["spec"]["properties"]
    assert spec["strategy"]["enum"] == [s.value for s in Strategy]
    assert spec["expireAfter"]["pattern"] == PATTERN
    assert spec["sweeps"]["properties"]["orphansAfter"]["pattern"] == PATTERN


def test_rbac_grants_only_the_verbs_the_controller_uses() -> None:
    rules: dict[tuple[str, str], set[str]] = {}
    for _, doc in documents():
        if doc["kind"] in ("ClusterRole", "Role") and "secrets" not in doc["metadata"]["name"]:
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        rules.setdefault((group, resource), set()).update(rule["verbs"])
    everything = {verb for verbs in rules.values() for verb in verbs}
    assert "*" not in everything and "delete" not in everything
    assert rules[("", "secrets")] == {"get"}  # never list or watch
    assert rules[("argoproj.io", "workflows")] == {"get", "list", "watch", "patch"}
    assert rules[("", "events")] == {"create"}
    assert rules[("coordination.k8s.io", "leases")] == {"create", "get", "update"}


def test_the_deployments_arguments_are_ones_argosy_gc_accepts() -> None:
    import argparse

    deployment = next(d for _, d in documents() if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "gc"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(args[1:])
    assert (parsed.lease_namespace, parsed.metrics_port) == ("argosy-system", 8080)
