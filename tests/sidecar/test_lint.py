"""`argosy lint` over every Argo example artifact workflow, with what each artifact must
show written out by hand from the YAML, and over broken files that must be reported by
file, line and field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from argosy.argo import yamlpos
from argosy.argo.lint import Diagnostic, Row, lint_file, lint_text, load_repositories
from argosy.main import main

# Argo's examples (argoproj/argo-workflows examples/ at commit f016ad89, Apache-2.0; see
# examples/argo/README.md), kept in the repository so the suite runs on any clone; the
# test below checks them against the digests recorded when they were vendored.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "argo"
DIGESTS = Path(__file__).with_name("argo_examples.sha256")  # sha256sum of the vendored files
DEFAULT = "{{workflow.name}}/{{pod.name}}"


class Shown(NamedTuple):
    line: int
    template: str
    direction: str
    name: str
    kind: str
    bucket: str | None
    key: str | None
    archive: str
    gc: str
    notes: tuple[str, ...] = ()
    optional: bool = False


def shown(row: Row) -> Shown:
    return Shown(
        row.line,
        row.template,
        row.direction,
        row.name,
        row.kind,
        row.bucket,
        row.key,
        row.archive,
        row.gc,
        row.notes,
        row.optional,
    )


KUBECTL = "https://storage.googleapis.com/kubernetes-release/release/v1.8.0/bin/linux/amd64/kubectl"
FLIP = (
    "fromExpression: steps['flip-coin'].outputs.result == 'heads' ? "
    "steps.heads.outputs.artifacts.result : steps.tails.outputs.artifacts.result"
)


def _from(step: str, artifact: str) -> str:
    return f"from: {{{{steps.{step}.outputs.artifacts.{artifact}}}}}"


# Written from each file: one entry per artifact, in file order (workflow arguments first).
EXPECTED: dict[str, list[Shown]] = {
    "archive-location.yaml": [],  # archiveLocation with archiveLogs only: nothing stored
    "arguments-artifacts.yaml": [
        Shown(17, "(arguments)", "arg", "kubectl", "http", None, KUBECTL, "auto", "-"),
        # the entrypoint's input is bound to the workflow's argument of the same name
        Shown(25, "kubectl-input-artifact", "in", "kubectl", "http", None, KUBECTL, "auto", "-"),
    ],
    "artifact-disable-archive.yaml": [
        Shown(
            37,
            "hello-world-to-file",
            "out",
            "etc",
            "repository",
            None,
            f"{DEFAULT}/etc",
            "none",
            "(default)",
        ),
        Shown(
            41,
            "hello-world-to-file",
            "out",
            "hello-txt",
            "repository",
            None,
            f"{DEFAULT}/hello_world.txt",
            "none",
            "(default)",
        ),
        Shown(
            45,
            "hello-world-to-file",
            "out",
            "hello-txt-nc",
            "repository",
            None,
            f"{DEFAULT}/hello-txt-nc.tgz",
            "tar.gz level 0",
            "(default)",
        ),
        Shown(
            55,
            "print-message-from-files",
            "in",
            "etc",
            "from",
            None,
            _from("generate-artifact", "etc"),
            "auto",
            "-",
        ),
        Shown(
            57,
            "print-message-from-files",
            "in",
            "hello-txt",
            "from",
            None,
            _from("generate-artifact", "hello-txt"),
            "auto",
            "-",
        ),
        Shown(
            59,
            "print-message-from-files",
            "in",
            "hello-txt-nc",
            "from",
            None,
            _from("generate-artifact", "hello-txt-nc"),
            "auto",
            "-",
        ),
    ],
    "artifact-gc-workflow.yaml": [
        Shown(
            27,
            "main",
            "out",
            "on-completion",
            "s3",
            None,
            "on-completion.txt",
            "tar.gz",
            "OnWorkflowCompletion",
            ("key-only",),
        ),
        # no strategy of its own: the workflow's spec.artifactGC
        Shown(
            33,
            "main",
            "out",
            "on-deletion",
            "s3",
            None,
            "on-deletion.txt",
            "tar.gz",
            "OnWorkflowDeletion",
            ("key-only",),
        ),
    ],
    "artifact-passing-subpath.yaml": [
        Shown(
            36,
            "hello-world-to-file",
            "out",
            "hello-art",
            "repository",
            None,
            f"{DEFAULT}/tmp",
            "none",
            "(default)",
        ),
        Shown(
            44,
            "print-message-dir",
            "in",
            "message",
            "from",
            None,
            _from("generate-artifact", "hello-art"),
            "auto",
            "-",
        ),
        Shown(
            54,
            "print-message-from-file",
            "in",
            "message",
            "from",
            None,
            _from("generate-artifact", "hello-art"),
            "auto",
            "-",
            ("subPath hello_world.txt",),
        ),
    ],
    "artifact-passing.yaml": [
        Shown(
            28,
            "hello-world-to-file",
            "out",
            "hello-art",
            "repository",
            None,
            f"{DEFAULT}/hello-art.tgz",
            "tar.gz",
            "(default)",
        ),
        Shown(
            34,
            "print-message-from-file",
            "in",
            "message",
            "from",
            None,
            _from("generate-artifact", "hello-art"),
            "auto",
            "-",
        ),
    ],
    "artifact-repository-ref.yaml": [
        Shown(
            17,
            "main",
            "out",
            "hello_world",
            "repository",
            None,
            f"{DEFAULT}/hello_world.tgz",
            "tar.gz",
            "(default)",
        ),
    ],
    "conditional-artifacts.yaml": [
        Shown(29, "main", "out", "result", "from", None, FLIP, "-", "-"),
        Shown(
            49,
            "heads",
            "out",
            "result",
            "repository",
            None,
            f"{DEFAULT}/result.tgz",
            "tar.gz",
            "(default)",
        ),
        Shown(
            61,
            "tails",
            "out",
            "result",
            "repository",
            None,
            f"{DEFAULT}/result.tgz",
            "tar.gz",
            "(default)",
        ),
    ],
    "input-artifact-oss.yaml": [
        Shown(
            19,
            "input-artifact-oss-example",
            "in",
            "my-art",
            "oss",
            "test-bucket-name",
            "test/mydirectory/",
            "auto",
            "-",
        ),
    ],
    "input-artifact-s3.yaml": [
        Shown(
            20,
            "input-artifact-s3-example",
            "in",
            "my-art",
            "s3",
            "my-bucket-name",
            "path/in/bucket",
            "auto",
            "-",
        ),
    ],
    "key-only-artifact.yaml": [
        Shown(
            24,
            "generate",
            "out",
            "file",
            "s3",
            None,
            "my-file",
            "tar.gz",
            "(default)",
            ("key-only",),
        ),
        Shown(34, "consume", "in", "file", "s3", None, "my-file", "auto", "-", ("key-only",)),
    ],
    "output-artifact-s3.yaml": [
        Shown(
            20,
            "hello-world-to-file",
            "out",
            "message",
            "s3",
            "my-bucket",
            "path/in/bucket/hello_world.txt.tgz",
            "tar.gz",
            "(default)",
        ),
    ],
    "workflow-archive-logs.yaml": [],  # spec.archiveLogs: logs only, no artifact
}
WARNINGS = {"artifact-repository-ref.yaml": [("spec.artifactRepositoryRef", 7)]}


def test_every_argo_example_has_written_expectations() -> None:
    assert EXAMPLES.is_dir(), f"{EXAMPLES} is missing: the examples are part of the test"
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_example_shows_each_artifact_as_argo_will_store_it(name: str) -> None:
    report = lint_file(str(EXAMPLES / name))
    assert [shown(row) for row in report.rows] == EXPECTED[name]
    assert all(row.supported and row.file == str(EXAMPLES / name) for row in report.rows)
    assert report.errors == []
    warnings = [(d.field, d.line) for d in report.diagnostics]
    assert warnings == WARNINGS.get(name, [])


def test_linting_every_example_at_once_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert len(files) == len(EXPECTED)
    assert main(["lint", *files]) == 0
    out, err = capsys.readouterr()
    header, *lines = out.splitlines()
    assert header.split() == [
        "FILE",
        "TEMPLATE",
        "DIR",
        "NAME",
        "KIND",
        "BUCKET",
        "KEY",
        "ARCHIVE",
        "OPTIONAL",
        "GC",
        "NOTES",
    ]
    assert len(lines) == sum(len(rows) for rows in EXPECTED.values())
    starts = {header.index(column) for column in ("KIND", "KEY", "GC")}
    passing = next(line for line in lines if "artifact-passing.yaml:28" in line)
    assert {
        passing.index("repository"),
        passing.index(f"{DEFAULT}/hello-art.tgz"),
        passing.index("(default)"),
    } == starts
    assert (
        "artifact-repository-ref.yaml:7: warning: spec.artifactRepositoryRef names "
        "ConfigMap artifact-repositories, which was not given" in err
    )
    assert err.splitlines()[-1] == "0 errors, 1 warning"


# -- repositories ---------------------------------------------------------------------

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: artifact-repositories
  annotations:
    workflows.argoproj.io/default-artifact-repository: default-v1
data:
  default-v1: |
    s3:
      bucket: default-bucket
      endpoint: minio:9000
      accessKeySecret: {name: my-minio-cred, key: accesskey}
  my-key: |
    s3:
      bucket: my-bucket
      keyFormat: "runs/{{workflow.name}}"
      accessKeySecret: {name: secret-that-is-nowhere, key: accessKey}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_referenced_repository_gives_its_bucket_and_key_format_without_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repositories = _write(tmp_path, "repos.yaml", CONFIGMAP)
    workflow = str(EXAMPLES / "artifact-repository-ref.yaml")
    assert main(["lint", "--json", "--repositories", repositories, workflow]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row == {
        "type": "artifact",
        "file": workflow,
        "line": 17,
        "template": "main",
        "direction": "out",
        "name": "hello_world",
        "kind": "repository",
        "bucket": "my-bucket",
        "key": "runs/{{workflow.name}}/hello_world.tgz",
        "archive": "tar.gz",
        "optional": False,
        "gc": "(default)",
        "supported": True,
        "notes": ["repository artifact-repositories/my-key"],
    }


def test_a_referenced_key_the_configmap_lacks_is_an_error_at_the_ref(tmp_path: Path) -> None:
    repositories = _write(tmp_path, "repos.yaml", CONFIGMAP.split("  my-key:")[0])
    configmaps, problems = load_repositories(repositories)
    assert problems.diagnostics == []
    report = lint_file(str(EXAMPLES / "artifact-repository-ref.yaml"), configmaps=configmaps)
    (error,) = report.errors
    assert (error.line, error.field) == (8, "spec.artifactRepositoryRef.key")
    assert (
        "names 'my-key', which ConfigMap artifact-repositories does not have "
        "(has: default-v1)" in error.message
    )
    assert (
        main(
            ["lint", "--repositories", repositories, str(EXAMPLES / "artifact-repository-ref.yaml")]
        )
        == 1
    )


def test_without_a_ref_the_configmaps_annotated_default_is_used(tmp_path: Path) -> None:
    configmaps, _ = load_repositories(_write(tmp_path, "repos.yaml", CONFIGMAP))
    (row,) = lint_file(str(EXAMPLES / "artifact-passing.yaml"), configmaps=configmaps).rows[:1]
    assert (row.bucket, row.key) == ("default-bucket", f"{DEFAULT}/hello-art.tgz")
    key_only = lint_file(str(EXAMPLES / "key-only-artifact.yaml"), configmaps=configmaps)
    assert [(r.bucket, r.key) for r in key_only.rows] == [("default-bucket", "my-file")] * 2


def test_a_broken_repository_entry_is_an_error_in_the_repositories_file(tmp_path: Path) -> None:
    text = CONFIGMAP.replace(
        "    s3:\n      bucket: my-bucket", "    gcs: {}\n    s3:\n      bucket: my-bucket"
    )
    path = _write(tmp_path, "repos.yaml", text)
    _, problems = load_repositories(path)
    (error,) = problems.errors
    assert (error.file, error.line, error.field) == (path, 13, "data.my-key")
    assert "needs exactly one of" in error.message and "found s3, gcs" in error.message


def test_a_repositories_file_that_is_not_a_configmap_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "repos.yaml", "s3:\n  bucket: b\n")
    _, problems = load_repositories(path)
    (error,) = problems.errors
    assert "is not a ConfigMap" in error.message and error.line == 1


# -- broken workflows -----------------------------------------------------------------

WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: lint-
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: busybox}
  - name: save
    container: {image: busybox}
    outputs:
      artifacts:
      - name: result
        path: /tmp/result
        optional: OPTIONAL
"""


