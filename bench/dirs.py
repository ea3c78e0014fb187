"""Directory artifacts on a real Ceph RGW: Argosy's archives and one-object-per-file uploads
against Argo's method and the fastest peers, on a tree of ~20k real text files.

    .venv/bin/python -m bench.dirs [--runs 3] [--corpus DIR] [--slow-runs 1]
                                   [--subset 2000] [--delay-ms 20] [--env FILE] [--tmp DIR]
                                   [--scratch ext4]
                                   [--baseline PKGDIR]

Without --corpus, copies ~20k real text files (<= 300 MiB) from the machine into a temp
folder (bench/corpus.py: fixed sources, sorted walk). Starts its own RGW with
scripts/rgw.sh (or uses --env FILE), one bucket, and runs every case as a separate
process, measured by bench/rss.py (wall time, peak RSS of the process tree, CPU), in
--runs interleaved rounds (each round starts one case further on), with the bucket
emptied, RGW's garbage collection forced, dirty pages synced and the downloaded trees
dropped from the page cache between runs:

  archive upload (MiB/s of source bytes):
    argosy      argosy cp -q --archive tar.zst CORPUS s3://B/K.tar.zst
    argo        tar czf TMP.tgz -C CORPUS . ; boto3 upload_file(TMP.tgz) with defaults,
                timed together. Argo's executor tars + gzips the output to a temp file and
                uploads it with minio-go (one PUT, or multipart with 4 workers): boto3's
                upload_file with its defaults (8 MiB parts, 10 threads) is a fair stand-in.
    s5cmd-pipe  tar cf - -C CORPUS . | zstd -3 -T0 | s5cmd pipe s3://B/K  (a peer)
  download + extract (MiB/s of source bytes):
    argosy      argosy cp -q --archive auto s3://B/K.tar.zst OUT
    argo        boto3 get_object streamed to TMP.tgz (one stream), then tar xzf, together
    s5cmd-cat   s5cmd cat s3://B/K | zstd -d | tar -x -C OUT  (a peer; the pipe's object)
  archive: none upload (files/s):
    argosy      argosy cp -q --archive none CORPUS s3://B/flat/
    s5cmd       s5cmd cp 'CORPUS/*' s3://B/flat2/   (a wildcard copies the tree recursively)
    boto3-16    put_object per file, ThreadPoolExecutor(16)  (first --slow-runs rounds)
    boto3-seq   put_object per file, in sequence             (first --slow-runs rounds)
  archive: none download (files/s), each tool reading back what it just uploaded:
    argosy      argosy cp -q --archive none s3://B/flat/corpus/ OUT  (verified against the
                tree manifest)
    s5cmd       s5cmd cp 's3://B/flat2/*' OUT/
  with --baseline PKGDIR (see bench/s3.py), argosy's tar.zst case (upload, download) and
  none cases (upload, download, upload behind the proxy) also run from that copy of Argosy
  ("argosy-base"), in the same rounds; the tar.zst lines compare stored sizes too.
  the same behind bench/delay_proxy.py (+20 ms on every request), a --subset file tree,
  upload ("proxy:TOOL") and download ("proxy-down:TOOL"):
    argosy      argosy cp -q --archive none SUBSET s3://B/proxied/, and back
    s5cmd       s5cmd cp 'SUBSET/*' s3://B/proxied2/, and back
    boto3-seq   put_object per file, in sequence (upload only; first --slow-runs rounds)

Round-robin: --runs rounds over the cases, in a new random order each round. Paired mode
(--pairs N, bench/pairs.py): for each comparison in PAIRS (Argosy's case and a peer's),
N pairs of the two back to back in a random order, the ratio of their speeds taken pair
by pair (median and range); --runs 0 --pairs N runs the paired mode alone. With
--baseline, Argosy's cases are also paired with the baseline copy's (BASELINE_PAIRS).

Before each extraction (download cases) the filesystem's file creation is probed and, if
it is in ext4's slow window after a large delete, waited out (bench/fsstate.py); the
figure is kept with the run. With --scratch ext4 the tools write to a new ext4 with a
journal of the benchmark's own (bench/scratchfs.py), as a pod writes to its node's
filesystem, instead of the temp folder's (here: ext4 without a journal, shared with
RGW's store).

Before the first run, 256 MiB go up to the new bucket and are deleted, untimed
(`rgw.warm_up`): the first large upload to a freshly started RGW was 8-29% slower for
whichever tool made it.

Verification, outside the timed region: every download is compared with the corpus (paths
and sizes; bytes too in the first round); every flat upload is listed back (paths and
sizes); every archive object's size is checked, and in the first round the s5cmd pipe's
object is decompressed and its tar entries counted. Prints the table (bench/dirs_report.py)
and writes bench/results/dirs-<timestamp>.json. Everything it started or wrote is removed
at the end (a --corpus is only read).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import corpus, dirs_report, noise, pairs, rgw, rss, scratchfs, versions
from bench.dirs_report import DirRun
from bench.fsstate import FsState, evict
from bench.s3 import BASE, CONSOLE, compile_argosy

MiB = 1 << 20
ROOT = rgw.ROOT
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
ARGOSY = str(Path(sys.executable).parent / "argosy")
S5CMD = str(
    Path(sys.executable).parent.parent
    / "lib"
    / "python3.11"
    / "site-packages"
    / "s5cmd"
    / "bin"
    / "s5cmd"
)
MANIFEST = ".argosy-manifest.json"


def log(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


@dataclass
class Proxy:
    proc: subprocess.Popen[str]
    endpoint: str


@dataclass
class Ctx:
    gateway: rgw.Rgw
    bucket: str
    admin: Any
    out: Path  # where the tools write: the work folder, or the --scratch filesystem
    root: Path  # the corpus
    tree: corpus.TreeStats
    subset: Path
    subset_tree: corpus.TreeStats
    proxy: Proxy | None = None
    fs: FsState | None = None  # probes file creation before every extraction
    pair: str = ""  # paired mode: the pair the runs being made belong to
    overhead: float = 0.0  # seconds spent emptying the bucket between runs
    failures: list[str] = field(default_factory=list)
    runs: list[DirRun] = field(default_factory=list)


# ------------------------------------------------------------------ server side helpers


def admin_client(gateway: rgw.Rgw) -> Any:
    s3 = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        region_name=gateway.region,
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )

    def content_md5(params: dict[str, Any], **_: Any) -> None:
        # RGW 16 wants Content-MD5 on DeleteObjects; botocore >= 1.36 no longer sends it
        body = params["body"]
        if isinstance(body, str):
            body = body.encode()
        params["headers"]["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()

    s3.meta.events.register("before-call.s3.DeleteObjects", content_md5)
    return s3


def list_keys(ctx: Ctx, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for page in ctx.admin.get_paginator("list_objects_v2").paginate(
        Bucket=ctx.bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def clear_bucket(ctx: Ctx) -> None:
    """Delete every object (1000 a request) and abort every multipart upload."""
    keys = list(list_keys(ctx, ""))
    for i in range(0, len(keys), 1000):
        done = ctx.admin.delete_objects(
            Bucket=ctx.bucket,
            Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
        )
        if done.get("Errors"):
            raise RuntimeError(f"delete_objects: {done['Errors'][:3]}")
    for _ in range(100):
        uploads = ctx.admin.list_multipart_uploads(Bucket=ctx.bucket)
        for upload in uploads.get("Uploads", []):
            ctx.admin.abort_multipart_upload(
                Bucket=ctx.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        if not uploads.get("IsTruncated"):
            break


def between_runs(ctx: Ctx, downloaded: Path) -> None:
    """Leave the machine as the next run should find it: empty bucket, garbage collected,
    dirty pages written out, and the tree the run downloaded (if it got that far) out of
    the page cache (fsstate.evict). Deleting 20k objects takes RGW ~30 s: most of the
    overhead."""
    t0 = time.monotonic()
    clear_bucket(ctx)
    rgw.gc(ctx.gateway)
    os.sync()
    evict(downloaded)
    ctx.overhead += time.monotonic() - t0


def start_proxy(upstream: str, delay_ms: float) -> Proxy:
    host_port = upstream.split("://", 1)[-1].rstrip("/")
    proc = subprocess.Popen(
        [PY, "-m", "bench.delay_proxy", "--upstream", host_port, "--delay-ms", str(delay_ms)],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        port = json.loads(line)["port"]
    except (ValueError, KeyError) as error:
        proc.kill()
        raise RuntimeError(f"delay proxy did not start: {line!r}") from error
    return Proxy(proc, f"http://127.0.0.1:{port}")


def stop_proxy(proxy: Proxy) -> dict[str, Any]:
    proxy.proc.terminate()
    try:
        out, _ = proxy.proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proxy.proc.kill()
        proxy.proc.communicate()
        return {}
    try:
        stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return stats
    except (ValueError, IndexError):
        return {}


# ------------------------------------------------------------------ measuring


def tool_env(ctx: Ctx, endpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(ctx.gateway.env())
    env["AWS_DEFAULT_REGION"] = ctx.gateway.region
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def measure(
    ctx: Ctx,
    case: str,
    round_: int,
    cmd: list[str],
    *,
    files: int,
    size: int,
    endpoint: str | None = None,
    timeout: float = 900,
    extra_env: dict[str, str] | None = None,
) -> DirRun | None:
    fs_us = None
    if ctx.fs is not None and case.startswith(("down:", "none-down:")):
        fs_us = ctx.fs.ready()
    pids = noise.daemon_pids(ctx.gateway.state_dir)
    if endpoint and ctx.proxy:
        pids.append(ctx.proxy.proc.pid)  # the proxy's CPU counts as the server's
    watch = noise.CpuWatch(pids)
    watch.start()
    m = rss.run(
        cmd, env={**tool_env(ctx, endpoint), **(extra_env or {})}, cwd=ROOT, timeout=timeout
    )
    server_cpu, foreign_cpu = watch.stop(m.cpu_seconds)
    shown = " ".join(cmd)
    if m.returncode != 0:
        why = "timed out" if m.timed_out else f"exit {m.returncode}"
        detail = (m.stderr.strip() or m.stdout.strip())[-800:]
        ctx.failures.append(
            f"{case} round {round_ + 1}: {why} after {m.seconds:.1f} s: {shown}\n    {detail}"
        )
        log(f"FAILED {case} ({why}): {detail}")
        return None
    inner = None
    for line in reversed(m.stdout.strip().splitlines()):
        try:
            inner = float(json.loads(line)["seconds"])
            break
        except (ValueError, KeyError, TypeError):
            continue
    return DirRun(
        case,
        round_,
        files,
        size,
        0,
        m.seconds,
        inner,
        m.peak_rss,
        m.tree_rss,
        m.hwm_self,
        m.cpu_seconds,
        server_cpu,
        foreign_cpu,
        "",
        shown,
        fs_us,
    )


def keep(ctx: Ctx, run: DirRun) -> None:
    run.pair = ctx.pair
    ctx.runs.append(run)
    rate = f"{run.mib_s:6.0f} MiB/s {run.files_s:6.0f} files/s"
    log(
        f"round {run.round + 1} {run.case:<18}{rate} {run.seconds:6.2f} s  "
        f"RSS {run.peak_rss / MiB:5.0f} MiB  CPU {run.cpu_seconds:5.2f} s  server "
        f"{run.server_cpu:5.2f} s  others {run.foreign_share:4.0%}"
        f"{f'  stored {run.stored_bytes / MiB:.1f} MiB' if run.stored_bytes else ''}"
        f"{'  verified ' + run.verified if run.verified else ''}"
    )


def fail(ctx: Ctx, case: str, round_: int, why: str) -> None:
    ctx.failures.append(f"{case} round {round_ + 1}: {why}")
    log(f"FAILED {case}: {why}")


def stored_size(ctx: Ctx, key: str) -> int:
    try:
        return int(ctx.admin.head_object(Bucket=ctx.bucket, Key=key)["ContentLength"])
    except Exception:  # noqa: BLE001 - a missing object is reported as 0 bytes
        return 0


def check_download(ctx: Ctx, run: DirRun, out: Path, full: bool, want: Path | None = None) -> bool:
    if not out.is_dir():
        fail(ctx, run.case, run.round, f"{out} was not created")
        return False
    problem = corpus.compare(want or ctx.root, out, full=full)
    if problem:
        fail(ctx, run.case, run.round, f"downloaded tree differs: {problem}")
        return False
    run.verified = "bytes" if full else "paths+sizes"
    return True


def check_flat(ctx: Ctx, run: DirRun, prefix: str, source: Path) -> bool:
    """The objects under prefix hold every regular file of source at its size."""
    want = {rel.replace(os.sep, "/"): n for rel, n in corpus.listing(source).items()}
    got = {
        k[len(prefix) :]: n
        for k, n in list_keys(ctx, prefix).items()
        if not k.endswith("/") and not k.endswith(MANIFEST)
    }
    missing = sorted(set(want) - set(got))
    wrong = sorted(k for k in want if k in got and got[k] != want[k])
    if missing or wrong:
        fail(
            ctx,
            run.case,
            run.round,
            f"{len(missing)} files missing (e.g. {missing[:3]}), "
            f"{len(wrong)} with a wrong size (e.g. {wrong[:3]}) under s3://{ctx.bucket}/"
            f"{prefix}",
        )
        return False
    extra = len(set(got) - set(want))
    run.verified = "paths+sizes" + (f" (+{extra} extra objects)" if extra else "")
    run.stored_bytes = sum(got.values())
    return True


def check_zst_tar(ctx: Ctx, run: DirRun, key: str) -> bool:
    """Decompress the object and count the tar's regular files and their bytes."""
    import zstandard

    body = ctx.admin.get_object(Bucket=ctx.bucket, Key=key)["Body"]
    files = size = 0
    with (
        zstandard.ZstdDecompressor().stream_reader(body) as raw,
        tarfile.open(fileobj=raw, mode="r|") as tar,
    ):
        for member in tar:
            if member.isreg():
                files += 1
                size += member.size
    if (files, size) != (ctx.tree.files, ctx.tree.bytes):
        fail(
            ctx,
            run.case,
            run.round,
            f"the archive holds {files} files, {size} bytes; "
            f"the corpus {ctx.tree.files}, {ctx.tree.bytes}",
        )
        return False
    run.verified = "tar entries+sizes"
    return True


