"""`argosy demo`'s workflows: first as a user runs it (a separate process, the example
workflows, real init/wait/emissary processes per step, then the GC), then the engine's
rules one by one (order, `from:` resolution, Argo's names) with a fake pod runner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from argosy.artifacts.errors import InvalidSpec
from argosy.demo import spec
from argosy.demo.engine import Engine, Pod, PodResult, StepFailed
from argosy.demo.pod import recorded_outputs
from argosy.demo.report import rate, size
from argosy.demo.storage import remote_storage, s3_storage
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, s3_driver, unique_bucket

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Where the examples' steps write, as their containers see it: never on this host.
EXAMPLE_PATHS = [
    Path("/tmp/hello_world.txt"),
    Path("/tmp/message"),
    Path("/tmp/out"),
    Path("/tmp/in"),
]


def argosy(
    *args: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("argosy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "argosy"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "ARGOSY_"))}
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def snapshot(paths: list[Path]) -> dict[Path, tuple[int, int] | None]:
    found: dict[Path, tuple[int, int] | None] = {}
    for path in paths:
        try:
            info = path.lstat()
            found[path] = (info.st_ino, info.st_mtime_ns)
        except FileNotFoundError:
            found[path] = None
    return found


def one(pattern: str, folder: Path) -> Path:
    matches = sorted(folder.glob(pattern))
    assert len(matches) == 1, f"{pattern}: {matches}"
    return matches[0]


def uploaded(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob("*/*/var/outputs.json")):
        found += [a for a in json.loads(path.read_text())["artifacts"] if a["status"] == "uploaded"]
    return found


# -- as a user runs it ---------------------------------------------------------------------
@pytest.mark.parametrize("sandbox", ["auto", "rewrite"])
def test_the_demo_passes_the_examples_artifacts_and_the_gc_deletes_them(
    tmp_path: Path, sandbox: str
) -> None:
    before = snapshot(EXAMPLE_PATHS)
    work = tmp_path / "work"

    done = argosy("demo", "--workflows-only", "--workdir", str(work), "--sandbox", sandbox)

    assert done.returncode == 0, done.stdout + done.stderr
    consumer = one("artifact-passing-*/consume-artifact/var/ctr/main/combined", work)
    assert "hello world" in consumer.read_text()
    folders = one("directory-passing-*/consume/var/ctr/main/combined", work)
    assert "both copies of the folder are complete and identical" in folders.read_text()
    # Each step wrote and read its own /tmp, inside its sandbox, never the host's.
    produced = one("artifact-passing-*/generate-artifact/sandbox/tmp/hello_world.txt", work)
    assert produced.read_text() == "hello world\n"
    assert one("directory-passing-*/consume/sandbox/tmp/in/files/notes/readme.md", work)
    assert snapshot(EXAMPLE_PATHS) == before
    # What the producers uploaded existed, and the GC deleted every object of it.
    names = {a["name"] for a in uploaded(work)}
    assert {"hello-art", "tree", "tree-files", "main-logs"} <= names
    objects = int(re.search(r"before: (\d+) object", done.stdout).group(1))  # type: ignore[union-attr]
    assert objects >= 7
    assert f"deleted 7 artifact(s), {objects} object(s)" in done.stdout
    assert "after: 0 object(s)" in done.stdout
    assert "accepted: strategy OnWorkflowCompletion" in done.stdout
    if sandbox == "auto" and "namespaces" not in done.stdout:
        pytest.fail("this machine allows user namespaces, yet the sandbox did not use them")


def test_an_endpoint_in_the_environment_does_not_stop_the_demo_running_on_its_own_s3(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    unreachable = "http://127.0.0.1:9"  # the discard port: nothing answers there

    done = argosy(
        "demo",
        "--size",
        "1",
        "--no-gc",
        "--workflow",
        str(EXAMPLES / "argo" / "artifact-passing.yaml"),
        "--workdir",
        str(work),
        env={
            "AWS_ENDPOINT_URL": unreachable,
            "AWS_ENDPOINT_URL_S3": unreachable,
            "OSS_ENDPOINT": unreachable,
            "AWS_ACCESS_KEY_ID": "someone-elses",
            "AWS_SECRET_ACCESS_KEY": "someone-elses-secret",
        },
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "embedded S3 (moto, in this process)" in done.stdout
    urls = [a["url"] for a in uploaded(work)]
    assert urls and all(u.startswith("s3://argosy-demo/") for u in urls)


def test_the_demo_runs_against_an_s3_endpoint_and_bucket_given(
    tmp_path: Path, moto_endpoint: str
) -> None:
    bucket = unique_bucket("demo")
    driver = s3_driver(moto_endpoint, "id", "secret", bucket)
    work = tmp_path / "work"

    done = argosy(
        "demo",
        "--workflows-only",
        "--workdir",
        str(work),
        "--endpoint",
        moto_endpoint,
        "--bucket",
        bucket,
        env={
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_REGION": "us-east-1",
        },
    )

    assert done.returncode == 0, done.stdout + done.stderr
    urls = [a["url"] for a in uploaded(work)]
    assert urls and all(u.startswith(f"s3://{bucket}/") for u in urls)
    assert list(driver.list("").objects) == []  # the GC deleted them from that bucket


def test_the_demo_runs_against_an_oss_endpoint(tmp_path: Path, oss_server: Any) -> None:
    driver = oss_driver(oss_server.endpoint, unique_bucket("demo"))
    work = tmp_path / "work"

    done = argosy(
        "demo",
        "--workflows-only",
        "--workdir",
        str(work),
        "--bucket",
        f"oss://{driver.bucket}",
        env={
            "OSS_ENDPOINT": oss_server.endpoint,
            "OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY,
            "OSS_ACCESS_KEY_SECRET": OSS_SECRET,
        },
    )

    assert done.returncode == 0, done.stdout + done.stderr
    urls = [a["url"] for a in uploaded(work)]
    assert urls and all(u.startswith(f"oss://{driver.bucket}/") for u in urls)
    assert list(driver.list("").objects) == []


def test_a_failing_step_fails_the_demo_and_names_the_step(tmp_path: Path) -> None:
    workflow = tmp_path / "broken.yaml"
    text = (EXAMPLES / "argo" / "artifact-passing.yaml").read_text()
    workflow.write_text(
        text.replace('args: ["cat /tmp/message"]', 'args: ["cat /tmp/no-such-file"]')
    )

    done = argosy(
        "demo",
        "--workflows-only",
        "--no-gc",
        "--workflow",
        str(workflow),
        "--workdir",
        str(tmp_path / "work"),
    )

    assert done.returncode == 1
    assert re.search(r"step consume-artifact \(pod \S+\) failed: main exited 1", done.stdout), (
        done.stdout
    )


SCRIPT = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: script-step}
spec:
  entrypoint: write
  templates:
  - name: write
    script:
      image: python:3.11
      command: [sh]
      workingDir: /tmp/work
      source: |
        pwd > /tmp/result
        echo "$GREETING" >> /tmp/result
      env: [{name: GREETING, value: from a script}]
    outputs:
      artifacts: [{name: result, path: /tmp/result, archive: {none: {}}}]
"""


