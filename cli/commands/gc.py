"""`argosy gc`: the controller as a command (kubeconfig or in-cluster).

This module only parses arguments and prints; it imports the controller (and with it the
`kubernetes` client) when the command runs, so `argosy --help` stays fast. Exit codes:
0 ok; 1 a deletion (or the pass) failed; 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any

log = logging.getLogger("argosy.gc")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig to use (default: in a pod its service account, else "
        "KUBECONFIG or ~/.kube/config)",
    )
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; default: all)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="one reconcile pass, then exit (non-zero if any deletion failed)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing anywhere (no delete, finalizer, annotation, Event, "
        "Lease); print the plan",
    )
    p.add_argument(
        "--output",
        choices=["text", "json"],
        default="text",
        help="plan and results as text or JSON lines",
    )
    p.add_argument(
        "--default-strategy", default="Never", help="the cluster default strategy (default: Never)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=16,
        metavar="N",
        help="workflows reconciled at once (default 16)",
    )
    p.add_argument(
        "--finalizer-attempts",
        type=int,
        default=10,
        metavar="N",
        help="failed deletion passes before the finalizer is removed anyway",
    )
    p.add_argument(
        "--finalizer-deadline",
        default="1h",
        metavar="DURATION",
        help="time after deletion before the finalizer is removed anyway",
    )
    p.add_argument(
        "--resync",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how often every known workflow is reconciled again (default: 300)",
    )
    p.add_argument(
        "--lease-namespace",
        default="argosy-system",
        metavar="NAMESPACE",
        help="namespace of the leader-election Lease (default: argosy-system)",
    )
    p.add_argument(
        "--lease-name",
        default="argosy-gc",
        metavar="NAME",
        help="name of the Lease (default: argosy-gc)",
    )

    p.add_argument(
        "--lease-timeout",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="with --once: how long to wait for the Lease",
    )
    p.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long a Lease not renewed keeps others out (default 15; the holder renews "
        "every 2/15 of it and stops deleting after 2/3 of it without renewing)",
    )
    p.add_argument(
        "--no-leader-election",
        action="store_true",
        help="run without the Lease (only when a single replica can run)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="serve /metrics, /healthz and /readyz on this port (0: off)",
    )
    p.add_argument(
        "--default-repository",
        metavar="FILE",
        help="the Argo controller's default repository entry (YAML), for workflows that used it",
    )
    p.add_argument("--local-root", metavar="DIR", help="root of local: repositories")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def _settings(args: argparse.Namespace) -> Any:
    from argosy.argo.repository import read_default_repository
    from argosy.artifacts.errors import InvalidSpec
    from argosy.gc.duration import DurationError, parse_duration
    from argosy.gc.policy import InvalidPolicy, parse_strategy
    from argosy.gc.settings import FinalizerSettings, GcSettings, LeaseSettings, WatchSettings
    from argosy.gc.storage import StorageSettings

    try:
        strategy = parse_strategy(args.default_strategy, "--default-strategy")
        deadline = parse_duration(args.finalizer_deadline)
    except (InvalidPolicy, DurationError) as error:
        raise InvalidSpec(str(error)) from None
    default_repository = (
        read_default_repository(args.default_repository) if args.default_repository else None
    )
    if args.workers < 1 or args.finalizer_attempts < 1:
        raise InvalidSpec("--workers and --finalizer-attempts must be at least 1")
    if not args.lease_duration > 0:  # also refuses nan
        raise InvalidSpec(
            f"--lease-duration must be more than 0 seconds, not {args.lease_duration}"
        )
    lease = (
        None
        if args.no_leader_election
        else LeaseSettings(
            namespace=args.lease_namespace,
            name=args.lease_name,
            # client-go's 15 s / 10 s / 2 s, scaled
            lease_duration=args.lease_duration,
            renew_deadline=args.lease_duration * 2 / 3,
            retry_period=args.lease_duration * 2 / 15,
        )
    )
    return GcSettings(
        namespaces=tuple(dict.fromkeys(args.namespace)),
        dry_run=args.dry_run,
        default_strategy=strategy or GcSettings().default_strategy,
        workers=args.workers,
        finalizer=FinalizerSettings(max_attempts=args.finalizer_attempts, deadline=deadline),
        watch=WatchSettings(resync=args.resync),
        lease=lease,
        storage=StorageSettings(local_root=args.local_root),
        default_repository=default_repository,
    )


def plan_printer(output: str, out: IO[str]) -> Callable[[dict[str, Any]], None]:
    lock = threading.Lock()

    def emit(line: dict[str, Any]) -> None:
        if output == "json":
            text = json.dumps(line, sort_keys=True)
        elif line["action"] == "delete":
            where = line.get("url") or f"(unresolved: {line.get('error')})"
            text = (
                f"delete  {line['namespace']}/{line['workflow']}  {line['artifact']}  "
                f"{where}  [{line['strategy']} from {line['source']}: {line['reason']}]"
            )
        else:
            text = (
                f"{line['action']}  {line['namespace']}/{line['workflow']}  "
                f"{line.get('finalizer', '')}"
            )
        with lock:
            print(text, file=out, flush=True)

    return emit


def _print_summary(summary: Any, output: str, dry_run: bool, out: IO[str]) -> None:
    if output == "json":
        for where, failure in summary.failures:
            print(json.dumps({"failure": {"workflow": where, **failure.as_json()}}), file=out)
        print(
            json.dumps(
                {
                    "summary": {
                        "workflows": summary.workflows,
                        "artifacts": summary.artifacts,
                        "objects": summary.objects,
                        "bytes": summary.bytes,
                        "failures": len(summary.failures),
                        "errors": summary.errors,
                        "finalizers": summary.finalizers,
                        "dryRun": dry_run,
                        "sweeps": [
                            {
                                "repository": s.repository,
                                "uploadsAborted": s.uploads_aborted,
                                "orphansDeleted": s.orphans_deleted,
                                "errors": s.errors,
                                "plan": s.plan,
                            }
                            for s in summary.sweeps
                        ],
                    }
                }
            ),
            file=out,
        )
        return
    for where, failure in summary.failures:
        print(f"failed  {where}  {failure.artifact}  {failure.cause}: {failure.message}", file=out)
    for error in summary.errors:
        print(f"error  {error}", file=out)
    for sweep in summary.sweeps:
        for line in sweep.plan:
            print(f"sweep  {line}", file=out)
        print(
            f"swept  {sweep.repository}: {sweep.uploads_aborted} upload(s) aborted, "
            f"{sweep.orphans_deleted} orphan(s) deleted"
            + (f"; errors: {'; '.join(sweep.errors)}" if sweep.errors else ""),
            file=out,
        )
    verb = (
        "would delete per the plan above"
        if dry_run
        else f"deleted {summary.artifacts} artifact(s), {summary.objects} object(s), "
        f"{summary.bytes} bytes"
    )
    print(
        f"{summary.workflows} workflow(s) reconciled; {verb}; {len(summary.failures)} failure(s)",
        file=out,
    )


def run(args: argparse.Namespace, *, out: IO[str] | None = None) -> int:
    """The entry point `argosy gc` calls."""
    from argosy.argo.kube import Kube, KubeError
    from argosy.artifacts.errors import ArtifactError
    from argosy.gc.controller import Controller, NotLeader

    out = out or sys.stdout
    try:
        settings = _settings(args)
    except ArtifactError as error:
        print(f"argosy: error: {error}", file=sys.stderr)
        return 2
    if args.verbose:
        logging.getLogger("argosy").setLevel(logging.INFO)
    try:
        kube = Kube.connect(args.kubeconfig, context=args.context)
    except ArtifactError as error:  # a broken or missing kubeconfig: one line, exit 2
        print(f"argosy: error: {error}", file=sys.stderr)
        return error.exit_code
    sink = plan_printer(args.output, out) if args.dry_run else None
    controller = Controller(kube, settings, sink=sink)
    try:
        if args.once:
            summary = controller.run_once(lease_timeout=args.lease_timeout)
            _print_summary(summary, args.output, args.dry_run, out)
            return 1 if summary.failed else 0
        return _run_forever(controller, args.metrics_port)
    except NotLeader as error:
        print(f"argosy: error: {error}", file=sys.stderr)
        return 1
    except KubeError as error:
        print(f"argosy: error: Kubernetes API: {error}", file=sys.stderr)
        return 1
    finally:
        controller.close()
        kube.close()


def _run_forever(controller: Any, metrics_port: int) -> int:
    import time

    from argosy.gc.health import HealthServer

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    health = None
    if metrics_port:
        stall = timedelta(minutes=2).total_seconds()
        health = HealthServer(
            controller.metrics,
            port=metrics_port,
            ready=controller.ready,
            alive=lambda: time.monotonic() - controller.heartbeat < stall,
        )
        health.start()
    try:
        controller.run(stop)
    finally:
        if health is not None:
            health.stop()
    return 0
