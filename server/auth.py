"""Who the caller is, as Argo Server's gatekeeper decides it.

The token comes from the `Authorization` header, else the `authorization` cookie (the
one Argo's UI sets, so links opened in a browser carry it); `Bearer ` is optional and a
cookie's value may be URL-encoded. Modes:

    client  (default) every Kubernetes call made for the request carries the caller's
            token: Kubernetes RBAC decides, the server's own credentials are never used
            for the caller's reads. No token: 401.
    server  the caller's token is reviewed (TokenReview: 401 when not authenticated)
            and checked for `get workflows` in the namespace (SubjectAccessReview: 403
            when not allowed); the server's own credentials then read what is needed.
    none    no check at all, the server's own credentials; refused off loopback.

The result is the token to hand `Kube` per call (None: the server's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from argosy.argo.kube import Kube
from argosy.argo.resources import (
    SELF_SUBJECT_ACCESS_REVIEWS,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
)
from argosy.artifacts.errors import AccessDenied
from argosy.server.settings import AuthMode


class Unauthenticated(AccessDenied):
    """No token, or one Kubernetes does not accept: 401."""


class Forbidden(AccessDenied):
    """A token that may not read the workflow: 403."""


@dataclass(frozen=True)
class Caller:
    token: str | None  # what Kubernetes calls carry (None: the server's own credentials)
    user: str = ""  # the reviewed user name, in server mode


def bearer(header: str | None, cookie: str | None) -> str | None:
    """The token of an `Authorization` header, else of the `authorization` cookie."""
    raw = header or (unquote(cookie) if cookie else "")
    raw = raw.strip()
    if raw[:7].lower() == "bearer ":
        raw = raw[7:].strip()
    return raw or None


def authenticate(
    kube: Kube,
    mode: AuthMode,
    token: str | None,
    namespace: str,
    *,
    verb: str = "get",
    resource: str = "workflows",
) -> Caller:
    """The caller for a request on `namespace` (blocking: run it in a thread)."""
    if mode == "none":
        return Caller(None)
    if not token:
        raise Unauthenticated("no bearer token: send Authorization: Bearer TOKEN")
    if mode == "client":
        return Caller(token)
    review = kube.create(
        TOKEN_REVIEWS,
        None,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    status = review.get("status") or {}
    if not status.get("authenticated"):
        raise Unauthenticated("the bearer token is not accepted by Kubernetes")
    user = str((status.get("user") or {}).get("username") or "")
    access = kube.create(
        SUBJECT_ACCESS_REVIEWS,
        None,
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": list((status.get("user") or {}).get("groups") or []),
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": "argoproj.io",
                    "resource": resource,
                },
            },
        },
    )
    if not (access.get("status") or {}).get("allowed"):
        raise Forbidden(f'user "{user}" may not {verb} {resource} in namespace {namespace}')
    return Caller(None, user)


def may(kube: Kube, caller: Caller, verb: str, resource: str, namespace: str) -> bool:
    """Whether the caller may `verb` `resource` (argoproj.io) in `namespace`, as Argo's
    `auth.CanI` asks it: a SelfSubjectAccessReview with the caller's own token (client
    mode), a SubjectAccessReview of the reviewed user (server mode); anyone in `none`
    mode. Blocking: run it in a thread."""
    attributes = {
        "namespace": namespace,
        "verb": verb,
        "group": "argoproj.io",
        "resource": resource,
    }
    if caller.token is not None:
        review = kube.create(
            SELF_SUBJECT_ACCESS_REVIEWS,
            None,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            },
            token=caller.token,
        )
    elif caller.user:
        review = kube.create(
            SUBJECT_ACCESS_REVIEWS,
            None,
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": caller.user, "resourceAttributes": attributes},
            },
        )
    else:
        return True
    return bool((review.get("status") or {}).get("allowed"))
