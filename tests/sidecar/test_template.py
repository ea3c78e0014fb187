"""The template parser and Argo's key rules, fed what Argo's controller and Argosy users
write: ARGO_TEMPLATE JSON, YAML template files, every location and archive form."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from argosy.argo import keys
from argosy.argo.template import (
    Archive,
    ArgosyOptions,
    TemplateError,
    load_template,
    parse_arguments,
    parse_template,
)
from argosy.artifacts.errors import InvalidSpec

ARGO_TEMPLATE = {
    "name": "main",
    "inputs": {
        "artifacts": [
            {
                "name": "data",
                "path": "/in/data",
                "s3": {"bucket": "in-bucket", "key": "k/data.tgz", "endpoint": "minio:9000"},
            }
        ]
    },
    "outputs": {"artifacts": [{"name": "result", "path": "/tmp/out.txt", "mode": 420}]},
    "archiveLocation": {
        "archiveLogs": True,
        "s3": {"bucket": "my-bucket", "endpoint": "minio:9000", "key": "wf-1/wf-1-main-123"},
    },
}


def _one_output(artifact: str) -> str:
    """A YAML template whose single output artifact is `artifact` (indented YAML)."""
    return "name: main\noutputs:\n  artifacts:\n  - name: out\n    path: /tmp/out\n" + "".join(
        f"    {line}\n" for line in artifact.splitlines()
    )


def test_argo_template_json_gives_inputs_outputs_and_the_archive_location() -> None:
    template = load_template(json.dumps(ARGO_TEMPLATE), source="ARGO_TEMPLATE")
    assert template.name == "main"
    (data,) = template.inputs
    assert (data.name, data.path, data.where) == ("data", "/in/data", "inputs.artifacts[0]")
    assert data.location is not None and data.location.kind == "s3"
    assert (data.location.bucket, data.location.key) == ("in-bucket", "k/data.tgz")
    (result,) = template.outputs
    assert (result.mode, result.archive, result.location) == (420, None, None)
    location = template.archive_location
    assert location is not None and location.kind == "s3"
    assert (location.bucket, location.key) == ("my-bucket", "wf-1/wf-1-main-123")
    assert template.archive_logs is True
    assert template.warnings == () and template.findings == ()


def test_a_yaml_mode_written_0755_is_octal_as_in_a_unix_shell() -> None:
    assert load_template(_one_output("mode: 0755"), source="t.yaml").outputs[0].mode == 493
    assert load_template(_one_output("mode: '0755'"), source="t.yaml").outputs[0].mode == 493


def test_a_mode_beyond_07777_is_refused() -> None:
    with pytest.raises(InvalidSpec, match=r"outputs.artifacts\[0\].mode must be a file mode"):
        load_template(_one_output("mode: 70000"), source="t.yaml")


@pytest.mark.parametrize(
    "archive, expected",
    [
        ("{tar: {compressionLevel: 0}}", Archive("tar.gz", 0)),
        ("{tar: {compressionLevel: 9}}", Archive("tar.gz", 9)),
        ("{tar: {}}", Archive("tar.gz", None)),
        ("{none: {}}", Archive("none")),
        ("{zip: {}}", Archive("zip")),
        ("{zstd: {level: 3}}", Archive("tar.zst", 3)),
    ],
)
def test_each_archive_form_is_read_with_its_level(archive: str, expected: Archive) -> None:
    template = load_template(_one_output(f"archive: {archive}"), source="t.yaml")
    assert template.outputs[0].archive == expected


def test_a_key_only_artifact_has_a_key_and_no_bucket() -> None:
    (artifact,) = load_template(_one_output("s3: {key: my-file}"), source="t.yaml").outputs
    assert artifact.location is not None
    assert (artifact.location.kind, artifact.location.key) == ("s3", "my-file")
    assert artifact.location.bucket is None and artifact.location.supported


def test_raw_and_http_inputs_keep_their_data_and_url() -> None:
    template = parse_template(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {"name": "note", "path": "/in/note", "raw": {"data": "hello\n"}},
                    {
                        "name": "tool",
                        "path": "/bin/tool",
                        "http": {"url": "https://example.com/tool"},
                    },
                ]
            },
        }
    )
    raw, http = template.inputs
    assert raw.location is not None and raw.location.kind == "raw"
    assert raw.location.config["data"] == "hello\n" and raw.location.supported
    assert http.location is not None and http.location.kind == "http"
    assert http.location.config["url"] == "https://example.com/tool" and http.location.supported


def test_a_git_input_parses_but_is_not_supported() -> None:
    template = parse_template(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "src",
                        "path": "/src",
                        "git": {"repo": "https://github.com/argoproj/argo"},
                    }
                ]
            },
        }
    )
    location = template.inputs[0].location
    assert location is not None and location.kind == "git" and not location.supported


def test_the_argosy_block_carries_argosys_own_settings() -> None:
    text = _one_output(
        "argosy:\n"
        "  include: ['*.csv', 'logs/**']\n"
        "  uploadOnFailure: false\n"
        "  archive: tar.zst\n"
        "  level: 7\n"
        "  concurrency: 4\n"
        "  stallTimeout: 30\n"
        "  deadline: '1.5'"
    )
    (artifact,) = load_template(text, source="t.yaml").outputs
    assert artifact.argosy == ArgosyOptions(
        include=("*.csv", "logs/**"),
        upload_on_failure=False,
        archive="tar.zst",
        level=7,
        concurrency=4,
        stall_timeout=30.0,
        deadline=1.5,
    )


def test_every_other_argo_field_is_read() -> None:
    text = _one_output(
        "optional: true\n"
        "recurseMode: true\n"
        "subPath: a/b\n"
        "globalName: shared\n"
        "archiveLogs: false\n"
        "deleted: true\n"
        "artifactGC: {strategy: OnWorkflowDeletion}"
    )
    (artifact,) = load_template(text, source="t.yaml").outputs
    assert artifact.optional and artifact.recurse_mode and artifact.deleted
    assert (artifact.sub_path, artifact.global_name) == ("a/b", "shared")
    assert (artifact.archive_logs, artifact.gc_strategy) == (False, "OnWorkflowDeletion")


@pytest.mark.parametrize(
    "artifact, field, line, message",
    [
        ("optional: maybe", "outputs.artifacts[0].optional", 6, "must be true or false"),
        ("mode: rwx", "outputs.artifacts[0].mode", 6, "must be a number"),
        (
            "archive:\n  tar: {compressionLevel: 12}",
            "outputs.artifacts[0].archive.tar.compressionLevel",
            7,
            "must be 0 to 9",
        ),
        ("archive: {tar: {}, none: {}}", "outputs.artifacts[0].archive", 6, "needs exactly one"),
        (
            "s3: {key: a}\noss: {key: b}",
            "outputs.artifacts[0]",
            4,
            "has several locations (s3, oss)",
        ),
        (
            "artifactGC:\n  strategy: Sometimes",
            "outputs.artifacts[0].artifactGC.strategy",
            7,
            "must be one of",
        ),
        ("http: {}", "outputs.artifacts[0].http.url", 6, "must be a string"),
        ("s3: {bucket: [a, b]}", "outputs.artifacts[0].s3.bucket", 6, "must be a string"),
        (
            "argosy: {include: 3}",
            "outputs.artifacts[0].argosy.include",
            6,
            "must be a list of globs",
        ),
        (
            "argosy: {stallTimeout: 0}",
            "outputs.artifacts[0].argosy.stallTimeout",
            6,
            "must be a positive number of seconds",
        ),
        (
            "argosy: {deadline: soon}",
            "outputs.artifacts[0].argosy.deadline",
            6,
            "must be a number",
        ),
    ],
)
def test_a_wrong_field_is_an_error_naming_the_field_and_its_line(
    artifact: str, field: str, line: int, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        load_template(_one_output(artifact), source="t.yaml")
    error = caught.value
    assert (error.field, error.line) == (field, line)
    assert message in error.problem
    assert str(error).startswith(f"t.yaml:{line}: {field} {message}")


def test_an_artifact_without_a_name_and_a_name_given_twice_are_errors() -> None:
    with pytest.raises(InvalidSpec, match=r"^inputs.artifacts\[0\].name is required"):
        parse_template({"name": "t", "inputs": {"artifacts": [{"path": "/x"}]}})
    with pytest.raises(InvalidSpec, match=r"outputs.artifacts names 'a' twice"):
        parse_template({"name": "t", "outputs": {"artifacts": [{"name": "a"}, {"name": "a"}]}})


def test_errors_name_the_source_when_no_line_is_known() -> None:
    with pytest.raises(InvalidSpec, match=r"^ARGO_TEMPLATE: outputs.artifacts\[0\].optional"):
        load_template(
            '{"name": "t", "outputs": {"artifacts": [{"name": "a", "optional": 3}]}}',
            source="ARGO_TEMPLATE",
        )


def test_broken_json_and_yaml_name_the_line() -> None:
    with pytest.raises(InvalidSpec, match=r"^ARGO_TEMPLATE: line 2 is not valid JSON"):
        load_template('{"name": "t",\n "outputs": }', source="ARGO_TEMPLATE")
    with pytest.raises(InvalidSpec, match=r"^t.yaml: line 4 is not valid YAML"):
        load_template("name: t\noutputs:\n  - a\n  b: c\n", source="t.yaml")


def test_an_unknown_field_is_a_warning_with_its_line_not_an_error() -> None:
    template = load_template(_one_output("colour: blue"), source="t.yaml")
    assert template.warnings == ("outputs.artifacts[0].colour: unknown field, ignored",)
    (finding,) = template.findings
    assert (finding.field, finding.line) == ("outputs.artifacts[0].colour", 6)
    assert str(finding) == "outputs.artifacts[0].colour is an unknown field, ignored"


def test_a_locate_hook_gives_lines_to_errors_of_a_template_parsed_from_data() -> None:
    lines = {"outputs.artifacts[0].optional": 23}
    with pytest.raises(TemplateError) as caught:
        parse_template(
            {"name": "t", "outputs": {"artifacts": [{"name": "a", "optional": 3}]}},
            source="wf.yaml",
            locate=lines.get,
        )
    assert (
        str(caught.value) == "wf.yaml:23: outputs.artifacts[0].optional must be true "
        "or false, not 3"
    )


def test_arguments_give_their_artifacts_named_where_they_are() -> None:
    artifacts, findings = parse_arguments(
        {
            "parameters": [{"name": "p"}],
            "artifacts": [
                {"name": "kubectl", "http": {"url": "https://example.com/kubectl"}},
                {"name": "message", "from": "{{steps.a.outputs.artifacts.b}}", "subPath": "x.txt"},
            ],
        }
    )
    assert [a.where for a in artifacts] == ["arguments.artifacts[0]", "arguments.artifacts[1]"]
    assert artifacts[1].from_ == "{{steps.a.outputs.artifacts.b}}"
    assert artifacts[1].sub_path == "x.txt" and findings == ()


# -- keys -----------------------------------------------------------------------------

CREATED = datetime(2024, 3, 9, 14, 5, 6)


def test_the_default_key_format_expands_workflow_and_pod_names() -> None:
    assert (
        keys.expand(
            "{{workflow.name}}/{{ pod.name }}",
            {"workflow.name": "wf-1", "pod.name": "wf-1-main-42"},
        )
        == "wf-1/wf-1-main-42"
    )


def test_creation_timestamp_parts_expand_like_strftime() -> None:
    text = (
        "{{workflow.creationTimestamp.Y}}/{{workflow.creationTimestamp.m}}/"
        "{{workflow.creationTimestamp.d}}/{{workflow.name}}"
    )
    assert keys.expand(text, {"workflow.name": "wf"}, created=CREATED) == "2024/03/09/wf"
    assert (
        keys.expand("{{workflow.creationTimestamp}}", {}, created=CREATED) == "2024-03-09T14:05:06Z"
    )
    assert (
        keys.expand("{{workflow.creationTimestamp.RFC3339}}", {}, created=CREATED)
        == "2024-03-09T14:05:06Z"
    )
    assert keys.expand("{{workflow.creationTimestamp.s}}", {}, created=CREATED) == "1709993106"


def test_a_variable_that_cannot_be_resolved_is_an_error_naming_it() -> None:
    with pytest.raises(InvalidSpec, match=r"cannot resolve \{\{workflow.uid\}\}") as caught:
        keys.expand("{{workflow.name}}/{{workflow.uid}}", {"workflow.name": "wf"})
    assert "known: workflow.name" in str(caught.value)
    with pytest.raises(InvalidSpec, match="creationTimestamp.Y"):
        keys.expand("{{workflow.creationTimestamp.Y}}", {})  # no creation time given


@pytest.mark.parametrize(
    "fmt, path, key",
    [
        ("tar.gz", "/tmp/hello_world.txt", "wf/pod/hello-art.tgz"),
        ("zip", "/tmp/hello_world.txt", "wf/pod/hello-art.zip"),
        ("tar.zst", "/tmp/hello_world.txt", "wf/pod/hello-art.tar.zst"),
        ("none", "/tmp/hello_world.txt", "wf/pod/hello_world.txt"),
        ("none", "/tmp/", "wf/pod/tmp"),
        ("none", None, "wf/pod/hello-art"),
    ],
)
def test_an_outputs_key_is_the_prefix_and_argos_file_name_for_its_archive(
    fmt: str, path: str | None, key: str
) -> None:
    assert keys.output_key("/wf/pod/", "hello-art", path, fmt) == key


def test_an_unexpanded_key_format_still_gives_the_key_lint_shows() -> None:
    assert (
        keys.output_key("{{workflow.name}}/{{pod.name}}", "hello-art", "/tmp/x", "tar.gz")
        == "{{workflow.name}}/{{pod.name}}/hello-art.tgz"
    )


def test_logs_go_under_the_key_as_argo_puts_them() -> None:
    assert keys.log_key("wf/pod") == "wf/pod/main.log"
