"""Metrics in Prometheus' text format and the probes, over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

from argosy.gc.health import HealthServer
from argosy.gc.metrics import Metrics


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_metrics_and_probes_are_served() -> None:
    metrics = Metrics()
    metrics.inc("argosy_gc_objects_deleted_total", 1000)
    metrics.inc("argosy_gc_bytes_deleted_total", 5 * 2**20)
    metrics.inc("argosy_gc_failures_total", cause="AccessDenied")
    metrics.observe_lag(3.0)
    metrics.observe_lag(7200.0)
    metrics.gauges["argosy_gc_queue_depth"] = lambda: 42
    ready = [False]
    server = HealthServer(
        metrics, alive=lambda: True, ready=lambda: ready[0], host="127.0.0.1"
    ).start()
    try:
        status, text = fetch(server.port, "/metrics")
        assert status == 200
        lines = set(text.splitlines())
        assert {
            "argosy_gc_objects_deleted_total 1000",
            "argosy_gc_bytes_deleted_total 5242880",
            'argosy_gc_failures_total{cause="AccessDenied"} 1',
            "argosy_gc_queue_depth 42",
            'argosy_gc_lag_seconds_bucket{le="5"} 1',
            'argosy_gc_lag_seconds_bucket{le="+Inf"} 2',
            "argosy_gc_lag_seconds_count 2",
            "# TYPE argosy_gc_lag_seconds histogram",
        } <= lines
        assert fetch(server.port, "/healthz") == (200, "ok\n")
        assert fetch(server.port, "/readyz")[0] == 503
        ready[0] = True
        assert fetch(server.port, "/readyz") == (200, "ok\n")
    finally:
        server.stop()