def test_a_script_template_runs_in_its_working_folder(tmp_path: Path) -> None:
    workflow = tmp_path / "script.yaml"
    workflow.write_text(SCRIPT)
    work = tmp_path / "work"

    done = argosy("demo", "--workflows-only", "--workflow", str(workflow), "--workdir", str(work))

    assert done.returncode == 0, done.stdout + done.stderr
    [result] = [a for a in uploaded(work) if a["name"] == "result"]
    assert result["size"] == len("/tmp/work\nfrom a script\n")
    assert (work / "script-step" / "script-step" / "sandbox" / "tmp" / "work").is_dir()


FEATURES = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: features}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: greeting, value: hi}]
  templates:
  - name: main
    steps:
    - - {name: plan, template: plan}
    - - name: each
        template: say
        arguments: {parameters: [{name: who, value: "{{item}}"}]}
        withParam: "{{steps.plan.outputs.result}}"
      - name: count
        template: say
        arguments: {parameters: [{name: who, value: "n{{item}}"}]}
        withSequence: {count: "{{steps.plan.outputs.parameters.n}}", format: "%02d"}
      - name: never
        template: say
        arguments: {parameters: [{name: who, value: nobody}]}
        when: "{{steps.plan.outputs.parameters.n}} > 5"
  - name: plan
    script:
      image: python:3.11
      command: [sh]
      source: |
        echo 2 > /tmp/n
        echo '["ann", "bob"]'
    outputs:
      parameters: [{name: n, valueFrom: {path: /tmp/n}}]
  - name: say
    inputs:
      parameters: [{name: who}, {name: mark, default: "!"}]
    container:
      image: busybox
      command:
      - echo
      - "{{workflow.parameters.greeting}} {{inputs.parameters.who}}{{inputs.parameters.mark}}"
