"""One pod of the local engine, as real processes: `argosy init`, then `argosy wait` and
`argosy emissary` side by side, as Argo runs its init, wait and main containers.

Each pod gets a folder W: `W/template.json` (what Argo passes as ARGO_TEMPLATE),
`W/sandbox/` (the main container's filesystem: `/tmp/x` is `W/sandbox/tmp/x`, through
`argosy.demo.sandbox`; init and wait reach it with `--root`, like Argo's
/mainctrfs), `W/var/` (the var dir the emissary and wait share; the sidecar's reports
`inputs.json` and `outputs.json` land there) and one log per process (`W/init.log`,
`W/wait.log`, `W/main.log`; the main container's standard output alone is
`W/main.stdout`, Argo's `outputs.result`, and both streams together are
`W/var/ctr/main/combined`). Pod variables reach the sidecar as Argo's environment
(ARGO_WORKFLOW_NAME, ARGO_POD_NAME, ...). Output parameters are read from their files
in the sandbox once main has exited, as Argo's wait container reads them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argosy.argo.template import parse_template
from argosy.demo import variables
from argosy.demo.engine import Pod, PodResult
from argosy.demo.sandbox import Sandbox, launcher, tops_of
from argosy.demo.spec import SCRIPT_PATH
from argosy.sidecar import placing, report
from argosy.sidecar.results import OutputResult

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class PodSettings:
    """How pods run on this machine.

    workdir: each pod's folder is `workdir/<step name>` (made unique).
    repository: the artifact-repositories ConfigMap file init and wait read.
    env: the environment of every process (the caller puts ARGOSY_SECRETS_DIR in it).
    sandbox_mode: auto (namespaces, else rewritten arguments), namespace or rewrite.
    timeout: seconds a pod may take, all its processes together; then they are killed
        (60: the examples take about a second; a hung step must not hang the demo).
    python: the interpreter that runs `argosy` (this one).
    """

    workdir: Path
    repository: Path
    env: Mapping[str, str] = field(default_factory=dict)
    sandbox_mode: str = "auto"
    timeout: float = 60.0
    python: str = sys.executable


class ProcessRunner:
    def __init__(self, settings: PodSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._taken: set[str] = set()

    def folder_for(self, pod: Pod) -> Path:
        """`workdir/<display name>`, suffixed when two steps share a name (nested ones)."""
        base = _UNSAFE.sub("-", pod.display) or "step"
        with self._lock:
            name, n = base, 1
            while name in self._taken:
                n += 1
                name = f"{base}-{n}"
            self._taken.add(name)
        return self.settings.workdir / name

    def run(self, pod: Pod) -> PodResult:
        s = self.settings
        folder = self.folder_for(pod)
        sandbox_root, var_dir = folder / "sandbox", folder / "var"
        sandbox_root.mkdir(parents=True)
        var_dir.mkdir()
        template_file = folder / "template.json"
        template_file.write_text(json.dumps(pod.template, indent=2) + "\n")
        result = PodResult(pod, folder=str(folder))
        deadline = time.monotonic() + s.timeout
        env = {
            **s.env,
            "ARGO_WORKFLOW_NAME": pod.workflow,
            "ARGO_POD_NAME": pod.pod_name,
            "ARGO_NODE_ID": pod.node_id,
            "ARGO_WORKFLOW_NAMESPACE": pod.namespace,
            "ARGO_WORKFLOW_UID": pod.workflow_uid,
        }
        sidecar = [
            "--template",
            str(template_file),
            "--var-dir",
            str(var_dir),
            "--root",
            str(sandbox_root),
            "--repository",
            str(s.repository),
            "--no-report",
        ]
        if (pod.template.get("inputs") or {}).get("artifacts"):
            started = time.monotonic()
            code = self._finish(self._start("init", ["init", *sidecar], folder, env), deadline)
            result.seconds["init"] = time.monotonic() - started
            result.inputs_report = _read_json(var_dir / "inputs.json")
            if code != 0:
                result.failure = f"init exited {code}: {_last_line(folder / 'init.log')}"
                return result
        paths = [
            str(a["path"])
            for side in ("inputs", "outputs")
            for a in (pod.template.get(side) or {}).get("artifacts") or []
            if a.get("path")
        ]
        paths += [path for _, path, _ in _parameter_files(pod.template)]
        if pod.script is not None:
            script = placing.destination(SCRIPT_PATH, sandbox_root)
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(pod.script)
            paths.append(SCRIPT_PATH)
        command = launcher(
            Sandbox(sandbox_root.resolve(), tops_of(paths)),
            pod.command,
            mode=s.sandbox_mode,
            workdir=pod.workdir,
            python=s.python,
        )
        started = time.monotonic()
        wait = self._start("wait", ["wait", *sidecar, "--timeout", f"{s.timeout:g}"], folder, env)
        main = self._start(
            "main",
            ["emissary", "--var-dir", str(var_dir), "--", *command],
            folder,
            {**env, **pod.env},
            stdout=folder / "main.stdout",
        )
        main_code = self._finish(main, deadline)
        result.seconds["main"] = time.monotonic() - started
        wait_started = time.monotonic()
        wait_code = self._finish(wait, deadline)
        result.seconds["wait"] = time.monotonic() - wait_started
        result.outputs_report = _read_json(var_dir / "outputs.json")
        result.outputs = recorded_outputs(pod.template, result.outputs_report)
        result.failure = _failure(main_code, wait_code, result, folder)
        if result.failure is None:
            result.result = _stdout(folder / "main.stdout")
            result.parameters, result.failure = output_parameters(pod.template, sandbox_root)
        return result

    def _start(
        self,
        name: str,
        args: Sequence[str],
        folder: Path,
        env: Mapping[str, str],
        *,
        stdout: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        log = open(folder / f"{name}.log", "wb")
        out = open(stdout, "wb") if stdout is not None else None
        try:
            # A session of its own: on a timeout the whole pod (the sandboxed command
            # included) is killed by its process group, and nothing else.
            return subprocess.Popen(
                [self.settings.python, "-m", "argosy", *args],
                stdin=subprocess.DEVNULL,
                stdout=out if out is not None else log,
                stderr=log if out is not None else subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        finally:
            log.close()
            if out is not None:
                out.close()

    @staticmethod
    def _finish(process: subprocess.Popen[bytes], deadline: float) -> int:
        try:
            return process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
            return 124  # as timeout(1) reports it


def recorded_outputs(
    template: Mapping[str, Any],
    document: Mapping[str, Any] | None,
) -> list[Mapping[str, Any]]:
    """The uploaded outputs as Argo records them in the node's status (what wait reports
    to a WorkflowTaskResult in a cluster), rebuilt from `outputs.json`."""
    if not document:
        return []
    results = []
    for entry in document.get("artifacts") or []:
        checksum = entry.get("checksum") or None
        results.append(
            OutputResult(
                name=str(entry.get("name")),
                status=str(entry.get("status")),
                path=str(entry.get("path") or ""),
                reason=str(entry.get("reason") or ""),
                url=str(entry.get("url") or ""),
                location=entry.get("location") or {},
                size=int(entry.get("size") or 0),
                checksum=f"{checksum['algorithm']}:{checksum['value']}" if checksum else None,
                archive=str(entry.get("archive") or ""),
                seconds=float(entry.get("seconds") or 0.0),
            )
        )
    return list(report.argo_artifacts(parse_template(template, source="template.json"), results))


RESULT_LIMIT = 256 * 1024  # Argo keeps the last 256 kB of a result


def _stdout(path: Path) -> str:
    """Argo's `outputs.result`: standard output, one final newline dropped."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").removesuffix("\n")
    return text[-RESULT_LIMIT:]