def test_a_wrong_type_names_file_line_and_field_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "wf.yaml", WORKFLOW.replace("OPTIONAL", "maybe"))
    assert main(["lint", path]) == 1
    err = capsys.readouterr().err
    assert (
        f"{path}:16: error: spec.templates[1].outputs.artifacts[0].optional must be true "
        "or false, not 'maybe'" in err.splitlines()
    )
    assert err.splitlines()[-1] == "1 error, 0 warnings"


def test_errors_and_warnings_are_json_objects_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = WORKFLOW.replace("OPTIONAL", "[maybe]").replace(
        "path: /tmp/result", "path: /tmp/result\n        colour: red"
    )
    path = _write(tmp_path, "wf.yaml", text)
    assert main(["lint", "--json", path]) == 1
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert objects == [
        {
            "type": "error",
            "file": path,
            "line": 17,
            "field": "spec.templates[1].outputs.artifacts[0].optional",
            "message": "must be true or false, not ['maybe']",
        },
    ]  # a template with an error shows only the error, not the warnings before it


def test_an_unknown_field_is_a_warning_with_its_line_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = WORKFLOW.replace("OPTIONAL", "true").replace(
        "path: /tmp/result", "path: /tmp/result\n        colour: red"
    )
    path = _write(tmp_path, "wf.yaml", text)
    assert main(["lint", path]) == 0
    out, err = capsys.readouterr()
    assert (
        f"{path}:16: warning: spec.templates[1].outputs.artifacts[0].colour is an unknown "
        "field, ignored" in err.splitlines()
    )
    assert "true" in out.splitlines()[1].split()  # OPTIONAL column


