"""URLs and Argo repository files."""

from __future__ import annotations

from pathlib import Path

import pytest

from argosy.argo import repository
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.location import parse


def test_urls_paths_and_dash_are_told_apart() -> None:
    assert parse("s3://b/k/x").bucket == "b" and parse("s3://b/k/x").key == "k/x"
    assert parse("local://b/").is_prefix
    assert parse("-").scheme == "stdio"
    assert parse("some/file").scheme == "file"


@pytest.mark.parametrize(
    "text, message", [("gs://b/k", "unknown scheme"), ("s3:///k", "missing bucket")]
)
def test_bad_urls_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        parse(text)


def _secrets(tmp_path: Path) -> Path:
    for name, key, value in [("my-s3", "accessKey", "AK"), ("my-s3", "secretKey", "SK")]:
        (tmp_path / "secrets" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "secrets" / name / key).write_text(value + "\n")
    return tmp_path / "secrets"


ENTRY = """
s3:
  bucket: my-bucket
  endpoint: minio:9000
  insecure: true
  accessKeySecret: {name: my-s3, key: accessKey}
  secretKeySecret: {name: my-s3, key: secretKey}
keyFormat: "runs/{{workflow.name}}"
"""


def test_an_argo_s3_entry_resolves_endpoint_and_secrets(tmp_path: Path) -> None:
    (tmp_path / "repo.yaml").write_text(ENTRY)
    repo = repository.load(tmp_path / "repo.yaml", secrets_dir=_secrets(tmp_path))
    assert repo.s3 is not None
    assert (repo.bucket, repo.s3.endpoint) == ("my-bucket", "http://minio:9000")
    assert (repo.s3.access_key, repo.s3.secret_key) == ("AK", "SK")
    assert repo.key_format == "runs/{{workflow.name}}"


def test_a_configmap_picks_the_annotated_default_or_the_named_key(tmp_path: Path) -> None:
    indented = "\n".join("    " + line for line in ENTRY.strip().splitlines())
    (tmp_path / "cm.yaml").write_text(f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: artifact-repositories
  annotations:
    workflows.argoproj.io/default-artifact-repository: main
data:
  main: |
{indented}
  scratch: |
    local: {{root: /tmp/x, bucket: scratch}}
""")
    secrets = _secrets(tmp_path)
    assert repository.load(tmp_path / "cm.yaml", secrets_dir=secrets).s3 is not None
    other = repository.load(tmp_path / "cm.yaml", key="scratch", secrets_dir=secrets)
    assert other.local is not None and other.bucket == "scratch"
    with pytest.raises(InvalidSpec, match="no repository 'nope'"):
        repository.load(tmp_path / "cm.yaml", key="nope", secrets_dir=secrets)


def test_a_missing_secret_is_named(tmp_path: Path) -> None:
    (tmp_path / "repo.yaml").write_text(ENTRY)
    with pytest.raises(InvalidSpec, match="my-s3/accessKey not found"):
        repository.load(tmp_path / "repo.yaml", secrets_dir=tmp_path / "empty")


def test_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("s3:\n  bucket: [unclosed\n")
    with pytest.raises(InvalidSpec, match="bad.yaml:.*line"):
        repository.load(tmp_path / "bad.yaml", secrets_dir=tmp_path)


def test_an_entry_with_two_locations_is_refused(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text("s3: {bucket: a}\nlocal: {bucket: b}\n")
    with pytest.raises(InvalidSpec, match="exactly one"):
        repository.load(tmp_path / "two.yaml", secrets_dir=tmp_path)


OSS_ENTRY = """
oss:
  bucket: my-oss-bucket
  endpoint: oss-cn-hangzhou-internal.aliyuncs.com
  accessKeySecret: {name: my-s3, key: accessKey}
  secretKeySecret: {name: my-s3, key: secretKey}
  securityToken: sts-token
  createBucketIfNotPresent: true
  lifecycleRule: {markInfrequentAccessAfterDays: 10, markDeletionAfterDays: 0}
keyFormat: "runs/{{workflow.name}}/{{pod.name}}"
"""


def test_an_argo_oss_entry_resolves_secrets_token_and_lifecycle(tmp_path: Path) -> None:
    (tmp_path / "oss.yaml").write_text(OSS_ENTRY)
    repo = repository.load(tmp_path / "oss.yaml", secrets_dir=_secrets(tmp_path))
    assert repo.oss is not None and repo.s3 is None
    assert (repo.bucket, repo.oss.endpoint) == (
        "my-oss-bucket",
        "https://oss-cn-hangzhou-internal.aliyuncs.com",
    )
    assert (repo.oss.access_key, repo.oss.secret_key, repo.oss.security_token) == (
        "AK",
        "SK",
        "sts-token",
    )
    assert repo.oss.create_bucket_if_not_present and not repo.oss.use_sdk_creds
    assert (repo.oss.mark_infrequent_access_after_days, repo.oss.mark_deletion_after_days) == (
        10,
        None,
    )
    assert repository.static_prefix(repo.key_format) == "runs/"


def test_an_oss_entry_with_a_bad_lifecycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "oss.yaml").write_text(
        "oss: {bucket: b, lifecycleRule: {markDeletionAfterDays: soon}}\n"
    )
    with pytest.raises(InvalidSpec, match="markDeletionAfterDays"):
        repository.load(tmp_path / "oss.yaml", secrets_dir=tmp_path)


@pytest.mark.parametrize(
    "key_format, prefix",
    [
        ("{{workflow.name}}/{{pod.name}}", ""),
        ("a/b/{{pod.name}}", "a/b/"),
        ("a/fixed-{{pod.name}}", "a/"),
        ("plain/key", "plain/"),
    ],
)
def test_the_static_prefix_of_a_key_format_is_a_folder(key_format: str, prefix: str) -> None:
    assert repository.static_prefix(key_format) == prefix
