"""TokenReview, SubjectAccessReview and a grant table: the test API's users and their rights.

A server that authenticates its callers with their own bearer tokens (Argo Server's
`server` mode, `argosy serve --auth server`) asks the API server two things: who is this
token (`TokenReview`), and may that user do this (`SubjectAccessReview`); a client asks
what it may do itself (`SelfSubjectAccessReview`, any authenticated user may). Both are answered
here from the same table of tokens and the same authorizer the API's own requests are
checked against, as registered endpoints: POST only, answered and never stored, as for
real.

`Grants` is a small RBAC: `user` may `verbs` on `resources` in `namespace` ("*" for any
namespace, verb or resource; a resource is its plural, optionally `plural.group`). The
kubeconfig's own user keeps every right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from argosy.testing.kube.model import JsonDict, KubeError

TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SELF_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
REVIEW_PATHS = (TOKEN_REVIEW_PATH, ACCESS_REVIEW_PATH, SELF_REVIEW_PATH)


@dataclass(frozen=True)
class Grant:
    user: str
    namespace: str  # "*" any
    verbs: frozenset[str]  # "*" any
    resources: frozenset[str]  # plural or plural.group; "*" any

    @classmethod
    def parse(cls, text: str) -> Grant:
        """`NAME:NAMESPACE:VERBS:RESOURCES`, lists comma-separated
        (`reader:team:get,list:workflows,configmaps`)."""
        parts = text.split(":")
        if len(parts) != 4 or not all(parts):
            raise ValueError(f"a grant is NAME:NAMESPACE:VERBS:RESOURCES, not {text!r}")
        user, namespace, verbs, resources = parts
        return cls(
            user,
            namespace,
            frozenset(v.strip() for v in verbs.split(",") if v.strip()),
            frozenset(r.strip() for r in resources.split(",") if r.strip()),
        )

    def allows(self, user: str, verb: str, group: str, resource: str, namespace: str) -> bool:
        if user != self.user or self.namespace not in ("*", namespace):
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        named = {resource, f"{resource}.{group}" if group else resource}
        return "*" in self.resources or bool(named & self.resources)


@dataclass
class Grants:
    """An authorizer from a table of grants; `admins` may do everything."""

    admins: set[str] = field(default_factory=set)
    grants: list[Grant] = field(default_factory=list)

    def add(self, grant: Grant) -> None:
        self.grants.append(grant)

    def allows(self, user: str, verb: str, group: str, resource: str, namespace: str) -> bool:
        if user in self.admins:
            return True
        return any(g.allows(user, verb, group, resource, namespace) for g in self.grants)


def _spec(body: Any, kind: str) -> JsonDict:
    if not isinstance(body, dict) or body.get("kind") not in (None, kind):
        raise KubeError(400, f"the request body must be a {kind}")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise KubeError(400, f"a {kind} needs a spec")
    return spec


def token_review(body: Any, users: dict[str, str]) -> JsonDict:
    """`users` maps each accepted token to its user name."""
    token = _spec(body, "TokenReview").get("token")
    if not isinstance(token, str) or not token:
        raise KubeError(400, "spec.token is required")
    user = users.get(token)
    status: JsonDict = {"authenticated": user is not None}
    if user is not None:
        status["user"] = {"username": user, "groups": ["system:authenticated"]}
    else:
        status["error"] = "invalid bearer token"
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "metadata": {},
        "spec": {"token": token},
        "status": status,
    }


def access_review(body: Any, allows: Any, *, caller: str | None = None) -> JsonDict:
    """`allows(user, verb, group, resource, subresource, namespace, name) -> bool`; with
    `caller`, a SelfSubjectAccessReview: the user asked about is the caller."""
    kind = "SubjectAccessReview" if caller is None else "SelfSubjectAccessReview"
    spec = _spec(body, kind)
    user = spec.get("user") if caller is None else caller
    attrs = spec.get("resourceAttributes")
    if not isinstance(user, str) or not user:
        raise KubeError(400, "spec.user is required")
    if not isinstance(attrs, dict) or not attrs.get("verb") or not attrs.get("resource"):
        raise KubeError(400, "spec.resourceAttributes needs verb and resource")
    allowed = bool(
        allows(
            user,
            str(attrs.get("verb")),
            str(attrs.get("group") or ""),
            str(attrs.get("resource")),
            str(attrs.get("subresource") or ""),
            str(attrs.get("namespace") or ""),
            str(attrs.get("name") or ""),
        )
    )
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {},
        "spec": spec,
        "status": {"allowed": allowed},
    }