@pytest.mark.parametrize(
    "change, line, field, message",
    [
        (
            ("optional: OPTIONAL", "s3: {key: a}\n        oss: {key: b}"),
            14,
            "spec.templates[1].outputs.artifacts[0]",
            "has several locations (s3, oss)",
        ),
        (
            ("optional: OPTIONAL", "artifactGC: {strategy: Sometimes}"),
            16,
            "spec.templates[1].outputs.artifacts[0].artifactGC.strategy",
            "must be one of",
        ),
        (
            ("  entrypoint: main", "  entrypoint: main\n  artifactGC:\n    strategy: Later"),
            8,
            "spec.artifactGC.strategy",
            "must be one of",
        ),
        (
            ("optional: OPTIONAL", "archive: {tar: {compressionLevel: 11}}"),
            16,
            "spec.templates[1].outputs.artifacts[0].archive.tar.compressionLevel",
            "must be 0 to 9",
        ),
        (
            ("  templates:", "  templates: {main: {}}\n  old:"),
            7,
            "spec.templates",
            "must be a list",
        ),
        (
            ("  artifacts:", "  artifacts: {result: {}}\n      old:"),
            13,
            "spec.templates[1].outputs.artifacts",
            "must be a list",
        ),
    ],
)
def test_each_wrong_spec_is_an_error_at_its_line(
    change: tuple[str, str], line: int, field: str, message: str, tmp_path: Path
) -> None:
    text = WORKFLOW.replace(*change).replace("OPTIONAL", "true")
    report = lint_text(text, file="wf.yaml")
    (error,) = report.errors
    assert (error.file, error.line, error.field) == ("wf.yaml", line, field)
    assert error.message.startswith(message)