# ------------------------------------------------------------------ the cases


def unit_argosy_archive(ctx: Ctx, r: int) -> None:
    archive_unit("argosy", [ARGOSY])(ctx, r)


def archive_unit(
    tool: str, command: list[str], extra_env: dict[str, str] | None = None
) -> Callable[[Ctx, int], None]:
    """argosy's tar.zst upload then download + extract, run as `command` (the argosy
    console, or another copy of Argosy's), recorded as up:TOOL and down:TOOL."""
    return lambda ctx, r: _archive_round(ctx, r, tool, command, extra_env)


def _archive_round(
    ctx: Ctx, r: int, tool: str, command: list[str], extra_env: dict[str, str] | None
) -> None:
    key = f"{tool}/r{r}/corpus.tar.zst"
    url = f"s3://{ctx.bucket}/{key}"
    out = ctx.out / "down" / f"{tool}-r{r}"
    try:
        up = measure(
            ctx,
            f"up:{tool}",
            r,
            [*command, "cp", "-q", "--archive", "tar.zst", str(ctx.root), url],
            files=ctx.tree.files,
            size=ctx.tree.bytes,
            extra_env=extra_env,
        )
        if up is None:
            return
        up.stored_bytes = stored_size(ctx, key)
        if not up.stored_bytes:
            fail(ctx, up.case, r, f"no object at {url}")
            return
        up.verified = "by the download"
        keep(ctx, up)
        down = measure(
            ctx,
            f"down:{tool}",
            r,
            [*command, "cp", "-q", "--archive", "auto", url, str(out)],
            files=ctx.tree.files,
            size=ctx.tree.bytes,
            extra_env=extra_env,
        )
        if down is None:
            return
        down.stored_bytes = up.stored_bytes
        if check_download(ctx, down, out, full=r == 0):
            keep(ctx, down)
    finally:
        between_runs(ctx, out)


