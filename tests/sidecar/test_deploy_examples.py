"""deploy/examples/sidecar/ holds objects a user can apply as they are: valid for
Kubernetes, with commands Argosy's own parser accepts and a template and repository Argosy
can read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from argosy.argo.template import load_template
from argosy.main import parser

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "sidecar"


def documents() -> list[dict[str, Any]]:
    found = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    assert found, f"no examples under {EXAMPLES}"
    return found


def _pod() -> dict[str, Any]:
    return next(d for d in documents() if d["kind"] == "Pod")


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_example_validates_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.30", strict=True)


def test_the_pod_runs_init_first_then_wait_as_a_native_sidecar_around_an_emissary_main() -> None:
    spec = _pod()["spec"]
    init, wait = spec["initContainers"]
    assert init["command"][:2] == ["argosy", "init"] and "restartPolicy" not in init
    assert wait["command"][:2] == ["argosy", "wait"] and wait["restartPolicy"] == "Always"
    [main] = spec["containers"]
    assert main["command"][:2] == ["argosy", "emissary"]
    shared = {m["name"] for m in main["volumeMounts"]}
    assert {"data", "var"} <= shared
    assert all(shared <= {m["name"] for m in c["volumeMounts"]} for c in (init, wait))


@pytest.mark.parametrize("container", ["init", "wait", "main"])
def test_each_containers_command_is_one_argosy_accepts(container: str) -> None:
    spec = _pod()["spec"]
    found = next(c for c in spec["initContainers"] + spec["containers"] if c["name"] == container)
    args = parser().parse_args(found["command"][1:] + found.get("args", []))
    assert args.command == found["command"][1]


def test_the_template_and_repository_in_the_configmap_are_ones_argosy_reads() -> None:
    data = next(d for d in documents() if d["kind"] == "ConfigMap")["data"]
    template = load_template(data["template.yaml"], source="template.yaml")
    assert [a.name for a in template.inputs] == ["dataset"]
    assert [a.argosy.archive for a in template.outputs] == ["tar.zst", None]
    assert template.warnings == ()
    entry = yaml.safe_load(data["repository.yaml"])
    assert entry["s3"]["bucket"] and entry["keyFormat"]