def test_broken_yaml_is_one_line_naming_the_file_and_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "wf.yaml",
        WORKFLOW.replace("        path: /tmp/result", "       path: [/tmp/result"),
    )
    assert main(["lint", path]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()  # no "no artifacts found", no verdict on what it holds
    assert line.startswith(f"{path}:15: error: not valid YAML (")
    assert out == ""


def test_documents_before_a_broken_one_are_still_linted() -> None:
    text = (EXAMPLES / "artifact-passing.yaml").read_text() + "---\nkind: [\n"
    report = lint_text(text, file="two.yaml")
    assert [row.name for row in report.rows] == ["hello-art", "message"]
    (error,) = report.errors
    assert error.line == 42 and "not valid YAML" in error.message


def test_a_file_that_cannot_be_read_is_one_line_naming_it_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert main(["lint", missing]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"{missing}: error: cannot be read (No such file or directory)"]
    assert out == ""


def test_a_missing_file_among_good_ones_still_exits_2_and_the_others_are_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert main(["lint", missing, str(EXAMPLES / "artifact-passing.yaml")]) == 2
    out, err = capsys.readouterr()
    assert f"{missing}: error: cannot be read (No such file or directory)" in err.splitlines()
    assert "hello-art" in out  # the other file is still shown


@pytest.mark.parametrize("content", [b"\xff\xfe not text", b"kind: [\n"])
def test_a_file_that_is_not_yaml_text_is_bad_input_in_json_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_bytes(content)
    assert main(["lint", "--json", str(path)]) == 2
    (problem,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (problem["type"], problem["file"]) == ("error", str(path))


def test_a_repositories_file_that_cannot_be_read_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "repos.yaml")
    workflow = str(EXAMPLES / "artifact-passing.yaml")
    assert main(["lint", "--repositories", missing, workflow]) == 2
    assert f"{missing}: error: cannot be read" in capsys.readouterr().err


def test_a_file_with_nothing_to_lint_says_no_artifacts_found_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "empty.yaml", "# nothing here\n")
    assert main(["lint", path]) == 0
    assert capsys.readouterr().err.splitlines() == ["no artifacts found"]


def test_an_unsupported_git_input_is_marked_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """\
name: build
inputs:
  artifacts:
  - name: source
    path: /src
    git:
      repo: https://github.com/argoproj/argo-workflows.git
      revision: v3.5.0
container: {image: golang}
"""
    path = _write(tmp_path, "template.yaml", text)
    assert main(["lint", "--json", path]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["template"], row["direction"], row["kind"], row["key"]) == (
        "build",
        "in",
        "git",
        "https://github.com/argoproj/argo-workflows.git",
    )
    assert row["supported"] is False and row["notes"] == ["unsupported"]
    assert main(["lint", path]) == 0
    assert "unsupported" in capsys.readouterr().out.splitlines()[1].split()


GIT_INPUT = """\
name: build
inputs:
  artifacts:
  - name: source
    path: /src
    git:
      repo: https://github.com/argoproj/argo-workflows.git
container: {image: golang, command: [go, build]}
"""


def test_strict_makes_an_artifact_argosy_cannot_move_an_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "template.yaml", GIT_INPUT)
    assert main(["lint", path]) == 0  # without --strict: marked, as before
    capsys.readouterr()
    assert main(["lint", "--strict", path]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}:4: error: inputs.artifacts[0] is a git artifact, which Argosy cannot move "
        "(--strict)",
        "1 error, 0 warnings",
    ]


def test_strict_fails_on_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    workflow = str(EXAMPLES / "artifact-repository-ref.yaml")  # one warning, no error
    assert main(["lint", workflow]) == 0
    capsys.readouterr()
    assert main(["lint", "--strict", workflow]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "0 errors, 1 warning (--strict: warnings fail the lint)"
    )


def test_strict_passes_every_example_with_nothing_to_say() -> None:
    quiet = sorted(str(EXAMPLES / n) for n in EXPECTED if n not in WARNINGS)
    assert main(["lint", "--strict", *quiet]) == 0


