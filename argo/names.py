"""Argo's names, written once: the kinds of locations, archives and repositories, the GC
strategies, and the well-known objects, labels and annotations Argo and Argosy share.

Argo's own names come from its v1alpha1 types; `local` (a folder repository) and the
`zstd` archive are Argosy's additions, accepted where Argo's names are.
"""

from __future__ import annotations

from enum import StrEnum

# Every location an Argo artifact can have (exactly one), plus Argosy's `local`.
LOCATION_KINDS = (
    "s3",
    "oss",
    "gcs",
    "azure",
    "hdfs",
    "http",
    "artifactory",
    "git",
    "raw",
    "plugin",
    "local",
)
# The fields of each location kind Argosy reads (Argo's v1alpha1 types; `local` is ours).
LOCATION_FIELDS: dict[str, frozenset[str]] = {
    "s3": frozenset(
        {
            "bucket",
            "key",
            "endpoint",
            "region",
            "insecure",
            "accessKeySecret",
            "secretKeySecret",
            "sessionTokenSecret",
            "roleARN",
            "useSDKCreds",
            "caSecret",
            "createBucketIfNotPresent",
            "encryptionOptions",
            "addressingStyle",
            "keyFormat",
        }
    ),
    "oss": frozenset(
        {
            "bucket",
            "key",
            "endpoint",
            "accessKeySecret",
            "secretKeySecret",
            "securityToken",
            "useSDKCreds",
            "createBucketIfNotPresent",
            "lifecycleRule",
            "keyFormat",
        }
    ),
    "local": frozenset({"root", "bucket", "key", "keyFormat"}),
    "http": frozenset({"url", "headers", "auth"}),
    "raw": frozenset({"data"}),
    "plugin": frozenset({"name", "configuration", "key", "keyFormat", "connectionTimeoutSeconds"}),
}

# Buckets of keys that Argosy reads, writes and deletes itself.
STORAGE_KINDS = ("s3", "oss", "local")
# What `init` can fetch: storage, plus Argo's http and raw inputs.
FETCHABLE_KINDS = (*STORAGE_KINDS, "http", "raw")
# What an artifact repository (an `artifact-repositories` entry) can be.
REPOSITORY_KINDS = ("s3", "oss", "gcs", "azure", "hdfs", "artifactory", "plugin", "local")
# Kinds whose key-only form (`s3: {key: ...}`) takes its bucket from the repository.
BUCKET_KINDS = ("s3", "oss", "gcs", "local")
# `archive:` of an artifact: Argo's tar (gzip), none and zip; Argosy's zstd.
ARCHIVE_KINDS = ("tar", "none", "zip", "zstd")


class Strategy(StrEnum):
    """`artifactGC.strategy`: when an artifact is deleted (Argo's four, and Never)."""

    ON_COMPLETION = "OnWorkflowCompletion"
    ON_SUCCESS = "OnWorkflowSuccess"
    ON_FAILURE = "OnWorkflowFailure"
    ON_DELETION = "OnWorkflowDeletion"
    NEVER = "Never"


STRATEGIES = tuple(s.value for s in Strategy)

# the name Argo knows Argosy's artifact driver plugin by (`plugin: {name: argosy, ...}`)
PLUGIN_NAME = "argosy"

REPOSITORIES_CONFIGMAP = "artifact-repositories"
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
DEFAULT_KEY_FORMAT = "{{workflow.name}}/{{pod.name}}"
# the keys only a repository has, never an artifact's location
REPOSITORY_ONLY_FIELDS = ("keyFormat", "keyPrefix")

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
REPORT_COMPLETED_LABEL = "workflows.argoproj.io/report-outputs-completed"
ARGO_GC_FINALIZER = "workflows.argoproj.io/artifact-gc"
COMPLETED_PHASES = ("Succeeded", "Failed", "Error")
