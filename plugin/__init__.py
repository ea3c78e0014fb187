"""Argo's artifact driver plugin, served by Argosy (`argosy plugin SOCKET`).

Argo Workflows v4 hands every artifact whose location is `plugin: {name: argosy, ...}` to
a plugin: an image it starts beside the workflow's containers (and its GC pods, and
argo-server), serving Argo's `ArtifactService` over gRPC on a unix socket. This package is
that service on Argosy's engine: `service` (the calls), `server` (the socket, signals,
grace), and the modules generated from `proto/artifact.proto` (`scripts/gen-proto`).
"""
