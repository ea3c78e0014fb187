"""Argo's model, written once: what an Argo user writes and what Argo's controller records.

Between the storage core (`argosy.artifacts`, which knows buckets, keys and drivers and
nothing of Argo) and the components that serve Argo users (the sidecar, the GC, the
commands, the plugin, the server): location and archive kinds, GC strategies and the
well-known names (`names`), repository entries and artifact locations with their secret
references (`repository`, `secrets`, `location`), the key rules (`keys`), the template
and workflow readers (`template`, `workflow`), `argosy lint` (`lint`), and the one
Kubernetes client wrapper (`kube`).
"""