def test_outputs_into_a_repository_argosy_cannot_write_are_unsupported(tmp_path: Path) -> None:
    text = CONFIGMAP.replace(
        "    s3:\n      bucket: default-bucket\n      endpoint: minio:9000\n"
        "      accessKeySecret: {name: my-minio-cred, key: accesskey}\n",
        "    gcs:\n      bucket: default-bucket\n",
    )
    configmaps, problems = load_repositories(_write(tmp_path, "repos.yaml", text))
    assert problems.diagnostics == []
    report = lint_file(str(EXAMPLES / "artifact-passing.yaml"), configmaps=configmaps)
    out = report.rows[0]
    assert (out.kind, out.bucket, out.supported) == ("repository", "default-bucket", False)
    assert out.notes[0] == "unsupported"


PLUGIN_REPOSITORY = """\
    plugin:
      name: argosy
      keyFormat: "runs/{{workflow.name}}"
      configuration: |
        bucket: plugin-bucket
        endpoint: minio:9000
        insecure: true
        accessKeySecret: {name: my-minio-cred, key: accesskey}
"""


def _plugin_default(tmp_path: Path, entry: str) -> Path:
    """The ConfigMap with its default entry replaced by `entry`."""
    text = CONFIGMAP.replace(
        "    s3:\n      bucket: default-bucket\n      endpoint: minio:9000\n"
        "      accessKeySecret: {name: my-minio-cred, key: accesskey}\n",
        entry,
    )
    return Path(_write(tmp_path, "repos.yaml", text))


def test_argosys_plugin_repository_shows_the_bucket_its_configuration_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repositories = _plugin_default(tmp_path, PLUGIN_REPOSITORY)
    configmaps, problems = load_repositories(str(repositories))
    assert problems.diagnostics == []
    out = lint_file(str(EXAMPLES / "artifact-passing.yaml"), configmaps=configmaps).rows[0]
    assert (out.kind, out.bucket, out.key, out.supported) == (
        "repository",
        "plugin-bucket",
        "runs/{{workflow.name}}/hello-art.tgz",
        True,
    )
    assert "plugin argosy -> s3" in out.notes
    workflow = str(EXAMPLES / "artifact-passing.yaml")
    assert main(["lint", "--strict", "--repositories", str(repositories), workflow]) == 0


def test_another_plugins_repository_is_unsupported_and_fails_strict(tmp_path: Path) -> None:
    entry = PLUGIN_REPOSITORY.replace("name: argosy", "name: someone-elses")
    repositories = _plugin_default(tmp_path, entry)
    configmaps, problems = load_repositories(str(repositories))
    assert problems.diagnostics == []
    out = lint_file(str(EXAMPLES / "artifact-passing.yaml"), configmaps=configmaps).rows[0]
    assert (out.bucket, out.supported, out.notes[0]) == (None, False, "unsupported")
    workflow = str(EXAMPLES / "artifact-passing.yaml")
    assert main(["lint", "--strict", "--repositories", str(repositories), workflow]) == 1


def test_a_plugin_repository_whose_configuration_is_wrong_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    entry = PLUGIN_REPOSITORY.replace("insecure: true", "insecure: true\n        bukket: x")
    _, problems = load_repositories(str(_plugin_default(tmp_path, entry)))
    (error,) = problems.errors
    assert error.field == "data.default-v1"
    assert "plugin argosy" in error.message and "bukket" in error.message


PLUGIN_WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: plugin-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: busybox, command: [sh, -c, "echo hi > /tmp/a; echo hi > /tmp/b"]}
    outputs:
      artifacts:
      - name: explicit
        path: /tmp/a
        plugin:
          name: argosy
          key: out/a.tgz
          configuration: |
            bucket: own-bucket
            endpoint: minio:9000
      - name: key-only
        path: /tmp/b
        plugin: {name: argosy, key: out/b.tgz}
"""


def test_plugin_artifacts_show_their_configurations_bucket_or_the_repositorys(
    tmp_path: Path,
) -> None:
    configmaps, _ = load_repositories(str(_plugin_default(tmp_path, PLUGIN_REPOSITORY)))
    report = lint_text(PLUGIN_WORKFLOW, file="wf.yaml", configmaps=configmaps)
    assert report.diagnostics == []
    assert [(r.kind, r.bucket, r.key, r.supported) for r in report.rows] == [
        ("plugin", "own-bucket", "out/a.tgz", True),
        ("plugin", "plugin-bucket", "out/b.tgz", True),
    ]


def test_a_key_only_plugin_artifact_without_a_plugin_repository_is_a_warning() -> None:
    report = lint_text(PLUGIN_WORKFLOW, file="wf.yaml")
    (warning,) = report.diagnostics
    assert warning.level == "warning"
    assert "key-only plugin artifact" in warning.message


MULTI = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 1 * * *"
  workflowSpec:
    entrypoint: dump
    artifactGC: {strategy: OnWorkflowCompletion}
    templates:
    - name: dump
      outputs:
        artifacts:
        - name: dump
          path: /dump
          archive: {zip: {}}
        - name: kept
          path: /kept
          artifactGC: {strategy: Never}
          optional: true
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: fetch}
spec:
  arguments:
    artifacts:
    - name: data
  templates:
  - name: fetch
    archiveLocation:
      s3: {bucket: archive-bucket, key: "archive/{{workflow.name}}"}
    inputs:
      artifacts:
      - name: data
        path: /data
        archive: {none: {}}
      - name: notes
        path: /notes
        raw: {data: "hello"}
    outputs:
      artifacts:
      - name: table
        path: /out/table.csv
        argosy: {archive: tar.zst}
"""