ARGO_UP = (
    'set -euo pipefail; tar czf "$1" -C "$2" . ; '
    'exec "$3" -m bench.peer_boto3 default up "$1" "$4" "$5"'
)
ARGO_DOWN = (
    'set -euo pipefail; "$3" -m bench.peer_dirs get "$4" "$5" "$1"; '
    'mkdir "$2"; tar xzf "$1" -C "$2"'
)


def unit_argo(ctx: Ctx, r: int) -> None:
    key = f"argo/r{r}/corpus.tgz"
    tgz = ctx.out / f"argo-up-r{r}.tgz"
    tgz_down = ctx.out / f"argo-down-r{r}.tgz"
    out = ctx.out / "down" / f"argo-r{r}"
    try:
        up = measure(
            ctx,
            "up:argo",
            r,
            ["bash", "-c", ARGO_UP, "bash", str(tgz), str(ctx.root), PY, ctx.bucket, key],
            files=ctx.tree.files,
            size=ctx.tree.bytes,
        )
        if up is None:
            return
        up.stored_bytes = stored_size(ctx, key)
        if up.stored_bytes != tgz.stat().st_size:
            fail(
                ctx,
                up.case,
                r,
                f"stored {up.stored_bytes} bytes, the .tgz has {tgz.stat().st_size}",
            )
            return
        up.verified = "size"
        keep(ctx, up)
        tgz.unlink()
        down = measure(
            ctx,
            "down:argo",
            r,
            ["bash", "-c", ARGO_DOWN, "bash", str(tgz_down), str(out), PY, ctx.bucket, key],
            files=ctx.tree.files,
            size=ctx.tree.bytes,
        )
        if down is None:
            return
        down.stored_bytes = up.stored_bytes
        if check_download(ctx, down, out, full=r == 0):
            keep(ctx, down)
    finally:
        corpus_rm(tgz, tgz_down)
        between_runs(ctx, out)


