"""`argosy repo check` as a cluster admin runs it: a ConfigMap file (or the one in a
namespace) probed against real servers (the local repository, moto, the OSS test server,
the Kubernetes test API), with the exit code, the table, the failure lines, and a bucket
left as clean as it was found."""

from __future__ import annotations

import base64
import json
import socket
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import PermanentError
from argosy.artifacts.protocol import Driver, ObjectInfo, Part
from argosy.artifacts.tree import list_all
from argosy.commands.repo_probe import PROBES, ProbeSettings, probe
from argosy.testing.kube.api import KubeTestServer
from argosy.testing.oss.server import OssTestServer
from tests.cli.conftest import Argosy
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, s3_driver, unique_bucket

MOTO_KEY, MOTO_SECRET = "moto-key", "moto-secret"
DEFAULT = "workflows.argoproj.io/default-artifact-repository"


def configmap(entries: Mapping[str, str], *, default: str | None = None) -> str:
    metadata: dict[str, Any] = {"name": "artifact-repositories"}
    if default:
        metadata["annotations"] = {DEFAULT: default}
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {k: textwrap.dedent(v) for k, v in entries.items()},
        },
        sort_keys=False,
    )


def s3_entry(endpoint: str, bucket: str, *, secret: str = "s3-creds") -> str:
    return f"""
        s3:
          bucket: {bucket}
          endpoint: {endpoint}
          insecure: true
          region: us-east-1
          accessKeySecret: {{name: {secret}, key: accessKey}}
          secretKeySecret: {{name: {secret}, key: secretKey}}
        keyFormat: "runs/{{{{workflow.name}}}}/{{{{pod.name}}}}"
        """


def oss_entry(endpoint: str, bucket: str, *, secret: str) -> str:
    return f"""
        oss:
          bucket: {bucket}
          endpoint: {endpoint}
          accessKeySecret: {{name: {secret}, key: accessKey}}
          secretKeySecret: {{name: {secret}, key: secretKey}}
        """


def write_secret(folder: Path, name: str, values: Mapping[str, str]) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    for key, value in values.items():
        (folder / name / key).write_text(value)


def row(text: str, entry: str) -> list[str]:
    """The table row of `entry`, split into cells ('FAIL NoSuchBucket' is one cell)."""
    for line in text.splitlines():
        if line.split("  ")[0].strip() in (entry, f"{entry} (default)"):
            return [cell.strip() for cell in line.split("  ") if cell.strip()]
    raise AssertionError(f"no row for {entry} in:\n{text}")


def probe_cells(text: str, entry: str) -> list[str]:
    return row(text, entry)[-len(PROBES) :]


def assert_empty(driver: Driver) -> None:
    assert list(list_all(driver, "")) == []
    assert driver.list_uploads("") == []


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    write_secret(folder, "s3-creds", {"accessKey": MOTO_KEY, "secretKey": MOTO_SECRET})
    return folder


@pytest.fixture
def check(argosy_local: Argosy, secrets_dir: Path) -> Argosy:
    """`argosy` with its secrets folder set, as a pod has it mounted."""
    argosy_local.env = {**argosy_local.env, "ARGOSY_SECRETS_DIR": str(secrets_dir)}
    return argosy_local


# -- the local repository --------------------------------------------------------------------
def test_a_local_entry_passes_every_probe_and_leaves_nothing_behind(
    check: Argosy, tmp_path: Path
) -> None:
    (tmp_path / "bkt").mkdir()
    (tmp_path / "cm.yaml").write_text(
        configmap(
            {
                "local-repo": f"""
        local: {{root: {tmp_path}, bucket: bkt}}
        keyFormat: "artifacts/{{{{workflow.name}}}}/{{{{pod.name}}}}"
        """
            },
            default="local-repo",
        )
    )
    got = check("repo", "check", "cm.yaml")
    assert got.code == 0, got.text + got.err
    assert row(got.text, "local-repo")[:5] == [
        "local-repo (default)",
        "local",
        "bkt",
        "artifacts/",
        "ok",
    ]
    assert probe_cells(got.text, "local-repo") == ["ok"] * 5
    assert len(got.text.splitlines()) == 2  # the header and the row, no failure lines
    assert_empty(LocalDriver(tmp_path, "bkt"))
    assert [p for p in (tmp_path / "bkt").rglob("*") if p.is_file()] == []


