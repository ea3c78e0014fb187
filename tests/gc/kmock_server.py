"""kmock (PyPI, by the author of kopf) run on its own thread, so the blocking official
client can talk to it, as an independent fake of the Kubernetes API. Its known gaps
(TESTBED.md): no PUT (so no Lease), no resourceVersions or uids, no label selectors, a
watch that ignores timeoutSeconds; the scenarios run here are one-pass ones."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import kmock
from kubernetes import client

RESOURCES = (
    "argoproj.io/v1alpha1/workflows",
    "argosy.io/v1alpha1/artifactgcpolicies",
    "v1/configmaps",
    "v1/secrets",
    "v1/events",
)


class KmockServer:
    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kmock")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.emulator: Any = None
        self.url = ""

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            for resource in RESOURCES:
                emulator.resources[resource] = kmock.ResourceInfo()
            self.emulator, self.url = emulator, str(server.url)
            self._ready.set()
            await self._stop.wait()

    def start(self) -> KmockServer:
        self._thread.start()
        assert self._ready.wait(10), "kmock did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def configuration(self) -> Any:
        configuration = client.Configuration()
        configuration.host = self.url
        return configuration

    # -- objects, written straight into kmock's store ----------------------------------
    def put(self, resource: str, namespace: str, name: str, obj: dict[str, Any]) -> None:
        body = {
            **obj,
            "metadata": {**obj.get("metadata", {}), "name": name, "namespace": namespace},
        }
        self.emulator.objects[resource, namespace, name] = body

    def secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.put(
            "v1/secrets",
            namespace,
            name,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            },
        )

    def methods(self) -> list[str]:
        # kmock keeps every request it served; its public DSL filters them, a list suffices
        return [
            str(r.method.value if hasattr(r.method, "value") else r.method).upper()
            for r in self.emulator._requests
        ]