def _parameter_files(template: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, path, default) of each output parameter read from a file."""
    found = []
    for parameter in (template.get("outputs") or {}).get("parameters") or []:
        source = parameter.get("valueFrom") or {}
        if source.get("path"):
            found.append((str(parameter["name"]), str(source["path"]), source.get("default")))
    return found


def output_parameters(template: Mapping[str, Any], root: Path) -> tuple[dict[str, str], str | None]:
    """The pod's output parameters, as Argo's wait container saves them: a file's
    content (one final newline dropped), else its `valueFrom.default`, else a failure;
    or a parameter's own `value`. Files are read inside the sandbox only."""
    values: dict[str, str] = {}
    for parameter in (template.get("outputs") or {}).get("parameters") or []:
        if parameter.get("valueFrom") is None and parameter.get("value") is not None:
            values[str(parameter["name"])] = variables.scalar(parameter["value"]) or ""
    inside = root.resolve()
    for name, path, default in _parameter_files(template):
        file = placing.destination(path, root).resolve()
        try:
            if not file.is_relative_to(inside):
                raise FileNotFoundError(path)
            values[name] = file.read_text(errors="replace").removesuffix("\n")
        except OSError:
            if default is None:
                return values, f"output parameter {name}: cannot read {path}"
            values[name] = variables.scalar(default) or ""
    return values, None


def _failure(main_code: int, wait_code: int, result: PodResult, folder: Path) -> str | None:
    if main_code != 0:
        return f"main exited {main_code} (its log: {folder / 'var/ctr/main/combined'})"
    failed = [
        a
        for a in (result.outputs_report or {}).get("artifacts") or []
        if a.get("status") == "failed"
    ]
    if failed:
        return "; ".join(f"output {a.get('name')}: {a.get('reason')}" for a in failed)
    if wait_code != 0:
        return f"wait exited {wait_code}: {_last_line(folder / 'wait.log')}"
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line]
    except OSError:
        return f"(no {path.name})"
    return lines[-1] if lines else f"(see {path})"
