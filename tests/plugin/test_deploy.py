"""deploy/argo/ as Argo meets it: the component patched into stand-ins for Argo's own
workflow-controller-configmap and argo-server renders into valid objects that register
the plugin and run it beside argo-server; each workflow namespace's repository uses the
plugin with a configuration the plugin reads, and its RBAC names exactly the Secrets that
configuration names; the example workflows are ones Argosy's linter reads cleanly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from argosy.argo import plugin_config
from argosy.argo.lint import lint_file, load_repositories
from argosy.main import main, parser
from tests.kustomize import DEPLOY, IMAGE, KUBERNETES, label, named, render, version

ARGO = DEPLOY / "argo"
SOCKET_DIR = "/tmp/artifact-plugins/argosy"  # where Argo looks for the plugin's socket

# Argo's objects as its install manifests leave them, reduced to what the patches touch.
_ARGO_INSTALL = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: workflow-controller-configmap
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argo-server
spec:
  selector:
    matchLabels: {app: argo-server}
  template:
    metadata:
      labels: {app: argo-server}
    spec:
      serviceAccountName: argo-server
      containers:
        - name: argo-server
          image: quay.io/argoproj/argocli:v4.1.2
          args: [server]
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: tmp, emptyDir: {}}
"""


@pytest.fixture(scope="module")
def patched(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Argo's objects with deploy/argo applied as a kustomize component."""
    folder = tmp_path_factory.mktemp("argo-install")
    (folder / "argo.yaml").write_text(_ARGO_INSTALL)
    component = os.path.relpath(ARGO, folder)  # kustomize takes relative paths only
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "argo",
                "resources": ["argo.yaml"],
                "components": [component],
            }
        )
    )
    return render(folder)


def _config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    data = named(docs, "ConfigMap", "workflow-controller-configmap")["data"]
    assert list(data) == ["config"]  # Argo refuses `config` beside other keys
    return dict(yaml.safe_load(data["config"]))


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(named(docs, "Deployment", "argo-server")["spec"]["template"]["spec"])


def test_the_patched_argo_objects_validate_against_the_kubernetes_schemas(
    patched: list[dict[str, Any]],
) -> None:
    for doc in patched:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{label(doc)}: {error}")


def test_the_controller_configuration_registers_the_argosy_image_as_a_driver(
    patched: list[dict[str, Any]],
) -> None:
    [driver] = _config(patched)["artifactDrivers"]
    assert set(driver) == {"name", "image", "connectionTimeoutSeconds"}
    assert driver["name"] == "argosy"
    assert driver["image"] == f"{IMAGE}:{version()}"
    timeout = driver["connectionTimeoutSeconds"]
    assert isinstance(timeout, int) and 5 <= timeout <= 60


def test_argo_server_runs_the_registered_image_beside_it_sharing_the_socket_folder(
    patched: list[dict[str, Any]],
) -> None:
    [driver] = _config(patched)["artifactDrivers"]
    pod = _pod(patched)
    server, plugin = pod["containers"]
    assert (server["name"], server["args"]) == ("argo-server", ["server"])  # left as it was
    assert plugin["image"] == driver["image"]  # argo-server checks its containers for it
    assert "command" not in plugin  # the image's entrypoint, `argosy plugin`, as Argo runs it
    assert plugin["args"] == [f"{SOCKET_DIR}/socket"]
    shared = {m["name"] for m in server["volumeMounts"] if m["mountPath"] == SOCKET_DIR}
    assert shared == {m["name"] for m in plugin["volumeMounts"] if m["mountPath"] == SOCKET_DIR}
    [volume] = [v for v in pod["volumes"] if v["name"] in shared]
    assert volume["emptyDir"] == {}
    security = plugin["securityContext"]
    assert security["runAsUser"] == 8737 and security["runAsNonRoot"]
    assert security["readOnlyRootFilesystem"]
    assert any(m["mountPath"] == "/tmp" for m in plugin["volumeMounts"])  # still writable


def test_the_plugin_containers_arguments_are_ones_argosy_plugin_accepts(
    patched: list[dict[str, Any]],
) -> None:
    _, plugin = _pod(patched)["containers"]
    args = parser().parse_args(["plugin", *plugin["args"]])
    assert args.socket == f"{SOCKET_DIR}/socket"


def _namespace() -> list[dict[str, Any]]:
    return render(ARGO / "namespace")


