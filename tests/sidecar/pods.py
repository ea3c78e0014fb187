"""A workflow pod as separate processes: `argosy emissary`, `argosy init`, `argosy wait`,
each started the way a pod starts its containers, sharing a var dir and a root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Done:
    code: int
    err: str


@dataclass
class Pod:
    workdir: Path
    repository: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(
        default_factory=lambda: {"workflow.name": "wf-1", "pod.name": "pod-1"}
    )

    @property
    def var(self) -> Path:
        return self.workdir / "var"

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    def template(self, template: dict[str, Any]) -> Path:
        path = self.workdir / "template.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(template))
        return path

    def _base(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "ARGOSY_", "OSS_", "ARGO_"))
        }
        return {**keep, "HOME": str(self.workdir), **self.env}

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "argosy", *args],
            env=self._base(),
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def _sidecar_args(self, template: Path, extra: tuple[str, ...]) -> list[str]:
        args = [
            "--template",
            str(template),
            "--var-dir",
            str(self.var),
            "--root",
            str(self.root),
            "--annotations",
            str(self.workdir / "annotations"),
        ]
        if self.repository is not None:
            args += ["--repository", str(self.repository)]
        for name, value in self.variables.items():
            args += ["--set", f"{name}={value}"]
        return [*args, *extra]

    def run(self, command: str, template: dict[str, Any], *extra: str) -> Done:
        return finish(self.start(command, *self._sidecar_args(self.template(template), extra)))

    def run_file(self, command: str, *extra: str) -> Done:
        """`command` on the template file already in the work folder, as it is."""
        return finish(
            self.start(command, *self._sidecar_args(self.workdir / "template.yaml", extra))
        )

    def init(self, template: dict[str, Any], *extra: str) -> Done:
        return self.run("init", template, *extra)

    def main_and_wait(
        self,
        script: str,
        template: dict[str, Any],
        *extra: str,
    ) -> tuple[Done, Done]:
        """`wait` starts first and blocks on the exit code; main runs under emissary."""
        path = self.template(template)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        waiting = self.start("wait", *self._sidecar_args(path, extra))
        main = self.start(
            "emissary", "--var-dir", str(self.var), "--", "sh", "-c", f"cd {self.root} && {script}"
        )
        return finish(main), finish(waiting)

    def outputs(self) -> dict[str, Any]:
        return dict(json.loads((self.var / "outputs.json").read_text()))

    def output(self, name: str) -> dict[str, Any]:
        return next(a for a in self.outputs()["artifacts"] if a["name"] == name)


def finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> Done:
    _, err = proc.communicate(timeout=timeout)
    return Done(proc.returncode, err.decode())


def configmap(entry: dict[str, Any], path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "artifact-repositories",
                    "annotations": {"workflows.argoproj.io/default-artifact-repository": "default"},
                },
                "data": {"default": yaml.safe_dump(entry)},
            }
        )
    )
    return path


def secrets(folder: Path, values: dict[str, dict[str, str]]) -> Path:
    for name, keys in values.items():
        for key, value in keys.items():
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / name / key).write_text(value)
    return folder
