"""Argo's artifact driver plugin (`argosy plugin SOCKET`) on a real Ceph RGW, against what
Argo or a user would run instead.

    .venv/bin/python -m bench.plugin [--rounds 7] [--seed N] [--size-mib 1024]
                                     [--corpus DIR] [--argo-objects 2000] [--delay-ms 20]
                                     [--env FILE] [--tmp DIR]

Starts its own RGW with scripts/rgw.sh (or uses --env FILE), two buckets (one holding the
object the read cases read, one the write cases write to, emptied between runs), and one
`argosy plugin` process on a unix socket that serves every plugin call of the run, its
Secret as files in Argo's layout. A gRPC client in this process makes the calls as Argo's
executor does: only paths and keys cross the socket for Save, Load and Delete. Peers run
as their own processes (bench/rss.py). In --rounds interleaved rounds, the order of the
units below shuffled per round (the seed is printed), with the write bucket emptied,
RGW's garbage collection forced and dirty pages synced after each:

  Save        a 1 GiB random file             argosy cp -q FILE s3://B/K
  Load        that file's object into a file  argosy cp -q s3://B/K FILE
  OpenStream  to a client that drops bytes    argosy cat -q s3://B/K > /dev/null
  SaveStream  the file in 2 MiB chunks        argosy cp -q - s3://B/K < FILE
  Save        a folder: bench/corpus.py's     s5cmd cp 'FOLDER/*' s3://B/K/
              ~20,000 real text files, one
              object per file (files/s)
  Delete      that folder, through            Argo's GC pod's way: list the folder,
              bench/delay_proxy.py (+20 ms a   then one DeleteObject per object in
              request), objects/s             sequence (boto3, in this process,
                                              through the same proxy), on a
                                              --argo-objects sample of the same trees
                                              (bench/corpus.py's subset), written first

Before the rounds, grpcio's own rate is measured (--rounds runs, RGW idle): a server in
another process (bench/plugin_raw.py) sending 2 MiB frames from memory to the same
dropping client over a unix socket. If it is under 1.25x argosy cat's median, OpenStream
is compared with that raw rate instead of argosy cat, and the output says so.

The plugin's RSS is sampled every 20 ms for the whole run and its kernel high-water mark
reset before each call (bench/rss.py's Watch): each call's peak is its own.

Verification, outside the timed region: every saved object's size; every loaded file's
size (bytes too in the first round); OpenStream's byte count and its `is_end`; every
folder upload listed back (paths and sizes); every delete listed back (nothing left).
Targets: Save and Load >= 0.95x, OpenStream and SaveStream >= 0.8x, the folder >= 0.8x
s5cmd's files/s, Delete >= 10x Argo's objects/s, the plugin's peak RSS < 200 MiB in every
case. Prints the table (bench/plugin_report.py) and writes
bench/results/plugin-<timestamp>.json. Everything it started or wrote is removed at the
end (a --corpus is only read).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import corpus, dirs, files, peers, plugin_calls, plugin_report, rgw, rss, versions
from bench.plugin_measure import Ctx, between_runs, empty, log
from bench.plugin_units import ARGOSY, SOURCE_KEY, UNITS, raw_rate
from bench.s3 import compile_argosy

MiB = 1 << 20
ROOT = rgw.ROOT
RESULTS = ROOT / "bench" / "results"
RAW_FACTOR = 1.25  # grpcio's raw rate must be this far above argosy cat's to compare them


# ------------------------------------------------------------------ main


def run_versions() -> dict[str, str]:
    return versions.collect(
        ("argosy", "grpcio", "protobuf", "boto3", "botocore", "psutil"),
        {"s5cmd": [str(peers.s5cmd_binary()), "version"]},
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.plugin", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds over the units")
    p.add_argument("--seed", type=int, help="of the order of the units in each round")
    p.add_argument("--size-mib", type=int, default=1024, help="the file's size")
    p.add_argument("--corpus", type=Path, help="the folder to save (default: build one)")
    p.add_argument("--max-files", type=int, default=20_000, help="corpus build limit")
    p.add_argument("--max-mib", type=int, default=300, help="corpus build limit")
    p.add_argument(
        "--argo-objects", type=int, default=2000, help="Argo's deletes: objects in its sample"
    )
    p.add_argument("--delay-ms", type=float, default=20.0, help="delay proxy: ms a request")
    p.add_argument("--env", type=Path, help="use the RGW described by this env file")
    p.add_argument("--tmp", type=Path, help="where the temp folder goes (default: system temp)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.size_mib < 1 or args.argo_objects < 1:
        p.error("--rounds, --size-mib and --argo-objects must be at least 1")
    if args.corpus and not args.corpus.is_dir():
        p.error(f"--corpus {args.corpus} is not a folder")
    return args


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so the cleanup below runs (plugin, proxy, RGW, work)


@dataclass
class Running:
    """What the run keeps running, stopped once, in this order: the plugin first, so its
    connections through the proxy close before the proxy does."""

    watch: rss.Watch | None = None
    plugin: plugin_calls.Server | None = None
    argo: Any = None  # the boto3 client of Argo's deletes
    proxy: dirs.Proxy | None = None

    def stop(self) -> dict[str, Any]:
        """Stop what still runs; the proxy's statistics when it was still running."""
        if self.watch:
            self.watch.stop()
        if self.plugin:
            self.plugin.stop()
        if self.argo:
            self.argo.close()
        stats = dirs.stop_proxy(self.proxy) if self.proxy else {}
        self.watch, self.plugin, self.argo, self.proxy = None, None, None, None
        return stats