def _entries() -> dict[str, dict[str, Any]]:
    data = named(_namespace(), "ConfigMap", "artifact-repositories")["data"]
    return {key: yaml.safe_load(value) for key, value in data.items()}


def test_the_namespaces_default_repository_stores_through_the_plugin_under_a_key_format() -> None:
    configmap = named(_namespace(), "ConfigMap", "artifact-repositories")
    default = configmap["metadata"]["annotations"][
        "workflows.argoproj.io/default-artifact-repository"
    ]
    entry = _entries()[default]
    assert set(entry["plugin"]) == {"name", "keyFormat", "configuration"}
    assert entry["plugin"]["name"] == "argosy"
    assert "{{workflow.name}}" in entry["plugin"]["keyFormat"]
    parsed = plugin_config.parse(entry["plugin"]["configuration"])
    assert parsed.bucket and parsed.names_secrets


def _secrets_named(configuration: str) -> set[str]:
    location = plugin_config.parse(configuration).location
    return {
        value["name"]
        for field, value in location.items()
        if field.endswith("Secret") and isinstance(value, dict)
    }


def test_the_plugin_may_get_exactly_the_secrets_its_repositories_name() -> None:
    docs = _namespace()
    named_secrets = set().union(
        *(_secrets_named(e["plugin"]["configuration"]) for e in _entries().values())
    )
    [rule] = named(docs, "Role", "argosy-plugin-secrets")["rules"]
    assert rule == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": sorted(named_secrets),
        "verbs": ["get"],
    }
    binding = named(docs, "RoleBinding", "argosy-plugin-secrets")
    assert binding["roleRef"]["name"] == "argosy-plugin-secrets"
    [subject] = binding["subjects"]
    assert subject["kind"] == "ServiceAccount"
    assert subject["namespace"] == binding["metadata"]["namespace"]


EXAMPLES = sorted((ARGO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).name)
def test_each_example_workflow_is_read_cleanly_by_argosys_linter(path: Path) -> None:
    report = lint_file(str(path))
    assert not report.diagnostics, [str(d) for d in report.diagnostics]
    for row in report.rows:
        assert row.kind in ("repository", "plugin", "from"), row


def test_with_the_namespaces_repositories_every_example_passes_strict_lint_into_its_bucket(
    capsys: pytest.CaptureFixture[str],
) -> None:
    repositories = ARGO / "namespace" / "artifact-repositories.yaml"
    configmaps, problems = load_repositories(str(repositories))
    assert problems.diagnostics == []
    for path in EXAMPLES:
        for row in lint_file(str(path), configmaps=configmaps).rows:
            assert row.supported, row
            if row.kind == "repository":
                assert row.bucket == "my-bucket", row
    args = ["lint", "--strict", "--repositories", str(repositories), *map(str, EXAMPLES)]
    assert main(args) == 0, capsys.readouterr().err


def _plugin_locations(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        here = [node["plugin"]] if isinstance(node.get("plugin"), dict) else []
        return here + [p for value in node.values() for p in _plugin_locations(value)]
    if isinstance(node, list):
        return [p for value in node for p in _plugin_locations(value)]
    return []


def test_every_plugin_location_in_the_examples_is_argosy_with_a_configuration_it_reads() -> None:
    locations = [
        p for path in EXAMPLES for p in _plugin_locations(yaml.safe_load(path.read_text()))
    ]
    assert locations
    for location in locations:
        assert location["name"] == "argosy" and location["key"]
        plugin_config.parse(location["configuration"])


def test_the_examples_show_passing_archive_none_logs_and_gc_on_completion() -> None:
    rows = [row for path in EXAMPLES for row in lint_file(str(path)).rows]
    docs = {path.name: yaml.safe_load(path.read_text()) for path in EXAMPLES}
    assert any(r.kind == "from" for r in rows)  # an artifact passed between steps
    assert any(r.kind == "repository" and r.direction == "out" for r in rows)  # key-only
    assert any(r.archive == "none" and r.name == "folder" for r in rows)
    assert any(d["spec"].get("archiveLogs") for d in docs.values())
    assert any(r.gc == "OnWorkflowCompletion" for r in rows)
    for doc in docs.values():
        assert doc["kind"] == "Workflow" and doc["spec"]["securityContext"]["runAsUser"] == 8737
