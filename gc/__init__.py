"""The artifact GC controller: deletes what Argo Workflows left in object storage, when a
workflow completes, succeeds, fails, is deleted or expires, by namespace policy, and never
wedges a workflow's deletion behind a broken bucket.

Layers, each a small module (what a Workflow says about its artifacts, and where each
artifact lives, is read by the Argo layer: `argosy.argo.workflow`, `argosy.argo.location`):

- model: `policy` + `duration` + `selector` (the namespace's ArtifactGCPolicy), `plan`
  (pure: what is due, when).
- storage: `storage` (drivers from Argo location dicts, secrets read through the
  Kubernetes API), `deleter` (batch deletes, bounded per bucket), `outcome` (the bounded
  record written on the workflow), `sweep`.
- Kubernetes, through `argosy.argo.kube` (the only module importing `kubernetes`):
  `lookups` (cached reads), `events`, `leader` (a Lease), `informer` (list + watch),
  `workqueue` (fair, bounded).
- running: `reconciler` (one workflow), `controller` (passes and the watch loop),
  `metrics` + `health`, `settings`. The `argosy gc` command is `argosy.commands.gc`.
"""
