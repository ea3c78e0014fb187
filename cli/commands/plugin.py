"""`argosy plugin SOCKET`: Argo's artifact driver plugin (argosy.plugin), as Argo starts it.

Secrets a plugin location names are read from files in Argo's layout where they are
mounted (`--secrets-dir`, default $ARGOSY_SECRETS_DIR or /argo/secret), else through the
Kubernetes API in the pod's namespace (its service account; `--kubeconfig` elsewhere),
each Secret at most once per 30 s. A location that names none (or says `useSDKCreds`)
never contacts the API.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Mapping

from argosy.argo.secrets import (
    DEFAULT_SECRETS_DIR,
    ApiSecrets,
    FileSecrets,
    FirstFound,
    SecretSource,
    cached,
)
from argosy.artifacts.connect import default_local_root
from argosy.artifacts.settings import MiB, TransferSettings, direct_io_asked


class _ApiOnFirstUse:
    """The Kubernetes API, connected to the first time a Secret is read through it."""

    def __init__(self, kubeconfig: str | None, env: Mapping[str, str]) -> None:
        self._kubeconfig = kubeconfig
        self._env = env
        self._source: ApiSecrets | None = None
        self._lock = threading.Lock()

    def _api(self) -> ApiSecrets:
        with self._lock:
            if self._source is None:
                from argosy.argo.kube import Kube

                kube = Kube.connect(self._kubeconfig)
                namespace = self._env.get("POD_NAMESPACE") or kube.namespace
                self._source = ApiSecrets(
                    cached(lambda name: kube.secret_data(namespace, name)), namespace=namespace
                )
            return self._source

    def value(self, name: str, key: str, *, field: str) -> str:
        return self._api().value(name, key, field=field)

    def file(self, name: str, key: str, *, field: str) -> str:
        return self._api().file(name, key, field=field)


def run(args: argparse.Namespace) -> int:
    from argosy.plugin.server import PluginSettings, serve
    from argosy.plugin.service import Places

    env = os.environ
    folder = args.secrets_dir or env.get("ARGOSY_SECRETS_DIR", DEFAULT_SECRETS_DIR)
    secrets: SecretSource = FirstFound(FileSecrets(folder), _ApiOnFirstUse(args.kubeconfig, env))
    # each call moves one artifact: a stream holds (stream_parts + 1) parts of 8 MiB
    # (40 MiB), a file the engine's default concurrency x 1 MiB buffers
    base = TransferSettings(stream_part_size=8 * MiB, direct_io=direct_io_asked(env))
    places = Places(lambda: secrets, local_root=default_local_root(env), base=base)
    return serve(args.socket, places, PluginSettings(grace=args.grace, workers=args.workers))