def test_a_multi_document_file_lints_each_workflow_kind_at_its_own_lines() -> None:
    report = lint_text(MULTI, file="multi.yaml")
    assert [shown(row) for row in report.rows] == [
        Shown(
            17,
            "dump",
            "out",
            "dump",
            "repository",
            None,
            f"{DEFAULT}/dump.zip",
            "zip",
            "OnWorkflowCompletion",
        ),
        Shown(
            20,
            "dump",
            "out",
            "kept",
            "repository",
            None,
            f"{DEFAULT}/kept.tgz",
            "tar.gz",
            "Never",
            optional=True,
        ),
        Shown(31, "(arguments)", "arg", "data", "-", None, "(given at submit)", "auto", "-"),
        Shown(38, "fetch", "in", "data", "-", None, "(given by the caller)", "none", "-"),
        Shown(41, "fetch", "in", "notes", "raw", None, "(inline, 5 characters)", "auto", "-"),
        Shown(
            46,
            "fetch",
            "out",
            "table",
            "s3",
            "archive-bucket",
            "archive/{{workflow.name}}/table.tar.zst",
            "tar.zst",
            "(default)",
            ("archiveLocation",),
        ),
    ]
    assert report.diagnostics == [
        Diagnostic(
            "warning",
            "multi.yaml",
            1,
            None,
            "a ConfigMap is not a workflow, workflow template or template; skipped",
        )
    ]


def test_an_input_bound_by_several_tasks_shows_the_first_source_and_counts_the_rest() -> None:
    text = """\
kind: Workflow
spec:
  templates:
  - name: main
    dag:
      tasks:
      - name: a
        template: show
        arguments:
          artifacts: [{name: in, from: "{{tasks.x.outputs.artifacts.o}}"}]
      - name: b
        template: show
        arguments:
          artifacts: [{name: in, s3: {bucket: b, key: k}}]
  - name: show
    inputs:
      artifacts: [{name: in, path: /in}]
"""
    (row,) = lint_text(text, file="wf.yaml").rows
    assert (row.kind, row.key, row.notes) == (
        "from",
        "from: {{tasks.x.outputs.artifacts.o}}",
        ("+1 other source",),
    )


def test_a_wrong_step_argument_is_an_error_at_the_step() -> None:
    text = """\
kind: Workflow
spec:
  templates:
  - name: main
    steps:
    - - name: a
        template: show
        arguments:
          artifacts:
          - name: in
            optional: 7
"""
    (error,) = lint_text(text, file="wf.yaml").errors
    assert (error.line, error.field) == (
        11,
        "spec.templates[0].steps[0][0].arguments.artifacts[0].optional",
    )


def test_a_key_given_twice_is_a_warning() -> None:
    text = WORKFLOW.replace("OPTIONAL", "true\n        optional: false")
    (warning,) = lint_text(text, file="wf.yaml").diagnostics
    assert (warning.level, warning.line, warning.field) == (
        "warning",
        17,
        "spec.templates[1].outputs.artifacts[0].optional",
    )


DATA = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: data-transformations-}
spec:
  entrypoint: list-log-files
  templates:
  - name: list-log-files
    data:
      source:
        artifactPaths:
          name: test-bucket
          s3:
            bucket: my-bucket
      transformation:
      - expression: "filter(data, {# endsWith 'main.log'})"
"""


def test_a_data_templates_source_is_shown_as_the_bucket_it_lists() -> None:
    report = lint_text(DATA, file="data.yaml")
    assert [shown(row) for row in report.rows] == [
        Shown(10, "list-log-files", "data", "test-bucket", "s3", "my-bucket", None, "-", "-")
    ]
    assert report.diagnostics == []  # no key is no warning: the whole bucket is listed


def test_a_wrong_field_in_a_data_source_is_an_error_at_its_line() -> None:
    text = DATA.replace("bucket: my-bucket", "bucket: my-bucket\n          optional: 3")
    (error,) = lint_text(text, file="data.yaml").errors
    assert (error.line, error.field) == (
        14,
        "spec.templates[0].data.source.artifactPaths.optional",
    )


HOOKED = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hooks-}
spec:
  entrypoint: main
  arguments:
    artifacts:
    - {name: report, s3: {bucket: wf-bucket, key: report.txt}}
  HOOKS
  templates:
  - name: main
    steps:
    - - name: work
        template: noop
        STEP_HOOKS
  - name: noop
    container: {image: busybox, command: ["true"]}
  - name: notify
    inputs:
      artifacts: [{name: report, path: /tmp/report}]
    container: {image: busybox, command: [cat, /tmp/report]}
"""


def _hooked(hooks: str, step_hooks: str) -> str:
    """HOOKED with the workflow's and the step's hook fields in place (or none)."""
    return HOOKED.replace("  HOOKS\n", f"  {hooks}\n" if hooks else "").replace(
        "        STEP_HOOKS\n", f"        {step_hooks}\n" if step_hooks else ""
    )


