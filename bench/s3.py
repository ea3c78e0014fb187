"""Argosy against its peers on a real Ceph RGW: upload and download of one random file.

    .venv/bin/python -m bench.s3 [--size-mib 1024] [--runs 5] [--pairs 0] [--seed S]
                                 [--also-size-mib 4096]
                                 [--env FILE] [--argosy-args "--part-size 32 ..."]
                                 [--tools boto3-tuned,s5cmd] [--tmp DIR]
                                 [--baseline PKGDIR]

Starts its own RGW with scripts/rgw.sh (or uses the one in --env FILE), writes the random
file(s) to a temp folder, then runs every tool's upload and download as separate processes,
round-robin over the tools for --runs rounds (the tools in a new random order each round),
with the object deleted and RGW's garbage collection forced between runs. Then Argosy's
remote-to-remote copy of the main file, bucket to bucket on the same RGW (and the
--baseline copy's; --no-copy skips it), measured like the rest: its peak RSS is the one to
hold to the stream formula. Prints the table (see report.py), Argosy's peak RSS for the
--also-size-mib file and for the copy, and writes bench/results/s3-<timestamp>.json.
Everything it started or wrote is removed at the end.

--pairs N (bench/pairs.py) then runs, for every peer in turn, N pairs of round trips:
Argosy's and the peer's, back to back in a random order, and reports the ratio of the two
speeds pair by pair (median and range), per direction. --runs 0 --pairs N runs the paired
mode alone.

--baseline PKGDIR adds "argosy-base": the same command run from another copy of Argosy
(PKGDIR holds an `argosy` package in real folders, e.g. a `git archive` of an earlier
commit laid out as pyproject.toml's package-dir maps it: cli/ as argosy/, artifacts/ as
argosy/artifacts/, ...), in the same interleaved rounds, so a change is
measured before and after on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from argosy.artifacts.settings import TransferSettings
from bench import files, noise, pairs, peers, report, rgw, rss, versions
from bench.report import Run

MiB = 1 << 20
RESULTS = rgw.ROOT / "bench" / "results"
MIN_RATE = 10 * MiB  # a transfer slower than this (plus a minute) is killed


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """What every run needs: the gateway, the bucket, the admin client, the temp folder."""

    gateway: rgw.Rgw
    bucket: str
    admin: Any  # a boto3 S3 client, used only around the measured processes
    work: Path
    env: dict[str, str]
    failures: list[str]


def admin_client(gateway: rgw.Rgw) -> Any:
    return boto3.client(
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


def tool_env(base: dict[str, str], tool: peers.Tool, gateway: rgw.Rgw) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(gateway.env())
    env.update(tool.extra_env(gateway))
    return env


def clear_bucket(ctx: Context) -> None:
    """Delete every object and abort every multipart upload left in the bucket."""
    for _ in range(100):  # bounded: 100 pages of 1000
        listing = ctx.admin.list_objects_v2(Bucket=ctx.bucket)
        for obj in listing.get("Contents", []):
            ctx.admin.delete_object(Bucket=ctx.bucket, Key=obj["Key"])
        if not listing.get("IsTruncated"):
            break
    for _ in range(100):
        uploads = ctx.admin.list_multipart_uploads(Bucket=ctx.bucket)
        for upload in uploads.get("Uploads", []):
            ctx.admin.abort_multipart_upload(
                Bucket=ctx.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        if not uploads.get("IsTruncated"):
            break


def between_runs(ctx: Context) -> None:
    """Leave the server as the next run should find it: empty bucket, garbage collected,
    dirty pages written out."""
    clear_bucket(ctx)
    rgw.gc(ctx.gateway)
    os.sync()


def measure(
    ctx: Context, tool: peers.Tool, direction: str, transfer: peers.Transfer, size: int, round_: int
) -> Run | None:
    command = (tool.up if direction == "up" else tool.down)(transfer)
    return measure_command(ctx, tool, direction, command, size, round_)


def measure_command(
    ctx: Context, tool: peers.Tool, direction: str, command: list[str], size: int, round_: int
) -> Run | None:
    timeout = 60 + size / MIN_RATE
    watch = noise.CpuWatch(noise.daemon_pids(ctx.gateway.state_dir))
    watch.start()
    m = rss.run(command, env=tool_env(ctx.env, tool, ctx.gateway), cwd=peers.CWD, timeout=timeout)
    server_cpu, foreign_cpu = watch.stop(m.cpu_seconds)
    if m.returncode != 0:
        why = "timed out" if m.timed_out else f"exit {m.returncode}"
        detail = (m.stderr.strip() or m.stdout.strip())[-600:]
        ctx.failures.append(f"{tool.name} {direction} round {round_}: {why}: {detail}")
        log(f"FAILED {tool.name} {direction} ({why}): {detail}")
        return None
    inner = None
    if tool.reports_inner_time:
        try:
            inner = float(json.loads(m.stdout.strip().splitlines()[-1])["seconds"])
        except (ValueError, KeyError, IndexError):
            inner = None
    return Run(
        tool.name,
        direction,
        round_,
        size,
        m.seconds,
        inner,
        m.peak_rss,
        m.tree_rss,
        m.hwm_self,
        m.cpu_seconds,
        server_cpu,
        foreign_cpu,
        "",
    )


def round_trip(
    ctx: Context, tool: peers.Tool, source: Path, round_: int, full_compare: bool
) -> list[Run]:
    """Upload source, download it back, check the bytes, clean up. Returns the runs."""
    size = source.stat().st_size
    key = f"{tool.name}/r{round_}/{source.name}"
    out = ctx.work / "down" / f"{tool.name}-r{round_}"
    runs: list[Run] = []
    try:
        up = measure(
            ctx, tool, "up", peers.Transfer(source, ctx.bucket, key, ctx.gateway), size, round_
        )
        if up is None:
            return runs
        stored = ctx.admin.head_object(Bucket=ctx.bucket, Key=key)["ContentLength"]
        if stored != size:
            ctx.failures.append(
                f"{tool.name} up round {round_}: stored {stored} bytes, sent {size}"
            )
            return runs
        runs.append(up)
        down = measure(
            ctx, tool, "down", peers.Transfer(out, ctx.bucket, key, ctx.gateway), size, round_
        )
        if down is None:
            return runs
        got = out.stat().st_size if out.exists() else -1
        if got != size:
            ctx.failures.append(f"{tool.name} down round {round_}: {got} bytes, want {size}")
            return runs
        down.verified = "size"
        if full_compare:
            if not files.same_bytes(source, out):
                ctx.failures.append(f"{tool.name} down round {round_}: bytes differ")
                return runs
            down.verified = "bytes"
        runs.append(down)
        return runs
    finally:
        files.remove(out)
        between_runs(ctx)
        for r in runs:
            log(
                f"round {round_ + 1} {size // MiB} MiB {tool.name:<14} {r.direction:<5}"
                f"{r.mib_s:7.0f} MiB/s {r.seconds:6.2f} s  RSS {r.peak_rss / MiB:5.0f} MiB  "
                f"CPU {r.cpu_seconds:5.2f} s  server {r.server_cpu:5.2f} s  "
                f"others {r.foreign_share:4.0%}"
                f"{'  verified ' + r.verified if r.verified else ''}"
            )


def remote_copies(ctx: Context, tools: list[peers.Tool], source: Path) -> list[Run]:
    """Each tool's remote-to-remote copy (those that have one), from the bench bucket to a
    second bucket on the same RGW, of an object the first tool uploaded (so it carries
    Argosy's record and the copy checks it part by part)."""
    size = source.stat().st_size
    target = f"{ctx.bucket}-copy"
    key = f"copy/{source.name}"
    ctx.admin.create_bucket(Bucket=target)
    runs: list[Run] = []
    try:
        upload = tools[0].up(peers.Transfer(source, ctx.bucket, key, ctx.gateway))
        subprocess.run(
            upload, env=tool_env(ctx.env, tools[0], ctx.gateway), cwd=peers.CWD, check=True
        )
        for tool in tools:
            if tool.copy is None:
                continue
            command = tool.copy(f"s3://{ctx.bucket}/{key}", f"s3://{target}/{key}")
            run = measure_command(ctx, tool, "copy", command, size, 0)
            if run is not None:
                stored = ctx.admin.head_object(Bucket=target, Key=key)["ContentLength"]
                if stored == size:
                    run.verified = "size"
                    runs.append(run)
                else:
                    ctx.failures.append(f"{tool.name} copy: stored {stored} bytes, want {size}")
                log(
                    f"copy {size // MiB} MiB {tool.name:<14}{run.mib_s:7.0f} MiB/s "
                    f"{run.seconds:6.2f} s  RSS {run.peak_rss / MiB:5.0f} MiB  "
                    f"CPU {run.cpu_seconds:5.2f} s"
                )
            ctx.admin.delete_object(Bucket=target, Key=key)
            rgw.gc(ctx.gateway)
            os.sync()
    finally:
        ctx.admin.delete_object(Bucket=target, Key=key)
        ctx.admin.delete_bucket(Bucket=target)
        between_runs(ctx)
    return runs


def tool_versions() -> dict[str, str]:
    found = versions.collect(
        ("argosy", "boto3", "botocore", "s3transfer", "minio", "psutil"),
        {
            "s5cmd": [str(peers.s5cmd_binary()), "version"],
            "rclone": [str(peers.rclone_binary()), "version"],
        },
    )
    if _installed("awscrt"):
        found["awscrt"] = "INSTALLED (slows boto3; remove it)"
    return found


def _installed(package: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(package)
    except PackageNotFoundError:
        return False
    return True


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.s3", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--size-mib", type=int, default=1024, help="size of the main file")
    p.add_argument("--runs", type=int, default=5, help="round-robin rounds over all tools")
    p.add_argument(
        "--pairs", type=int, default=0, help="pairs of (argosy, peer) round trips per peer"
    )
    p.add_argument("--seed", type=int, help="seed of the random tool order (default: drawn)")
    p.add_argument(
        "--also-size-mib",
        type=int,
        default=4096,
        help="argosy-only RSS check at this size (0: skip)",
    )
    p.add_argument(
        "--no-copy", action="store_true", help="skip the remote-to-remote copy (bucket to bucket)"
    )
    p.add_argument("--env", type=Path, help="use the RGW described by this env file")
    p.add_argument(
        "--argosy-args",
        default="",
        help='extra argosy cp flags, e.g. --argosy-args="--part-size 32 --concurrency 8" (use "=")',
    )
    p.add_argument("--tools", help="comma-separated subset of the peers (argosy always runs)")
    p.add_argument("--tmp", type=Path, help="where the temp folder goes (default: system temp)")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="PKGDIR",
        help="also run the argosy package found in PKGDIR, as argosy-base",
    )
    args = p.parse_args(argv)
    if args.baseline and not (args.baseline / "argosy" / "main.py").is_file():
        p.error(f"--baseline {args.baseline} holds no argosy/main.py")
    if args.size_mib < 1 or args.runs < 0 or args.pairs < 0 or args.also_size_mib < 0:
        p.error("--size-mib must be at least 1, --runs, --pairs and --also-size-mib at least 0")
    if args.runs + args.pairs < 1:
        p.error("nothing to run: --runs and --pairs are both 0")
    return args


