"""`argosy init`, `argosy wait` and `argosy emissary`: the sidecar's commands in a
workflow pod. Flags become `PodOptions`; the steps themselves (`argosy.sidecar.steps`)
read the pod's context and move the artifacts; here their results are printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from argosy.sidecar.context import PodOptions


def options(args: argparse.Namespace) -> PodOptions:
    return PodOptions(
        var_dir=args.var_dir,
        template=args.template,
        repository=args.repository,
        repository_key=args.repository_key,
        repository_configmap=args.repository_configmap,
        secrets_dir=args.secrets_dir,
        annotations=args.annotations,
        root=args.root,
        sets=tuple(args.set),
        kubeconfig=args.kubeconfig,
        no_report=args.no_report,
        timeout=getattr(args, "timeout", None),
    )


def _warn(warning: str) -> None:
    print(f"argosy: warning: {warning}", file=sys.stderr)


def init(args: argparse.Namespace) -> int:
    from argosy.sidecar import steps

    results = steps.init(options(args), os.environ, warn=_warn)
    for r in results:
        if r.status == "failed":
            print(f"argosy init: input {r.name} failed: {r.reason}", file=sys.stderr)
        elif not args.quiet:
            print(
                f"argosy init: {r.name}: {r.status} {r.url} -> {r.path} ({r.size} B)",
                file=sys.stderr,
            )
    return 1 if any(r.status == "failed" for r in results) else 0


def _finishing(signum: int, frame: object) -> None:
    print("argosy wait: SIGTERM after main exited: finishing the uploads", file=sys.stderr)


def _after_main() -> None:
    # From here SIGTERM means main is over and the pod is winding down (a native sidecar
    # is stopped once main exits): finish the uploads within the grace period.
    signal.signal(signal.SIGTERM, _finishing)


def wait(args: argparse.Namespace) -> int:
    from argosy.sidecar import steps

    outcome = steps.wait(options(args), os.environ, warn=_warn, main_exited=_after_main)
    if outcome.report_error is not None:
        # Argo's controller learns of the outputs only from the report: a failure there
        # fails the pod. Elsewhere the annotation is a courtesy.
        print(
            f"argosy wait: {'error' if outcome.report_fatal else 'warning'}: cannot "
            f"report outputs: {outcome.report_error}",
            file=sys.stderr,
        )
    for r in outcome.results:
        if r.status == "failed":
            print(f"argosy wait: output {r.name} failed: {r.reason}", file=sys.stderr)
        elif not args.quiet:
            print(f"argosy wait: {r.name}: {r.status} {r.url or r.reason}", file=sys.stderr)
    failed = any(r.status == "failed" for r in outcome.results)
    return 1 if failed or outcome.report_fatal else 0


def emissary(args: argparse.Namespace) -> int:
    from argosy.sidecar.emissary import run_emissary

    command = list(args.argv)
    if command and command[0] == "--":
        command = command[1:]
    return run_emissary(command, var_dir=args.var_dir)
