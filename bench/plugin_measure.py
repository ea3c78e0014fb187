"""What bench/plugin.py's units share: the run's context, the timing of a plugin call
made from this process and of a peer run as its own process, the bucket between runs,
and the checks a run must pass before it counts.

Why a module: a plugin call and a peer process are measured differently (the plugin
outlives its calls: its CPU is a difference of its counters and its peak RSS a window of
bench/rss.py's Watch; a peer is a process of its own, bench/rss.py's run), yet every run
must come out as the same record, checked the same way.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench import corpus, dirs, files, noise, plugin_calls, plugin_report, rgw, rss
from bench.plugin_report import Run

MiB = 1 << 20
ROOT = rgw.ROOT
MIN_RATE = 10 * MiB  # a 1 GiB call slower than this (plus a minute) is given up on


def log(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


@dataclass
class Ctx:
    gateway: rgw.Rgw
    admin: Any  # boto3, around the measured calls only
    bucket: str  # what the write cases write to; emptied between runs
    source_bucket: str  # holds the object the read cases read
    work: Path
    file: Path
    size: int
    root: Path  # the corpus
    tree: corpus.TreeStats
    sample: Path  # Argo's delete sample, a subset of the corpus
    sample_tree: corpus.TreeStats
    plugin: plugin_calls.Server
    watch: rss.Watch
    write_conf: str
    read_conf: str
    proxied_conf: str  # the write bucket, through the delay proxy
    proxy: dirs.Proxy
    argo_client: Any  # boto3 through the proxy, Argo's GC's one-by-one deletes
    overhead: float = 0.0  # seconds spent emptying the bucket between runs
    failures: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)

    @property
    def stub(self) -> Any:
        return self.plugin.stub

    @property
    def timeout(self) -> float:
        return 60 + self.size / MIN_RATE

    @property
    def folder_timeout(self) -> float:
        return 120 + self.tree.files / 5

    def url(self, key: str, bucket: str | None = None) -> str:
        return f"s3://{bucket or self.bucket}/{key}"


# ------------------------------------------------------------------ measuring


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_of(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    try:
        t = process.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


def fail(ctx: Ctx, case: str, round_: int, why: str) -> None:
    ctx.failures.append(f"{case} round {round_ + 1}: {why}")
    log(f"FAILED {case} round {round_ + 1}: {why}")


def timed(
    ctx: Ctx,
    case: str,
    round_: int,
    amount: int,
    call: Callable[[], object],
    *,
    server: plugin_calls.Server | None,
    proxied: bool = False,
) -> Run | None:
    """Time call(), made from this process. server: the process that serves it, whose CPU
    counts as the tool's with this process's (the client's); when it is the plugin, its
    peak RSS in the call's window is measured too. None: this process alone does the work
    (Argo's deletes)."""
    pids = noise.daemon_pids(ctx.gateway.state_dir)
    if proxied:
        pids.append(ctx.proxy.proc.pid)  # the proxy's CPU counts as the server's
    serving = psutil.Process(server.process.pid) if server else None
    watched = server is ctx.plugin
    cpu = noise.CpuWatch(pids)
    server0, self0 = cpu_of(serving), self_cpu()
    before = ctx.watch.window() if watched else 0
    cpu.start()
    t0 = time.perf_counter()
    try:
        call()
    except Exception as error:  # noqa: BLE001 - any failure is a failed run, reported
        why = plugin_calls.rpc_error(error) if isinstance(error, grpc.RpcError) else str(error)
        fail(ctx, case, round_, f"after {time.perf_counter() - t0:.1f} s: {why}")
        if ctx.plugin.process.poll() is not None:
            raise RuntimeError(f"the plugin exited: {ctx.plugin.output()[-2000:]}") from None
        return None
    seconds = time.perf_counter() - t0
    peak = ctx.watch.close() if watched else 0
    client = self_cpu() - self0
    tool = client + cpu_of(serving) - server0
    server_cpu, foreign = cpu.stop(tool)
    what = plugin_report.CASES[case][0]
    return Run(
        case, round_, amount, seconds, peak, before, tool, client, server_cpu, foreign, "", what
    )


def tool_env(ctx: Ctx) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(ctx.gateway.env())
    env["AWS_DEFAULT_REGION"] = ctx.gateway.region
    return env


def process(
    ctx: Ctx,
    case: str,
    round_: int,
    amount: int,
    cmd: list[str],
    *,
    timeout: float,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> Run | None:
    """Run a peer as its own process (bench/rss.py)."""
    cpu = noise.CpuWatch(noise.daemon_pids(ctx.gateway.state_dir))
    cpu.start()
    m = rss.run(cmd, env=tool_env(ctx), cwd=ROOT, timeout=timeout, stdin=stdin, stdout=stdout)
    server_cpu, foreign = cpu.stop(m.cpu_seconds)
    if m.returncode != 0:
        why = "timed out" if m.timed_out else f"exit {m.returncode}"
        detail = (m.stderr.strip() or m.stdout.strip())[-800:]
        fail(ctx, case, round_, f"{why} after {m.seconds:.1f} s: {' '.join(cmd)}: {detail}")
        return None
    return Run(
        case,
        round_,
        amount,
        m.seconds,
        m.peak_rss,
        0,
        m.cpu_seconds,
        0.0,
        server_cpu,
        foreign,
        "",
        " ".join(cmd),
    )


def keep(ctx: Ctx, run: Run) -> None:
    ctx.runs.append(run)
    unit = plugin_report.CASES[run.case][1]
    log(
        f"round {run.round + 1} {run.case:<18}{run.rate:8.0f} {unit:<9} {run.seconds:7.2f} s  "
        f"RSS {run.peak_rss / MiB:5.0f} MiB  CPU {run.cpu_seconds:5.2f} s  server "
        f"{run.server_cpu:5.2f} s  others {run.foreign_share:4.0%}  verified {run.verified}"
    )


def keys(admin: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size of every object under prefix."""
    out: dict[str, int] = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def empty(admin: Any, bucket: str) -> None:
    """Delete every object (1000 a request) and abort every multipart upload."""
    found = list(keys(admin, bucket, ""))
    for i in range(0, len(found), 1000):
        done = admin.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in found[i : i + 1000]], "Quiet": True},
        )
        if done.get("Errors"):
            raise RuntimeError(f"delete_objects: {done['Errors'][:3]}")
    for _ in range(100):
        uploads = admin.list_multipart_uploads(Bucket=bucket)
        for upload in uploads.get("Uploads", []):
            admin.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        if not uploads.get("IsTruncated"):
            break


def between_runs(ctx: Ctx) -> None:
    """Leave the server as the next run should find it: the write bucket empty, garbage
    collected, dirty pages written out."""
    t0 = time.monotonic()
    empty(ctx.admin, ctx.bucket)
    rgw.gc(ctx.gateway)
    os.sync()
    ctx.overhead += time.monotonic() - t0


# ------------------------------------------------------------------ checks


def stored(ctx: Ctx, run: Run, key: str) -> bool:
    try:
        size = int(ctx.admin.head_object(Bucket=ctx.bucket, Key=key)["ContentLength"])
    except Exception as error:  # noqa: BLE001 - a missing object is a failed run
        fail(ctx, run.case, run.round, f"no object at {ctx.url(key)}: {error}")
        return False
    if size != ctx.size:
        fail(ctx, run.case, run.round, f"{ctx.url(key)} holds {size} bytes, not {ctx.size}")
        return False
    run.verified = "size"
    return True


def loaded(ctx: Ctx, run: Run, out: Path) -> bool:
    got = out.stat().st_size if out.exists() else -1
    if got != ctx.size:
        fail(ctx, run.case, run.round, f"{out} holds {got} bytes, not {ctx.size}")
        return False
    run.verified = "size"
    if run.round == 0:
        if not files.same_bytes(ctx.file, out):
            fail(ctx, run.case, run.round, f"{out}: bytes differ from the source")
            return False
        run.verified = "bytes"
    return True


def listed(ctx: Ctx, run: Run, prefix: str, source: Path) -> bool:
    """The objects under prefix are source's regular files at their sizes, nothing else."""
    want = {rel.replace(os.sep, "/"): n for rel, n in corpus.listing(source).items()}
    got = {k[len(prefix) :]: n for k, n in keys(ctx.admin, ctx.bucket, prefix).items()}
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        sizes = sorted(k for k in want if k in got and got[k] != want[k])
        fail(
            ctx,
            run.case,
            run.round,
            f"under {ctx.url(prefix)}: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(extra)} extra (e.g. {extra[:3]}), {len(sizes)} of a wrong size",
        )
        return False
    run.verified = "paths+sizes"
    return True


def gone(ctx: Ctx, run: Run, prefix: str) -> bool:
    left = keys(ctx.admin, ctx.bucket, prefix)
    if left:
        fail(ctx, run.case, run.round, f"{len(left)} objects left under {ctx.url(prefix)}")
        return False
    run.verified = "nothing left"
    return True


def counted(ctx: Ctx, run: Run, received: list[int]) -> bool:
    """A stream's client got every byte, and the stream said `is_end` (open_stream checks)."""
    if received != [ctx.size]:
        fail(ctx, run.case, run.round, f"received {received} bytes, not {ctx.size}")
        return False
    run.verified = "byte count, is_end"
    return True