BASE = "argosy-base"
# what the `argosy` console script runs, for a copy of Argosy that is not installed
CONSOLE = "import sys; from argosy.main import main; sys.argv[0] = 'argosy'; sys.exit(main())"


def baseline_tool(package_dir: Path, argosy_args: str = "") -> peers.Tool:
    extra = shlex.split(argosy_args)
    command = [sys.executable, "-c", CONSOLE, "cp", "-q", *extra]
    return peers.Tool(
        BASE,
        up=lambda t: [*command, str(t.path), f"s3://{t.bucket}/{t.key}"],
        down=lambda t: [*command, f"s3://{t.bucket}/{t.key}", str(t.path)],
        extra_env=lambda gateway: {"PYTHONPATH": str(package_dir)},
        copy=lambda source, target: [*command, source, target],
    )


def baseline_lines(summaries: list[report.Summary]) -> list[str]:
    now = next((s for s in summaries if s.tool == "argosy"), None)
    base = next((s for s in summaries if s.tool == BASE), None)
    if now is None or base is None:
        return []
    med = report.Summary.median
    lines = ["argosy now / argosy-base (the --baseline copy), same rounds:"]
    for label, a, b in (("upload", now.up, base.up), ("download", now.down, base.down)):
        if a and b:
            lines.append(
                f"  {label:<9}{med(a):6.0f} vs {med(b):6.0f} MiB/s  "
                f"{med(a) / med(b):.2f}x   (base {min(b):.0f}-{max(b):.0f})"
            )
    return lines