"""


def test_parameters_loops_results_and_when_run_as_argo_runs_them(tmp_path: Path) -> None:
    workflow = tmp_path / "features.yaml"
    workflow.write_text(FEATURES)
    work = tmp_path / "work"

    done = argosy(
        "demo", "--workflows-only", "--no-gc", "--workflow", str(workflow), "--workdir", str(work)
    )

    assert done.returncode == 0, done.stdout + done.stderr
    said = {
        path.parent.parent.parent.parent.name: path.read_text().strip()
        for path in (work / "features").glob("*/var/ctr/main/combined")
    }
    assert said == {
        "plan": '["ann", "bob"]',
        "each-0-ann-": "hi ann!",
        "each-1-bob-": "hi bob!",
        "count-0-00-": "hi n00!",
        "count-1-01-": "hi n01!",
    }
    assert "never: when '2 > 5' evaluated false" in done.stdout


REFUSED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: refused}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: first, template: write}
    - - name: second
        templateRef: {name: shared-templates, template: write}
  - name: write
    container: {image: busybox, command: [sh, -c, "echo x > /tmp/x"]}
    outputs:
      artifacts: [{name: x, path: /tmp/x}]
"""


@pytest.mark.parametrize("only", [["--workflows-only"], ["--size", "1"]], ids=["workflows", "all"])
def test_a_refused_workflow_stops_the_demo_before_anything_runs_or_is_written(
    tmp_path: Path, moto_endpoint: str, only: list[str]
) -> None:
    workflow = tmp_path / "refused.yaml"
    workflow.write_text(REFUSED)
    bucket = unique_bucket("demo")
    driver = s3_driver(moto_endpoint, "id", "secret", bucket)
    work = tmp_path / "work"

    done = argosy(
        "demo",
        *only,
        "--workflow",
        str(workflow),
        "--workdir",
        str(work),
        "--endpoint",
        moto_endpoint,
        "--bucket",
        bucket,
        env={"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"},
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"argosy: error: {workflow}: templates.main.steps[1].second: a WorkflowTemplate's "
        "template (templateRef) is not supported by the demo engine (nothing was run)"
    ]
    assert done.stdout == ""  # not even the round trip
    assert not work.exists()  # no work folder, so no pod folder
    assert list(driver.list("").objects) == []


# -- the engine, with a fake pod runner ----------------------------------------------------
REPOSITORY = s3_storage("http://127.0.0.1:9", "bkt", access="a", secret="s").entry