S5CMD_PIPE = (
    'set -euo pipefail; tar cf - -C "$1" . | zstd -q -3 -T0 | "$2" --endpoint-url "$3" pipe "$4"'
)
S5CMD_CAT = (
    'set -euo pipefail; mkdir "$1"; "$2" --endpoint-url "$3" cat "$4" | zstd -q -d | tar -x -C "$1"'
)


def unit_s5cmd_pipe(ctx: Ctx, r: int) -> None:
    """The peer's archive round trip: tar | zstd | s5cmd pipe up, s5cmd cat | zstd -d |
    tar -x down (from the object it just wrote)."""
    key = f"s5cmd/r{r}/corpus.tar.zst"
    out = ctx.out / "down" / f"s5cmd-cat-r{r}"
    try:
        up = measure(
            ctx,
            "up:s5cmd-pipe",
            r,
            [
                "bash",
                "-c",
                S5CMD_PIPE,
                "bash",
                str(ctx.root),
                S5CMD,
                ctx.gateway.endpoint,
                f"s3://{ctx.bucket}/{key}",
            ],
            files=ctx.tree.files,
            size=ctx.tree.bytes,
        )
        if up is None:
            return
        up.stored_bytes = stored_size(ctx, key)
        if not up.stored_bytes:
            fail(ctx, up.case, r, "no object stored")
            return
        up.verified = "size"
        if r == 0 and not check_zst_tar(ctx, up, key):
            return
        keep(ctx, up)
        down = measure(
            ctx,
            "down:s5cmd-cat",
            r,
            [
                "bash",
                "-c",
                S5CMD_CAT,
                "bash",
                str(out),
                S5CMD,
                ctx.gateway.endpoint,
                f"s3://{ctx.bucket}/{key}",
            ],
            files=ctx.tree.files,
            size=ctx.tree.bytes,
        )
        if down is None:
            return
        down.stored_bytes = up.stored_bytes
        if check_download(ctx, down, out, full=r == 0):
            keep(ctx, down)
    finally:
        between_runs(ctx, out)


Command = Callable[[Ctx, str, Path], list[str]]


def flat_unit(
    case: str,
    command: Command,
    *,
    proxied: bool = False,
    download: Command | None = None,
    extra_env: dict[str, str] | None = None,
) -> Callable[[Ctx, int], None]:
    """An upload of one object per file; the objects land under the returned prefix.
    With `download`, the same tool then reads them back into a new folder (measured as
    case "none-down:TOOL"), which must equal the source."""

    def unit(ctx: Ctx, r: int) -> None:
        source, tree = (ctx.subset, ctx.subset_tree) if proxied else (ctx.root, ctx.tree)
        base = f"{case.replace(':', '-')}/r{r}/"
        out = ctx.out / "down" / f"{case.replace(':', '-')}-r{r}"
        try:
            cmd = command(ctx, base, source)
            endpoint = ctx.proxy.endpoint if proxied and ctx.proxy else None
            run = measure(
                ctx,
                case,
                r,
                cmd,
                files=tree.files,
                size=tree.bytes,
                endpoint=endpoint,
                timeout=120 + tree.files / 5,
                extra_env=extra_env,
            )
            if run is None:
                return
            prefix = base  # every tool fills the prefix with the folder's files
            if not check_flat(ctx, run, prefix, source):
                return
            keep(ctx, run)
            if download is None:
                return
            kind, tool = case.split(":", 1)
            down = measure(
                ctx,
                f"{kind if kind == 'proxy' else 'none'}-down:{tool}",
                r,
                download(ctx, prefix, out),
                files=tree.files,
                size=tree.bytes,
                endpoint=endpoint,
                timeout=120 + tree.files / 5,
                extra_env=extra_env,
            )
            if down is not None:
                down.stored_bytes = run.stored_bytes
                if check_download(ctx, down, out, full=r == 0, want=source):
                    keep(ctx, down)
        finally:
            between_runs(ctx, out)

    return unit


