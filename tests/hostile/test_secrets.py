"""Secrets never leak. Each test gives a command a secret holding a unique sentinel, makes
the command fail where the secret is used, and greps every byte it wrote (standard output
and error, verbose logs, the pod's var dir and annotations, what the Kubernetes test API
received and stores) for the sentinel: it must appear nowhere."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.helpers import argosy, base_env, new_bucket, rgw_env
from tests.sidecar.pods import Pod, configmap, secrets

pytestmark = [pytest.mark.hostile, pytest.mark.rgw]


@pytest.fixture
def sentinel() -> str:
    return f"Sentinel{uuid.uuid4().hex}"


def _files_under(folder: Path, *, skip: tuple[Path, ...] = ()) -> Iterator[tuple[Path, bytes]]:
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            if not any(path == s or s in path.parents for s in skip) and not path.is_symlink():
                yield path, path.read_bytes()


def assert_nowhere(
    sentinel: str,
    *outputs: bytes | str,
    folders: tuple[Path, ...] = (),
    skip: tuple[Path, ...] = (),
) -> None:
    needle = sentinel.encode()
    for i, out in enumerate(outputs):
        data = out.encode() if isinstance(out, str) else out
        assert needle not in data, f"output {i} holds the secret: {data[:2000]!r}"
    for folder in folders:
        for path, data in _files_under(folder, skip=skip):
            assert needle not in data, f"{path} holds the secret"


def test_the_search_finds_a_sentinel_in_an_output_and_in_a_file(
    tmp_path: Path, sentinel: str
) -> None:
    with pytest.raises(AssertionError):
        assert_nowhere(sentinel, f"error: {sentinel}")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "log.json").write_text(json.dumps({"k": sentinel}))
    with pytest.raises(AssertionError):
        assert_nowhere(sentinel, folders=(tmp_path,))


def test_cp_with_a_wrong_secret_key_never_writes_it(
    rgw: dict[str, str], tmp_path: Path, sentinel: str
) -> None:
    bucket = new_bucket(rgw)
    (tmp_path / "f").write_bytes(b"data")
    env = {**rgw_env(rgw, tmp_path), "AWS_SECRET_ACCESS_KEY": sentinel}
    outputs: list[bytes | str] = []
    for args in (
        ["cp", "f", f"s3://{bucket.bucket}/f"],
        ["cp", "-v", "f", f"s3://{bucket.bucket}/f"],
        ["ls", "-v", f"s3://{bucket.bucket}/"],
        ["cp", "-v", "f", f"s3://{bucket.bucket}/f", "--endpoint", f"http://ak:{sentinel}@x"],
    ):
        done = argosy(*args, env=env, cwd=tmp_path)
        assert done.code in (2, 5), done.err
        outputs += [done.out, done.err]
    assert_nowhere(sentinel, *outputs, folders=(tmp_path,), skip=(tmp_path / "f",))


def _entry(rgw: dict[str, str], bucket: str) -> dict[str, Any]:
    return {
        "keyFormat": "{{workflow.name}}/{{pod.name}}",
        "s3": {
            "endpoint": rgw["AWS_ENDPOINT_URL"],
            "bucket": bucket,
            "insecure": True,
            "accessKeySecret": {"name": "s3-creds", "key": "accessKey"},
            "secretKeySecret": {"name": "s3-creds", "key": "secretKey"},
        },
    }


def test_repo_check_with_a_wrong_secret_never_writes_it(
    rgw: dict[str, str], tmp_path: Path, sentinel: str
) -> None:
    bucket = new_bucket(rgw)
    folder = secrets(
        tmp_path / "secrets",
        {"s3-creds": {"accessKey": rgw["AWS_ACCESS_KEY_ID"], "secretKey": sentinel}},
    )
    repo = configmap(_entry(rgw, bucket.bucket), tmp_path / "repo.yaml")
    env = {**base_env(tmp_path), "ARGOSY_SECRETS_DIR": str(folder)}
    outputs: list[bytes | str] = []
    for extra in ([], ["--json"], ["-v"]):
        done = argosy("repo", "check", str(repo), "--timeout", "20", *extra, env=env, cwd=tmp_path)
        assert done.code == 1, done.err
        outputs += [done.out, done.err]
    assert_nowhere(sentinel, *outputs, folders=(tmp_path,), skip=(folder,))


TEMPLATE = {
    "name": "t",
    "inputs": {"artifacts": [{"name": "in", "path": "/tmp/in", "s3": {"key": "wf-1/in"}}]},
    "outputs": {"artifacts": [{"name": "out", "path": "/tmp/out.txt"}]},
}
ARGO_ENV = {
    "ARGO_NODE_ID": "wf-1-123",
    "ARGO_WORKFLOW_NAME": "wf-1",
    "ARGO_POD_NAME": "pod-1",
    "ARGO_WORKFLOW_UID": "uid-1",
    "POD_NAMESPACE": "argo",
}


def test_a_pod_whose_repository_secret_is_wrong_never_writes_it_anywhere(
    rgw: dict[str, str], tmp_path: Path, sentinel: str
) -> None:
    from argosy.testing.kube.api import KubeTestServer

    bucket = new_bucket(rgw)
    folder = secrets(
        tmp_path / "secrets",
        {"s3-creds": {"accessKey": rgw["AWS_ACCESS_KEY_ID"], "secretKey": sentinel}},
    )
    repo = configmap(_entry(rgw, bucket.bucket), tmp_path / "repo.yaml")
    with KubeTestServer() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="argo")
        pod = Pod(
            tmp_path / "pod",
            repo,
            env={"ARGOSY_SECRETS_DIR": str(folder), **ARGO_ENV},
            variables={},
        )
        init = pod.init(TEMPLATE, "--kubeconfig", str(kubeconfig))
        main, wait = pod.main_and_wait(
            "echo hi > tmp/out.txt", {**TEMPLATE, "inputs": {}}, "--kubeconfig", str(kubeconfig)
        )
        sent = json.dumps([r.body for r in kube.requests], default=str)
        stored = json.dumps(
            [
                kube.list_objects(version, plural)
                for version, plural in (
                    ("v1", "events"),
                    ("v1", "pods"),
                    ("argoproj.io/v1alpha1", "workflowtaskresults"),
                )
            ],
            default=str,
        )
    assert init.code != 0 and wait.code != 0, (init.err, wait.err)
    assert "WorkflowTaskResult" in sent  # the report went to the API, and was searched
    assert_nowhere(
        sentinel,
        init.err,
        main.err,
        wait.err,
        sent,
        stored,
        folders=(pod.workdir,),
    )


class _Refusing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_an_http_input_with_basic_auth_from_a_failing_server_never_writes_the_password(
    tmp_path: Path, sentinel: str
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    folder = secrets(tmp_path / "secrets", {"web": {"user": "reader", "password": sentinel}})
    port = server.server_address[1]
    try:
        pod = Pod(tmp_path / "pod", env={"ARGOSY_SECRETS_DIR": str(folder)})
        done = pod.init(
            {
                "name": "t",
                "inputs": {
                    "artifacts": [
                        {
                            "name": "page",
                            "path": "/tmp/page",
                            "http": {
                                "url": f"http://127.0.0.1:{port}/file",
                                "auth": {
                                    "basicAuth": {
                                        "usernameSecret": {"name": "web", "key": "user"},
                                        "passwordSecret": {"name": "web", "key": "password"},
                                    }
                                },
                            },
                        },
                        {
                            "name": "inline",
                            "path": "/tmp/inline",
                            "http": {"url": f"http://reader:{sentinel}@127.0.0.1:{port}/x"},
                        },
                    ]
                },
            },
            "-v",
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.code != 0, done.err
    assert_nowhere(
        sentinel, done.err, folders=(pod.workdir,), skip=(pod.workdir / "template.yaml",)
    )