EXIT_ARGS = "{artifacts: [{name: report, s3: {bucket: hook-bucket, key: exit.txt}}]}"


@pytest.mark.parametrize(
    "hooks, step_hooks, bucket, key",
    [
        ("onExit: notify", "", "wf-bucket", "report.txt"),
        (
            f"hooks: {{exit: {{template: notify, arguments: {EXIT_ARGS}}}}}",
            "",
            "hook-bucket",
            "exit.txt",
        ),
        (
            "",
            f"hooks: {{exit: {{template: notify, arguments: {EXIT_ARGS}}}}}",
            "hook-bucket",
            "exit.txt",
        ),
        ("", "onExit: notify", "wf-bucket", "report.txt"),
    ],
    ids=["workflow-onExit", "workflow-exit-hook", "step-exit-hook", "step-onExit"],
)
def test_an_exit_handlers_input_shows_what_its_hook_or_the_workflow_passes_it(
    hooks: str, step_hooks: str, bucket: str, key: str
) -> None:
    text = _hooked(hooks, step_hooks)
    report = lint_text(text, file="hooks.yaml")
    assert report.errors == []
    (notify,) = [row for row in report.rows if row.template == "notify"]
    assert (notify.direction, notify.kind, notify.bucket, notify.key) == ("in", "s3", bucket, key)


def test_a_wrong_hook_argument_is_an_error_at_its_line() -> None:
    hook = (
        "hooks: {exit: {template: notify, arguments: {artifacts: [{name: report, optional: 2}]}}}"
    )
    text = _hooked("", hook)
    (error,) = lint_text(text, file="hooks.yaml").errors
    assert (error.line, error.field) == (
        14,
        "spec.templates[0].steps[0][0].hooks.exit.arguments.artifacts[0].optional",
    )


PASSING = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: passing-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: make
        template: produce
    - - name: use
        template: consume
        arguments:
          artifacts:
          - name: data
            from: "{{steps.make.outputs.artifacts.result}}"
  - name: produce
    container: {image: busybox, command: [touch, /tmp/result]}
    outputs:
      artifacts:
      - name: result
        path: /tmp/result
  - name: consume
    inputs:
      artifacts:
      - name: data
        path: /tmp/data
    container: {image: busybox, command: [cat, /tmp/data]}
"""
USE_FROM = "spec.templates[0].steps[1][0].arguments.artifacts[0].from"


def test_a_well_wired_workflow_has_nothing_to_say() -> None:
    report = lint_text(PASSING, file="wf.yaml")
    assert report.diagnostics == [] and len(report.rows) == 2


@pytest.mark.parametrize(
    "change, line, field, message",
    [
        (
            ("        path: /tmp/data\n", ""),
            26,
            "spec.templates[2].inputs.artifacts[0].path",
            "is required: Argo places every input artifact of a container or script "
            "template at its path",
        ),
        (
            ("        path: /tmp/result\n", ""),
            21,
            "spec.templates[1].outputs.artifacts[0].path",
            "is required: Argo places every output artifact",
        ),
        (
            ("    steps:\n", "    inputs:\n      artifacts: [{name: x, path: /x}]\n    steps:\n"),
            9,
            "spec.templates[0].inputs.artifacts[0].path",
            "is only valid in container and script templates",
        ),
        (
            ("steps.make.outputs", "steps.maker.outputs"),
            16,
            USE_FROM,
            "names step 'maker', which template 'main' does not have (has: make, use)",
        ),
        (
            ("artifacts.result}}", "artifacts.results}}"),
            16,
            USE_FROM,
            "names output artifact 'results' of step 'make', which its template 'produce' "
            "does not have (has: result)",
        ),
        (
            ("    - - name: use\n", "      - name: use\n"),
            16,
            "spec.templates[0].steps[0][1].arguments.artifacts[0].from",
            "names step 'make', which does not run before step 'use' (it is in steps[0], "
            "'use' in steps[0])",
        ),
        (
            ("steps.make.outputs", "tasks.make.outputs"),
            16,
            USE_FROM,
            "refers to tasks in a steps template (use steps.NAME)",
        ),
        (
            ('"{{steps.make.outputs.artifacts.result}}"', '"{{inputs.artifacts.data}}"'),
            16,
            USE_FROM,
            "names input artifact 'data', which template 'main' does not declare (has: none)",
        ),
    ],
    ids=[
        "input-without-path",
        "output-without-path",
        "path-in-steps",
        "no-such-step",
        "no-such-output",
        "same-group",
        "tasks-in-steps",
        "no-such-input",
    ],
)
def test_a_miswired_artifact_is_an_error_naming_the_field_and_line(
    change: tuple[str, str], line: int, field: str, message: str
) -> None:
    assert change[0] in PASSING
    (error,) = lint_text(PASSING.replace(*change), file="wf.yaml").errors
    assert (error.line, error.field) == (line, field)
    assert error.message.startswith(message)


def test_a_miswired_from_fails_the_lint_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "wf.yaml", PASSING.replace("steps.make.outputs", "steps.maker.outputs"))
    assert main(["lint", path]) == 1
    assert f"{path}:16: error: {USE_FROM} names step 'maker'" in capsys.readouterr().err


DAG = """\
kind: Workflow
spec:
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: produce}
      - {name: b, template: produce, depends: a}
      - name: c
        template: consume
        DEPENDS
        arguments:
          artifacts: [{name: data, from: "{{tasks.a.outputs.artifacts.result}}"}]
    outputs:
      artifacts: [{name: final, from: "{{tasks.OUT.outputs.artifacts.result}}"}]
  - name: produce
    container: {image: busybox, command: [touch, /tmp/result]}
    outputs: {artifacts: [{name: result, path: /tmp/result}]}
  - name: consume
    inputs: {artifacts: [{name: data, path: /tmp/data}]}
    container: {image: busybox, command: [cat, /tmp/data]}
