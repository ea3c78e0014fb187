"""The folder layout is the architecture, and these rules keep it so.

- `artifacts/` (the storage core) imports none of the layers above it.
- `sidecar/` and `gc/` never import each other; they meet only in the command layer.
- Drivers never import each other.
- Each SDK is imported only by the modules that wrap it (one module, or for OSS the
  modules of one package).
- No module of the storage core imports itself back, not even through an import inside
  a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"artifacts": "argosy.artifacts", "argo": "argosy.argo", "sidecar": "argosy.sidecar",
          "gc": "argosy.gc", "testing": "argosy.testing", "cli": "argosy"}
COMMAND_LAYER = {"argosy.__main__", "argosy.main", "argosy.commands", "argosy.config",
                 "argosy.demo", "argosy.pod", "argosy.pod_args", "argosy.lint_command",
                 "argosy.progress", "argosy.demo.workflows", "argosy.demo.spec",
                 "argosy.demo.engine", "argosy.demo.pod", "argosy.demo.storage",
                 "argosy.demo.gc", "argosy.demo.report",
                 "argosy.repo_check", "argosy.repo_probe"}
SDK_HOMES = {
    "boto3": {"argosy.artifacts.drivers.s3.sdk"},
    "botocore": {"argosy.artifacts.drivers.s3.sdk"},
    "oss2": {f"argosy.artifacts.drivers.oss.{m}"
             for m in ("auth", "client", "driver", "errors", "sts")},
    "crcmod": {"argosy.artifacts.drivers.oss.crc"},
    "kubernetes": {"argosy.argo.kube"},
}


def _modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for folder, package in LAYERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            imports: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imports |= {a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imports.add(node.module)
            found[name] = imports
    return found


MODULES = _modules()


def _importers(prefix: str) -> list[tuple[str, str]]:
    return [(m, i) for m, imps in MODULES.items() for i in imps
            if i == prefix or i.startswith(prefix + ".")]


def test_the_storage_core_imports_no_layer_above_it() -> None:
    bad = [(m, i) for m, imps in MODULES.items() if m.startswith("argosy.artifacts")
           for i in imps if i.startswith("argosy.") and not i.startswith("argosy.artifacts")]
    assert bad == []


@pytest.mark.parametrize("one, other", [("argosy.sidecar", "argosy.gc"),
                                        ("argosy.gc", "argosy.sidecar")])
def test_sidecar_and_gc_never_import_each_other(one: str, other: str) -> None:
    assert [(m, i) for m, i in _importers(other) if m.startswith(one)] == []


def _driver(module: str) -> str | None:
    """`s3` for argosy.artifacts.drivers.s3, `oss` for argosy.artifacts.drivers.oss.crc."""
    prefix = "argosy.artifacts.drivers."
    return module[len(prefix):].split(".")[0] if module.startswith(prefix) else None


def test_drivers_never_import_each_other() -> None:
    drivers = [m for m in MODULES if _driver(m)]
    bad = [(m, i) for m in drivers for i in MODULES[m]
           if _driver(i) not in (None, _driver(m))]
    assert bad == []


def test_nothing_outside_the_command_layer_imports_it() -> None:
    bad = [(m, i) for m, imps in MODULES.items() for i in imps
           if i in COMMAND_LAYER and m not in COMMAND_LAYER]
    assert bad == []


@pytest.mark.parametrize("sdk", sorted(SDK_HOMES))
def test_each_sdk_is_imported_only_by_its_wrapper(sdk: str) -> None:
    users = {m for m, _ in _importers(sdk) if not m.startswith("argosy.testing")}
    assert users <= SDK_HOMES[sdk]


def test_the_rules_see_the_modules_they_guard() -> None:
    assert "argosy.artifacts.drivers.s3.sdk" in MODULES
    assert "botocore.session" in MODULES["argosy.artifacts.drivers.s3.sdk"]
    assert "oss2" in MODULES["argosy.artifacts.drivers.oss.client"]
    assert "crcmod" in MODULES["argosy.artifacts.drivers.oss.crc"]
    assert "argosy.artifacts.drivers.oss.crc" in MODULES["argosy.artifacts.drivers.oss.driver"]


def _core_imports() -> dict[str, set[str]]:
    """Each module of the storage core and the core modules it imports anywhere (inside
    functions too; not under `if TYPE_CHECKING:`, which never runs). `from package import
    module` imports the module."""
    root = ROOT / "artifacts"
    paths = {".".join(["argosy.artifacts", *[p for p in path.relative_to(root)
                                              .with_suffix("").parts if p != "__init__"]]): path
             for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test)
                       for inner in ast.walk(node)}
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths
                          else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {i for i in found if i in paths and i != name}
    return graph


def test_no_module_of_the_storage_core_imports_itself_back() -> None:
    graph = _core_imports()

    def reached_from(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for module in graph[todo.pop()] - seen:
                seen.add(module)
                todo.append(module)
        return seen

    assert "argosy.artifacts.drivers.s3.dates" in graph["argosy.artifacts.drivers.s3.sdk"]
    assert sorted(m for m in graph if m in reached_from(m)) == []
