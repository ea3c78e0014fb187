"""Repository entries, artifact-repositories ConfigMaps and templates as anyone could write
them: random nesting, wrong types, unknown fields, secret references of every shape. The
invariant: a valid result or a clean InvalidSpec (or another ArtifactError), never
another exception; through the command, an exit code and no traceback."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from argosy.argo.repository import choose_entry, parse_entry, repository_driver
from argosy.argo.secrets import FileSecrets
from argosy.argo.template import load_template
from argosy.artifacts.errors import ArtifactError
from argosy.main import main
from tests.hostile.conftest import fuzz

pytestmark = pytest.mark.hostile

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "s3",
            "oss",
            "local",
            "http://127.0.0.1:9",
            "https://s3.amazonaws.com",
            "oss-cn-hangzhou.aliyuncs.com",
            "{{workflow.name}}",
            "a/b",
            "../../etc",
            "path",
            "virtual",
            "s3-creds",
            "accessKey",
        ]
    ),
)
SECRET_REFS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["s3-creds", "../etc", "UPPER", "", "a" * 300, "ok.name"]),
        "key": st.sampled_from(["accessKey", "secretKey", "..", ".", "a/b", "k" * 300, ""]),
    }
)
ENTRY_FIELDS = st.sampled_from(
    [
        "s3",
        "oss",
        "local",
        "gcs",
        "keyFormat",
        "archiveLogs",
        "endpoint",
        "bucket",
        "insecure",
        "region",
        "accessKeySecret",
        "secretKeySecret",
        "sessionTokenSecret",
        "caSecret",
        "encryptionOptions",
        "kmsKeyId",
        "kmsEncryptionContext",
        "serverSideCustomerKeySecret",
        "enableEncryption",
        "useSDKCreds",
        "addressingStyle",
        "lifecycleRule",
        "markDeletionAfterDays",
        "markInfrequentAccessAfterDays",
        "securityToken",
        "createBucketIfNotPresent",
        "root",
        "unknownField",
    ]
)


def _values(fields: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(SCALARS, SECRET_REFS),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(fields, inner, max_size=6),
        max_leaves=20,
    )


ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
ENTRIES = st.one_of(
    _values(ENTRY_FIELDS),
    st.dictionaries(st.sampled_from(["s3", "oss", "local", "keyFormat"]), _values(ENTRY_FIELDS)),
)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    for key in ("accessKey", "secretKey"):
        (folder / "s3-creds").mkdir(exist_ok=True)
        (folder / "s3-creds" / key).write_text(f"value-of-{key}\n")
    return folder


@fuzz(250)
@given(entry=ENTRIES)
def test_a_generated_repository_entry_opens_a_driver_or_is_refused_cleanly(
    entry: Any, secrets_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        repository = parse_entry(entry, secrets=FileSecrets(secrets_dir), source="entry.yaml")
        repository_driver(repository, bucket="b", default_local_root="/nonexistent/argosy-root")
    except ArtifactError as error:
        assert "\n" not in str(error)
        return
    for value in (repository.bucket, repository.key_format):
        assert value is None or isinstance(value, str)
    storage = repository.storage
    for name in ("endpoint", "region", "kms_key_id", "kms_context", "root", "security_token"):
        value = getattr(storage, name, None)
        assert value is None or isinstance(value, str), (name, value)


@pytest.mark.parametrize(
    "entry",
    [
        {"s3": {"bucket": "b", "region": [None]}},
        {"s3": {"bucket": "b", "region": "{{workflow.name}}"}},
        {"s3": {"bucket": "b", "endpoint": {"s3": None}}},
        {"s3": {"bucket": "b", "endpoint": "http://[::1"}},
        {"s3": {"bucket": "b", "endpoint": "host name:9000"}},
        {"s3": {"bucket": "b", "encryptionOptions": {"kmsKeyId": ["k"]}}},
        {"oss": {"bucket": "b", "securityToken": {"t": 1}}},
        {"local": {"root": ["/tmp"]}, "keyFormat": 7},
        {"s3": {"bucket": ["b"]}},
        {"s3": {"bucket": "b"}, "archiveLogs": "yes"},
    ],
)
def test_a_repository_entry_with_a_field_of_the_wrong_shape_is_refused_naming_it(
    entry: dict[str, Any], secrets_dir: Path
) -> None:
    with pytest.raises(ArtifactError) as refused:
        repository = parse_entry(entry, secrets=FileSecrets(secrets_dir), source="entry.yaml")
        repository_driver(repository, bucket="b", default_local_root="/nonexistent/argosy-root")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "configmap",
    [
        {"kind": "ConfigMap", "data": ["default"]},
        {"kind": "ConfigMap", "data": True},
        {"kind": "ConfigMap", "data": {"default": ["s3"]}},
        {"kind": "ConfigMap", "data": {"default": "s3: {}"}, "metadata": ["x"]},
        {"kind": "ConfigMap", "data": {"a": "", "b": ""}, "metadata": {"annotations": [1]}},
        {
            "kind": "ConfigMap",
            "data": {"a": "s3: {}"},
            "metadata": {"annotations": {ANNOTATION: ["a"]}},
        },
    ],
)
def test_a_configmap_of_the_wrong_shape_is_refused_naming_it(configmap: dict[str, Any]) -> None:
    with pytest.raises(ArtifactError, match="cm.yaml"):
        choose_entry(configmap, None, where="cm.yaml")


CONFIGMAP_FIELDS = st.sampled_from(
    ["apiVersion", "kind", "metadata", "data", "annotations", "name", "default", "other", "x"]
)


def _configmaps() -> st.SearchStrategy[Any]:
    entry_text = st.one_of(
        ENTRIES.map(lambda e: yaml.safe_dump(e)),
        st.text(max_size=30),
        st.just("s3: [unclosed"),
    )
    data = st.one_of(
        st.dictionaries(st.sampled_from(["default", "other", "x"]), entry_text, max_size=3),
        _values(CONFIGMAP_FIELDS),
    )
    annotations = st.one_of(
        st.dictionaries(st.just(ANNOTATION), st.one_of(SCALARS, st.just("default"))),
        _values(CONFIGMAP_FIELDS),
    )
    return st.fixed_dictionaries(
        {"kind": st.just("ConfigMap")},
        optional={
            "metadata": st.one_of(
                st.fixed_dictionaries({"annotations": annotations}), _values(CONFIGMAP_FIELDS)
            ),
            "data": data,
        },
    )


@fuzz(250)
@given(configmap=_configmaps(), key=st.one_of(st.none(), st.sampled_from(["default", "nope"])))
def test_a_generated_configmap_yields_an_entry_or_is_refused_cleanly(
    configmap: Mapping[str, Any], key: str | None
) -> None:
    try:
        name, entry = choose_entry(configmap, key, where="cm.yaml")
    except ArtifactError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(name, str) and isinstance(entry, dict)


TEMPLATE_FIELDS = st.sampled_from(
    [
        "name",
        "inputs",
        "outputs",
        "artifacts",
        "parameters",
        "path",
        "from",
        "s3",
        "oss",
        "key",
        "bucket",
        "archive",
        "none",
        "tar",
        "zip",
        "compressionLevel",
        "mode",
        "optional",
        "raw",
        "data",
        "http",
        "url",
        "headers",
        "secretKeyRef",
        "valueFrom",
        "git",
        "argosy",
        "recurseMode",
        "artifactGC",
        "strategy",
        "globalName",
        "subPath",
        "archiveLogs",
        "deleted",
        "unknown",
    ]
)
TEMPLATE_VALUES = st.recursive(
    st.one_of(SCALARS, SECRET_REFS, st.sampled_from(["/tmp/x", "/", "../x", "/tmp/../etc"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEMPLATE_FIELDS, inner, max_size=6),
    max_leaves=25,
)
TEMPLATES = st.one_of(
    TEMPLATE_VALUES,
    st.fixed_dictionaries(
        {"name": st.just("t")},
        optional={
            "inputs": st.fixed_dictionaries(
                {"artifacts": st.lists(st.dictionaries(TEMPLATE_FIELDS, TEMPLATE_VALUES))}
            ),
            "outputs": st.fixed_dictionaries(
                {"artifacts": st.lists(st.dictionaries(TEMPLATE_FIELDS, TEMPLATE_VALUES))}
            ),
        },
    ),
)


def _text(document: Any, as_json: bool) -> str | None:
    """The document as JSON or YAML text; None for what neither can write (NaN in JSON
    is written, as Python writes it, and must be refused)."""
    try:
        return json.dumps(document) if as_json else yaml.safe_dump(document)
    except (TypeError, ValueError):
        return None


@fuzz(200)
@given(document=TEMPLATES, as_json=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_a_generated_template_loads_or_is_refused_cleanly(
    document: Any, as_json: bool, cut: int | None
) -> None:
    text = _text(document, as_json)
    if text is None:
        return
    if cut is not None:
        text = text[:cut]
    try:
        template = load_template(text, source="template.yaml")
    except ArtifactError as error:
        assert "\n" not in str(error)
        return
    for artifact in (*template.inputs, *template.outputs):
        assert isinstance(artifact.name, str)


@fuzz(40)
@given(template=TEMPLATES, configmap=_configmaps())
def test_lint_on_generated_templates_and_configmaps_exits_with_a_code_and_no_traceback(
    template: Any,
    configmap: Any,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path_factory.mktemp("lint")
    text = _text(template, as_json=False)
    if text is None or (isinstance(configmap.get("data"), float) and math.isnan(configmap["data"])):
        return
    (folder / "t.yaml").write_text(text)
    (folder / "cm.yaml").write_text(yaml.safe_dump(configmap))
    code = main(["lint", str(folder / "t.yaml"), "--repositories", str(folder / "cm.yaml")])
    _, err = capsys.readouterr()
    assert code in (0, 1, 2), err
    assert "Traceback" not in err
