"""`init` and `wait` as steps of a pod: read the pod's context, move the artifacts,
write the results into the var dir, report the outputs to Kubernetes. The command line
(`argosy init`, `argosy wait`) turns flags into `PodOptions` and prints what came back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from argosy.artifacts.errors import ArtifactError
from argosy.sidecar import report
from argosy.sidecar.context import PodOptions, kube, load, provenance, transfer_settings
from argosy.sidecar.resolve import DriverCache, repository_archive_logs
from argosy.sidecar.results import InputResult, OutputResult
from argosy.sidecar.vardir import ensure_container_dir


def _nothing(_: str) -> None:
    pass


def init(
    options: PodOptions, env: Mapping[str, str], *, warn: Callable[[str], None] = _nothing
) -> list[InputResult]:
    """Every input fetched into its path; the results also go to VAR_DIR/inputs.json."""
    from argosy.sidecar.inputs import fetch_inputs

    pod = load(options, env)
    for warning in pod.template.warnings:
        warn(warning)
    ensure_container_dir(options.var_dir)  # an unwritable var dir fails before any download
    results = fetch_inputs(
        pod.template,
        ctx=pod.ctx,
        layers=pod.layers,
        root=options.root,
        settings=transfer_settings(len(pod.template.inputs), env),
        open_driver=DriverCache(),
    )
    report.write_json(
        options.var_dir / "inputs.json", report.inputs_document(results, template=pod.template.name)
    )
    return results


@dataclass(frozen=True)
class WaitOutcome:
    exit_code: int  # main's
    results: list[OutputResult]
    reported_to: str  # WorkflowTaskResult/NAME, pod/NAME, none, or failed: why
    report_error: ArtifactError | None = None
    report_fatal: bool = False  # under Argo the controller learns of outputs only so


def wait(
    options: PodOptions,
    env: Mapping[str, str],
    *,
    warn: Callable[[str], None] = _nothing,
    main_exited: Callable[[], None] = lambda: None,
) -> WaitOutcome:
    """Wait for main's exit code, upload every output, report where they went (a
    WorkflowTaskResult under Argo, else the pod's annotation); the results also go to
    VAR_DIR/outputs.json. `main_exited` is called once main's exit code is known."""
    from argosy.sidecar.exitwait import wait_for_exit_code
    from argosy.sidecar.outputs import upload_outputs

    pod = load(options, env)
    for warning in pod.template.warnings:
        warn(warning)
    ctx, template = pod.ctx, pod.template
    exit_code = wait_for_exit_code(options.var_dir, timeout=options.timeout)
    main_exited()
    log = options.var_dir / "ctr" / "main" / "combined"
    archive_logs = repository_archive_logs(ctx, template) or any(
        a.archive_logs for a in template.outputs
    )
    results = upload_outputs(
        template,
        ctx=ctx,
        layers=pod.layers,
        root=options.root,
        settings=transfer_settings(len(template.outputs), env),
        main_failed=exit_code != 0,
        open_driver=DriverCache(),
        provenance=provenance(ctx),
        log=log if archive_logs else None,
    )
    outcome = WaitOutcome(exit_code, results, "none")
    if not options.no_report and (options.kubeconfig or env.get("KUBERNETES_SERVICE_HOST")):
        outcome = _report(
            options, env, pod.ctx.variables, outcome, report.argo_artifacts(template, results)
        )
    report.write_json(
        options.var_dir / "outputs.json",
        report.outputs_document(
            results, exit_code=exit_code, template=template.name, reported_to=outcome.reported_to
        ),
    )
    return outcome


def _report(
    options: PodOptions,
    env: Mapping[str, str],
    variables: Mapping[str, str],
    outcome: WaitOutcome,
    artifacts: list[dict[str, object]],
) -> WaitOutcome:
    from argosy.sidecar.taskresult import PodIdentity, report_outputs

    pod = PodIdentity(
        namespace=variables.get("workflow.namespace", ""),
        pod_name=variables.get("pod.name", ""),
        pod_uid=env.get("ARGO_POD_UID", ""),
        node_id=variables.get("node.id", ""),
        workflow_name=variables.get("workflow.name", ""),
    )
    try:
        api = kube(options, env)
        try:
            where = report_outputs(api, pod, artifacts, exit_code=outcome.exit_code)
        finally:
            api.close()
    except ArtifactError as error:
        return WaitOutcome(
            outcome.exit_code, outcome.results, f"failed: {error}", error, pod.under_argo
        )
    return WaitOutcome(outcome.exit_code, outcome.results, where)
