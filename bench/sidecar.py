"""The sidecar's memory and speed against Ceph RGW: `argosy wait` uploading big outputs and
`argosy init` fetching them back, and `argosy init` with many inputs behind a slow network.

    .venv/bin/python -m bench.sidecar [--runs 2] [--sizes-mib 1024,4096] [--folder-mib 1024]
                                      [--formats tar.gz,tar.zst] [--inputs 8] [--input-mib 4,64]
                                      [--delay-ms 20] [--parts 1,2] [--no-argo]
                                      [--env FILE] [--tmp DIR]

Starts its own RGW with scripts/rgw.sh (or uses --env FILE), one bucket, and runs every
step as a pod's container runs: a separate process with a template, a var dir, --root
and an artifact-repositories ConfigMap whose secrets are files (bench/sidecar_pods.py).
Each process is measured by bench/rss.py (wall time; peak RSS of the whole process tree,
psutil every 20 ms, and the kernel's VmHWM; CPU) and bench/disk.py (disk allocated under
the pod's folders, every 50 ms). Data files are random (os.urandom, 16 MiB at a time) in a
temp folder that is removed at the end, with everything else the run started.

Part 1, for each case (a file of each --sizes-mib with `archive: none`, so a multipart
upload; a --folder-mib folder of --folder-files large files in each of --formats:
tar.gz is the default archive, tar.zst and tar are `argosy: {archive: ...}`, zip is
`archive: {zip: {}}`), in --runs rounds:
    argosy wait   upload the output (main already exited 0)
    argosy init   download it back as an input into an empty root; compared with the
                  source (bytes in the first round, sizes after)
    argo up/down  Argo's method, bench/peer_argo.py (file and tar.gz cases; --no-argo skips
                  them): tar w:gz level 6 staged on disk then boto3 upload_file with
                  minio-go's 4 threads x 16 MiB parts; single-stream GET to disk, then
                  extract. Prints argosy/argo time ratios and the disk each used.
The bucket is emptied, RGW's garbage collection forced and dirty pages synced between
the tools of a case.

Part 2: --inputs objects of --input-mib MiB (written with `argosy cp`), read through
bench/delay_proxy.py (+--delay-ms on every request) in --runs rounds, in a rotating order:
    init all inputs   one `argosy init` fetching all of them
    init 1 input      --inputs separate inits, one input each: the slowest and the sum
    init one by one   one process fetching them in sequence (bench/sidecar_seq.py: Argo's
                      order, start-up paid once)
    init all bytes as 1   one input as big as all of them together: the time the bytes
                      alone take through the proxy, a floor no overlap can beat
and prints the 8-input time against the slowest single (target: ratio close to 1), once
per --input-mib size. Small inputs (4 MiB) are latency-bound: each pays the proxy's delay
on every request, which is what running the inputs together saves. Large ones (64 MiB)
are bound by the bandwidth through the proxy on this machine: all of them together cannot
beat "the same bytes as 1 input", so that row is their floor.

Targets: peak RSS under 200 MiB for every argosy process; the ratio near 1. Results:
bench/results/sidecar-<UTC time>.json (see bench/sidecar_report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import disk, files, noise, rgw, rss, versions
from bench import sidecar_pods as pods
from bench import sidecar_report as report
from bench.dirs import Proxy, admin_client, start_proxy, stop_proxy
from bench.s3 import PACKAGE_FOLDERS
from bench.sidecar_report import (
    ARGO_DOWN,
    ARGO_UP,
    BULK,
    INIT,
    MANY,
    SEQUENTIAL,
    SINGLE,
    WAIT,
    Step,
)

MiB = 1 << 20
ROOT = rgw.ROOT
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
MIN_RATE = 10 * MiB  # a process slower than this (plus two minutes) is killed


def log(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    gateway: rgw.Rgw
    bucket: str
    admin: Any  # a boto3 client, used only between the measured processes
    work: Path
    data: Path  # the producing pod's root: data/tmp/<files>
    repo: pods.Repository
    pods: Path
    proxy: Proxy | None = None
    steps: list[Step] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    """One output of part 1 and the input that reads it back."""

    label: str  # "file 1024 MiB" ...
    slug: str  # for pod names and keys
    name: str  # the artifact's name
    source: Path  # on the disk, under Bench.data
    size: int
    fmt: str  # none | tar.gz | tar.zst
    argo: bool  # Argo's method is run too

    @property
    def path(self) -> str:
        """The artifact's path in the pod (under --root)."""
        return "/tmp/" + self.source.name

    def output(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": self.name, "path": self.path}
        if self.fmt in ("none", "zip"):
            spec["archive"] = {self.fmt: {}}
        elif self.fmt != "tar.gz":  # tar.gz: Argo's default archive, nothing to say
            spec["argosy"] = {"archive": self.fmt}  # Argosy's own: tar.zst, plain tar
        return spec


# ------------------------------------------------------------------ bucket and server


def clear_bucket(b: Bench) -> None:
    """Delete every object and abort every multipart upload (bounded: 100 pages each)."""
    for _ in range(100):
        listing = b.admin.list_objects_v2(Bucket=b.bucket)
        keys = [{"Key": o["Key"]} for o in listing.get("Contents", [])]
        if keys:
            b.admin.delete_objects(Bucket=b.bucket, Delete={"Objects": keys, "Quiet": True})
        if not listing.get("IsTruncated"):
            break
    for _ in range(100):
        uploads = b.admin.list_multipart_uploads(Bucket=b.bucket)
        for upload in uploads.get("Uploads", []):
            b.admin.abort_multipart_upload(
                Bucket=b.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        if not uploads.get("IsTruncated"):
            break


def between_runs(b: Bench) -> None:
    clear_bucket(b)
    rgw.gc(b.gateway)
    os.sync()


def stored_size(b: Bench, key: str) -> int:
    try:
        return int(b.admin.head_object(Bucket=b.bucket, Key=key)["ContentLength"])
    except Exception:  # noqa: BLE001 - a missing object reads as 0 bytes
        return 0


# ------------------------------------------------------------------ measuring


def peer_env(b: Bench, pod: pods.Pod) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **b.gateway.env(), "TMPDIR": str(pod.tmp)}


def measure(
    b: Bench,
    *,
    part: str,
    case: str,
    tool: str,
    round_: int,
    size: int,
    cmd: list[str],
    env: dict[str, str],
    watched: list[Path],
    proxied: bool = False,
) -> Step | None:
    pids = noise.daemon_pids(b.gateway.state_dir)
    if proxied and b.proxy is not None:
        pids.append(b.proxy.proc.pid)  # the proxy's CPU counts as the server's
    watch = noise.CpuWatch(pids)
    watch.start()
    with disk.DiskPeak(watched) as used:
        m = rss.run(cmd, env=env, cwd=ROOT, timeout=120 + size / MIN_RATE)
    server_cpu, foreign_cpu = watch.stop(m.cpu_seconds)
    if m.returncode != 0:
        why = "timed out" if m.timed_out else f"exit {m.returncode}"
        detail = (m.stderr.strip() or m.stdout.strip())[-800:]
        fail(b, f"{case} {tool} round {round_ + 1}", f"{why}: {' '.join(cmd)}\n    {detail}")
        return None
    inner = None
    for line in reversed(m.stdout.strip().splitlines()):
        try:
            inner = float(json.loads(line)["seconds"])
            break
        except (ValueError, KeyError, TypeError):
            continue
    return Step(
        part,
        case,
        tool,
        round_,
        size,
        m.seconds,
        inner,
        m.peak_rss,
        m.cpu_seconds,
        server_cpu,
        foreign_cpu,
        used.peak,
        command=" ".join(cmd),
    )


def fail(b: Bench, what: str, why: str) -> None:
    b.failures.append(f"{what}: {why}")
    log(f"FAILED {what}: {why}")


def keep(b: Bench, step: Step) -> None:
    b.steps.append(step)
    log(
        f"round {step.round + 1} {step.case:<24} {step.tool:<16}{step.mib_s:6.0f} MiB/s "
        f"{step.seconds:6.2f} s  RSS {step.peak_rss / MiB:5.0f} MiB  disk "
        f"{step.disk_peak / MiB:5.0f} MiB  CPU {step.cpu_seconds:5.1f} s  server "
        f"{step.server_cpu:5.1f} s  others {step.foreign_share:4.0%}"
        f"{'  verified ' + step.verified if step.verified else ''}"
    )


def same_content(source: Path, got: Path, *, full: bool) -> str | None:
    """None if got holds what source holds (a file, or a flat folder of files)."""
    if source.is_file():
        if not got.is_file() or got.stat().st_size != source.stat().st_size:
            return f"{got}: missing or {got.stat().st_size if got.exists() else -1} bytes"
        return None if not full or files.same_bytes(source, got) else f"{got}: bytes differ"
    want = sorted(p.name for p in source.iterdir())
    have = sorted(p.name for p in got.iterdir()) if got.is_dir() else []
    if want != have:
        return f"{got}: holds {have[:5]}, want {want[:5]}"
    for name in want:
        problem = same_content(source / name, got / name, full=full)
        if problem:
            return problem
    return None


def verify(b: Bench, step: Step, source: Path, got: Path) -> bool:
    full = step.round == 0
    problem = same_content(source, got, full=full)
    if problem:
        fail(b, f"{step.case} {step.tool} round {step.round + 1}", problem)
        return False
    step.verified = "bytes" if full else "sizes"
    return True


# ------------------------------------------------------------------ part 1


def argosy_round_trip(b: Bench, case: Case, r: int) -> None:
    up_pod = pods.new_pod(b.pods, f"{case.slug}-r{r}-up", root=b.data)
    down_pod = pods.new_pod(b.pods, f"{case.slug}-r{r}-down")
    try:
        up = measure(
            b,
            part="transfer",
            case=case.label,
            tool=WAIT,
            round_=r,
            size=case.size,
            cmd=pods.wait_command(up_pod, b.repo, [case.output()]),
            env=pods.env(b.repo, up_pod),
            watched=up_pod.watched,
        )
        if up is None:
            return
        key = pods.uploaded_key(up_pod, case.name)
        up.stored = stored_size(b, key) if key else 0
        if not key or not up.stored:
            fail(
                b,
                f"{case.label} {WAIT} round {r + 1}",
                f"outputs.json: {pods.results(up_pod, 'outputs.json')}",
            )
            return
        up.verified = "by the download"
        keep(b, up)
        dest = down_pod.root / "tmp" / case.source.name
        cmd = pods.init_command(
            down_pod, b.repo, [{"name": case.name, "path": case.path, "s3": {"key": key}}]
        )
        down = measure(
            b,
            part="transfer",
            case=case.label,
            tool=INIT,
            round_=r,
            size=case.size,
            cmd=cmd,
            env=pods.env(b.repo, down_pod),
            watched=down_pod.watched,
        )
        if down is None:
            return
        down.stored = up.stored
        if verify(b, down, case.source, dest):
            keep(b, down)
    finally:
        up_pod.remove()
        down_pod.remove()
        between_runs(b)


def argo_round_trip(b: Bench, case: Case, r: int) -> None:
    pod = pods.new_pod(b.pods, f"{case.slug}-r{r}-argo")
    key = f"argo/{case.slug}-r{r}/{case.name}{'.tgz' if case.fmt != 'none' else ''}"
    dest = pod.root / "tmp" / case.source.name
    dest.parent.mkdir(parents=True)
    env = peer_env(b, pod)
    if case.fmt == "none":
        up_cmd = [PY, "-m", "bench.peer_argo", "up-file", str(case.source), b.bucket, key]
        down_cmd = [PY, "-m", "bench.peer_argo", "down-file", b.bucket, key, str(dest)]
    else:
        up_cmd = [
            PY,
            "-m",
            "bench.peer_argo",
            "up-dir",
            str(case.source),
            b.bucket,
            key,
            str(pod.tmp),
        ]
        down_cmd = [PY, "-m", "bench.peer_argo", "down-dir", b.bucket, key, str(dest), str(pod.tmp)]
    try:
        up = measure(
            b,
            part="transfer",
            case=case.label,
            tool=ARGO_UP,
            round_=r,
            size=case.size,
            cmd=up_cmd,
            env=env,
            watched=pod.watched,
        )
        if up is None:
            return
        up.stored = stored_size(b, key)
        if not up.stored:
            fail(b, f"{case.label} {ARGO_UP} round {r + 1}", f"no object at {key}")
            return
        up.verified = "by the download"
        keep(b, up)
        down = measure(
            b,
            part="transfer",
            case=case.label,
            tool=ARGO_DOWN,
            round_=r,
            size=case.size,
            cmd=down_cmd,
            env=env,
            watched=pod.watched,
        )
        if down is None:
            return
        down.stored = up.stored
        if verify(b, down, case.source, dest):
            keep(b, down)
    finally:
        pod.remove()
        between_runs(b)


def make_folder(folder: Path, size: int, count: int) -> None:
    folder.mkdir(parents=True)
    each = size // count
    for i in range(count):
        files.make_random_file(
            folder / f"part-{i:02d}.bin", each if i < count - 1 else size - each * (count - 1)
        )


def part_one(b: Bench, args: argparse.Namespace) -> None:
    tmp = b.data / "tmp"
    for mib in args.sizes_mib:
        source = tmp / f"big-{mib}MiB.bin"
        log(f"writing {source}")
        files.make_random_file(source, mib * MiB)
        case = Case(
            f"file {mib} MiB, none", f"file{mib}", "big", source, mib * MiB, "none", args.argo
        )
        try:
            for r in range(args.runs):
                for unit in rotate([argosy_round_trip, argo_round_trip], r):
                    if unit is argo_round_trip and not case.argo:
                        continue
                    unit(b, case, r)
        finally:
            files.remove(source)
    if not args.formats:
        return
    folder = tmp / "folder"
    log(f"writing {folder}: {args.folder_files} files, {args.folder_mib} MiB")
    make_folder(folder, args.folder_mib * MiB, args.folder_files)
    try:
        for r in range(args.runs):
            for fmt in rotate(args.formats, r):
                case = Case(
                    f"folder {args.folder_mib} MiB {fmt}",
                    f"folder-{fmt.replace('.', '')}",
                    "folder",
                    folder,
                    args.folder_mib * MiB,
                    fmt,
                    args.argo and fmt == "tar.gz",
                )
                argosy_round_trip(b, case, r)
                if case.argo:
                    argo_round_trip(b, case, r)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rotate(items: list[Any], r: int) -> list[Any]:
    shift = r % len(items) if items else 0
    return items[shift:] + items[:shift]


# ------------------------------------------------------------------ part 2


def upload_inputs(b: Bench, count: int, mib: int) -> list[str]:
    """count objects of mib MiB and one of count x mib MiB (the last key), written by
    `argosy cp` so they carry Argosy's checksum record (init verifies them, as it would in
    a workflow). Returns their keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(b.gateway.env())
    keys = [f"inputs/in-{i}.bin" for i in range(count)] + ["inputs/all.bin"]
    for key, source, size in [
        *((k, b.work / "input.bin", mib) for k in keys[:-1]),
        (keys[-1], b.work / "all.bin", count * mib),
    ]:
        if not source.exists():
            files.make_random_file(source, size * MiB)
        subprocess.run(
            [pods.ARGOSY, "cp", "-q", str(source), f"s3://{b.bucket}/{key}"],
            env=env,
            check=True,
            timeout=600,
            cwd=ROOT,
        )
    return keys


def inputs_label(args: argparse.Namespace, mib: int) -> str:
    return f"{args.inputs} x {mib} MiB +{args.delay_ms:g} ms"


def part_two(b: Bench, args: argparse.Namespace) -> None:
    for mib in args.input_mib:
        inputs_case(b, args, mib)


def inputs_case(b: Bench, args: argparse.Namespace, mib: int) -> None:
    *keys, all_key = upload_inputs(b, args.inputs, mib)
    sources = {"input": b.work / "input.bin", "all": b.work / "all.bin"}
    assert b.proxy is not None
    repo = pods.write_repository(
        b.work, gateway=b.gateway, bucket=b.bucket, endpoint=b.proxy.endpoint
    )
    specs = [
        {"name": f"in{i}", "path": f"/tmp/in-{i}.bin", "s3": {"key": key}}
        for i, key in enumerate(keys)
    ]
    size = args.inputs * mib * MiB
    label = inputs_label(args, mib)
    units: list[tuple[str, list[dict[str, Any]]]] = [(MANY, specs), (SEQUENTIAL, specs)]
    units += [(SINGLE, [spec]) for spec in specs]
    units.append((BULK, [{"name": "all", "path": "/tmp/all.bin", "s3": {"key": all_key}}]))
    try:
        for r in range(args.runs):
            for tool, inputs in rotate(units, r):
                pod = pods.new_pod(b.pods, f"inputs-r{r}-{len(b.steps)}")
                try:
                    if tool == SEQUENTIAL:
                        cmd = [PY, "-m", "bench.sidecar_seq", *pods.init_args(pod, repo, inputs)]
                    else:
                        cmd = pods.init_command(pod, repo, inputs)
                    step = measure(
                        b,
                        part="inputs",
                        case=label,
                        tool=tool,
                        round_=r,
                        size=size if tool == BULK else len(inputs) * mib * MiB,
                        cmd=cmd,
                        env=pods.env(repo, pod),
                        watched=pod.watched,
                        proxied=True,
                    )
                    if step is None:
                        continue
                    missing = pods.not_downloaded(pod)
                    if missing:
                        fail(b, f"{label} {tool} round {r + 1}", "; ".join(missing))
                        continue
                    source = sources["all" if tool == BULK else "input"]
                    got = [pod.root / str(spec["path"]).lstrip("/") for spec in inputs]
                    if all(verify(b, step, source, g) for g in got):
                        keep(b, step)
                finally:
                    pod.remove()
    finally:
        for source in sources.values():
            files.remove(source)
    log(f"part 2 moved {size / MiB:.0f} MiB a round")


# ------------------------------------------------------------------ main


def run_versions() -> dict[str, str]:
    return versions.collect(
        ("argosy", "boto3", "botocore", "isal", "zstandard", "crc32c", "psutil")
    )


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.sidecar", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--runs", type=int, default=2, help="rounds of every case")
    p.add_argument(
        "--sizes-mib",
        type=_ints,
        default=[1024, 4096],
        help="file outputs (archive none), comma-separated MiB",
    )
    p.add_argument("--folder-mib", type=int, default=1024, help="size of the folder output")
    p.add_argument("--folder-files", type=int, default=4, help="files in the folder")
    p.add_argument(
        "--formats",
        type=lambda s: [f for f in s.split(",") if f],
        default=["tar.gz", "tar.zst"],
        help='folder archives ("": no folder)',
    )
    p.add_argument("--inputs", type=int, default=8, help="part 2: inputs of one init")
    p.add_argument(
        "--input-mib",
        type=_ints,
        default=[4, 64],
        help="part 2: size of each input, comma-separated MiB (4: latency-bound,"
        " what running inputs together saves; 64: bound by the bandwidth"
        " through the proxy)",
    )
    p.add_argument("--delay-ms", type=float, default=20.0, help="part 2: delay a request")
    p.add_argument("--parts", type=_ints, default=[1, 2], help="which parts to run")
    p.add_argument(
        "--no-argo",
        dest="argo",
        action="store_false",
        help="skip Argo's method (bench/peer_argo.py)",
    )
    p.add_argument("--env", type=Path, help="use the RGW described by this env file")
    p.add_argument("--tmp", type=Path, help="where the temp folder goes (default: system temp)")
    args = p.parse_args(argv)
    if (
        args.runs < 1
        or args.folder_files < 1
        or args.inputs < 1
        or not args.input_mib
        or min(args.input_mib) < 1
    ):
        p.error("--runs, --folder-files, --inputs and --input-mib must be at least 1")
    if any(m < 1 for m in args.sizes_mib) or args.folder_mib < 1:
        p.error("sizes must be at least 1 MiB")
    unknown = set(args.formats) - {"tar.gz", "tar.zst", "tar", "zip"}
    if unknown or set(args.parts) - {1, 2}:
        p.error(f"unknown --formats {sorted(unknown)} or --parts {args.parts}")
    return args


def compile_argosy() -> None:
    """Byte-compile Argosy as a wheel install would (PYTHONDONTWRITEBYTECODE would
    otherwise make every process recompile it, a start-up cost no real pod pays)."""
    folders = [str(ROOT / name) for name in PACKAGE_FOLDERS]
    subprocess.run([PY, "-m", "compileall", "-q", *folders], check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    compile_argosy()
    began, stamp = time.monotonic(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="argosy-sidecar-", dir=args.tmp))
    state = work / "rgw"
    b: Bench | None = None
    try:
        if args.env:
            gateway = rgw.from_env_file(args.env)
            log(f"using the RGW at {gateway.endpoint} ({args.env})")
        else:
            log(f"starting Ceph RGW in {state}")
            gateway = rgw.start(state)
            log(f"RGW at {gateway.endpoint}")
        bucket = f"argosy-sidecar-{secrets.token_hex(4)}"
        (work / "data" / "tmp").mkdir(parents=True)
        b = Bench(
            gateway,
            bucket,
            admin_client(gateway),
            work,
            work / "data",
            pods.write_repository(work, gateway=gateway, bucket=bucket, endpoint=gateway.endpoint),
            work / "pods",
        )
        b.admin.create_bucket(Bucket=bucket)
        meta: dict[str, Any] = {
            "started_utc": stamp,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "endpoint": gateway.endpoint,
            "own_rgw": not args.env,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
            "versions": run_versions(),
            "rss_target_mib": report.RSS_TARGET_MIB,
        }
        if 1 in args.parts:
            part_one(b, args)
        if 2 in args.parts:
            b.proxy = start_proxy(gateway.endpoint, args.delay_ms)
            log(f"delay proxy (+{args.delay_ms:g} ms a request) at {b.proxy.endpoint}")
            part_two(b, args)
            meta["proxy"] = stop_proxy(b.proxy)
            b.proxy = None
        summaries = report.summarize(b.steps)
        rounds = report.inputs_rounds(b.steps)
        blocks = [report.transfer_table(summaries), "\n".join(report.argo_lines(summaries))]
        if 2 in args.parts:
            blocks += [
                "\n".join(
                    report.inputs_lines(
                        report.inputs_rounds(b.steps, inputs_label(args, mib)),
                        inputs=args.inputs,
                        input_mib=mib,
                        delay_ms=args.delay_ms,
                    )
                )
                for mib in args.input_mib
            ]
        meta.update(
            loadavg_end=os.getloadavg(),
            seconds=round(time.monotonic() - began, 1),
            failures=b.failures,
        )
        blocks.append(
            f"load average 1/5/15 min: start {fmt_load(meta['loadavg_start'])}, "
            f"end {fmt_load(meta['loadavg_end'])} ({os.cpu_count()} CPUs, shared "
            "with RGW)"
        )
        text = "\n\n".join(x for x in blocks if x)
        print(text)
        for failure in b.failures:
            print(f"FAILED: {failure}")
        out = RESULTS / f"sidecar-{stamp}.json"
        report.write_json(out, meta, b.steps, summaries, rounds, text)
        print(f"results: {out.relative_to(ROOT)}; took {meta['seconds']:.0f} s")
        return 1 if b.failures else 0
    finally:
        if b is not None:
            if b.proxy is not None:
                stop_proxy(b.proxy)
            try:
                clear_bucket(b)
                b.admin.delete_bucket(Bucket=b.bucket)
            except Exception as error:  # noqa: BLE001 - cleanup must not hide the real error
                log(f"could not remove bucket {b.bucket}: {error}")
        if not args.env and state.exists():
            rgw.stop(state)
            log("RGW stopped")
        shutil.rmtree(work, ignore_errors=True)


def fmt_load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
