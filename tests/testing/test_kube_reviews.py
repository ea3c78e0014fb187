"""TokenReview and SubjectAccessReview on the Kubernetes test API, driven by the official
client, and the command's `--user` / `--grant` flags: who a token is, what a user may do,
and the negative answers (an unknown token is not authenticated, a grant for another
namespace or verb does not allow)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from argosy.testing.kube.api import KubeTestServer
from argosy.testing.kube.reviews import Grant


@pytest.fixture
def server() -> Iterator[KubeTestServer]:
    with KubeTestServer(namespaces=("default", "team", "other")) as running:
        running.add_token("alice-token", "alice")
        running.add_token("bob-token", "bob")
        running.grant("alice", "team", ["get", "list"], ["workflows.argoproj.io", "configmaps"])
        yield running


@pytest.fixture
def api(server: KubeTestServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    path = server.write_kubeconfig(tmp_path / "kubeconfig")
    with config.new_client_from_config(config_file=str(path)) as api_client:
        yield api_client


def token_review(api: client.ApiClient, token: str) -> Any:
    body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    return client.AuthenticationV1Api(api).create_token_review(body).status


def may(api: client.ApiClient, user: str, verb: str, resource: str, namespace: str) -> bool:
    body = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, group="argoproj.io", resource=resource, namespace=namespace
            ),
        )
    )
    status = client.AuthorizationV1Api(api).create_subject_access_review(body).status
    assert status is not None
    return bool(status.allowed)


def test_a_token_review_names_the_user_of_a_known_token(api: client.ApiClient) -> None:
    status = token_review(api, "alice-token")
    assert status.authenticated is True
    assert status.user.username == "alice"
    assert "system:authenticated" in status.user.groups


def test_a_token_review_of_an_unknown_token_is_not_authenticated(api: client.ApiClient) -> None:
    status = token_review(api, "made-up-token")
    assert not status.authenticated
    assert status.user is None
    assert status.error


def test_an_access_review_allows_what_was_granted_and_nothing_else(
    api: client.ApiClient,
) -> None:
    assert may(api, "alice", "get", "workflows", "team")
    assert may(api, "alice", "list", "workflows", "team")
    assert not may(api, "alice", "get", "workflows", "other")  # another namespace
    assert not may(api, "alice", "delete", "workflows", "team")  # another verb
    assert not may(api, "alice", "get", "workflowtemplates", "team")  # another resource
    assert not may(api, "bob", "get", "workflows", "team")  # granted nothing
    # the kubeconfig's own user keeps every right
    assert may(api, "argosy-test", "delete", "workflows", "other")


def test_a_self_review_answers_for_the_caller_whatever_user_the_spec_names(
    server: KubeTestServer, tmp_path: Path
) -> None:
    def ask(token: str, verb: str, namespace: str, user: str | None = None) -> bool:
        spec: dict[str, Any] = {
            "resourceAttributes": {
                "verb": verb,
                "group": "argoproj.io",
                "resource": "workflows",
                "namespace": namespace,
            }
        }
        if user:
            spec["user"] = user
        request = urllib.request.Request(
            server.url + "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            data=json.dumps({"kind": "SelfSubjectAccessReview", "spec": spec}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
            return bool(json.load(answer)["status"]["allowed"])

    assert ask("alice-token", "get", "team")  # alice needs no right to ask about herself
    assert not ask("alice-token", "create", "team")
    assert not ask("alice-token", "get", "other")
    assert not ask("bob-token", "get", "team", user="alice")  # bob cannot ask as alice


def test_reviews_are_answered_never_stored(server: KubeTestServer, api: client.ApiClient) -> None:
    token_review(api, "alice-token")
    may(api, "alice", "get", "workflows", "team")
    request = urllib.request.Request(
        server.url + "/apis/authentication.k8s.io/v1/tokenreviews",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 405


def _post_review(server: KubeTestServer, token: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        server.url + "/apis/authentication.k8s.io/v1/tokenreviews",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_a_review_without_its_token_answers_400(server: KubeTestServer) -> None:
    assert server.token
    assert _post_review(server, server.token, {"kind": "TokenReview", "spec": {}}) == 400
    assert _post_review(server, server.token, {"kind": "Pod", "spec": {"token": "x"}}) == 400
    ok = {"kind": "TokenReview", "spec": {"token": "alice-token"}}
    assert _post_review(server, server.token, ok) == 201


def test_a_user_without_the_create_right_may_not_ask_for_reviews(server: KubeTestServer) -> None:
    body = {"kind": "TokenReview", "spec": {"token": "bob-token"}}
    assert _post_review(server, "alice-token", body) == 403


def test_a_grant_parses_from_its_flag_form_and_rejects_a_malformed_one() -> None:
    grant = Grant.parse("reader:team:get,list:workflows,configmaps")
    assert grant.user == "reader" and grant.namespace == "team"
    assert grant.verbs == {"get", "list"} and grant.resources == {"workflows", "configmaps"}
    for bad in ("reader:team:get", "reader::get:workflows", "a:b:c:d:e"):
        with pytest.raises(ValueError, match="NAME:NAMESPACE:VERBS:RESOURCES"):
            Grant.parse(bad)


def _get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_command_takes_users_and_grants(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy.testing.kube_api",
            "--port",
            "0",
            "--user",
            "carol-token=carol",
            "--grant",
            "carol:team:get,list:workflows",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in first
        url = first.split("listening on ", 1)[1].split()[0].rstrip("/")
        workflows = "/apis/argoproj.io/v1alpha1/namespaces/{}/workflows"
        assert _get(url + workflows.format("team"), "carol-token") == 200
        assert _get(url + workflows.format("default"), "carol-token") == 403
        assert _get(url + "/api/v1/namespaces/team/secrets", "carol-token") == 403
        assert _get(url + workflows.format("team"), "dave-token") == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize(
    "flag",
    [["--user", "no-equals-sign"], ["--user", "=nobody"], ["--grant", "carol:team:get"]],
)
def test_a_malformed_user_or_grant_flag_is_a_one_line_error(flag: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "argosy.testing.kube_api", "--port", "0", *flag],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert ("--user is TOKEN=NAME" in done.stderr) or ("NAME:NAMESPACE" in done.stderr)