def argo_client(endpoint: str, gateway: rgw.Rgw) -> Any:
    """boto3 as Argo's GC pod's S3 client would be set up: defaults, one call at a time
    (flexible checksums "when_required": RGW 16 rejects botocore's default trailers)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=gateway.region,
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@dataclass(frozen=True)
class Data:
    """What the cases move: the random file, the corpus and Argo's sample of it."""

    file: Path
    size: int
    root: Path
    tree: corpus.TreeStats
    sample: Path
    sample_tree: corpus.TreeStats


def make_data(args: argparse.Namespace, work: Path) -> Data:
    if args.corpus:
        root = args.corpus.resolve()
        tree = corpus.stats(root)
    else:
        root = work / "corpus"
        log(f"building the corpus in {root}")
        tree = corpus.build(root, args.max_files, args.max_mib * MiB)
    log(f"corpus: {tree.files} files, {tree.bytes / MiB:.0f} MiB")
    corpus.warm(root)
    sample = work / "sample" / root.name
    sample_tree = corpus.subset(root, sample, args.argo_objects)
    file = work / f"random-{args.size_mib}MiB.bin"
    log(f"writing {file}")
    files.make_random_file(file, args.size_mib * MiB)
    (work / "down").mkdir()
    return Data(file, args.size_mib * MiB, root, tree, sample, sample_tree)


def open_rgw(args: argparse.Namespace, state: Path, stack: contextlib.ExitStack) -> rgw.Rgw:
    if args.env:
        gateway = rgw.from_env_file(args.env)
        log(f"using the RGW at {gateway.endpoint} ({args.env})")
        return gateway
    log(f"starting Ceph RGW in {state}")
    stack.callback(_stop_rgw, state)
    gateway = rgw.start(state)
    log(f"RGW at {gateway.endpoint}")
    return gateway


def _stop_rgw(state: Path) -> None:
    if state.exists():
        rgw.stop(state)
        log("RGW stopped")


def _remove_bucket(admin: Any, name: str) -> None:
    try:
        empty(admin, name)
        admin.delete_bucket(Bucket=name)
    except Exception as error:  # noqa: BLE001 - cleanup must not hide the real error
        log(f"could not remove bucket {name}: {error}")