class FakeRunner:
    """Records each pod; outputs are `s3: {key: <pod>/<name>}` for each declared output,
    output parameters read from `files` (path -> content) or their value, and the result
    from `results` (template name -> standard output)."""

    def __init__(
        self,
        fail: str | None = None,
        barrier: threading.Barrier | None = None,
        *,
        results: Mapping[str, str] | None = None,
        files: Mapping[str, str] | None = None,
    ):
        self.pods: list[Pod] = []
        self.fail, self.barrier = fail, barrier
        self.results, self.files = dict(results or {}), dict(files or {})
        self.lock = threading.Lock()

    def displays(self) -> list[str]:
        return [pod.display for pod in self.pods]

    def run(self, pod: Pod) -> PodResult:
        with self.lock:
            self.pods.append(pod)
        if self.barrier is not None and pod.display.startswith("parallel"):
            self.barrier.wait(timeout=10)  # both parallel steps must be running at once
        declared = (pod.template.get("outputs") or {}).get("artifacts") or []
        outputs: list[Mapping[str, Any]] = [
            {
                "name": a["name"],
                "path": a.get("path"),
                "s3": {"bucket": "bkt", "key": f"{pod.pod_name}/{a['name']}"},
            }
            for a in declared
        ]
        failure = "main exited 1" if pod.display == self.fail else None
        parameters = {}
        for p in (pod.template.get("outputs") or {}).get("parameters") or []:
            source = p.get("valueFrom") or {}
            found = self.files.get(str(source.get("path")), source.get("default"))
            parameters[p["name"]] = str(p["value"] if "value" in p else found)
        done = PodResult(pod, outputs=outputs, failure=failure)
        done.parameters, done.result = parameters, self.results.get(pod.template["name"], "")
        return done


def workflow(text: str) -> spec.Workflow:
    return spec.parse_workflow(text, source="wf.yaml", name="wf")


def engine(text: str, runner: FakeRunner) -> Engine:
    return Engine(
        workflow(text), runner, repository=REPOSITORY, key_format="{{workflow.name}}/{{pod.name}}"
    )


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def test_a_consumer_gets_the_producer_s_recorded_location_as_its_input() -> None:
    runner = FakeRunner()

    run = engine(example("argo/artifact-passing.yaml"), runner).run()

    producer, consumer = runner.pods
    assert [p.display for p in runner.pods] == ["generate-artifact", "consume-artifact"]
    [message] = consumer.template["inputs"]["artifacts"]
    assert message == {
        "name": "message",
        "path": "/tmp/message",
        "s3": {"bucket": "bkt", "key": f"{producer.pod_name}/hello-art"},
    }
    assert run.succeeded
    pods = [n for n in run.nodes.values() if n["type"] == "Pod"]
    recorded = [n.get("outputs", {}).get("artifacts") for n in pods]
    assert [a[0]["name"] for a in recorded if a] == ["hello-art"]


def test_a_pod_s_archive_location_is_the_repository_with_its_key_prefix_expanded() -> None:
    runner = FakeRunner()

    engine(example("argo/artifact-passing.yaml"), runner).run()

    location = runner.pods[0].template["archiveLocation"]
    assert location["s3"]["key"] == f"wf/{runner.pods[0].pod_name}"
    assert location["s3"]["bucket"] == "bkt" and "keyFormat" not in location["s3"]
    assert location["archiveLogs"] is True


def test_dag_tasks_wait_for_their_dependencies_and_carry_the_archive() -> None:
    runner = FakeRunner()

    engine(example("directory-passing.yaml"), runner).run()

    assert [p.display for p in runner.pods] == ["produce", "consume"]
    inputs = {a["name"]: a for a in runner.pods[1].template["inputs"]["artifacts"]}
    assert inputs["files"]["path"] == "/tmp/in/files"
    assert inputs["files"]["s3"]["key"].endswith("/tree-files")


PARALLEL = """
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: parallel-a, template: leaf}
      - {name: parallel-b, template: leaf}
    - - {name: after, template: leaf}
  - name: leaf
    container: {command: [true]}
"""


def test_the_steps_of_a_group_run_at_once_and_groups_one_after_another() -> None:
    runner = FakeRunner(barrier=threading.Barrier(2))

    engine(PARALLEL, runner).run()

    assert {p.display for p in runner.pods[:2]} == {"parallel-a", "parallel-b"}
    assert runner.pods[2].display == "after"


