"""deploy/ renders with kubectl kustomize into valid Kubernetes objects (checked offline
against the API's schemas), the CRD validates policies the way the controller does, RBAC
grants only what the controller uses, and every Argosy image is the project's version."""

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
from tests.kustomize import (
    DEPLOY,
    IMAGE,
    KUBERNETES,
    kustomizations,
    label,
    named,
    render,
    version,
)

GC = DEPLOY / "overlays" / "gc"  # the controller as released
NARROW = DEPLOY / "overlays" / "gc-narrow-secrets"
POLICY = DEPLOY / "examples" / "gc" / "policy.yaml"


def documents() -> list[dict[str, Any]]:
    return render(GC)


@pytest.mark.parametrize("folder", kustomizations(), ids=lambda p: str(Path(p).relative_to(DEPLOY)))
def test_every_kustomization_renders_into_objects_the_kubernetes_schemas_accept(
    folder: Path,
) -> None:
    docs = render(folder)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{folder.relative_to(DEPLOY)}: {label(doc)}: {error}")


def test_the_layout_has_the_base_and_an_overlay_per_deployment() -> None:
    found = {str(p.relative_to(DEPLOY)) for p in kustomizations()}
    assert {"base", "overlays/gc", "overlays/gc-narrow-secrets", "argo/namespace"} <= found


def _images(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        here = [doc["image"]] if isinstance(doc.get("image"), str) else []
        return here + [i for value in doc.values() for i in _images(value)]
    if isinstance(doc, list):
        return [i for value in doc for i in _images(value)]
    return []


def test_every_argosy_image_deploy_names_is_this_version() -> None:
    docs = [d for folder in kustomizations() for d in render(folder)]
    for path in DEPLOY.rglob("*.yaml"):  # patches and examples too
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    images = {i for d in docs for i in _images(d) if i.startswith(f"{IMAGE}:")}
    assert images == {f"{IMAGE}:{version()}"}


def test_the_offline_validation_does_catch_a_misspelt_field() -> None:
    deployment = next(d for d in documents() if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def crd_schema() -> dict[str, Any]:
    crd = next(d for d in documents() if d["kind"] == "CustomResourceDefinition")
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "argosy.io/v1alpha1",
        "kind": "ArtifactGCPolicy",
        "metadata": {"name": "default"},
        "spec": spec,
    }


def test_the_example_policy_validates_against_the_crd() -> None:
    example = yaml.safe_load(POLICY.read_text())
    assert example["kind"] == "ArtifactGCPolicy"
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
    for doc in documents():
        if doc["kind"] in ("ClusterRole", "Role"):
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

    deployment = next(d for d in documents() if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "gc"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(args[1:])
    assert (parsed.lease_namespace, parsed.metrics_port) == ("argosy-system", 8080)


def test_the_narrow_overlay_drops_only_the_cluster_wide_secrets_rule() -> None:
    released = named(documents(), "ClusterRole", "argosy-gc")["rules"]
    narrow = render(NARROW)
    rules = named(narrow, "ClusterRole", "argosy-gc")["rules"]
    assert rules == [r for r in released if r["resources"] != ["secrets"]]
    assert len(rules) == len(released) - 1
    role = named(narrow, "Role", "argosy-gc-secrets")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["my-s3-credentials"],
            "verbs": ["get"],
        }
    ]
    binding = named(narrow, "RoleBinding", "argosy-gc-secrets")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "argosy-gc", "namespace": "argosy-system"}
    ]
