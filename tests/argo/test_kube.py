"""The one Kubernetes client wrapper, against the Kubernetes test API: per-call tokens,
the namespace from the kubeconfig, and every failure mapped into the project's errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from argosy.argo.kube import (
    Kube,
    KubeConflict,
    KubeForbidden,
    KubeGone,
    KubeNotFound,
    KubeUnavailable,
)
from argosy.argo.resources import CONFIGMAPS, SECRETS
from argosy.artifacts.errors import (
    AccessDenied,
    Conflict,
    Gone,
    InvalidSpec,
    NotFound,
    TransientError,
)
from argosy.testing.kube.api import KubeTestServer
from tests.conftest import free_port


@pytest.fixture
def server() -> Iterator[KubeTestServer]:
    with KubeTestServer() as api:
        yield api


@pytest.fixture
def kube(server: KubeTestServer, tmp_path: Path) -> Iterator[Kube]:
    connected = Kube.connect(
        str(server.write_kubeconfig(tmp_path / "kc", namespace="team")), request_timeout=10
    )
    yield connected
    connected.close()


def _configmap(name: str, namespace: str = "team") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
    }


def test_the_namespace_comes_from_the_kubeconfig_context(kube: Kube) -> None:
    assert kube.namespace == "team"


def test_a_call_with_a_token_is_made_as_that_tokens_user_not_the_kubeconfigs(
    server: KubeTestServer, kube: Kube
) -> None:
    server.create_object(_configmap("cm"))
    server.add_token("reader-token", "reader")
    seen: list[str] = []

    def only_reader(attrs: object) -> bool:
        seen.append(attrs.user)  # type: ignore[attr-defined]
        return attrs.user == "reader"  # type: ignore[attr-defined]

    server.authorizer = only_reader
    assert kube.get(CONFIGMAPS, "team", "cm", token="reader-token")["data"] == {"k": "v"}
    with pytest.raises(KubeForbidden) as refused:
        kube.get(CONFIGMAPS, "team", "cm")  # the kubeconfig's own user is not allowed
    assert isinstance(refused.value, AccessDenied)
    assert seen[0] == "reader" and seen[1] != "reader"


def test_an_unknown_token_is_refused_as_access_denied(server: KubeTestServer, kube: Kube) -> None:
    with pytest.raises(KubeForbidden) as refused:
        kube.get(CONFIGMAPS, "team", "cm", token="nobody-knows-me")
    assert refused.value.status == 401


def test_missing_objects_are_not_found_or_none(kube: Kube) -> None:
    with pytest.raises(KubeNotFound) as missing:
        kube.get(CONFIGMAPS, "team", "nope")
    assert isinstance(missing.value, NotFound)
    assert "ConfigMap team/nope" in str(missing.value)
    assert kube.find(CONFIGMAPS, "team", "nope") is None
    assert kube.secret_data("team", "nope") is None


def test_a_stale_update_is_a_conflict(server: KubeTestServer, kube: Kube) -> None:
    made = kube.create(CONFIGMAPS, "team", _configmap("cm"))
    kube.patch(CONFIGMAPS, "team", "cm", {"data": {"k": "new"}})
    stale = {
        "metadata": {"resourceVersion": made["metadata"]["resourceVersion"]},
        "data": {"k": "old"},
    }
    with pytest.raises(KubeConflict) as conflict:
        kube.patch(CONFIGMAPS, "team", "cm", stale)
    assert isinstance(conflict.value, Conflict)
    with pytest.raises(KubeConflict):
        kube.create(CONFIGMAPS, "team", _configmap("cm"))


def test_a_watch_from_a_compacted_version_is_gone(server: KubeTestServer, kube: Kube) -> None:
    first = kube.create(CONFIGMAPS, "team", _configmap("a"))["metadata"]["resourceVersion"]
    kube.create(CONFIGMAPS, "team", _configmap("b"))
    server.compact()
    with pytest.raises(KubeGone) as gone:
        list(kube.watch(CONFIGMAPS, "team", first, timeout_seconds=2))
    assert isinstance(gone.value, Gone)


def test_pages_and_watch_events_arrive_as_json(kube: Kube) -> None:
    for i in range(5):
        kube.create(CONFIGMAPS, "team", _configmap(f"cm{i}"))
    pages = list(kube.list_pages(CONFIGMAPS, "team", limit=2))
    assert [len(items) for items, _ in pages] == [2, 2, 1]
    version = pages[0][1]
    kube.patch(CONFIGMAPS, "team", "cm0", {"data": {"k": "changed"}})
    stream = kube.watch(CONFIGMAPS, "team", version, timeout_seconds=1)
    events = [(e.type, e.object["metadata"]["name"]) for e in stream]
    assert ("MODIFIED", "cm0") in events


def test_secrets_are_decoded(server: KubeTestServer, kube: Kube) -> None:
    server.create_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "team"},
            "data": {"token": "c2VjcmV0"},
        }
    )
    assert kube.secret_data("team", "s") == {"token": b"secret"}
    assert kube.get(SECRETS, "team", "s")["data"]["token"] == "c2VjcmV0"


def test_a_server_error_and_an_unreachable_server_are_transient(
    server: KubeTestServer, kube: Kube, tmp_path: Path
) -> None:
    server.inject_fault("GET", "/configmaps/cm$", 503)
    with pytest.raises(KubeUnavailable) as busy:
        kube.get(CONFIGMAPS, "team", "cm")
    assert isinstance(busy.value, TransientError) and busy.value.status == 503
    config = tmp_path / "dead"
    config.write_text(
        server.write_kubeconfig(tmp_path / "kc2")
        .read_text()
        .replace(f":{server.port}", f":{free_port()}")
    )
    dead = Kube.connect(str(config), request_timeout=2)
    with pytest.raises(KubeUnavailable) as unreachable:
        dead.get(CONFIGMAPS, "team", "cm")
    assert "cannot reach the Kubernetes API" in str(unreachable.value)


def test_a_broken_kubeconfig_is_one_line_of_bad_input(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("clusters: [ {{{")
    with pytest.raises(InvalidSpec) as bad:
        Kube.connect(str(broken))
    assert str(broken) in str(bad.value) and "\n" not in str(bad.value)
    with pytest.raises(InvalidSpec):
        Kube.connect(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    ("namespace", "name"), [("argo", ".."), ("argo", "."), ("..", "x"), ("argo", "")]
)
def test_a_name_that_is_a_dot_segment_never_becomes_a_path(namespace: str, name: str) -> None:
    # quoting leaves "." and ".." as they are: a server cleaning the path would read another
    # object than the one named (`configmaps/..` is the namespace itself)
    with pytest.raises(InvalidSpec, match="is not a ConfigMap"):
        CONFIGMAPS.path(namespace, name)
    assert CONFIGMAPS.path("argo", "..x") == "/api/v1/namespaces/argo/configmaps/..x"
    assert CONFIGMAPS.path("argo", "a/b") == "/api/v1/namespaces/argo/configmaps/a%2Fb"
