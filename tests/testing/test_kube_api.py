"""The Kubernetes test API server, driven by the official ``kubernetes`` client.

Every test goes through real HTTP with a client configured from the kubeconfig the server
writes, so what passes here is what the GC controller and the sidecar will see. Negative
tests pin the semantics that make the fake worth having: stale writes get 409, expired
watches get 410, finalizers hold deletions, selectors really filter.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from argosy.testing.kube.api import KubeTestServer, ManualClock, RequestAttributes, ResourceSpec

ARGO = ("argoproj.io", "v1alpha1")
POLICY = ("argosy.io", "v1alpha1")
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
WATCH = {"timeout_seconds": 5, "_request_timeout": 10}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[KubeTestServer]:
    with KubeTestServer(clock=clock) as running:
        yield running


def api_client_for(server: KubeTestServer, path: Path) -> client.ApiClient:
    server.write_kubeconfig(path)
    return config.new_client_from_config(config_file=str(path))


@pytest.fixture
def api(server: KubeTestServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    with api_client_for(server, tmp_path / "kubeconfig") as api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


class Described(Protocol):
    """An object of a built-in kind, as the client decodes it."""

    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


class Listed(Protocol):
    """A list of objects of a built-in kind, as the client decodes it."""

    @property
    def metadata(self) -> client.V1ListMeta | None: ...


def meta(obj: Described) -> client.V1ObjectMeta:
    """The metadata the server gives every object it answers."""
    assert obj.metadata is not None
    return obj.metadata


def list_meta(page: Listed) -> client.V1ListMeta:
    """The metadata the server gives every list it answers."""
    assert page.metadata is not None
    return page.metadata


def version(obj: Described) -> int:
    """The resourceVersion the server gives every object it answers."""
    resource_version = meta(obj).resource_version
    assert resource_version is not None
    return int(resource_version)


def json_object(answer: object) -> dict[str, Any]:
    """A custom object as the client answers it: decoded JSON (typed `object`)."""
    assert isinstance(answer, dict), answer
    return answer


def answer_of(error: ApiException) -> dict[str, Any]:
    """The Status object a refused request answered with."""
    assert error.body is not None
    status = json.loads(error.body)
    assert isinstance(status, dict)
    return status


def workflow(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, **metadata},
        "spec": {"entrypoint": "main"},
    }


def create_wf(
    custom: client.CustomObjectsApi, name: str, ns: str = "default", **metadata: Any
) -> dict[str, Any]:
    return json_object(
        custom.create_namespaced_custom_object(*ARGO, ns, "workflows", workflow(name, **metadata))
    )


def replay(custom: client.CustomObjectsApi, since: str, **kwargs: Any) -> list[tuple[str, str]]:
    """(type, name) of every workflow event after ``since``, read until the watch times out."""
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        *ARGO,
        "default",
        "workflows",
        resource_version=since,
        timeout_seconds=1,
        _request_timeout=10,
        **kwargs,
    )
    return [(e["type"], e["raw_object"]["metadata"]["name"]) for e in stream]


class LiveWatch:
    """A watch running on a thread; ``next()`` waits (with a deadline) for its next event."""

    def __init__(
        self, server: KubeTestServer, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        before = server.open_watches
        self.thread = threading.Thread(target=self._run, args=(func, args, kwargs), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 5
        while server.open_watches <= before:
            assert time.monotonic() < deadline, "the watch never opened"
            time.sleep(0.005)

    def _run(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        try:
            for event in watch.Watch().stream(func, *args, **WATCH, **kwargs):
                self.events.put(event)
            self.events.put("END")
        except Exception as error:  # noqa: BLE001 - handed to the test through next()
            self.events.put(error)

    def next(self) -> Any:
        return self.events.get(timeout=5)


# -- connection, discovery, authentication --------------------------------------------------


def test_the_kubeconfig_the_server_writes_lets_the_official_client_connect(
    server: KubeTestServer, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    names = [meta(n).name for n in core.list_namespace().items]
    assert names == ["default", "kube-system"]
    assert server.url.startswith("http://127.0.0.1:")


def test_discovery_lists_the_groups_and_resources_the_controller_uses(
    api: client.ApiClient,
) -> None:
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"argoproj.io", "argosy.io", "coordination.k8s.io", "events.k8s.io"} <= groups
    resources = client.CustomObjectsApi(api).get_api_resources(*ARGO).resources
    assert {r.name for r in resources} >= {"workflows", "workflowtaskresults"}
    assert "v1" in client.CoreApi(api).get_api_versions().versions


def test_a_wrong_or_missing_token_answers_401(server: KubeTestServer, tmp_path: Path) -> None:
    for token in ("not-the-token", None):
        cfg = server.kubeconfig()
        cfg["users"][0]["user"] = {"token": token} if token else {}
        configuration = client.Configuration()
        config.load_kube_config_from_dict(cfg, client_configuration=configuration)
        with client.ApiClient(configuration) as api_client, pytest.raises(ApiException) as caught:
            client.CoreV1Api(api_client).list_namespace()
        assert caught.value.status == 401
        assert answer_of(caught.value)["reason"] == "Unauthorized"


def test_the_authorizer_can_deny_one_verb_on_one_resource_with_403(
    server: KubeTestServer, core: client.CoreV1Api
) -> None:
    seen: list[RequestAttributes] = []

    def no_secret_reads(attrs: RequestAttributes) -> bool:
        seen.append(attrs)
        return not (attrs.resource == "secrets" and attrs.verb == "get")

    server.authorizer = no_secret_reads
    core.create_namespaced_secret(
        "default", client.V1Secret(metadata=client.V1ObjectMeta(name="s3"))
    )
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_secret("s3", "default")
    assert caught.value.status == 403
    assert 'cannot get resource "secrets"' in answer_of(caught.value)["message"]
    assert [(a.verb, a.resource, a.namespace, a.name) for a in seen] == [
        ("create", "secrets", "default", ""),
        ("get", "secrets", "default", "s3"),
    ]


# -- create, get, list -----------------------------------------------------------------------


def test_create_assigns_uid_resource_version_generation_and_the_injected_clock_time(
    clock: ManualClock, core: client.CoreV1Api
) -> None:
    clock.advance(90)
    created = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"k": "v"})
    )
    assert meta(created).creation_timestamp == START + timedelta(seconds=90)
    assert meta(created).uid and version(created) > 0
    fetched = core.read_namespaced_config_map("cfg", "default")
    assert fetched.data == {"k": "v"} and meta(fetched).uid == meta(created).uid


def test_secret_string_data_is_stored_base64_encoded_in_data(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name="s3"), string_data={"accessKey": "AKIA"}),
    )
    secret = core.read_namespaced_secret("s3", "default")
    assert secret.data == {"accessKey": "QUtJQQ=="} and secret.string_data is None
    assert secret.type == "Opaque"


def test_resource_versions_grow_across_all_resources_and_lists_carry_the_latest(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    first = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"))
    )
    second = create_wf(custom, "wf")
    third = core.create_namespaced_secret(
        "default", client.V1Secret(metadata=client.V1ObjectMeta(name="b"))
    )
    versions = [version(first), int(second["metadata"]["resourceVersion"]), version(third)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    listed = core.list_namespaced_config_map("default")
    assert list_meta(listed).resource_version == meta(third).resource_version


def test_creating_a_duplicate_answers_409_already_exists(custom: client.CustomObjectsApi) -> None:
    create_wf(custom, "dup")
    with pytest.raises(ApiException) as caught:
        create_wf(custom, "dup")
    status = answer_of(caught.value)
    assert caught.value.status == 409
    assert (status["kind"], status["reason"]) == ("Status", "AlreadyExists")
    assert status["details"] == {"name": "dup", "group": "argoproj.io", "kind": "workflows"}


def test_generate_name_gives_each_object_its_own_name(custom: client.CustomObjectsApi) -> None:
    body = workflow("", generateName="run-")
    names = {
        json_object(custom.create_namespaced_custom_object(*ARGO, "default", "workflows", body))[
            "metadata"
        ]["name"]
        for _ in range(5)
    }
    assert len(names) == 5 and all(n.startswith("run-") and len(n) == 9 for n in names)


def test_reading_a_missing_object_answers_404(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object(*ARGO, "default", "workflows", "ghost")
    assert caught.value.status == 404
    assert answer_of(caught.value)["reason"] == "NotFound"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=gc", {"a", "b"}),
        ("app==gc,tier=hot", {"a"}),
        ("app!=gc", {"c", "d"}),
        ("tier in (hot, cold)", {"a", "b", "c"}),
        ("tier notin (hot)", {"b", "c", "d"}),
        ("tier", {"a", "b", "c"}),
        ("!tier", {"d"}),
    ],
)
def test_label_selectors_filter_lists(
    custom: client.CustomObjectsApi, selector: str, expected: set[str]
) -> None:
    for name, labels in {
        "a": {"app": "gc", "tier": "hot"},
        "b": {"app": "gc", "tier": "cold"},
        "c": {"app": "ui", "tier": "cold"},
        "d": {},
    }.items():
        create_wf(custom, name, labels=labels)
    listed = json_object(
        custom.list_namespaced_custom_object(*ARGO, "default", "workflows", label_selector=selector)
    )
    assert {i["metadata"]["name"] for i in listed["items"]} == expected


def test_a_malformed_label_selector_answers_400(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as caught:
        custom.list_namespaced_custom_object(
            *ARGO, "default", "workflows", label_selector="tier in hot"
        )
    assert caught.value.status == 400


def test_field_selectors_and_cluster_wide_lists_span_namespaces(
    custom: client.CustomObjectsApi,
) -> None:
    for ns in ("team-a", "team-b"):
        create_wf(custom, "nightly", ns)
        create_wf(custom, f"only-{ns}", ns)
    everywhere = json_object(custom.list_cluster_custom_object(*ARGO, "workflows"))
    assert len(everywhere["items"]) == 4 and everywhere["kind"] == "WorkflowList"
    named = json_object(
        custom.list_cluster_custom_object(
            *ARGO, "workflows", field_selector="metadata.name=nightly"
        )
    )
    assert sorted(i["metadata"]["namespace"] for i in named["items"]) == ["team-a", "team-b"]
    in_b = json_object(
        custom.list_cluster_custom_object(
            *ARGO, "workflows", field_selector="metadata.namespace=team-b,metadata.name!=nightly"
        )
    )
    assert [i["metadata"]["name"] for i in in_b["items"]] == ["only-team-b"]


def test_lists_page_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for index in range(5):
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{index}"))
        )
    first = core.list_namespaced_config_map("default", limit=2)
    second = core.list_namespaced_config_map(
        "default", limit=2, _continue=list_meta(first)._continue
    )
    third = core.list_namespaced_config_map(
        "default", limit=2, _continue=list_meta(second)._continue
    )
    names = [meta(i).name for page in (first, second, third) for i in page.items]
    assert names == [f"cm-{i}" for i in range(5)] and list_meta(third)._continue is None


# -- replace and patch -----------------------------------------------------------------------


def test_replace_with_the_current_version_succeeds_and_with_a_stale_one_answers_409(
    custom: client.CustomObjectsApi,
) -> None:
    original = create_wf(custom, "wf")
    original["spec"]["entrypoint"] = "second"
    updated = json_object(
        custom.replace_namespaced_custom_object(*ARGO, "default", "workflows", "wf", original)
    )
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(
        original["metadata"]["resourceVersion"]
    )
    with pytest.raises(ApiException) as caught:  # `original` still carries the old version
        custom.replace_namespaced_custom_object(*ARGO, "default", "workflows", "wf", original)
    assert caught.value.status == 409
    assert answer_of(caught.value)["reason"] == "Conflict"
    current = json_object(custom.get_namespaced_custom_object(*ARGO, "default", "workflows", "wf"))
    assert current["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]


def test_replacing_a_custom_resource_without_a_resource_version_answers_422(
    custom: client.CustomObjectsApi,
) -> None:
    create_wf(custom, "wf")
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(*ARGO, "default", "workflows", "wf", workflow("wf"))
    assert caught.value.status == 422


def test_a_write_that_changes_nothing_keeps_the_resource_version(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="same"), data={"k": "v"})
    )
    patched = core.patch_namespaced_config_map("same", "default", {"data": {"k": "v"}})
    assert meta(patched).resource_version == meta(created).resource_version


def test_merge_patch_merges_maps_and_null_removes_keys(custom: client.CustomObjectsApi) -> None:
    create_wf(custom, "wf", annotations={"keep": "1", "drop": "2"})
    patched = json_object(
        custom.patch_namespaced_custom_object(
            *ARGO,
            "default",
            "workflows",
            "wf",
            {"metadata": {"annotations": {"drop": None, "new": "3"}}},
        )
    )
    assert patched["metadata"]["annotations"] == {"keep": "1", "new": "3"}
    assert patched["spec"] == {"entrypoint": "main"}


def test_strategic_merge_patch_acts_as_a_merge_patch_on_built_in_resources(
    core: client.CoreV1Api,
) -> None:
    core.create_namespaced_pod(
        "default",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="p", annotations={"a": "1"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main")]),
        ),
    )
    patched = core.patch_namespaced_pod("p", "default", {"metadata": {"annotations": {"b": "2"}}})
    assert meta(patched).annotations == {"a": "1", "b": "2"}


def test_strategic_merge_patch_on_a_custom_resource_answers_415_as_for_real(
    custom: client.CustomObjectsApi,
) -> None:
    create_wf(custom, "wf")
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            *ARGO,
            "default",
            "workflows",
            "wf",
            {"metadata": {"labels": {"a": "b"}}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert caught.value.status == 415


def test_json_patch_applies_operations_in_order(custom: client.CustomObjectsApi) -> None:
    create_wf(custom, "wf", finalizers=["a.io/x", "a.io/y"])
    patched = json_object(
        custom.patch_namespaced_custom_object(
            *ARGO,
            "default",
            "workflows",
            "wf",
            [
                {"op": "test", "path": "/metadata/finalizers/1", "value": "a.io/y"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
                {"op": "add", "path": "/metadata/annotations", "value": {"k~/": "v"}},
                {"op": "copy", "from": "/metadata/annotations/k~0~1", "path": "/spec/copied"},
                {"op": "replace", "path": "/spec/entrypoint", "value": "other"},
            ],
            _content_type="application/json-patch+json",
        )
    )
    assert patched["metadata"]["finalizers"] == ["a.io/x"]
    assert patched["spec"] == {"entrypoint": "other", "copied": "v"}


def test_a_failed_json_patch_test_answers_422_and_writes_nothing(
    custom: client.CustomObjectsApi,
) -> None:
    created = create_wf(custom, "wf", finalizers=["a.io/x"])
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            *ARGO,
            "default",
            "workflows",
            "wf",
            [
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "test", "path": "/spec/entrypoint", "value": "not-main"},
            ],
            _content_type="application/json-patch+json",
        )
    assert caught.value.status == 422
    current = json_object(custom.get_namespaced_custom_object(*ARGO, "default", "workflows", "wf"))
    assert current == created


def test_a_patch_carrying_a_stale_resource_version_answers_409(
    custom: client.CustomObjectsApi,
) -> None:
    created = create_wf(custom, "wf")
    stale = created["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(
        *ARGO, "default", "workflows", "wf", {"metadata": {"labels": {"step": "1"}}}
    )
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            *ARGO,
            "default",
            "workflows",
            "wf",
            {"metadata": {"resourceVersion": stale, "labels": {"step": "2"}}},
        )
    assert caught.value.status == 409
    current = json_object(custom.get_namespaced_custom_object(*ARGO, "default", "workflows", "wf"))
    assert current["metadata"]["labels"] == {"step": "1"}


def test_the_status_subresource_writes_only_status_and_the_main_endpoint_ignores_status(
    custom: client.CustomObjectsApi,
) -> None:
    body = {
        "apiVersion": "argosy.io/v1alpha1",
        "kind": "ArtifactGCPolicy",
        "metadata": {"name": "p"},
        "spec": {"ttl": "1h"},
        "status": {"ignored": True},
    }
    created = json_object(
        custom.create_namespaced_custom_object(*POLICY, "default", "artifactgcpolicies", body)
    )
    assert "status" not in created
    after_status = json_object(
        custom.patch_namespaced_custom_object_status(
            *POLICY,
            "default",
            "artifactgcpolicies",
            "p",
            {"spec": {"ttl": "9h"}, "status": {"swept": 3}},
        )
    )
    assert after_status["status"] == {"swept": 3} and after_status["spec"] == {"ttl": "1h"}
    assert after_status["metadata"]["generation"] == 1
    after_main = json_object(
        custom.patch_namespaced_custom_object(
            *POLICY,
            "default",
            "artifactgcpolicies",
            "p",
            {"spec": {"ttl": "2h"}, "status": {"swept": 99}},
        )
    )
    assert after_main["status"] == {"swept": 3} and after_main["spec"] == {"ttl": "2h"}
    assert after_main["metadata"]["generation"] == 2


# -- delete and finalizers -------------------------------------------------------------------


def test_deleting_an_object_without_finalizers_removes_it_at_once(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gone"))
    )
    status = json_object(core.delete_namespaced_config_map("gone", "default"))
    assert (status["kind"], status["status"]) == ("Status", "Success")
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("gone", "default")
    assert caught.value.status == 404


def test_a_delete_precondition_on_a_stale_resource_version_answers_409(
    core: client.CoreV1Api,
) -> None:
    created = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"))
    )
    core.patch_namespaced_config_map("cm", "default", {"data": {"k": "v"}})
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map(
            "cm",
            "default",
            body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(
                    resource_version=meta(created).resource_version
                )
            ),
        )
    assert caught.value.status == 409
    assert core.read_namespaced_config_map("cm", "default").data == {"k": "v"}


def test_finalizers_hold_a_deleted_object_until_the_last_one_is_removed(
    server: KubeTestServer, clock: ManualClock, custom: client.CustomObjectsApi
) -> None:
    create_wf(custom, "wf", finalizers=["argosy.io/artifact-gc", "other.io/x"])
    live = LiveWatch(server, custom.list_namespaced_custom_object, *ARGO, "default", "workflows")
    assert live.next()["type"] == "ADDED"
    clock.advance(60)
    held = json_object(custom.delete_namespaced_custom_object(*ARGO, "default", "workflows", "wf"))
    assert held["metadata"]["deletionTimestamp"] == "2024-05-01T12:01:00Z"
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0
    event = live.next()
    assert event["type"] == "MODIFIED" and event["raw_object"]["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(
        *ARGO, "default", "workflows", "wf", {"metadata": {"finalizers": ["other.io/x"]}}
    )
    assert live.next()["type"] == "MODIFIED"
    assert custom.get_namespaced_custom_object(*ARGO, "default", "workflows", "wf")
    custom.patch_namespaced_custom_object(
        *ARGO,
        "default",
        "workflows",
        "wf",
        [{"op": "remove", "path": "/metadata/finalizers"}],
        _content_type="application/json-patch+json",
    )
    deleted = live.next()
    assert deleted["type"] == "DELETED" and deleted["raw_object"]["metadata"]["name"] == "wf"
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object(*ARGO, "default", "workflows", "wf")
    assert caught.value.status == 404


def test_adding_a_finalizer_to_an_object_being_deleted_answers_422(
    custom: client.CustomObjectsApi,
) -> None:
    create_wf(custom, "wf", finalizers=["a.io/x"])
    custom.delete_namespaced_custom_object(*ARGO, "default", "workflows", "wf")
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            *ARGO,
            "default",
            "workflows",
            "wf",
            {"metadata": {"finalizers": ["a.io/x", "argosy.io/artifact-gc"]}},
        )
    assert caught.value.status == 422
    assert "no new finalizers" in answer_of(caught.value)["message"]


def test_deleting_a_namespace_deletes_what_it_contains(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team")))
    core.create_namespaced_config_map(
        "team", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"))
    )
    create_wf(custom, "held", "team", finalizers=["argosy.io/artifact-gc"])
    core.delete_namespace("team")
    assert core.list_namespaced_config_map("team").items == []
    [held] = json_object(custom.list_namespaced_custom_object(*ARGO, "team", "workflows"))["items"]
    assert held["metadata"]["deletionTimestamp"]


def test_creating_in_a_missing_namespace_answers_404_when_namespaces_are_required(
    tmp_path: Path,
) -> None:
    with (
        KubeTestServer(require_namespaces=True) as strict,
        api_client_for(strict, tmp_path / "kc") as api_client,
    ):
        core = client.CoreV1Api(api_client)
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_config_map(
                "nowhere", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"))
            )
        assert caught.value.status == 404
        assert core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"))
        )


# -- watch -----------------------------------------------------------------------------------


def test_a_watch_from_a_resource_version_sees_exactly_the_later_events_in_order(
    custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    create_wf(custom, "before")
    mark = json_object(custom.list_namespaced_custom_object(*ARGO, "default", "workflows"))
    create_wf(custom, "one")
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="unrelated"))
    )
    create_wf(custom, "two", "elsewhere")
    custom.patch_namespaced_custom_object(
        *ARGO, "default", "workflows", "one", {"metadata": {"labels": {"x": "y"}}}
    )
    custom.delete_namespaced_custom_object(*ARGO, "default", "workflows", "before")
    assert replay(custom, mark["metadata"]["resourceVersion"]) == [
        ("ADDED", "one"),
        ("MODIFIED", "one"),
        ("DELETED", "before"),
    ]


def test_a_watch_without_a_resource_version_starts_with_the_current_objects(
    server: KubeTestServer, custom: client.CustomObjectsApi
) -> None:
    create_wf(custom, "existing")
    live = LiveWatch(server, custom.list_namespaced_custom_object, *ARGO, "default", "workflows")
    assert live.next()["raw_object"]["metadata"]["name"] == "existing"
    create_wf(custom, "new")
    event = live.next()
    assert (event["type"], event["raw_object"]["metadata"]["name"]) == ("ADDED", "new")


def test_a_label_filtered_watch_reports_objects_leaving_the_selection_as_deleted(
    custom: client.CustomObjectsApi,
) -> None:
    start = create_wf(custom, "wf", labels={"gc": "pending"})["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(
        *ARGO, "default", "workflows", "wf", {"metadata": {"labels": {"gc": "done"}}}
    )
    custom.patch_namespaced_custom_object(
        *ARGO, "default", "workflows", "wf", {"metadata": {"labels": {"gc": "pending"}}}
    )
    assert replay(custom, str(int(start) - 1), label_selector="gc=pending") == [
        ("ADDED", "wf"),
        ("DELETED", "wf"),
        ("ADDED", "wf"),
    ]


def test_a_watch_from_a_compacted_resource_version_raises_410(
    server: KubeTestServer, custom: client.CustomObjectsApi
) -> None:
    old = create_wf(custom, "wf")["metadata"]["resourceVersion"]
    create_wf(custom, "later")
    assert replay(custom, old) == [("ADDED", "later")]  # still retained: no error
    server.compact()
    with pytest.raises(ApiException) as caught:
        replay(custom, old)
    assert caught.value.status == 410 and "Expired" in caught.value.reason


def test_a_watch_older_than_the_retained_history_raises_410(
    clock: ManualClock, tmp_path: Path
) -> None:
    with (
        KubeTestServer(clock=clock, history_limit=3) as small,
        api_client_for(small, tmp_path / "kc") as api_client,
    ):
        custom = client.CustomObjectsApi(api_client)
        first = create_wf(custom, "w0")["metadata"]["resourceVersion"]
        for index in range(1, 4):
            create_wf(custom, f"w{index}")
        # the 3 retained events are exactly those after `first`: still resumable
        assert replay(custom, first) == [("ADDED", "w1"), ("ADDED", "w2"), ("ADDED", "w3")]
        with pytest.raises(ApiException) as caught:
            replay(custom, str(int(first) - 1))
        assert caught.value.status == 410


def test_watch_1_streams_newline_delimited_json_over_plain_http(server: KubeTestServer) -> None:
    request = urllib.request.Request(
        f"{server.url}/api/v1/namespaces?watch=1&timeoutSeconds=5",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        first = json.loads(response.readline())
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Namespace"


def test_a_watch_ends_cleanly_when_timeout_seconds_elapse(custom: client.CustomObjectsApi) -> None:
    began = time.monotonic()
    events = list(
        watch.Watch().stream(
            custom.list_cluster_custom_object,
            *ARGO,
            "workflows",
            timeout_seconds=1,
            _request_timeout=10,
        )
    )
    assert events == [] and time.monotonic() - began > 0.9  # ended by the server, cleanly


def test_close_watches_ends_streams_cleanly_or_drops_the_connection(
    server: KubeTestServer, core: client.CoreV1Api
) -> None:
    clean = LiveWatch(server, core.list_namespaced_config_map, "default")
    assert server.close_watches() == 1
    assert clean.next() == "END"
    dropped = LiveWatch(server, core.list_namespaced_config_map, "default")
    assert server.close_watches(abort=True) == 1
    assert isinstance(dropped.next(), urllib3.exceptions.ProtocolError)


def test_bookmarks_carry_the_current_resource_version(clock: ManualClock, tmp_path: Path) -> None:
    with (
        KubeTestServer(clock=clock, bookmark_interval=0.05) as quick,
        api_client_for(quick, tmp_path / "kc") as api_client,
    ):
        core = client.CoreV1Api(api_client)
        live = LiveWatch(
            quick,
            core.list_namespaced_config_map,
            "default",
            allow_watch_bookmarks=True,
            resource_version=quick.resource_version,
        )
        core.create_namespaced_secret(
            "default", client.V1Secret(metadata=client.V1ObjectMeta(name="elsewhere"))
        )
        event = live.next()
        assert event["type"] == "BOOKMARK"
        assert event["raw_object"]["metadata"]["resourceVersion"] == quick.resource_version


# -- leases, events, sidecar resources -------------------------------------------------------


def test_leases_renew_with_the_current_version_and_a_stale_renewal_answers_409(
    api: client.ApiClient,
) -> None:
    leases = client.CoordinationV1Api(api)
    lease = leases.create_namespaced_lease(
        "default",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="argosy-gc"),
            spec=client.V1LeaseSpec(holder_identity="pod-a", lease_duration_seconds=15),
        ),
    )
    stale_copy = leases.read_namespaced_lease("argosy-gc", "default")
    assert lease.spec is not None and stale_copy.spec is not None
    lease.spec.holder_identity = "pod-b"
    renewed = leases.replace_namespaced_lease("argosy-gc", "default", lease)
    assert renewed.spec is not None and renewed.spec.holder_identity == "pod-b"
    stale_copy.spec.holder_identity = "pod-c"
    with pytest.raises(ApiException) as caught:
        leases.replace_namespaced_lease("argosy-gc", "default", stale_copy)
    assert caught.value.status == 409
    current = leases.read_namespaced_lease("argosy-gc", "default")
    assert current.spec is not None and current.spec.holder_identity == "pod-b"


def test_events_can_be_written_through_both_event_apis(
    api: client.ApiClient, clock: ManualClock
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_event(
        "default",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name="wf."),
            reason="ArtifactsDeleted",
            message="3 deleted",
            type="Normal",
            involved_object=client.V1ObjectReference(kind="Workflow", name="wf"),
        ),
    )
    client.EventsV1Api(api).create_namespaced_event(
        "default",
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(name="wf.1"),
            event_time=clock(),
            reason="ArtifactGCFailed",
            action="Delete",
            type="Warning",
            reporting_controller="argosy.io/gc",
            reporting_instance="pod-a",
        ),
    )
    listed = core.list_namespaced_event("default", field_selector="involvedObject.name=wf")
    assert [e.reason for e in listed.items] == ["ArtifactsDeleted"]
    newer = client.EventsV1Api(api).list_namespaced_event("default")
    assert [e.reason for e in newer.items] == ["ArtifactGCFailed"]


def test_the_sidecar_can_create_task_results_and_patch_its_pod(
    core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    core.create_namespaced_pod(
        "default",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="wf-step"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main")]),
        ),
    )
    result = json_object(
        custom.create_namespaced_custom_object(
            *ARGO,
            "default",
            "workflowtaskresults",
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "WorkflowTaskResult",
                "metadata": {"name": "wf-step", "labels": {"workflows.argoproj.io/workflow": "wf"}},
                "outputs": {"artifacts": [{"name": "out", "s3": {"key": "a/b"}}]},
            },
        )
    )
    assert result["outputs"]["artifacts"][0]["name"] == "out"
    pod = core.patch_namespaced_pod(
        "wf-step", "default", {"metadata": {"annotations": {"workflows.argoproj.io/outputs": "{}"}}}
    )
    assert meta(pod).annotations == {"workflows.argoproj.io/outputs": "{}"}


# -- test hooks ------------------------------------------------------------------------------


def test_injected_faults_answer_their_status_the_given_number_of_times(
    server: KubeTestServer, core: client.CoreV1Api
) -> None:
    fault = server.inject_fault("GET", r"/configmaps$", 500, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            core.list_namespaced_config_map("default")
        assert caught.value.status == 500
        assert answer_of(caught.value)["reason"] == "InternalError"
    assert core.list_namespaced_config_map("default").items == []
    assert fault.hits == 2
    server.inject_fault("*", r"/secrets", 403, times=None)
    for _ in range(3):
        with pytest.raises(ApiException) as caught:
            core.list_namespaced_secret("default")
        assert caught.value.status == 403
    server.clear_faults()
    assert core.list_namespaced_secret("default").items == []


def test_a_503_with_retry_after_is_retried_by_the_client_itself(
    server: KubeTestServer, core: client.CoreV1Api
) -> None:
    # urllib3's default Retry honours Retry-After on 413/429/503, so callers never see these
    fault = server.inject_fault("GET", r"/configmaps$", 503, times=2, retry_after=0)
    assert core.list_namespaced_config_map("default").items == []
    assert fault.hits == 2
    assert [r.status for r in server.requests if r.path.endswith("/configmaps")] == [503, 503, 200]


def test_the_request_log_records_what_the_client_sent(
    server: KubeTestServer, custom: client.CustomObjectsApi
) -> None:
    create_wf(custom, "wf")
    server.clear_requests()
    custom.patch_namespaced_custom_object(
        *ARGO, "default", "workflows", "wf", {"metadata": {"finalizers": ["argosy.io/gc"]}}
    )
    [record] = server.requests
    assert (record.method, record.path, record.status) == (
        "PATCH",
        "/apis/argoproj.io/v1alpha1/namespaces/default/workflows/wf",
        200,
    )
    assert record.content_type == "application/merge-patch+json"
    assert record.body == {"metadata": {"finalizers": ["argosy.io/gc"]}}


def test_objects_can_be_seeded_and_inspected_from_python_and_are_seen_over_http(
    server: KubeTestServer, custom: client.CustomObjectsApi
) -> None:
    server.create_object(workflow("seeded", namespace="argo"))
    fetched = json_object(custom.get_namespaced_custom_object(*ARGO, "argo", "workflows", "seeded"))
    assert fetched["metadata"]["uid"]
    assert server.get_object("argoproj.io/v1alpha1", "workflows", "seeded", "argo") == fetched
    assert server.get_object("argoproj.io/v1alpha1", "workflows", "missing", "argo") is None


def test_registered_and_unknown_custom_resources_are_both_served(
    server: KubeTestServer, custom: client.CustomObjectsApi
) -> None:
    server.register_resource(
        ResourceSpec("example.io", "v1", "gadgets", "Gadget", namespaced=False)
    )
    made = json_object(
        custom.create_cluster_custom_object(
            "example.io", "v1", "gadgets", {"metadata": {"name": "g"}}
        )
    )
    assert (made["kind"], "namespace" in made["metadata"]) == ("Gadget", False)
    widget = json_object(
        custom.create_namespaced_custom_object(
            "example.io", "v1", "default", "widgets", {"metadata": {"name": "w"}}
        )
    )
    assert widget["kind"] == "Widget"


def test_the_command_module_exports_the_package_names() -> None:
    from argosy.testing import kube, kube_api
    from argosy.testing.kube import api as api_module

    assert kube_api.KubeTestServer is kube.KubeTestServer is KubeTestServer
    assert kube.ManualClock is ManualClock
    assert all(getattr(kube_api, name) is getattr(api_module, name) for name in kube_api.__all__)


def test_the_command_line_serves_until_interrupted(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy.testing.kube_api",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not (lines[-1] == "" or lines[-1].startswith("Press Ctrl-C")):
            lines.append(process.stdout.readline())
        assert "listening on http://127.0.0.1:" in lines[0]
        assert lines[-1].startswith("Press Ctrl-C")
        with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
            names = [
                meta(n).name
                for n in client.CoreV1Api(api_client).list_namespace(_request_timeout=5).items
            ]
        assert "default" in names
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