def test_a_failed_step_stops_the_workflow_after_its_group_and_names_it() -> None:
    runner = FakeRunner(fail="parallel-a", barrier=threading.Barrier(2))
    running = engine(PARALLEL, runner)

    with pytest.raises(StepFailed, match=r"step parallel-a \(pod wf-leaf-\d+\) failed"):
        running.run()

    assert sorted(p.display for p in runner.pods) == ["parallel-a", "parallel-b"]
    assert not running.run_record.succeeded


def test_a_reference_to_a_missing_output_names_what_the_producer_has() -> None:
    text = example("argo/artifact-passing.yaml").replace(
        "artifacts.hello-art}}", "artifacts.nope}}"
    )

    runner = FakeRunner()

    with pytest.raises(
        InvalidSpec,
        match=r"steps\[1\]\[0\].arguments.artifacts\[0\].from: names output artifact 'nope' "
        r"of step 'generate-artifact', which its template 'hello-world-to-file' does not have "
        r"\(has: hello-art\)",
    ):
        engine(text, runner).run()
    assert runner.pods == []  # refused before the producer ran


def test_dag_order_follows_depends_expressions_and_dependencies() -> None:
    template = {
        "name": "d",
        "dag": {
            "tasks": [
                {"name": "c", "template": "t", "depends": "a && (b.Succeeded || a)"},
                {"name": "b", "template": "t", "dependencies": ["a"]},
                {"name": "a", "template": "t"},
            ]
        },
    }

    waves = spec.dag_waves(template, "wf.yaml")

    assert [[t["name"] for t in wave] for wave in waves] == [["a"], ["b"], ["c"]]


@pytest.mark.parametrize(
    "tasks, message",
    [
        (
            [
                {"name": "a", "template": "t", "dependencies": ["b"]},
                {"name": "b", "template": "t", "dependencies": ["a"]},
            ],
            "form a cycle",
        ),
        ([{"name": "a", "template": "t", "dependencies": ["x"]}], "depends on 'x'"),
    ],
)
def test_dags_the_engine_cannot_run_as_argo_would_are_refused(
    tasks: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(InvalidSpec, match=message):
        spec.dag_waves({"name": "d", "dag": {"tasks": tasks}}, "wf.yaml")


def test_a_script_runs_as_argo_s_executor_runs_it() -> None:
    template = {
        "name": "s",
        "script": {"command": ["python"], "args": ["-u"], "source": "print(1)"},
    }

    assert spec.leaf_command(template, "wf") == ["python", spec.SCRIPT_PATH, "-u"]
    assert spec.leaf_script(template, "wf") == "print(1)"


def test_pod_names_are_argo_s_v2_names() -> None:
    assert spec.fnv32a("") == 0x811C9DC5 and spec.fnv32a("a") == 0xE40C292C
    node = "wf[0].generate-artifact"
    assert spec.pod_name("wf", "hello", node) == f"wf-hello-{spec.fnv32a(node)}"
    assert len(spec.pod_name("w" * 80, "t", node)) <= 63


def test_generate_name_adds_five_lowercase_letters_or_digits() -> None:
    parsed = spec.parse_workflow(example("argo/artifact-passing.yaml"), source="x")

    assert re.fullmatch(r"artifact-passing-[a-z0-9]{5}", parsed.name)


# -- storage, reports ----------------------------------------------------------------------
def test_with_no_endpoint_or_bucket_the_storage_is_the_embedded_one() -> None:
    assert remote_storage(endpoint=None, bucket=None, region=None, env={}) is None


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
        {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "id"},
        {"OSS_ENDPOINT": "http://127.0.0.1:9"},
    ],
)
def test_endpoints_in_the_environment_alone_leave_the_embedded_default(
    env: dict[str, str],
) -> None:
    assert remote_storage(endpoint=None, bucket=None, region=None, env=env) is None


def test_an_endpoint_without_a_bucket_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="--bucket"):
        remote_storage(endpoint="http://s3.example:9000", bucket=None, region=None, env={})


