"""A secret reference names a Kubernetes Secret and one of its keys, never a path: the
name is an RFC 1123 subdomain, the key a ConfigMap key, and anything else is refused
naming the field, before a file is read or the API is asked. Every place that reads a
secret by name holds to it: repository entries, http inputs, the GC, `repo check`.

The refused references below would otherwise read a real file outside the secrets
folder (`tmp/outside/token`, `tmp/outside-token`) and send it as a credential."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from argosy.argo import repository, secrets
from argosy.argo.location import Target
from argosy.argo.secrets import ApiSecrets, FileSecrets
from argosy.artifacts.errors import InvalidSpec
from argosy.commands.repo_check import check_entry
from argosy.commands.repo_probe import ProbeSettings
from argosy.gc.storage import DriverFactory
from argosy.sidecar.httpfetch import request_for

ESCAPES = [  # (reference, the field's part that is wrong, its value)
    ({"name": "../outside", "key": "token"}, "name", "../outside"),
    ({"name": "my-s3", "key": "../../outside-token"}, "key", "../../outside-token"),
]
ENTRY_FIELDS = [
    ("s3", "accessKeySecret"),
    ("s3", "secretKeySecret"),
    ("s3", "sessionTokenSecret"),
    ("s3", "caSecret"),
    ("s3", "encryptionOptions.serverSideCustomerKeySecret"),
    ("oss", "accessKeySecret"),
    ("oss", "secretKeySecret"),
]


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """`my-s3` holds real keys; two files lie outside the folder, one `../` away."""
    (tmp_path / "secrets" / "my-s3").mkdir(parents=True)
    (tmp_path / "secrets" / "my-s3" / "accessKey").write_text("AK")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "token").write_text("not a credential")
    (tmp_path / "outside-token").write_text("not a credential")
    return tmp_path / "secrets"


def _refused(field: str, part: str, value: str) -> str:
    return re.escape(f"{field}.{part}: {value!r} is not a valid Kubernetes secret {part}")


def _entry(kind: str, field: str, ref: Any) -> dict[str, Any]:
    inner: dict[str, Any] = {"bucket": "b"}
    *outer, last = field.split(".")
    place = inner
    for name in outer:
        place = place.setdefault(name, {})
    place[last] = ref
    return {kind: inner}


@pytest.mark.parametrize(("kind", "field"), ENTRY_FIELDS)
@pytest.mark.parametrize(("ref", "part", "value"), ESCAPES)
def test_a_repository_entry_refuses_a_secret_reference_that_leaves_the_folder(
    secrets_dir: Path, kind: str, field: str, ref: dict[str, str], part: str, value: str
) -> None:
    with pytest.raises(InvalidSpec, match=_refused(f"{kind}.{field}", part, value)):
        repository.parse_entry(_entry(kind, field, ref), secrets=FileSecrets(secrets_dir))


def test_a_repository_entry_with_valid_names_still_reads_its_secrets(secrets_dir: Path) -> None:
    (secrets_dir / "s3.creds-1").mkdir()
    (secrets_dir / "s3.creds-1" / "secret_key.v2").write_text("SK\n")
    entry = repository.parse_entry(
        {
            "s3": {
                "bucket": "b",
                "accessKeySecret": {"name": "my-s3", "key": "accessKey"},
                "secretKeySecret": {"name": "s3.creds-1", "key": "secret_key.v2"},
            }
        },
        secrets=FileSecrets(secrets_dir),
    )
    assert entry.s3 is not None and (entry.s3.access_key, entry.s3.secret_key) == ("AK", "SK")


@pytest.mark.parametrize(("ref", "part", "value"), ESCAPES)
def test_an_http_header_from_a_secret_refuses_a_reference_that_leaves_the_folder(
    secrets_dir: Path, ref: dict[str, str], part: str, value: str
) -> None:
    config = {
        "url": "http://127.0.0.1:9/x",
        "headers": [{"name": "X-Token", "valueFrom": {"secretKeyRef": ref}}],
    }
    field = "inputs.artifacts[0].http.headers[0].valueFrom.secretKeyRef"
    with pytest.raises(InvalidSpec, match=_refused(field, part, value)):
        request_for(config, secrets_dir, "inputs.artifacts[0].http")


@pytest.mark.parametrize("which", ["usernameSecret", "passwordSecret"])
@pytest.mark.parametrize(("ref", "part", "value"), ESCAPES)
def test_http_basic_auth_refuses_a_reference_that_leaves_the_folder(
    secrets_dir: Path, which: str, ref: dict[str, str], part: str, value: str
) -> None:
    basic = {
        "usernameSecret": {"name": "my-s3", "key": "accessKey"},
        "passwordSecret": {"name": "my-s3", "key": "accessKey"},
        which: ref,
    }
    config = {"url": "http://127.0.0.1:9/x", "auth": {"basicAuth": basic}}
    field = f"inputs.artifacts[0].http.auth.basicAuth.{which}"
    with pytest.raises(InvalidSpec, match=_refused(field, part, value)):
        request_for(config, secrets_dir, "inputs.artifacts[0].http")


@pytest.mark.parametrize(
    ("ref", "part", "value"),
    [
        ({"name": "../kube-system/admin", "key": "token"}, "name", "../kube-system/admin"),
        ({"name": "Creds_1", "key": "token"}, "name", "Creds_1"),
        ({"name": "creds", "key": ".."}, "key", ".."),
    ],
)
def test_the_gc_refuses_a_secret_name_or_key_kubernetes_would_not_have_before_asking_the_api(
    ref: dict[str, str], part: str, value: str
) -> None:
    asked: list[tuple[str, str]] = []

    def read(namespace: str, name: str) -> dict[str, bytes]:
        asked.append((namespace, name))
        return {"token": b"value"}

    target = Target("s3", "b", "k", {"bucket": "b", "accessKeySecret": ref})
    with pytest.raises(InvalidSpec, match=_refused("s3.accessKeySecret", part, value)):
        DriverFactory(read).open(target, "ns")
    assert asked == []


def test_repo_check_refuses_a_secret_name_kubernetes_would_not_have_before_asking_the_api(
    tmp_path: Path,
) -> None:
    def fetch(name: str) -> dict[str, bytes] | None:
        raise AssertionError(f"asked the API for {name!r}")

    entry = _entry("s3", "accessKeySecret", {"name": "Creds_1", "key": "token"})
    row = check_entry(
        "ns/artifact-repositories[main]",
        entry,
        default=True,
        secrets=ApiSecrets(fetch, namespace="ns"),
        local_root=str(tmp_path),
        settings=ProbeSettings(timeout=5),
        api=True,
    )
    [(stage, reason)] = row.failures
    assert stage == "secrets"
    assert re.search(_refused("s3.accessKeySecret", "name", "Creds_1"), reason)


# -- the grammar ------------------------------------------------------------------------
_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
NAMES = st.lists(_LABEL, min_size=1, max_size=5).map(".".join)
KEYS = st.from_regex(r"[-._a-zA-Z0-9]{1,40}", fullmatch=True).filter(
    lambda key: key != "." and not key.startswith("..")
)
_NEVER_IN_NAMES = st.sampled_from(list("/\\_ A:@%\n\x00") + ["..", "é"])
_NEVER_IN_KEYS = st.sampled_from(list("/\\ :@%\n\x00") + ["é"])


@st.composite
def _with(draw: st.DrawFn, valid: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> str:
    """A valid name or key with something it may not hold put somewhere inside."""
    text, where = draw(valid), draw(st.integers(min_value=0))
    where %= len(text) + 1
    return text[:where] + draw(bad) + text[where:]


BAD_NAMES = st.one_of(
    _with(NAMES, _NEVER_IN_NAMES),
    NAMES.map(lambda name: f"-{name}"),
    NAMES.map(lambda name: f"{name}-"),
    NAMES.map(lambda name: f".{name}"),
    NAMES.map(lambda name: f"{name}."),
    st.sampled_from(["", ".", "..", "../outside", "x/../y", "a" * 254]),
)
BAD_KEYS = st.one_of(
    _with(KEYS, _NEVER_IN_KEYS),
    KEYS.map(lambda key: f"..{key}"),
    st.sampled_from(["", ".", "..", "../outside-token", "a" * 254]),
)


def _read(name: str, key: str, folder: Path) -> str | None:
    return secrets.read(FileSecrets(folder), {"name": name, "key": key}, "s3.accessKeySecret")


@given(name=NAMES, key=KEYS)
@example(name="a" * 253, key="k" * 253)
@example(name="0.a-b.9", key="_.-")
def test_every_name_and_key_kubernetes_allows_is_read(name: str, key: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / name).mkdir()
        (Path(folder) / name / key).write_text("value")
        assert _read(name, key, Path(folder)) == "value"


@given(name=BAD_NAMES)
def test_every_name_kubernetes_would_refuse_is_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidSpec, match=_refused("s3.accessKeySecret", "name", name)):
        _read(name, "token", Path("/nonexistent"))


@given(key=BAD_KEYS)
def test_every_key_kubernetes_would_refuse_is_refused_naming_the_field(key: str) -> None:
    with pytest.raises(InvalidSpec, match=_refused("s3.accessKeySecret", "key", key)):
        _read("my-s3", key, Path("/nonexistent"))
