"""`argosy demo`'s workflows: Argo's own `artifact-passing` example and Argosy's
`directory-passing`, run on this machine as a small local engine, then garbage-collected.

Why: the demo should show the job Argosy exists for, artifacts moving between the pods
of an Argo workflow, with no cluster and no outside server. Every pod runs as Argo runs
it, as separate processes (`argosy init`, then `argosy wait` beside `argosy emissary`),
each step in its own sandbox (`argosy.demo.sandbox`: its /tmp is its own), the
artifacts going through the embedded S3 server (or a real endpoint with `--endpoint
--bucket`). What moved is printed from the sidecar's own reports. Last, the GC
controller runs one pass against a Kubernetes test API holding the finished Workflows
and the namespace's ArtifactGCPolicy, and the bucket is listed before and after.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml

from argosy.artifacts.errors import InvalidSpec
from argosy.demo import check
from argosy.demo import report as show
from argosy.demo.engine import Engine, PodResult, Run, StepFailed
from argosy.demo.gc import NAMESPACE, POLICY_SPEC, GcOutcome, collect, missing_modules
from argosy.demo.pod import PodSettings, ProcessRunner
from argosy.demo.sandbox import Sandbox, launcher
from argosy.demo.spec import Workflow, parse_workflow
from argosy.demo.storage import KEY_FORMAT, DemoStorage, embedded_s3, remote_storage

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEFAULT_WORKFLOWS = ("argo/artifact-passing.yaml", "directory-passing.yaml")
# The pods' environment: none of the caller's storage or cluster settings leak into them.
_DROPPED = ("AWS_", "OSS_", "ARGO_", "ARGOSY_", "KUBERNETES_")


def workflow_files(given: list[str]) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    if not EXAMPLES.is_dir():
        raise InvalidSpec(
            f"no examples folder at {EXAMPLES} (this is not a source checkout): "
            "give the workflows to run with --workflow FILE"
        )
    return [EXAMPLES / name for name in DEFAULT_WORKFLOWS]


def load(paths: list[Path]) -> list[Workflow]:
    """Every workflow parsed and checked before any runs, so a typo, or a feature the
    engine does not run as Argo would, fails in a second with nothing run or written."""
    found = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as error:
            raise InvalidSpec(f"cannot read workflow {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidSpec(f"workflow {path} is not text") from None

        workflow = parse_workflow(text, source=str(path), namespace="argosy-demo")
        check.workflow(workflow)
        found.append(workflow)
    return found


@contextmanager
def _workdir(given: str | None, keep: bool) -> Iterator[Path]:
    if given:
        folder = Path(given).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="argosy-demo-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _storage(args: argparse.Namespace, env: Mapping[str, str]) -> Iterator[DemoStorage]:
    remote = remote_storage(endpoint=args.endpoint, bucket=args.bucket, region=args.region, env=env)
    if remote is not None:
        yield remote
        return
    with embedded_s3() as storage:
        yield storage


def pod_env(
    env: Mapping[str, str], *, secrets_dir: Path, workdir: Path, storage: DemoStorage
) -> dict[str, str]:
    kept = {k: v for k, v in env.items() if not k.startswith(_DROPPED) and k != "KUBECONFIG"}
    if not storage.embedded:
        # A real endpoint may rely on the AWS default chain (profile, IRSA): keep it.
        kept.update({k: v for k, v in env.items() if k.startswith(("AWS_", "OSS_"))})
    return {
        **kept,
        "ARGOSY_SECRETS_DIR": str(secrets_dir),
        "ARGOSY_CHECKPOINT_DIR": str(workdir / "checkpoints"),
        "ARGOSY_LOCAL_ROOT": str(workdir / "local"),
    }


def sandbox_kind(mode: str, workdir: Path) -> str:
    """Which way the sandbox will go here, found by asking it once."""
    probe = Sandbox(workdir / "sandbox-probe")
    done = subprocess.run(
        launcher(probe, ["true"], mode=mode), capture_output=True, text=True, timeout=60
    )
    shutil.rmtree(probe.root, ignore_errors=True)
    if done.returncode != 0:
        raise InvalidSpec(f"the step sandbox does not work here: {done.stderr.strip()}")
    if "rewriting" in done.stderr:
        return (
            "arguments rewritten ("
            + done.stderr.split(";", 1)[0].removeprefix("argosy sandbox: ")
            + ")"
        )
    return "private user+mount namespaces (W/sandbox/tmp is the step's /tmp)"


def run_workflow(workflow: Workflow, storage: DemoStorage, settings: PodSettings) -> Run:
    lock = threading.Lock()

    def finished(result: PodResult) -> None:
        with lock:
            print(show.pod_line(result), flush=True)
            for line in show.table(list(show.transfers(result)), indent="    "):
                print(line, flush=True)

    def skipped(display: str, reason: str) -> None:
        with lock:
            print(f"  {display}: {reason}", flush=True)

    engine = Engine(
        workflow,
        ProcessRunner(settings),
        repository=storage.entry,
        key_format=KEY_FORMAT,
        on_pod=finished,
        on_skip=skipped,
    )
    try:
        return engine.run()
    except StepFailed as error:
        print(f"  workflow {workflow.name} failed: {error}", flush=True)
        return engine.run_record


def print_gc(outcome: GcOutcome, url: str) -> None:
    spec = yaml.safe_dump(dict(POLICY_SPEC), default_flow_style=True).strip()
    conditions = (outcome.policy.get("status") or {}).get("conditions") or []
    accepted = "; ".join(str(c.get("message")) for c in conditions) or "no status yet"
    print(f"  ArtifactGCPolicy {NAMESPACE}/default: spec {spec}  ({accepted})")
    print(
        "  precedence: an artifact's artifactGC.strategy, else the workflow's "
        "spec.artifactGC.strategy, else this policy, else Never"
    )
    total = sum(o.size for o in outcome.before)
    print(f"  before: {len(outcome.before)} object(s), {show.size(total)}")
    for line in show.table(
        [(url + obj.key, show.size(obj.size)) for obj in outcome.before], indent="    "
    ):
        print(line)
    print(f"  $ {' '.join(outcome.command)}")
    for line in outcome.output.splitlines():
        print(f"    {line}")
    print(
        f"  after: {len(outcome.after)} object(s)"
        + ("; every artifact the workflows wrote is gone" if not outcome.after else "")
    )
    for obj in outcome.after:
        print(f"    left: {url}{obj.key}")


def run(
    args: argparse.Namespace, env: Mapping[str, str], *, workflows: list[Workflow] | None = None
) -> int:
    """Exit 0 when every workflow succeeded and the GC left none of their objects
    (`workflows`: already loaded and checked, else read from `--workflow`)."""
    if workflows is None:
        workflows = load(workflow_files(args.workflow))
    mode = args.sandbox or env.get("ARGOSY_SANDBOX") or "auto"
    started = datetime.now(UTC)
    with _workdir(args.workdir, args.keep) as workdir, _storage(args, env) as storage:
        repository, secrets_dir = storage.write(workdir / "repository")
        driver = storage.driver(secrets_dir)
        pod_environment = pod_env(env, secrets_dir=secrets_dir, workdir=workdir, storage=storage)
        where = "embedded S3 (moto, in this process)" if storage.embedded else storage.endpoint
        kept = "" if args.workdir or args.keep else " (removed at the end; --keep keeps it)"
        print(
            f"argosy demo: workflows on this machine; artifacts in {storage.url} "
            f"({where}); repository {repository}; work folder {workdir}{kept}"
        )
        print(f"  step sandbox: {sandbox_kind(mode, workdir)}")
        runs = []
        for workflow in workflows:
            print(f"workflow {workflow.name} ({workflow.source})", flush=True)
            t0 = time.monotonic()
            settings = PodSettings(
                workdir=workdir / workflow.name,
                repository=repository,
                env=pod_environment,
                sandbox_mode=mode,
                timeout=args.step_timeout,
                python=sys.executable,
            )
            run_record = run_workflow(workflow, storage, settings)
            runs.append(run_record)
            state = "Succeeded" if run_record.succeeded else "Failed"
            print(
                f"  {state} in {time.monotonic() - t0:.1f} s; pods' folders under "
                f"{settings.workdir}",
                flush=True,
            )
        ok = all(r.succeeded for r in runs)
        if args.no_gc:
            return 0 if ok else 1
        missing = missing_modules()
        if missing:
            print(
                f"artifact GC: skipped, it needs {' and '.join(missing)}: "
                "pip install 'argosy[demo,k8s,server]'"
            )
            return 0 if ok else 1
        print(
            "artifact GC: the finished Workflows, their repository and the namespace's "
            "policy in a Kubernetes test API, then one pass of the controller",
            flush=True,
        )
        outcome = collect(
            runs,
            storage,
            driver,
            folder=workdir,
            python=sys.executable,
            env=pod_environment,
            started=started,
        )
        print(f"  Kubernetes test API at {outcome.api}, namespace {NAMESPACE}")
        print_gc(outcome, storage.url)
        return 0 if ok and outcome.code == 0 and not outcome.after and outcome.before else 1