@pytest.mark.parametrize(
    "endpoint, bucket, env",
    [
        ("http://KEYID:s3cr3t@minio:9000", None, {}),
        (None, "b", {"AWS_ENDPOINT_URL": "http://KEYID:s3cr3t@minio:9000"}),
    ],
)
def test_an_endpoint_with_user_info_is_refused_before_it_is_written_or_shown(
    endpoint: str | None, bucket: str | None, env: dict[str, str]
) -> None:
    with pytest.raises(
        InvalidSpec, match=re.escape("user info (http://***@minio:9000)")
    ) as refused:
        remote_storage(endpoint=endpoint, bucket=bucket, region=None, env=env)
    assert "s3cr3t" not in str(refused.value)


def test_the_environment_s_keys_become_secrets_or_the_sdk_chain() -> None:
    keyed = remote_storage(
        endpoint=None,
        bucket="b",
        region=None,
        env={
            "AWS_ENDPOINT_URL": "https://s3.example",
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "sk",
        },
    )
    chain = remote_storage(endpoint="http://minio:9000", bucket="b", region=None, env={})

    assert keyed is not None and chain is not None
    assert keyed.entry["s3"]["endpoint"] == "s3.example" and not keyed.entry["s3"]["insecure"]
    assert keyed.secrets == {"access": "id", "secret": "sk"}
    assert chain.entry["s3"]["useSDKCreds"] is True and chain.entry["s3"]["insecure"]


def test_an_oss_bucket_makes_an_oss_repository() -> None:
    found = remote_storage(
        endpoint=None,
        bucket="oss://b",
        region=None,
        env={
            "OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
            "OSS_ACCESS_KEY_ID": "id",
            "OSS_ACCESS_KEY_SECRET": "sk",
        },
    )

    assert found is not None and found.kind == "oss" and found.entry["oss"]["bucket"] == "b"


def test_recorded_outputs_are_argo_s_node_outputs() -> None:
    template = {
        "name": "t",
        "outputs": {"artifacts": [{"name": "files", "path": "/tmp/out", "archive": {"none": {}}}]},
    }
    document = {
        "artifacts": [
            {
                "name": "files",
                "status": "uploaded",
                "path": "/w/tmp/out",
                "url": "s3://b/k/out/",
                "location": {"s3": {"bucket": "b", "key": "k/out"}},
                "size": 3,
                "checksum": None,
                "archive": "none",
                "seconds": 0.1,
            },
            {"name": "gone", "status": "failed", "path": "/w/tmp/x", "reason": "missing"},
        ]
    }

    assert recorded_outputs(template, document) == [
        {
            "name": "files",
            "s3": {"bucket": "b", "key": "k/out"},
            "path": "/tmp/out",
            "archive": {"none": {}},
        }
    ]


@pytest.mark.parametrize(
    "n, text", [(12, "12 B"), (4400, "4.3 KiB"), (3 * 2**20, "3.0 MiB"), (300 * 2**20, "300 MiB")]
)
def test_sizes_read_as_people_write_them(n: int, text: str) -> None:
    assert size(n) == text


def test_a_rate_needs_a_duration() -> None:
    assert rate(2**21, 2.0) == "1.0 MiB/s"
    assert rate(10, 0.0) == "-"


def test_a_workflow_nested_past_what_yaml_can_read_is_refused_naming_it() -> None:
    deep = "kind: Workflow\nspec: " + "[" * 10_000 + "]" * 10_000
    with pytest.raises(InvalidSpec, match="^deep.yaml is not valid YAML$"):
        spec.parse_workflow(deep, source="deep.yaml")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xa3\x00\xff binary", "workflow {} is not text"),
        (None, "cannot read workflow {}: No such file or directory"),
    ],
    ids=["binary", "missing"],
)
def test_a_workflow_file_that_is_not_text_or_not_there_is_one_line_naming_it(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    workflow = tmp_path / "wf.yaml"
    if content is not None:
        workflow.write_bytes(content)
    work = tmp_path / "work"

    done = argosy("demo", "--workflows-only", "--workflow", str(workflow), "--workdir", str(work))

    assert done.returncode == 2, done.stderr
    assert done.stderr == f"argosy: error: {message.format(workflow)}\n"
    assert not work.exists() or not any(work.iterdir())  # nothing run, nothing written
