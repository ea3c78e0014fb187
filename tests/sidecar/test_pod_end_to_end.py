"""A workflow pod's life with Argosy, as separate processes against real servers: Ceph
RGW and the OSS protocol test server for storage, a loopback HTTP server for http
inputs, the Kubernetes test API for the report."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from argosy.artifacts.checksum import crc32c, to_hex
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import NotFound
from argosy.artifacts.provenance import read_provenance
from argosy.sidecar import report
from tests.archive.helpers import tar_bomb
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, s3_driver, unique_bucket
from tests.sidecar.pods import Pod, configmap, secrets

MiB = 1 << 20


def _s3_pod(
    tmp_path: Path, rgw: dict[str, str], bucket: str, name: str = "pod", **entry: Any
) -> Pod:
    secrets(
        tmp_path / "secrets",
        {
            "s3-creds": {
                "accessKey": rgw["AWS_ACCESS_KEY_ID"],
                "secretKey": rgw["AWS_SECRET_ACCESS_KEY"],
            }
        },
    )
    repo = configmap(
        {
            "archiveLogs": True,
            "keyFormat": "{{workflow.name}}/{{pod.name}}",
            "s3": {
                "endpoint": rgw["AWS_ENDPOINT_URL"],
                "bucket": bucket,
                "insecure": True,
                "accessKeySecret": {"name": "s3-creds", "key": "accessKey"},
                "secretKeySecret": {"name": "s3-creds", "key": "secretKey"},
            },
            **entry,
        },
        tmp_path / "repo.yaml",
    )
    return Pod(tmp_path / name, repo, env={"ARGOSY_SECRETS_DIR": str(tmp_path / "secrets")})


@pytest.fixture
def bucket(rgw: dict[str, str]) -> Any:
    return s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket("pod"),
    )


PRODUCER = {
    "name": "produce",
    "outputs": {
        "artifacts": [
            {"name": "hello-art", "path": "/tmp/hello_world.txt"},
            {"name": "tree", "path": "/tmp/out", "archive": {"none": {}}},
            {"name": "zipped", "path": "/tmp/out", "archive": {"zip": {}}},
            {"name": "fast", "path": "/tmp/out", "argosy": {"archive": "tar.zst"}},
            {"name": "maybe", "path": "/tmp/never-written", "optional": True},
        ]
    },
}
SCRIPT = (
    "mkdir -p tmp/out/sub && echo hello world > tmp/hello_world.txt && "
    "echo one > tmp/out/a.txt && echo two > tmp/out/sub/b.txt && echo done"
)


@pytest.mark.rgw
def test_outputs_go_up_concurrently_and_the_next_pod_reads_them_back(
    tmp_path: Path, rgw: dict[str, str], bucket: Any
) -> None:
    producer = _s3_pod(tmp_path, rgw, bucket.bucket, "producer")
    main, wait = producer.main_and_wait(SCRIPT, PRODUCER)
    assert (main.code, wait.code) == (0, 0), wait.err
    document = producer.outputs()
    jsonschema.validate(document, report.schema())
    statuses = {a["name"]: a["status"] for a in document["artifacts"]}
    assert statuses == {
        "hello-art": "uploaded",
        "tree": "uploaded",
        "zipped": "uploaded",
        "fast": "uploaded",
        "maybe": "missing-optional",
        "main-logs": "uploaded",
    }
    assert producer.output("hello-art")["location"]["s3"]["key"] == "wf-1/pod-1/hello-art.tgz"
    assert producer.output("fast")["url"].endswith("/wf-1/pod-1/fast.tar.zst")
    assert _object(bucket, "wf-1/pod-1/main.log") == b"done\n"  # archiveLogs
    with tarfile.open(fileobj=io.BytesIO(_object(bucket, "wf-1/pod-1/hello-art.tgz"))) as tar:
        assert tar.getnames() == ["hello_world.txt"]  # Argo's layout: the file by its name
    # `archive: none`: one object per file under the key, as Argo's executor reads it back,
    # and the tree manifest beside the folder, not in it
    assert [o.key for o in bucket.list("wf-1/pod-1/out").objects] == [
        "wf-1/pod-1/out.argosy-manifest.json",
        "wf-1/pod-1/out/a.txt",
        "wf-1/pod-1/out/sub/b.txt",
    ]

    consumer = _s3_pod(tmp_path, rgw, bucket.bucket, "consumer")
    done = consumer.init(
        {
            "name": "consume",
            "inputs": {
                "artifacts": [
                    {
                        "name": "message",
                        "path": "/tmp/message",
                        "s3": {"key": "wf-1/pod-1/hello-art.tgz"},
                    },
                    {"name": "tree", "path": "/tmp/tree", "s3": {"key": "wf-1/pod-1/out"}},
                    {
                        "name": "zipped",
                        "path": "/tmp/zipped",
                        "s3": {"key": "wf-1/pod-1/zipped.zip"},
                    },
                    {"name": "fast", "path": "/tmp/fast", "s3": {"key": "wf-1/pod-1/fast.tar.zst"}},
                    {
                        "name": "one-file",
                        "path": "/tmp/b.txt",
                        "subPath": "sub/b.txt",
                        "s3": {"key": "wf-1/pod-1/fast.tar.zst"},
                    },
                    {
                        "name": "absent",
                        "path": "/tmp/absent",
                        "optional": True,
                        "s3": {"key": "wf-1/pod-1/nothing-here"},
                    },
                ]
            },
        }
    )
    assert done.code == 0, done.err
    got = consumer.root / "tmp"
    assert (got / "message").read_text() == "hello world\n"
    for folder in ("tree", "zipped", "fast"):
        assert (got / folder / "a.txt").read_text() == "one\n", folder
        assert (got / folder / "sub" / "b.txt").read_text() == "two\n", folder
        assert sorted(os.listdir(got / folder)) == ["a.txt", "sub"], folder
    assert (got / "b.txt").read_text() == "two\n"
    assert not (got / "absent").exists()
    inputs = json.loads((consumer.var / "inputs.json").read_text())
    assert {a["name"]: a["status"] for a in inputs["artifacts"]}["absent"] == "missing-optional"


def _object(driver: Any, key: str) -> bytes:
    stream = driver.read(key)
    data = bytearray()
    buffer = bytearray(1 << 16)
    try:
        while n := stream.readinto(memoryview(buffer)):
            data += buffer[:n]
    finally:
        stream.close()
    return bytes(data)


@pytest.mark.rgw
def test_a_failing_main_keeps_its_exit_code_and_its_outputs_are_still_uploaded_by_default(
    tmp_path: Path, rgw: dict[str, str], bucket: Any
) -> None:
    pod = _s3_pod(tmp_path, rgw, bucket.bucket)
    main, wait = pod.main_and_wait(
        "echo partial > tmp/result.txt; exit 3",
        {
            "name": "t",
            "outputs": {
                "artifacts": [
                    {"name": "result", "path": "/tmp/result.txt", "archive": {"none": {}}}
                ]
            },
        },
    )
    assert main.code == 3
    assert wait.code == 0, wait.err
    assert pod.outputs()["exitCode"] == 3
    assert (pod.var / "ctr" / "main" / "exitcode").read_text().strip() == "3"
    assert _object(bucket, "wf-1/pod-1/result.txt") == b"partial\n"


@pytest.mark.rgw
def test_upload_on_failure_false_in_the_pod_annotation_skips_a_failed_mains_outputs(
    tmp_path: Path, rgw: dict[str, str], bucket: Any
) -> None:
    pod = _s3_pod(tmp_path, rgw, bucket.bucket)
    pod.workdir.mkdir(parents=True)
    (pod.workdir / "annotations").write_text(
        'argosy.io/settings="{\\"uploadOnFailure\\": false}"\n'
    )
    main, wait = pod.main_and_wait(
        "echo corrupt > tmp/result.txt; kill -9 $$",
        {"name": "t", "outputs": {"artifacts": [{"name": "result", "path": "/tmp/result.txt"}]}},
    )
    assert main.code == 137
    assert wait.code == 0, wait.err
    assert pod.output("result")["status"] == "skipped"
    with pytest.raises(NotFound):
        bucket.stat("wf-1/pod-1/result.tgz")


@pytest.mark.rgw
def test_a_required_output_that_is_missing_fails_wait_naming_it(
    tmp_path: Path, rgw: dict[str, str], bucket: Any
) -> None:
    pod = _s3_pod(tmp_path, rgw, bucket.bucket)
    _, wait = pod.main_and_wait(
        "true",
        {"name": "t", "outputs": {"artifacts": [{"name": "needed", "path": "/tmp/needed.txt"}]}},
    )
    assert wait.code == 1
    assert "output needed failed: /tmp/needed.txt does not exist" in wait.err
    assert pod.output("needed")["status"] == "failed"


@pytest.mark.rgw
def test_a_1_gib_output_goes_up_in_parts_and_its_checksum_is_recorded(
    tmp_path: Path, rgw: dict[str, str], bucket: Any
) -> None:
    pod = _s3_pod(tmp_path, rgw, bucket.bucket)
    data = pod.root / "tmp" / "big.bin"
    data.parent.mkdir(parents=True)
    crc = 0
    with open(data, "wb") as out:
        block = os.urandom(8 * MiB)
        for i in range(128):
            chunk = block[i:] + block[:i]
            crc = crc32c(chunk, crc)
            out.write(chunk)
    main, wait = pod.main_and_wait(
        "true",
        {
            "name": "t",
            "outputs": {
                "artifacts": [{"name": "big", "path": "/tmp/big.bin", "archive": {"none": {}}}]
            },
        },
    )
    assert wait.code == 0, wait.err
    entry = pod.output("big")
    assert entry["size"] == 1024 * MiB
    assert entry["checksum"] == {"algorithm": "crc32c", "value": to_hex(crc)}
    info = bucket.stat("wf-1/pod-1/big.bin")
    assert info.size == 1024 * MiB and "-" in info.etag  # a multipart upload


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    token = "s3cret-token"
    basic = "Basic " + base64.b64encode(b"reader:pa55-w0rd").decode()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if (
            self.path.startswith("/private/")
            and self.headers.get("Authorization") != f"Bearer {self.token}"
            or self.path.startswith("/basic/")
            and self.headers.get("Authorization") != self.basic
        ):
            self.send_response(403)
            self.end_headers()
            return
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_files() -> Iterator[str]:
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("bundle/readme.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"bundle"))
    _Files.files = {"tool": b"#!/bin/sh\necho tool\n", "bundle.tgz": tgz.getvalue()}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_inputs_stream_with_headers_from_secrets_and_tarballs_are_unpacked(
    tmp_path: Path, http_files: str
) -> None:
    secrets(tmp_path / "secrets", {"web": {"token": f"Bearer {_Files.token}"}})
    pod = Pod(tmp_path / "pod", env={"ARGOSY_SECRETS_DIR": str(tmp_path / "secrets")})
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "tool",
                        "path": "/bin/tool",
                        "mode": 0o755,
                        "http": {
                            "url": f"{http_files}/private/tool",
                            "headers": [
                                {
                                    "name": "Authorization",
                                    "valueFrom": {"secretKeyRef": {"name": "web", "key": "token"}},
                                }
                            ],
                        },
                    },
                    {
                        "name": "bundle",
                        "path": "/opt/bundle",
                        "http": {"url": f"{http_files}/bundle.tgz"},
                    },
                    {
                        "name": "gone",
                        "path": "/opt/gone",
                        "optional": True,
                        "http": {"url": f"{http_files}/gone"},
                    },
                    {"name": "note", "path": "/etc/note", "raw": {"data": "inline"}},
                ]
            },
        }
    )
    assert done.code == 0, done.err
    tool = pod.root / "bin" / "tool"
    assert tool.read_bytes() == _Files.files["tool"] and os.stat(tool).st_mode & 0o777 == 0o755
    assert (pod.root / "opt" / "bundle" / "readme.txt").read_text() == "bundle"
    assert not (pod.root / "opt" / "gone").exists()
    assert (pod.root / "etc" / "note").read_text() == "inline"


def test_an_http_input_refused_by_the_server_fails_init_naming_it(
    tmp_path: Path, http_files: str
) -> None:
    pod = Pod(tmp_path / "pod")
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "tool",
                        "path": "/bin/tool",
                        "http": {"url": f"{http_files}/private/tool"},
                    }
                ]
            },
        }
    )
    assert done.code == 1
    assert "input tool failed" in done.err and "403" in done.err
    assert not (pod.root / "bin" / "tool").exists()


def _with_user_info(url: str, user_info: str = "reader:pa55-w0rd") -> str:
    return url.replace("http://", f"http://{user_info}@", 1)


@pytest.mark.parametrize("path, status", [("gone", "404"), ("private/tool", "403")])
def test_an_http_input_failing_at_a_url_with_user_info_is_reported_without_the_password(
    tmp_path: Path, http_files: str, path: str, status: str
) -> None:
    pod = Pod(tmp_path / "pod")
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "tool",
                        "path": "/bin/tool",
                        "http": {"url": _with_user_info(f"{http_files}/{path}")},
                    }
                ]
            },
        }
    )
    assert done.code == 1 and "input tool failed" in done.err and status in done.err, done.err
    assert f"{http_files}/{path}" in done.err
    assert "pa55-w0rd" not in done.err and "reader" not in done.err
    assert not any("pa55-w0rd" in f.read_text() for f in pod.var.rglob("*") if f.is_file())


def test_an_http_input_url_with_a_raw_slash_in_its_password_is_refused_redacted(
    tmp_path: Path, http_files: str
) -> None:
    pod = Pod(tmp_path / "pod")
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "tool",
                        "path": "/bin/tool",
                        "http": {
                            "url": _with_user_info(f"{http_files}/basic/tool", "reader:pa55/w0rd")
                        },
                    }
                ]
            },
        }
    )
    assert done.code == 1 and "is not a valid URL" in done.err, done.err
    assert "pa55" not in done.err and "w0rd" not in done.err


def test_user_info_in_an_http_input_url_is_sent_as_basic_auth_and_reported_without_it(
    tmp_path: Path, http_files: str
) -> None:
    pod = Pod(tmp_path / "pod")
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "tool",
                        "path": "/bin/tool",
                        "http": {"url": _with_user_info(f"{http_files}/basic/tool")},
                    }
                ]
            },
        }
    )
    assert done.code == 0, done.err
    assert (pod.root / "bin" / "tool").read_bytes() == _Files.files["tool"]
    inputs = json.loads((pod.var / "inputs.json").read_text())
    assert inputs["artifacts"][0]["url"] == f"{http_files}/basic/tool"


def test_oss_outputs_and_inputs_round_trip_with_secrets_from_files(
    tmp_path: Path, oss_server: Any
) -> None:
    bucket = unique_bucket("pod")
    driver = oss_driver(oss_server.endpoint, bucket)
    secrets(
        tmp_path / "secrets", {"oss-creds": {"accessKey": OSS_ACCESS_KEY, "secretKey": OSS_SECRET}}
    )
    repo = configmap(
        {
            "keyFormat": "runs/{{workflow.name}}",
            "oss": {
                "endpoint": oss_server.endpoint,
                "bucket": bucket,
                "accessKeySecret": {"name": "oss-creds", "key": "accessKey"},
                "secretKeySecret": {"name": "oss-creds", "key": "secretKey"},
            },
        },
        tmp_path / "repo.yaml",
    )
    env = {"ARGOSY_SECRETS_DIR": str(tmp_path / "secrets")}
    producer = Pod(tmp_path / "producer", repo, env=env)
    main, wait = producer.main_and_wait(
        SCRIPT,
        {
            "name": "p",
            "outputs": {
                "artifacts": [
                    {"name": "out", "path": "/tmp/out"},
                    {"name": "hello", "path": "/tmp/hello_world.txt", "archive": {"none": {}}},
                ]
            },
        },
    )
    assert (main.code, wait.code) == (0, 0), wait.err
    assert producer.output("out")["location"]["oss"]["key"] == "runs/wf-1/out.tgz"
    assert driver.stat("runs/wf-1/hello_world.txt").size == len(b"hello world\n")
    consumer = Pod(tmp_path / "consumer", repo, env=env)
    done = consumer.init(
        {
            "name": "c",
            "inputs": {
                "artifacts": [
                    {"name": "out", "path": "/data/out", "oss": {"key": "runs/wf-1/out.tgz"}}
                ]
            },
        }
    )
    assert done.code == 0, done.err
    assert (consumer.root / "data" / "out" / "sub" / "b.txt").read_text() == "two\n"


def test_an_oss_repository_without_secrets_uses_the_oss_environment_variables(
    tmp_path: Path, oss_server: Any
) -> None:
    bucket = unique_bucket("pod")
    driver = oss_driver(oss_server.endpoint, bucket)
    repo = configmap(
        {"oss": {"endpoint": oss_server.endpoint, "bucket": bucket}}, tmp_path / "repo.yaml"
    )
    env = {"OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY, "OSS_ACCESS_KEY_SECRET": OSS_SECRET}
    pod = Pod(tmp_path / "pod", repo, env=env)
    _, wait = pod.main_and_wait(
        "echo hi > tmp/x",
        {
            "name": "p",
            "outputs": {"artifacts": [{"name": "x", "path": "/tmp/x", "archive": {"none": {}}}]},
        },
    )
    assert wait.code == 0, wait.err
    assert driver.stat("wf-1/pod-1/x").size == 3
    denied = Pod(tmp_path / "denied", repo, env={**env, "OSS_ACCESS_KEY_SECRET": "wrong"})
    _, wait = denied.main_and_wait(
        "echo hi > tmp/x",
        {
            "name": "p",
            "outputs": {"artifacts": [{"name": "x", "path": "/tmp/x", "archive": {"none": {}}}]},
        },
    )
    assert wait.code == 1 and "output x failed" in wait.err, wait.err
    assert "does not exist" not in wait.err


def test_a_wrong_oss_secret_fails_the_output_and_leaves_no_object(
    tmp_path: Path, oss_server: Any
) -> None:
    bucket = unique_bucket("pod")
    driver = oss_driver(oss_server.endpoint, bucket)
    secrets(
        tmp_path / "secrets",
        {"oss-creds": {"accessKey": OSS_ACCESS_KEY, "secretKey": "not-the-secret"}},
    )
    repo = configmap(
        {
            "oss": {
                "endpoint": oss_server.endpoint,
                "bucket": bucket,
                "accessKeySecret": {"name": "oss-creds", "key": "accessKey"},
                "secretKeySecret": {"name": "oss-creds", "key": "secretKey"},
            }
        },
        tmp_path / "repo.yaml",
    )
    pod = Pod(tmp_path / "pod", repo, env={"ARGOSY_SECRETS_DIR": str(tmp_path / "secrets")})
    _, wait = pod.main_and_wait(
        SCRIPT, {"name": "p", "outputs": {"artifacts": [{"name": "out", "path": "/tmp/out"}]}}
    )
    assert wait.code == 1
    assert "output out failed" in wait.err and "not-the-secret" not in wait.err
    assert list(driver.list("").objects) == []


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{not: [valid", "template.yaml: line"),
        (
            {
                "name": "t",
                "outputs": {"artifacts": [{"name": "x", "path": "/x", "optional": "yes"}]},
            },
            "outputs.artifacts[0].optional must be true or false",
        ),
    ],
)
def test_a_broken_template_is_a_one_line_error_and_exit_2(
    tmp_path: Path, template: Any, expected: str
) -> None:
    pod = Pod(tmp_path / "pod")
    pod.workdir.mkdir()
    if isinstance(template, str):
        (pod.workdir / "template.yaml").write_text(template)
        done = pod.run_file("init")
    else:
        done = pod.init(template)
    assert done.code == 2
    assert expected in done.err and len(done.err.strip().splitlines()) == 1


def test_an_output_with_no_location_and_no_repository_fails_naming_the_artifact(
    tmp_path: Path,
) -> None:
    pod = Pod(tmp_path / "pod")
    _, wait = pod.main_and_wait(
        "echo x > tmp/x", {"name": "t", "outputs": {"artifacts": [{"name": "x", "path": "/tmp/x"}]}}
    )
    assert wait.code == 1
    assert "x) has no location and there is no artifact repository" in wait.err


def test_an_unresolved_key_format_variable_fails_naming_the_variable(tmp_path: Path) -> None:
    repo = configmap(
        {
            "keyFormat": "{{workflow.labels.team}}/{{pod.name}}",
            "local": {"root": str(tmp_path / "store"), "bucket": "b"},
        },
        tmp_path / "repo.yaml",
    )
    (tmp_path / "store" / "b").mkdir(parents=True)
    pod = Pod(tmp_path / "pod", repo)
    _, wait = pod.main_and_wait(
        "echo x > tmp/x", {"name": "t", "outputs": {"artifacts": [{"name": "x", "path": "/tmp/x"}]}}
    )
    assert wait.code == 1
    assert "cannot resolve {{workflow.labels.team}}" in wait.err
    assert not any((tmp_path / "store" / "b").rglob("*"))


def test_a_missing_secret_file_fails_the_input_naming_the_secret(tmp_path: Path) -> None:
    repo = configmap(
        {
            "s3": {
                "endpoint": "http://127.0.0.1:9",
                "bucket": "b",
                "accessKeySecret": {"name": "nope", "key": "accessKey"},
                "secretKeySecret": {"name": "nope", "key": "secretKey"},
            }
        },
        tmp_path / "repo.yaml",
    )
    pod = Pod(tmp_path / "pod", repo, env={"ARGOSY_SECRETS_DIR": str(tmp_path / "secrets")})
    done = pod.init(
        {
            "name": "t",
            "inputs": {"artifacts": [{"name": "in", "path": "/tmp/in", "s3": {"key": "k"}}]},
        }
    )
    assert done.code == 1
    assert "input in failed" in done.err and "secret nope/accessKey not found" in done.err


def test_wait_gives_up_when_main_never_ends(tmp_path: Path) -> None:
    pod = Pod(tmp_path / "pod")
    done = pod.run("wait", {"name": "t"}, "--timeout", "0.5")
    assert done.code != 0
    assert "did not finish within" in done.err


def test_an_input_never_overwrites_an_existing_path(tmp_path: Path) -> None:
    pod = Pod(tmp_path / "pod")
    (pod.root / "etc").mkdir(parents=True)
    (pod.root / "etc" / "note").write_text("mine")
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [{"name": "note", "path": "/etc/note", "raw": {"data": "theirs"}}]
            },
        }
    )
    assert done.code == 1 and "already exists" in done.err
    assert (pod.root / "etc" / "note").read_text() == "mine"


def test_wait_reports_outputs_in_a_workflow_task_result_under_argo(tmp_path: Path) -> None:
    from argosy.testing.kube.api import KubeTestServer

    store = tmp_path / "store"
    (store / "b").mkdir(parents=True)
    repo = configmap({"local": {"root": str(store), "bucket": "b"}}, tmp_path / "repo.yaml")
    with KubeTestServer() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="argo")
        pod = Pod(
            tmp_path / "pod",
            repo,
            env={
                "ARGO_NODE_ID": "wf-1-123",
                "ARGO_WORKFLOW_NAME": "wf-1",
                "ARGO_POD_NAME": "pod-1",
                "ARGO_WORKFLOW_UID": "uid-1",
                "POD_NAMESPACE": "argo",
            },
            variables={},
        )
        _, wait = pod.main_and_wait(
            "echo hi > tmp/x",
            {
                "name": "t",
                "outputs": {
                    "artifacts": [{"name": "x", "path": "/tmp/x", "archive": {"none": {}}}]
                },
            },
            "--kubeconfig",
            str(kubeconfig),
        )
        assert wait.code == 0, wait.err
        result = kube.get_object(
            "argoproj.io/v1alpha1", "workflowtaskresults", "wf-1-123", namespace="argo"
        )
    assert result is not None
    assert pod.outputs()["reportedTo"] == "WorkflowTaskResult/wf-1-123"
    assert result["metadata"]["labels"]["workflows.argoproj.io/workflow"] == "wf-1"
    [artifact] = result["outputs"]["artifacts"]
    assert artifact["name"] == "x" and artifact["local"]["key"] == "wf-1/pod-1/x"
    assert result["outputs"]["exitCode"] == "0"
    stored = hashlib.sha256((store / "b" / "wf-1" / "pod-1" / "x").read_bytes()).hexdigest()
    assert stored == hashlib.sha256(b"hi\n").hexdigest()
    # the object names its workflow, so the GC's orphan sweep can tell it is Argosy's
    meta = read_provenance(LocalDriver(str(store), "b").stat("wf-1/pod-1/x").metadata)
    assert meta is not None and (meta.uid, meta.namespace) == ("uid-1", "argo")


def test_init_reads_the_repository_from_the_namespaces_configmap_through_the_api(
    tmp_path: Path,
) -> None:
    from argosy.testing.kube.api import KubeTestServer

    store = tmp_path / "store"
    (store / "b").mkdir(parents=True)
    (store / "b" / "k").write_text("from the configmap's repository")
    entry = {"local": {"root": str(store), "bucket": "b"}}
    with KubeTestServer() as kube:
        kube.create_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "artifact-repositories",
                    "namespace": "team",
                    "annotations": {"workflows.argoproj.io/default-artifact-repository": "main"},
                },
                "data": {"main": json.dumps(entry)},
            }
        )
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="team")
        pod = Pod(tmp_path / "pod", env={"POD_NAMESPACE": "team"})
        done = pod.init(
            {
                "name": "t",
                "inputs": {"artifacts": [{"name": "in", "path": "/tmp/in", "local": {"key": "k"}}]},
            },
            "--repository-configmap",
            "artifact-repositories",
            "--kubeconfig",
            str(kubeconfig),
        )
        missing = pod.init(
            {"name": "t", "inputs": {"artifacts": []}},
            "--repository-configmap",
            "nope",
            "--kubeconfig",
            str(kubeconfig),
        )
    assert done.code == 0, done.err
    assert (pod.root / "tmp" / "in").read_text() == "from the configmap's repository"
    assert missing.code == 3 and "ConfigMap team/nope" in missing.err


def test_init_with_a_var_dir_it_cannot_write_fails_before_downloading(tmp_path: Path) -> None:
    pod = Pod(tmp_path / "pod")
    pod.workdir.mkdir()
    (pod.workdir / "var").write_text("a file, not a folder")
    done = pod.init(
        {
            "name": "t",
            "inputs": {"artifacts": [{"name": "note", "path": "/etc/note", "raw": {"data": "x"}}]},
        }
    )
    assert done.code != 0 and "cannot create" in done.err
    assert len(done.err.strip().splitlines()) == 1
    assert not (pod.root / "etc" / "note").exists()


def test_init_refuses_a_hostile_tree_manifest_and_writes_nothing_outside_its_path(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    (store / "b" / "evil").mkdir(parents=True)
    (store / "b" / "evil" / "f").write_text("f")
    (store / "b" / "evil" / ".argosy-manifest.json").write_text(
        json.dumps(
            {
                "schema": "argosy.tree-manifest",
                "version": 1,
                "files": [],
                "symlinks": [{"path": "x/l", "target": ".."}, {"path": "x/l/m", "target": "../.."}],
                "dirs": [],
            }
        )
    )
    repo = configmap({"local": {"root": str(store), "bucket": "b"}}, tmp_path / "repo.yaml")
    pod = Pod(tmp_path / "pod", repo)
    done = pod.init(
        {
            "name": "t",
            "inputs": {
                "artifacts": [
                    {
                        "name": "in",
                        "path": "/data/in",
                        "local": {"key": "evil"},
                        "archive": {"none": {}},
                    }
                ]
            },
        }
    )
    assert done.code != 0 and "goes through 'x/l', which is a symlink" in done.err
    assert os.listdir(pod.root / "data") == []


def _zeros_input(tmp_path: Path, size: int, **entry: Any) -> tuple[Pod, dict[str, Any]]:
    store = tmp_path / "store"
    (store / "b").mkdir(parents=True)
    (store / "b" / "zeros.tar.zst").write_bytes(tar_bomb(size, "zstd"))
    repo = configmap(
        {"local": {"root": str(store), "bucket": "b"}, **entry}, tmp_path / "repo.yaml"
    )
    template = {
        "name": "t",
        "inputs": {
            "artifacts": [{"name": "in", "path": "/data/in", "local": {"key": "zeros.tar.zst"}}]
        },
    }
    return Pod(tmp_path / "pod", repo), template


def test_init_refuses_a_decompression_bomb_naming_the_input_and_the_setting(
    tmp_path: Path,
) -> None:
    pod, template = _zeros_input(tmp_path, 200 * MiB)
    done = pod.init(template)
    assert done.code == 1
    assert "input in failed" in done.err and "archive expands past 1000:1" in done.err
    assert "the argosy setting maxExpansion raises the limit (0 turns it off)" in done.err
    assert os.listdir(pod.root / "data") == []  # no input, no staging folder


def test_a_repository_max_expansion_of_0_lets_an_archive_of_zeros_in(tmp_path: Path) -> None:
    pod, template = _zeros_input(tmp_path, 80 * MiB, argosy={"maxExpansion": 0})
    done = pod.init(template)
    assert done.code == 0, done.err
    assert (pod.root / "data" / "in").stat().st_size == 80 * MiB  # one file: unwrapped


def test_an_http_input_that_is_a_bomb_is_refused_unless_its_annotation_allows_it(
    tmp_path: Path, http_files: str
) -> None:
    _Files.files["zeros.tar.zst"] = tar_bomb(80 * MiB, "zstd")
    url = f"{http_files}/zeros.tar.zst"
    template = {
        "name": "t",
        "inputs": {"artifacts": [{"name": "zeros", "path": "/data/zeros", "http": {"url": url}}]},
    }
    refused = Pod(tmp_path / "refused").init(template)
    assert refused.code == 1
    assert "input zeros failed" in refused.err and "maxExpansion" in refused.err
    assert os.listdir(tmp_path / "refused" / "root" / "data") == []
    allowed = Pod(tmp_path / "allowed")
    allowed.workdir.mkdir()
    (allowed.workdir / "annotations").write_text(
        'argosy.io/settings="{\\"artifacts\\": {\\"zeros\\": {\\"maxExpansion\\": 0}}}"\n'
    )
    done = allowed.init(template)
    assert done.code == 0, done.err
    assert (allowed.root / "data" / "zeros").stat().st_size == 80 * MiB