# every folder the wheel installs (pyproject's package-dir): `argosy cp` imports argo/ too
PACKAGE_FOLDERS = (
    "cli",
    "artifacts",
    "argo",
    "demo",
    "plugin",
    "sidecar",
    "gc",
    "server",
    "testing",
)


def compile_argosy(*extra: Path) -> None:
    """Byte-compile Argosy's modules first, as pip does for a wheel install: an editable
    checkout under PYTHONDONTWRITEBYTECODE would otherwise recompile them on every start
    (~0.1 s), a cost no installed peer pays."""
    folders = [str(rgw.ROOT / name) for name in PACKAGE_FOLDERS]
    folders += [str(path) for path in extra]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *folders], check=True, stdout=subprocess.DEVNULL
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    seed = pairs.new_seed(args.seed)
    rng = random.Random(seed)
    compile_argosy(*([args.baseline.resolve()] if args.baseline else []))
    tools = peers.select(peers.all_tools(args.argosy_args), args.tools)
    if args.baseline:
        tools.insert(1, baseline_tool(args.baseline.resolve(), args.argosy_args))
    began, stamp = time.monotonic(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="argosy-bench-", dir=args.tmp))
    state = work / "rgw"
    ctx: Context | None = None
    try:
        if args.env:
            gateway = rgw.from_env_file(args.env)
            log(f"using the RGW at {gateway.endpoint} ({args.env})")
        else:
            log(f"starting Ceph RGW in {state}")
            gateway = rgw.start(state)
            log(f"RGW at {gateway.endpoint}")
        (work / "down").mkdir()
        source = work / f"random-{args.size_mib}MiB"
        log(f"writing {source}")
        files.make_random_file(source, args.size_mib * MiB)
        ctx = Context(
            gateway,
            f"argosy-bench-{secrets.token_hex(4)}",
            admin_client(gateway),
            work,
            dict(os.environ),
            [],
        )
        ctx.admin.create_bucket(Bucket=ctx.bucket)
        warmed = rgw.warm_up(ctx.gateway, ctx.admin, ctx.bucket)
        log(f"warmed the server up in {warmed:.1f} s (untimed)")
        meta: dict[str, Any] = {
            "started_utc": stamp,
            "warm_up_s": warmed,
            "size_mib": args.size_mib,
            "runs": args.runs,
            "pairs": args.pairs,
            "seed": seed,
            "also_size_mib": args.also_size_mib,
            "argosy_args": args.argosy_args,
            "tools": [t.name for t in tools],
            "endpoint": gateway.endpoint,
            "own_rgw": not args.env,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
            "versions": tool_versions(),
        }
        runs: list[Run] = []
        for round_ in range(args.runs):
            for tool in pairs.shuffled(rng, tools):
                runs += round_trip(ctx, tool, source, round_, full_compare=round_ == 0)
        paired = paired_runs(ctx, tools, source, args.pairs, rng, first=args.runs)
        copies = [] if args.no_copy else remote_copies(ctx, tools, source)
        big: list[Run] = []
        if args.also_size_mib:
            files.remove(source)
            big_source = work / f"random-{args.also_size_mib}MiB"
            log(f"writing {big_source}")
            files.make_random_file(big_source, args.also_size_mib * MiB)
            big = round_trip(ctx, tools[0], big_source, args.runs + args.pairs, full_compare=True)
            files.remove(big_source)
        summaries = [report.summarize(t.name, runs, t.peers_up, t.peers_down) for t in tools]
        pair_stats = pair_summary(paired, tools)
        meta.update(
            loadavg_end=os.getloadavg(),
            seconds=round(time.monotonic() - began, 1),
            failures=ctx.failures,
            baseline=str(args.baseline or ""),
        )
        # the baseline is Argosy itself, not a peer: kept out of the peers' table and ratios
        if runs:
            print(report.table([s for s in summaries if s.tool != BASE], args.size_mib, args.runs))
        if pair_stats:
            print()
            print(pair_table(pair_stats, paired, args.pairs))
        lines = baseline_lines(summaries)
        if lines:
            print()
            print("\n".join(lines))
        lines = report.big_file_lines(summaries[0], big, args.also_size_mib, args.size_mib)
        if lines:
            print()
            print("\n".join(lines))
        formula = TransferSettings().stream_parts * TransferSettings().stream_part_size / MiB
        lines = report.copy_lines(copies, formula)
        if lines:
            print()
            print("\n".join(lines))
        print()
        print(
            f"load average 1/5/15 min: start {fmt_load(meta['loadavg_start'])}, end "
            f"{fmt_load(meta['loadavg_end'])} (2 CPUs; RGW and the client share them)"
        )
        for failure in ctx.failures:
            print(f"FAILED: {failure}")
        out = RESULTS / f"s3-{stamp}.json"
        report.write_json(out, meta, runs, summaries, big, copies, paired, pair_stats)
        print(f"results: {out.relative_to(rgw.ROOT)}; took {meta['seconds']:.0f} s")
        return 1 if ctx.failures else 0
    finally:
        if ctx is not None:
            try:
                clear_bucket(ctx)
                ctx.admin.delete_bucket(Bucket=ctx.bucket)
            except Exception as error:  # noqa: BLE001 - cleanup must not hide the real error
                log(f"could not remove bucket {ctx.bucket}: {error}")
        if not args.env:
            rgw.stop(state)
            log("RGW stopped")
        shutil.rmtree(work, ignore_errors=True)


