"""Workflows moved to Argosy's plugin carry `plugin: {name: argosy, configuration, key}`
locations and repositories: `argosy init` and `wait` read them with the plugin's own
parser, reach the storage the configuration names, and record outputs in the plugin form
Argo reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.sidecar.pods import Pod, configmap


def _configuration(store: Path) -> str:
    return yaml.safe_dump({"local": {"root": str(store), "bucket": "b"}})


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    (store / "b").mkdir(parents=True)
    return store


def test_an_output_with_its_own_plugin_location_is_stored_and_recorded_as_one(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    pod = Pod(tmp_path / "pod")
    location = {"name": "argosy", "configuration": _configuration(store), "key": "out/x"}
    main, wait = pod.main_and_wait(
        "echo hi > tmp/x",
        {
            "name": "t",
            "outputs": {
                "artifacts": [
                    {"name": "x", "path": "/tmp/x", "archive": {"none": {}}, "plugin": location}
                ]
            },
        },
    )
    assert (main.code, wait.code) == (0, 0), wait.err
    assert (store / "b" / "out" / "x").read_text() == "hi\n"
    assert pod.output("x")["location"] == {"plugin": location}


def test_an_output_takes_its_key_from_a_plugin_repositorys_key_format(tmp_path: Path) -> None:
    store = _store(tmp_path)
    repo = configmap(
        {
            "plugin": {
                "name": "argosy",
                "keyFormat": "runs/{{workflow.name}}",
                "configuration": _configuration(store),
            }
        },
        tmp_path / "repo.yaml",
    )
    pod = Pod(tmp_path / "pod", repo)
    _, wait = pod.main_and_wait(
        "echo hi > tmp/x",
        {
            "name": "t",
            "outputs": {"artifacts": [{"name": "x", "path": "/tmp/x", "archive": {"none": {}}}]},
        },
    )
    assert wait.code == 0, wait.err
    assert (store / "b" / "runs" / "wf-1" / "x").read_text() == "hi\n"
    recorded: dict[str, Any] = pod.output("x")["location"]["plugin"]
    assert (recorded["name"], recorded["key"]) == ("argosy", "runs/wf-1/x")


def test_a_key_only_plugin_input_takes_the_repositorys_configuration(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (store / "b" / "k").write_text("from the plugin's storage")
    repo = configmap(
        {"plugin": {"name": "argosy", "configuration": _configuration(store)}},
        tmp_path / "repo.yaml",
    )
    pod = Pod(tmp_path / "pod", repo)
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {"name": "in", "path": "/tmp/in", "plugin": {"name": "argosy", "key": "k"}}
                ]
            },
        }
    )
    assert done.code == 0, done.err
    assert (pod.root / "tmp" / "in").read_text() == "from the plugin's storage"


def test_another_plugins_artifact_is_refused_naming_the_plugin(tmp_path: Path) -> None:
    pod = Pod(tmp_path / "pod")
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "in",
                        "path": "/tmp/in",
                        "plugin": {"name": "s3-plugin", "configuration": "bucket: b", "key": "k"},
                    }
                ]
            },
        }
    )
    assert done.code == 1
    assert "plugin 's3-plugin' artifacts are not supported" in done.err
    assert not (pod.root / "tmp" / "in").exists()
