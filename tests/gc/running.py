"""Helpers for tests of the long-running controller: run it on a thread, wait for a
condition with a deadline (never a bare sleep), and record who deleted what, when."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config

from argosy.argo.kube import Kube
from argosy.artifacts.protocol import DeleteFailure, Driver
from argosy.gc.controller import Controller
from argosy.testing.kube.api import KubeTestServer


def eventually(
    condition: Callable[[], Any], *, timeout: float = 10.0, what: str = "the condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def running(controller: Controller) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(controller.ready, what="the informers to sync")
        yield stop
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the controller did not stop"


@dataclass
class DeleteLog:
    """Every batch delete request: (who, started, ended, keys)."""

    calls: list[tuple[str, float, float, tuple[str, ...]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decorator(self, who: str) -> Callable[[Driver], Driver]:
        return lambda driver: RecordingDriver(driver, who, self)

    def by(self, who: str) -> list[str]:
        with self.lock:
            return sorted(k for w, _, _, keys in self.calls if w == who for k in keys)

    def overlapping(self) -> list[tuple[str, str]]:
        """Pairs of calls by different controllers whose time spans overlap."""
        with self.lock:
            calls = list(self.calls)
        return [
            (a[0], b[0])
            for i, a in enumerate(calls)
            for b in calls[i + 1 :]
            if a[0] != b[0] and a[1] < b[2] and b[1] < a[2]
        ]


class RecordingDriver:
    def __init__(self, inner: Driver, who: str, log: DeleteLog) -> None:
        self._inner, self._who, self._log = inner, who, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def delete(self, keys: Sequence[str]) -> list[DeleteFailure]:
        started = time.monotonic()
        try:
            return self._inner.delete(keys)
        finally:
            with self._log.lock:
                self._log.calls.append((self._who, started, time.monotonic(), tuple(keys)))


def kube_as(server: KubeTestServer, token: str, user: str) -> Kube:
    """A client of the test API that authenticates as `user` (for authorizer rules)."""
    server.add_token(token, user)
    kubeconfig = server.kubeconfig()
    kubeconfig["users"][0]["user"] = {"token": token}
    configuration = client.Configuration()
    config.load_kube_config_from_dict(kubeconfig, client_configuration=configuration)
    return Kube.from_configuration(configuration, request_timeout=10)