"""


@pytest.mark.parametrize(
    "depends, out, problem",
    [
        ("depends: a", "b", None),
        ("depends: b.Succeeded", "a", None),  # a reached through b
        ("dependencies: [b]", "b", None),
        (
            "depends: ''",
            "a",
            (13, "dag.tasks[2].arguments.artifacts[0].from", "names task 'a', which task 'c' "),
        ),
        ("depends: a", "z", (15, "outputs.artifacts[0].from", "names task 'z', which template")),
    ],
)
def test_a_dag_task_reads_only_the_tasks_it_depends_on(
    depends: str, out: str, problem: tuple[int, str, str] | None
) -> None:
    text = DAG.replace("DEPENDS", depends).replace("tasks.OUT.", f"tasks.{out}.")
    errors = lint_text(text, file="dag.yaml").errors
    if problem is None:
        assert errors == []
    else:
        (error,) = errors
        line, field, message = problem
        assert (error.line, error.field) == (line, f"spec.templates[0].{field}")
        assert error.message.startswith(message)


def test_a_step_exit_hook_may_read_the_outputs_of_its_own_step() -> None:
    text = PASSING.replace(
        "        template: produce\n",
        "        template: produce\n"
        "        hooks:\n"
        "          exit:\n"
        "            template: consume\n"
        "            arguments:\n"
        "              artifacts:\n"
        "              - {name: data, from: '{{steps.make.outputs.artifacts.result}}'}\n",
        1,
    )
    assert lint_text(text, file="wf.yaml").errors == []


# -- yamlpos ----------------------------------------------------------------------------


def test_yamlpos_keeps_the_data_safe_load_gives_and_each_fields_line() -> None:
    text = (EXAMPLES / "artifact-disable-archive.yaml").read_text()
    (document,), error = yamlpos.load_all(text)
    assert error is None and document.data == yaml.safe_load(text)
    assert document.line_of("spec.templates[1].outputs.artifacts[2].archive.tar") == 48
    assert document.line_of("spec.templates[2].inputs.artifacts[1]") == 57
    # a field not written is reported where its nearest parent is
    assert document.line_of("spec.templates[1].outputs.artifacts[0].optional") == 37
    assert document.line_of("nowhere") == document.line


@pytest.mark.parametrize(
    "kind, location, bucket, key",
    [
        ("git", "{repo: 'https://example.com/r.git'}", None, "https://example.com/r.git"),
        ("gcs", "{bucket: g, key: k}", "g", "k"),
        ("azure", "{container: c, blob: b}", "c", "b"),
        ("hdfs", "{path: /data/x}", None, "/data/x"),
        ("artifactory", "{url: 'https://example.com/a'}", None, "https://example.com/a"),
        ("plugin", "{name: mine, key: k}", None, "k"),
    ],
)
def test_every_unsupported_kind_is_shown_and_marked_without_an_error(
    kind: str, location: str, bucket: str | None, key: str
) -> None:
    text = f"name: t\noutputs:\n  artifacts:\n  - {{name: a, path: /a, {kind}: {location}}}\n"
    report = lint_text(text, file="t.yaml")
    (row,) = report.rows
    assert (row.kind, row.bucket, row.key, row.supported, row.notes) == (
        kind,
        bucket,
        key,
        False,
        ("unsupported",),
    )
    assert report.diagnostics == []


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


def test_the_repositorys_copy_of_argos_examples_is_argos_byte_for_byte() -> None:
    # the digests were taken from Argo's files when they were vendored
    lines = DIGESTS.read_text().splitlines()
    recorded = {name: digest for digest, name in (line.split() for line in lines)}
    assert _digests(EXAMPLES) == recorded


@pytest.mark.parametrize(
    "kind, location, shown",
    [
        (
            "http",
            "{url: 'https://reader:pa55-w0rd@example.com/tool'}",
            "https://***@example.com/tool",
        ),
        (
            "git",
            "{repo: 'https://x-token:pa55-w0rd@example.com/r.git'}",
            "https://***@example.com/r.git",
        ),
    ],
)
def test_a_url_with_user_info_is_shown_redacted(kind: str, location: str, shown: str) -> None:
    text = f"name: t\ninputs:\n  artifacts:\n  - {{name: a, path: /a, {kind}: {location}}}\n"
    (row,) = lint_text(text, file="t.yaml").rows
    assert row.key == shown