def test_an_entry_of_argosys_plugin_is_probed_on_the_storage_its_configuration_names(
    check: Argosy, tmp_path: Path
) -> None:
    (tmp_path / "bkt").mkdir()
    configuration = json.dumps({"local": {"root": str(tmp_path), "bucket": "bkt"}})
    entry = {
        "plugin": {
            "name": "argosy",
            "keyFormat": "runs/{{workflow.name}}",
            "configuration": configuration,
        }
    }
    (tmp_path / "cm.yaml").write_text(configmap({"plug": json.dumps(entry)}, default="plug"))
    got = check("repo", "check", "cm.yaml")
    assert got.code == 0, got.text + got.err
    assert row(got.text, "plug")[:4] == ["plug (default)", "plugin", "bkt", "runs/"]
    assert probe_cells(got.text, "plug") == ["ok"] * 5


def test_a_single_entry_file_is_one_row_named_by_the_file(check: Argosy, tmp_path: Path) -> None:
    (tmp_path / "bkt").mkdir()
    (tmp_path / "entry.yaml").write_text(f"local: {{root: {tmp_path}, bucket: bkt}}\n")
    got = check("repo", "check", "entry.yaml")
    assert got.code == 0, got.text + got.err
    assert row(got.text, "entry.yaml")[1:4] == ["local", "bkt", "(root)"]


# -- S3 on moto --------------------------------------------------------------------------------
def test_an_s3_entry_whose_bucket_exists_passes_every_probe(
    check: Argosy, tmp_path: Path, moto_endpoint: str
) -> None:
    driver = s3_driver(moto_endpoint, MOTO_KEY, MOTO_SECRET, unique_bucket("check"))
    (tmp_path / "cm.yaml").write_text(configmap({"s3": s3_entry(moto_endpoint, driver.bucket)}))
    got = check("repo", "check", "cm.yaml")
    assert got.code == 0, got.text + got.err
    assert row(got.text, "s3")[:4] == ["s3", "s3", driver.bucket, "runs/"]
    assert probe_cells(got.text, "s3") == ["ok"] * 5
    assert_empty(driver)


def test_an_s3_entry_whose_bucket_is_missing_fails_its_write_and_skips_the_rest(
    check: Argosy, tmp_path: Path, moto_endpoint: str
) -> None:
    missing = unique_bucket("absent")
    (tmp_path / "cm.yaml").write_text(configmap({"gone": s3_entry(moto_endpoint, missing)}))
    got = check("repo", "check", "cm.yaml")
    assert got.code == 1, got.text + got.err
    assert probe_cells(got.text, "gone") == ["FAIL NoSuchBucket"] + ["skipped"] * 4
    failures = got.text.split("\n\n", 1)[1].splitlines()
    assert len(failures) == 1 and failures[0].startswith(f"gone: write: s3://{missing}/runs/")
    assert "no such bucket" in failures[0]


def test_json_gives_one_line_per_entry_with_every_probe(
    check: Argosy, tmp_path: Path, moto_endpoint: str
) -> None:
    driver = s3_driver(moto_endpoint, MOTO_KEY, MOTO_SECRET, unique_bucket("check"))
    (tmp_path / "cm.yaml").write_text(
        configmap(
            {
                "good": s3_entry(moto_endpoint, driver.bucket),
                "gone": s3_entry(moto_endpoint, unique_bucket("absent")),
            },
            default="good",
        )
    )
    got = check("repo", "check", "cm.yaml", "--json")
    assert got.code == 1, got.err
    rows = {r["entry"]: r for r in map(json.loads, got.text.splitlines())}
    good, gone = rows.pop("good"), rows.pop("gone")
    assert rows == {}
    assert (good["default"], good["ok"], good["prefix"]) == (True, True, "runs/")
    assert {p: v["status"] for p, v in good["probes"].items()} == dict.fromkeys(PROBES, "ok")
    assert gone["ok"] is False and gone["probes"]["write"]["cause"] == "NoSuchBucket"
    assert gone["failures"] == [{"stage": "write", "reason": gone["probes"]["write"]["reason"]}]
    assert_empty(driver)