def serve(
    args: argparse.Namespace,
    gateway: rgw.Rgw,
    data: Data,
    work: Path,
    running: Running,
    stack: contextlib.ExitStack,
) -> Ctx:
    """Buckets, the read cases' object, the delay proxy and the plugin, every driver of it
    opened by a first call: ready for the first timed call."""
    admin = dirs.admin_client(gateway)
    tag = secrets.token_hex(4)
    write_bucket, source_bucket = f"argosy-plugin-{tag}", f"argosy-plugin-src-{tag}"
    for name in (write_bucket, source_bucket):
        admin.create_bucket(Bucket=name)
        stack.callback(_remove_bucket, admin, name)
    done = subprocess.run(
        [ARGOSY, "cp", "-q", str(data.file), f"s3://{source_bucket}/{SOURCE_KEY}"],
        env={**os.environ, **gateway.env()},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"writing the read cases' object failed: {done.stderr.strip()}")
    stack.callback(running.stop)
    running.proxy = proxy = dirs.start_proxy(gateway.endpoint, args.delay_ms)
    log(f"delay proxy (+{args.delay_ms:g} ms a request) at {proxy.endpoint}")
    running.argo = argo_client(proxy.endpoint, gateway)
    secrets_dir = work / "secrets"
    plugin_calls.write_secret(secrets_dir, gateway.access_key, gateway.secret_key)
    running.plugin = plugin = plugin_calls.start_plugin(
        ARGOSY, work / "plugins" / "argosy" / "socket", work / "plugin.log", secrets_dir
    )
    running.watch = watch = rss.Watch(plugin.process.pid).start()
    ctx = Ctx(
        gateway,
        admin,
        write_bucket,
        source_bucket,
        work,
        data.file,
        data.size,
        data.root,
        data.tree,
        data.sample,
        data.sample_tree,
        plugin,
        watch,
        plugin_calls.configuration(gateway.endpoint, write_bucket, gateway.region),
        plugin_calls.configuration(gateway.endpoint, source_bucket, gateway.region),
        plugin_calls.configuration(proxy.endpoint, write_bucket, gateway.region),
        proxy,
        running.argo,
    )
    for conf in (ctx.write_conf, ctx.read_conf, ctx.proxied_conf):
        plugin_calls.warm(ctx.stub, conf)
    running.argo.list_objects_v2(Bucket=write_bucket, MaxKeys=1)  # connected before timing
    return ctx


def rounds(ctx: Ctx, count: int, seed: int) -> list[list[str]]:
    """Every unit once a round, in an order drawn from seed; the orders."""
    order, orders = random.Random(seed), []
    for r in range(count):
        units = list(UNITS)
        order.shuffle(units)
        orders.append([u.name for u in units])
        log(f"round {r + 1}: {', '.join(u.name for u in units)}")
        for unit in units:
            try:
                unit.run(ctx, r)
            finally:
                between_runs(ctx)
    return orders


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminated)
    seed = args.seed if args.seed is not None else secrets.randbelow(1 << 31)
    log(f"seed {seed} (--seed {seed} repeats this run's order)")
    compile_argosy(ROOT / "argo", ROOT / "plugin")
    began, stamp = time.monotonic(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="argosy-plugin-bench-", dir=args.tmp))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        data = make_data(args, work)
        gateway = open_rgw(args, work / "rgw", stack)
        running = Running()
        ctx = serve(args, gateway, data, work, running, stack)
        meta: dict[str, Any] = {
            "started_utc": stamp,
            "rounds": args.rounds,
            "seed": seed,
            "size_mib": args.size_mib,
            "corpus": str(data.root) if args.corpus else "built",
            "corpus_files": data.tree.files,
            "corpus_bytes": data.tree.bytes,
            "sample_files": data.sample_tree.files,
            "sample_bytes": data.sample_tree.bytes,
            "delay_ms": args.delay_ms,
            "raw_factor": RAW_FACTOR,
            "endpoint": gateway.endpoint,
            "own_rgw": not args.env,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "plugin_idle_rss_mib": ctx.watch.current() / MiB,
            "loadavg_start": os.getloadavg(),
            "versions": run_versions(),
            "units": [u.name for u in UNITS],
        }
        log(f"load average {dirs.fmt_load(meta['loadavg_start'])}; versions {meta['versions']}")
        log(f"grpcio's raw rate, {args.rounds} run(s)")
        raw_rate(ctx, args.rounds)
        orders = rounds(ctx, args.rounds, seed)
        meta.update(
            orders=orders,
            open_stream_peer=plugin_report.stream_peer(ctx.runs, RAW_FACTOR),
            rss_exact=ctx.watch.exact,
            plugin_end_rss_mib=ctx.watch.current() / MiB,
            plugin_log_tail=ctx.plugin.output().splitlines()[-40:] if ctx.failures else [],
        )
        meta.update(
            proxy=running.stop(),
            loadavg_end=os.getloadavg(),
            seconds=round(time.monotonic() - began, 1),
            between_runs_seconds=round(ctx.overhead, 1),
            failures=ctx.failures,
        )
        text = plugin_report.table(ctx.runs, meta)
        print(text)
        for failure in ctx.failures:
            print(f"FAILED: {failure}")
        out = RESULTS / f"plugin-{stamp}.json"
        plugin_report.write_json(out, meta, ctx.runs, text)
        print(f"results: {out.relative_to(ROOT)}; took {meta['seconds']:.0f} s")
        return 1 if ctx.failures else 0


if __name__ == "__main__":
    sys.exit(main())