# the single-file targets: 1 GiB up >= 1.05x boto3 tuned, down >= 1.05x s5cmd
TARGETS = {("up", "boto3-tuned"): 1.05, ("down", "s5cmd"): 1.05}


def paired_runs(
    ctx: Context, tools: list[peers.Tool], source: Path, n: int, rng: random.Random, first: int
) -> list[Run]:
    """For each peer, n pairs: Argosy's round trip and the peer's, in a random order."""
    out: list[Run] = []
    mine = tools[0]
    for peer in tools[1:]:
        for i in range(n):
            for tool in pairs.shuffled(rng, [mine, peer]):
                got = round_trip(ctx, tool, source, first + i, full_compare=first + i == 0)
                for run in got:
                    run.pair = f"{peer.name}#{i}"
                out += got
    return out


def pair_summary(paired: list[Run], tools: list[peers.Tool]) -> list[pairs.PairStats]:
    """Per peer and direction: Argosy's speed over the peer's, pair by pair."""
    stats = []
    for peer in tools[1:]:
        for direction, label in (("up", "upload"), ("down", "download")):

            def speeds(tool: str, d: str = direction, name: str = peer.name) -> dict[str, float]:
                return {
                    r.pair: r.mib_s
                    for r in paired
                    if r.tool == tool and r.direction == d and r.pair.startswith(name + "#")
                }

            got = pairs.ratios(speeds(tools[0].name), speeds(peer.name))
            if got:
                target = TARGETS.get((direction, peer.name))
                stats.append(pairs.PairStats(f"{label} vs {peer.name}", got, target))
    return stats


def pair_table(stats: list[pairs.PairStats], paired: list[Run], n: int) -> str:
    lines = [
        f"Paired mode: {n} pair(s) per peer, argosy and the peer back to back in a random "
        "order; argosy's MiB/s over the peer's, pair by pair (> 1: argosy faster)",
    ]
    lines += [s.line() for s in stats]
    for tool in sorted({r.tool for r in paired}):
        for direction in ("up", "down"):
            got = [r for r in paired if r.tool == tool and r.direction == direction]
            if got:
                speeds = sorted(r.mib_s for r in got)
                lines.append(
                    f"    {tool:<14}{direction:<5} {report.Summary.median(speeds):6.0f} MiB/s "
                    f"({speeds[0]:.0f}-{speeds[-1]:.0f}), peak RSS "
                    f"{max(r.peak_rss for r in got) / MiB:.0f} MiB, CPU "
                    f"{report.Summary.median([r.cpu_seconds for r in got]):.2f} s"
                )
    return "\n".join(lines)


def fmt_load(values: Any) -> str:
    return "/".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