def test_a_probe_that_gets_no_answer_fails_after_the_timeout(check: Argosy, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        (tmp_path / "cm.yaml").write_text(configmap({"hung": s3_entry(endpoint, "b")}))
        got = check("repo", "check", "cm.yaml", "--timeout", "1")
    assert got.code == 1, got.text + got.err
    assert probe_cells(got.text, "hung") == ["FAIL timeout"] + ["skipped"] * 4
    assert "hung: write: no answer within 1s" in got.text


# -- OSS on the OSS test server ----------------------------------------------------------------
def test_wrong_oss_credentials_fail_the_write_as_access_denied(
    check: Argosy, tmp_path: Path, secrets_dir: Path, oss_server: OssTestServer
) -> None:
    driver = oss_driver(oss_server.endpoint, unique_bucket("check"))
    write_secret(secrets_dir, "oss-good", {"accessKey": OSS_ACCESS_KEY, "secretKey": OSS_SECRET})
    write_secret(
        secrets_dir, "oss-bad", {"accessKey": OSS_ACCESS_KEY, "secretKey": "not-the-secret-123"}
    )
    (tmp_path / "cm.yaml").write_text(
        configmap(
            {
                "right": oss_entry(oss_server.endpoint, driver.bucket, secret="oss-good"),
                "wrong": oss_entry(oss_server.endpoint, driver.bucket, secret="oss-bad"),
            }
        )
    )
    got = check("repo", "check", "cm.yaml")
    assert got.code == 1, got.text + got.err
    assert probe_cells(got.text, "right") == ["ok"] * 5
    assert probe_cells(got.text, "wrong") == ["FAIL AccessDenied"] + ["skipped"] * 4
    (failure,) = got.text.split("\n\n", 1)[1].splitlines()
    assert failure.startswith("wrong: write: ") and "SignatureDoesNotMatch" in failure
    assert "not-the-secret-123" not in got.text + got.err
    assert_empty(driver)


# -- the ConfigMap and its secrets ------------------------------------------------------------
def test_a_configmap_that_is_not_yaml_exits_2_naming_the_file(
    check: Argosy, tmp_path: Path
) -> None:
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\ndata: {a: [\n")
    got = check("repo", "check", "cm.yaml")
    assert got.code == 2 and got.text == ""
    assert got.err.splitlines() == [got.err.strip()] and "cm.yaml" in got.err


def test_a_configmap_without_data_exits_2_naming_the_file(check: Argosy, tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    got = check("repo", "check", "cm.yaml")
    assert got.code == 2 and len(got.err.splitlines()) == 1
    assert "cm.yaml" in got.err and "no data" in got.err


def test_a_missing_secret_fails_its_entry_naming_the_secret_and_the_others_still_run(
    check: Argosy, tmp_path: Path
) -> None:
    (tmp_path / "bkt").mkdir()
    (tmp_path / "cm.yaml").write_text(
        configmap(
            {
                "local": f"local: {{root: {tmp_path}, bucket: bkt}}",
                "nokey": """
            s3:
              bucket: b
              accessKeySecret: {name: absent-creds, key: accessKey}
              secretKeySecret: {name: absent-creds, key: secretKey}
            """,
                "broken": "s3: [unclosed",
            }
        )
    )
    got = check("repo", "check", "cm.yaml")
    assert got.code == 1, got.text + got.err
    assert probe_cells(got.text, "local") == ["ok"] * 5
    assert row(got.text, "nokey")[1:4] == ["s3", "b", "-"]
    assert probe_cells(got.text, "nokey") == ["FAIL parse"] + ["skipped"] * 4
    failures = got.text.split("\n\n", 1)[1].splitlines()
    assert failures[0].startswith(
        "nokey: parse: s3.accessKeySecret: secret absent-creds/accessKey not found"
    )
    assert failures[1] == "broken: parse: not valid YAML"


# -- --namespace: the ConfigMap and Secrets from the Kubernetes API ---------------------------
@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[KubeTestServer, Path]]:
    with KubeTestServer(namespaces=("argo",)) as server:
        yield server, server.write_kubeconfig(tmp_path / "kubeconfig")


def test_namespace_reads_the_configmap_and_its_secrets_from_the_api(
    check: Argosy, kube: tuple[KubeTestServer, Path], moto_endpoint: str
) -> None:
    server, kubeconfig = kube
    driver = s3_driver(moto_endpoint, MOTO_KEY, MOTO_SECRET, unique_bucket("check"))
    server.create_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-api", "namespace": "argo"},
            "data": {
                "accessKey": base64.b64encode(MOTO_KEY.encode()).decode(),
                "secretKey": base64.b64encode(MOTO_SECRET.encode()).decode(),
            },
        }
    )
    cm = yaml.safe_load(
        configmap(
            {
                "api": s3_entry(moto_endpoint, driver.bucket, secret="s3-api"),
                "unshared": s3_entry(moto_endpoint, driver.bucket, secret="not-in-argo"),
            },
            default="api",
        )
    )
    cm["metadata"]["namespace"] = "argo"
    server.create_object(cm)
    got = check("repo", "check", "--namespace", "argo", "--kubeconfig", str(kubeconfig))
    assert got.code == 1, got.text + got.err
    assert probe_cells(got.text, "api") == ["ok"] * 5
    assert row(got.text, "api")[0] == "api (default)"
    assert probe_cells(got.text, "unshared") == ["FAIL secrets"] + ["skipped"] * 4
    assert "unshared: secrets: s3.accessKeySecret: Secret argo/not-in-argo not found" in got.text
    assert_empty(driver)


def test_namespace_without_the_configmap_exits_2(
    check: Argosy, kube: tuple[KubeTestServer, Path]
) -> None:
    got = check("repo", "check", "-n", "argo", "--kubeconfig", str(kube[1]))
    assert got.code == 2 and "no ConfigMap argo/artifact-repositories" in got.err


# -- the probes themselves, on a local bucket whose driver misbehaves on purpose -------------
class _DropsMetadata(LocalDriver):
    """A gateway that loses user metadata: the checksum record never comes back."""

    def stat(self, key: str) -> ObjectInfo:
        info = super().stat(key)
        return ObjectInfo(info.key, info.size, info.etag, info.modified, {})


class _RefusesComplete(LocalDriver):
    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        raise PermanentError(f"{self.url(key)}: multipart refused", code="NotImplemented")


def test_a_repository_that_drops_metadata_fails_the_read_back_and_the_rest_still_run(
    tmp_path: Path,
) -> None:
    driver = _DropsMetadata(tmp_path, "bkt")
    driver.create_bucket()
    report = probe(driver, "a/", settings=ProbeSettings())
    assert {p: o.cell for p, o in report.outcomes.items()} == {
        "write": "ok",
        "read": "FAIL Unverified",
        "multipart": "ok",
        "list": "ok",
        "delete": "ok",
    }
    assert "unverified" in report.outcomes["read"].reason and report.leftover is None
    assert_empty(driver)


def test_a_failed_multipart_upload_is_aborted_and_its_probe_objects_removed(tmp_path: Path) -> None:
    driver = _RefusesComplete(tmp_path, "bkt")
    driver.create_bucket()
    report = probe(driver, "", settings=ProbeSettings())
    assert report.outcomes["multipart"].cell == "FAIL NotImplemented"
    assert [report.outcomes[p].cell for p in ("write", "read", "list", "delete")] == ["ok"] * 4
    assert report.folder.startswith("local://bkt/.argosy-probe/")
    assert_empty(driver)