def _argosy_none(ctx: Ctx, base: str, source: Path) -> list[str]:
    return [ARGOSY, "cp", "-q", "--archive", "none", str(source), f"s3://{ctx.bucket}/{base}"]


def _endpoint(ctx: Ctx, proxied: bool) -> str:
    return ctx.proxy.endpoint if proxied and ctx.proxy else ctx.gateway.endpoint


def _s5cmd_cp(ctx: Ctx, base: str, source: Path, proxied: bool = False) -> list[str]:
    return [
        S5CMD,
        "--endpoint-url",
        _endpoint(ctx, proxied),
        "cp",
        f"{source}/*",
        f"s3://{ctx.bucket}/{base}",
    ]


def _argosy_none_down(ctx: Ctx, prefix: str, out: Path) -> list[str]:
    return [ARGOSY, "cp", "-q", "--archive", "none", f"s3://{ctx.bucket}/{prefix}", str(out)]


def baseline_units(package_dir: Path) -> list[Unit]:
    """argosy's tar.zst and none cases (upload and download; none's upload behind the
    proxy), run from another copy of Argosy."""
    command = [PY, "-c", CONSOLE]
    env = {"PYTHONPATH": str(package_dir)}

    def up(ctx: Ctx, base: str, source: Path) -> list[str]:
        return [*command, *_argosy_none(ctx, base, source)[1:]]

    def down(ctx: Ctx, prefix: str, out: Path) -> list[str]:
        return [*command, *_argosy_none_down(ctx, prefix, out)[1:]]

    return [
        Unit("argosy tar.zst up+down (baseline)", archive_unit(BASE, command, env)),
        Unit("argosy none (baseline)", flat_unit(f"none:{BASE}", up, download=down, extra_env=env)),
        Unit(
            "proxied argosy none (baseline)",
            flat_unit(f"proxy:{BASE}", up, download=down, proxied=True, extra_env=env),
            proxied=True,
        ),
    ]


def baseline_lines(runs: list[DirRun]) -> list[str]:
    lines = []
    for kind, label in (("up", "upload"), ("down", "download + extract")):
        now = [r for r in runs if r.case == f"{kind}:argosy"]
        base = [r for r in runs if r.case == f"{kind}:{BASE}"]
        if now and base:
            a = dirs_report.median([r.mib_s for r in now])
            b = dirs_report.median([r.mib_s for r in base])
            sizes = (
                dirs_report.median([r.stored_bytes for r in now]),
                dirs_report.median([r.stored_bytes for r in base]),
            )
            lines.append(
                f"  tar.zst {label:<28}{a:7.0f} vs {b:7.0f} MiB/s    {a / b:.2f}x   "
                f"(base {min(r.mib_s for r in base):.0f}-{max(r.mib_s for r in base):.0f});"
                f" stored {sizes[0]:,.0f} vs {sizes[1]:,.0f} bytes ({sizes[0] / sizes[1] - 1:+.2%})"
            )
    for kind, label in (
        ("none", "upload"),
        ("none-down", "download"),
        ("proxy", "upload behind the delay proxy"),
    ):
        now = [r.files_s for r in runs if r.case == f"{kind}:argosy"]
        base = [r.files_s for r in runs if r.case == f"{kind}:{BASE}"]
        if now and base:
            a, b = dirs_report.median(now), dirs_report.median(base)
            lines.append(
                f"  none {label:<31}{a:7.0f} vs {b:7.0f} files/s  {a / b:.2f}x   "
                f"(base {min(base):.0f}-{max(base):.0f})"
            )
    return ["argosy now / argosy-base (the --baseline copy), same rounds:", *lines] if lines else []


def _s5cmd_cp_down(ctx: Ctx, prefix: str, out: Path, proxied: bool = False) -> list[str]:
    return [
        S5CMD,
        "--endpoint-url",
        _endpoint(ctx, proxied),
        "cp",
        f"s3://{ctx.bucket}/{prefix}*",
        f"{out}/",
    ]


def _boto3_each(threads: int) -> Callable[[Ctx, str, Path], list[str]]:
    return lambda ctx, base, source: [
        PY,
        "-m",
        "bench.peer_dirs",
        "put-each",
        str(source),
        ctx.bucket,
        base,
        str(threads),
    ]


def corpus_rm(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class Unit:
    name: str
    run: Callable[[Ctx, int], None]
    slow: bool = False  # boto3 per file: only in the first --slow-runs rounds
    proxied: bool = False


UNITS: tuple[Unit, ...] = (
    Unit("argosy tar.zst up+down", unit_argosy_archive),
    Unit("argo up+down", unit_argo),
    Unit("s5cmd pipe", unit_s5cmd_pipe),
    Unit("argosy none", flat_unit("none:argosy", _argosy_none, download=_argosy_none_down)),
    Unit("s5cmd cp", flat_unit("none:s5cmd", _s5cmd_cp, download=_s5cmd_cp_down)),
    Unit("boto3 16 threads", flat_unit("none:boto3-16", _boto3_each(16)), slow=True),
    Unit("boto3 sequential", flat_unit("none:boto3-seq", _boto3_each(1)), slow=True),
    Unit(
        "proxied argosy none",
        flat_unit("proxy:argosy", _argosy_none, download=_argosy_none_down, proxied=True),
        proxied=True,
    ),
    Unit(
        "proxied s5cmd cp",
        flat_unit(
            "proxy:s5cmd",
            lambda ctx, base, source: _s5cmd_cp(ctx, base, source, proxied=True),
            download=lambda ctx, prefix, out: _s5cmd_cp_down(ctx, prefix, out, proxied=True),
            proxied=True,
        ),
        proxied=True,
    ),
    Unit(
        "proxied boto3 seq",
        flat_unit("proxy:boto3-seq", _boto3_each(1), proxied=True),
        slow=True,
        proxied=True,
    ),
)


# (comparison, Argosy's unit, the peer's unit, [(label, argosy case, peer case, metric,
# target)]): what --pairs N runs, N pairs each
PAIRS: tuple[tuple[str, str, str, tuple[tuple[str, str, str, str, float], ...]], ...] = (
    (
        "tar.zst",
        "argosy tar.zst up+down",
        "s5cmd pipe",
        (
            ("tar.zst upload / tar|zstd|s5cmd pipe", "up:argosy", "up:s5cmd-pipe", "mib_s", 1.1),
            (
                "download+extract / s5cmd cat|zstd -d|tar -x",
                "down:argosy",
                "down:s5cmd-cat",
                "mib_s",
                1.1,
            ),
        ),
    ),
    (
        "none",
        "argosy none",
        "s5cmd cp",
        (
            ("none upload / s5cmd cp (files/s)", "none:argosy", "none:s5cmd", "files_s", 1.1),
            (
                "none download / s5cmd cp (files/s)",
                "none-down:argosy",
                "none-down:s5cmd",
                "files_s",
                1.1,
            ),
        ),
    ),
    (
        "proxy",
        "proxied argosy none",
        "proxied s5cmd cp",
        (
            ("+delay: none upload / s5cmd cp", "proxy:argosy", "proxy:s5cmd", "files_s", 1.1),
            (
                "+delay: none download / s5cmd cp",
                "proxy-down:argosy",
                "proxy-down:s5cmd",
                "files_s",
                1.1,
            ),
        ),
    ),
)


# with --baseline, the paired mode also sets Argosy against that older copy of itself: the
# before/after of a change as a ratio taken pair by pair (> 1: this copy faster)
BASELINE_PAIRS: tuple[tuple[str, str, str, tuple[tuple[str, str, str, str, float], ...]], ...] = (
    (
        "tar.zst-base",
        "argosy tar.zst up+down",
        "argosy tar.zst up+down (baseline)",
        (
            ("tar.zst upload / argosy-base", "up:argosy", f"up:{BASE}", "mib_s", 1.0),
            ("download+extract / argosy-base", "down:argosy", f"down:{BASE}", "mib_s", 1.0),
        ),
    ),
    (
        "none-base",
        "argosy none",
        "argosy none (baseline)",
        (
            ("none upload / argosy-base", "none:argosy", f"none:{BASE}", "files_s", 1.0),
            (
                "none download / argosy-base",
                "none-down:argosy",
                f"none-down:{BASE}",
                "files_s",
                1.0,
            ),
        ),
    ),
    (
        "proxy-base",
        "proxied argosy none",
        "proxied argosy none (baseline)",
        (
            ("+delay: none upload / argosy-base", "proxy:argosy", f"proxy:{BASE}", "files_s", 1.0),
            (
                "+delay: none download / argosy-base",
                "proxy-down:argosy",
                f"proxy-down:{BASE}",
                "files_s",
                1.0,
            ),
        ),
    ),
)


def run_pairs(ctx: Ctx, units: list[Unit], n: int, rng: random.Random, first: int) -> None:
    """N pairs of every comparison whose two units are selected, the comparisons taking
    turns (pair 1 of each, then pair 2 of each, ...); every run has a round of its own
    (a unit in two comparisons writes under its round's name)."""
    by_name = {u.name: u for u in units}
    chosen = [
        (name, mine, theirs)
        for name, mine, theirs, _ in PAIRS + BASELINE_PAIRS
        if mine in by_name and theirs in by_name
    ]
    for i in range(n):
        for k, (name, mine, theirs) in enumerate(chosen):
            ctx.pair = f"{name}#{i}"
            for unit in pairs.shuffled(rng, [by_name[mine], by_name[theirs]]):
                unit.run(ctx, first + i * len(chosen) + k)
    ctx.pair = ""


def pair_summary(runs: list[DirRun]) -> list[pairs.PairStats]:
    stats = []
    for name, _, _, comparisons in PAIRS + BASELINE_PAIRS:
        for label, mine, theirs, metric, target in comparisons:

            def speeds(case: str, name: str = name, metric: str = metric) -> dict[str, float]:
                return {
                    r.pair: getattr(r, metric)
                    for r in runs
                    if r.case == case and r.pair.startswith(name + "#")
                }

            got = pairs.ratios(speeds(mine), speeds(theirs))
            if got:
                stats.append(pairs.PairStats(label, got, target))
    return stats


def pair_lines(stats: list[pairs.PairStats], runs: list[DirRun], n: int) -> list[str]:
    lines = [
        f"Paired mode: {n} pair(s) per comparison, argosy and the peer back to back in a "
        "random order; argosy's speed over the peer's, pair by pair (> 1: argosy faster):",
        *[s.line() for s in stats],
    ]
    for case in sorted({r.case for r in runs if r.pair}):
        got = [r for r in runs if r.pair and r.case == case]
        rate = sorted(r.files_s if case.startswith(("none", "proxy")) else r.mib_s for r in got)
        unit = "files/s" if case.startswith(("none", "proxy")) else "MiB/s"
        lines.append(
            f"    {case:<20}{dirs_report.median(rate):7.0f} {unit} ({rate[0]:.0f}-{rate[-1]:.0f})"
            f"  peak RSS {max(r.peak_rss for r in got) / MiB:.0f} MiB  CPU "
            f"{dirs_report.median([r.cpu_seconds for r in got]):.1f} s  server "
            f"{dirs_report.median([r.server_cpu for r in got]):.1f} s"
        )
    return lines


# ------------------------------------------------------------------ main


def run_versions() -> dict[str, str]:
    return versions.collect(
        ("argosy", "boto3", "botocore", "zstandard", "isal", "awscrt"),
        {
            "s5cmd": [S5CMD, "version"],
            "tar": ["tar", "--version"],
            "zstd": ["zstd", "--version"],
            "gzip": ["gzip", "--version"],
        },
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.dirs", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--runs", type=int, default=3, help="round-robin rounds over the cases")
    p.add_argument("--pairs", type=int, default=0, help="pairs per (argosy, peer) comparison")
    p.add_argument("--seed", type=int, help="seed of the random case order (default: drawn)")
    p.add_argument(
        "--slow-runs",
        type=int,
        default=1,
        help="rounds that include the boto3 per-file cases (16 threads, "
        "sequential, proxied sequential: ~1-2 min each plus ~30 s of deletes)",
    )
    p.add_argument("--corpus", type=Path, help="the tree to move (default: build one)")
    p.add_argument("--max-files", type=int, default=20_000, help="corpus build limit")
    p.add_argument("--max-mib", type=int, default=300, help="corpus build limit")
    p.add_argument("--subset", type=int, default=2000, help="files behind the delay proxy")
    p.add_argument("--delay-ms", type=float, default=20.0, help="delay proxy: ms a request")
    p.add_argument(
        "--only", help="comma-separated subset of the cases: " + ", ".join(u.name for u in UNITS)
    )
    p.add_argument("--env", type=Path, help="use the RGW described by this env file")
    p.add_argument("--tmp", type=Path, help="where the temp folder goes (default: system temp)")
    p.add_argument(
        "--scratch",
        choices=["ext4"],
        help="write the downloads and Argo's temp files to a new ext4 with a journal, "
        "mounted from a sparse image in the temp folder (root; bench/scratchfs.py)",
    )
    p.add_argument(
        "--scratch-gib", type=int, default=64, help="the scratch filesystem's size (sparse)"
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="PKGDIR",
        help="also run argosy's none cases from the argosy package in PKGDIR",
    )
    args = p.parse_args(argv)
    if args.baseline and not (args.baseline / "argosy" / "main.py").is_file():
        p.error(f"--baseline {args.baseline} holds no argosy/main.py")
    if args.runs < 0 or args.pairs < 0 or args.slow_runs < 0 or args.subset < 1:
        p.error("--subset must be at least 1; --runs, --pairs and --slow-runs at least 0")
    if args.runs + args.pairs < 1:
        p.error("nothing to run: --runs and --pairs are both 0")
    if args.corpus and not args.corpus.is_dir():
        p.error(f"--corpus {args.corpus} is not a folder")
    return args


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so the cleanup below runs (proxy, RGW, work folder)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    seed = pairs.new_seed(args.seed)
    rng = random.Random(seed)
    signal.signal(signal.SIGTERM, _terminated)
    units = list(UNITS)
    if args.baseline:
        units += baseline_units(args.baseline.resolve())
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {u.name for u in units}
        if unknown:
            raise SystemExit(
                f"unknown cases {sorted(unknown)}; known: {', '.join(u.name for u in units)}"
            )
        units = [u for u in units if u.name in wanted]
    for needed in ("tar", "zstd", "gzip", "bash"):
        if not shutil.which(needed):
            raise SystemExit(f"{needed} not found (apt-get install {needed})")
    compile_argosy(*([args.baseline.resolve()] if args.baseline else []))
    began, stamp = time.monotonic(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="argosy-dirs-", dir=args.tmp))
    state = work / "rgw"
    ctx: Ctx | None = None
    proxy: Proxy | None = None
    proxy_stats: dict[str, Any] = {}
    scratch = contextlib.ExitStack()
    try:
        out = work
        if args.scratch:
            out = scratch.enter_context(scratchfs.ext4(work, args.scratch_gib))
            log(f"scratch filesystem: a new {args.scratch} ({args.scratch_gib} GiB) at {out}")
        if args.corpus:
            tree_root = args.corpus.resolve()
            tree = corpus.stats(tree_root)
            log(f"corpus {tree_root}: {tree.files} files, {tree.bytes / MiB:.0f} MiB")
        else:
            tree_root = work / "corpus"
            log(
                f"building the corpus in {tree_root} (<= {args.max_files} files, "
                f"<= {args.max_mib} MiB)"
            )
            tree = corpus.build(tree_root, args.max_files, args.max_mib * MiB)
            log(f"corpus: {tree.files} files, {tree.bytes / MiB:.0f} MiB")
        corpus.warm(tree_root)
        links = sum(
            1
            for d, _, names in os.walk(tree_root)
            for n in names
            if os.path.islink(os.path.join(d, n))
        )
        if links or tree.other:
            log(
                f"WARNING: the corpus holds {links} symlinks and {tree.other} special files: "
                "the tools treat them differently (s5cmd follows links, boto3 peers skip "
                "them); counts compare regular files only"
            )
        subset_root = work / "subset" / tree_root.name
        subset_tree = corpus.subset(tree_root, subset_root, args.subset)
        log(f"proxied subset: {subset_tree.files} files, {subset_tree.bytes / MiB:.1f} MiB")
        (out / "down").mkdir()
        if args.env:
            gateway = rgw.from_env_file(args.env)
            log(f"using the RGW at {gateway.endpoint} ({args.env})")
        else:
            log(f"starting Ceph RGW in {state}")
            gateway = rgw.start(state)
            log(f"RGW at {gateway.endpoint}")
        ctx = Ctx(
            gateway,
            f"argosy-dirs-{secrets.token_hex(4)}",
            admin_client(gateway),
            out,
            tree_root,
            tree,
            subset_root,
            subset_tree,
            fs=FsState(out / "fs", log),
        )
        ctx.admin.create_bucket(Bucket=ctx.bucket)
        warmed = rgw.warm_up(ctx.gateway, ctx.admin, ctx.bucket)
        log(f"warmed the server up in {warmed:.1f} s (untimed)")
        if any(u.proxied for u in units):
            proxy = start_proxy(gateway.endpoint, args.delay_ms)
            ctx.proxy = proxy
            log(f"delay proxy (+{args.delay_ms:g} ms a request) at {proxy.endpoint}")
        meta: dict[str, Any] = {
            "started_utc": stamp,
            "warm_up_s": warmed,
            "runs": args.runs,
            "pairs": args.pairs,
            "seed": seed,
            "slow_runs": args.slow_runs,
            "corpus": str(tree_root) if args.corpus else "built",
            "corpus_files": tree.files,
            "corpus_bytes": tree.bytes,
            "corpus_symlinks": links,
            "subset_files": subset_tree.files,
            "subset_bytes": subset_tree.bytes,
            "delay_ms": args.delay_ms,
            "scratch": args.scratch or "",
            "endpoint": gateway.endpoint,
            "own_rgw": not args.env,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
            "versions": run_versions(),
            "cases": [u.name for u in units],
        }
        log(f"load average {fmt_load(meta['loadavg_start'])}; versions {meta['versions']}")
        for r in range(args.runs):
            for unit in pairs.shuffled(rng, units):
                if unit.slow and r >= args.slow_runs:
                    continue
                unit.run(ctx, r)
        run_pairs(ctx, units, args.pairs, rng, first=args.runs)
        if proxy:
            proxy_stats = stop_proxy(proxy)
            proxy = None
        meta.update(
            loadavg_end=os.getloadavg(),
            seconds=round(time.monotonic() - began, 1),
            between_runs_seconds=round(ctx.overhead, 1),
            failures=ctx.failures,
            waited_for_fs_seconds=round(ctx.fs.waited_s, 1) if ctx.fs else 0.0,
            proxy=proxy_stats,
        )
        pair_stats = pair_summary(ctx.runs)
        meta["pair_stats"] = [s.as_dict() for s in pair_stats]
        text = dirs_report.table([r for r in ctx.runs if not r.pair], meta)
        if pair_stats:
            text += "\n\n" + "\n".join(pair_lines(pair_stats, ctx.runs, args.pairs))
        extra = baseline_lines(ctx.runs)
        if extra:
            text += "\n\n" + "\n".join(extra)
        print(text)
        for failure in ctx.failures:
            print(f"FAILED: {failure}")
        out = RESULTS / f"dirs-{stamp}.json"
        dirs_report.write_json(out, meta, ctx.runs, text)
        print(f"results: {out.relative_to(ROOT)}; took {meta['seconds']:.0f} s")
        return 1 if ctx.failures else 0
    finally:
        if proxy:
            stop_proxy(proxy)
        if ctx is not None:
            try:
                clear_bucket(ctx)
                ctx.admin.delete_bucket(Bucket=ctx.bucket)
            except Exception as error:  # noqa: BLE001 - cleanup must not hide the real error
                log(f"could not remove bucket {ctx.bucket}: {error}")
        if not args.env and state.exists():
            rgw.stop(state)
            log("RGW stopped")
        # downloaded trees are kept until here: deleting one mid-run made the next tool's
        # extraction slow in the kernel, whoever it was (ext4 will not reuse an inode
        # freed in the last 60-300 s, and its allocator checked each of the 20k just
        # freed for every file created: 12-15 s of system time against ~1 s)
        scratch.close()  # a scratch filesystem goes as one file, its trees unread
        shutil.rmtree(work, ignore_errors=True)


def fmt_load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
