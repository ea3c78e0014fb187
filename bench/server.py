"""`argosy serve` measured from the outside: `curl` against a real server process, on a
real Ceph RGW, with the workflows on the Kubernetes test API (its own process).

Cases (targets in brackets):
- big:        a `--big-mib` (1024) artifact through the server to `curl -o FILE`, against
              `argosy cp` of the same object to a file; interleaved rounds, medians
              [server >= 0.8x argosy cp];
- ttfb:       time to first byte of a 1 KiB artifact, workflow read included: `--ttfb`
              (100) sequential `curl -w %{time_starttransfer}` after 10 warm-ups [p50 <
              30 ms on loopback];
- concurrent: one `curl` of a `--each-mib` (256) artifact to /dev/null, then `--clients`
              (50) at once; the server's RSS sampled every 20 ms [peak < 300 MiB; the
              last third's peak within 10% of the first third's; aggregate throughput >=
              0.8x the single client];
- disconnect: a client reads 1 MiB of the big artifact and closes; the server reads
              storage through the fault proxy (`argosy.testing.faults`, relaying only),
              which sees when no GET is under way and nothing more is relayed [<= 1 s
              after the close];
- member:     one `--member-mib` (1) member in the middle of a `--archive-mib` (1024)
              seekable tar.zst (Argosy's writer, incompressible data), fetched with `curl`
              through the server from a fresh start, its storage read through the same
              proxy, which counts the bytes relayed [<= 2x the compressed frames holding
              the member, plus the trailing index and seek table].

`--cases` runs some of them (ttfb,big,concurrent,disconnect,member: all by default).

Writes bench/results/server-<timestamp>.json. Run the full sizes under
`flock /tmp/argosy-bench.lock`; smoke it with `--big-mib 64 --each-mib 16 --clients 4
--ttfb 10 --runs 1 --archive-mib 64`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench import gc_kube, rgw, versions

RESULTS = rgw.ROOT / "bench" / "results"
NS = "bench"
MiB = 1 << 20
SAMPLE_S = 0.02
QUIET_S = 2.0  # the disconnect case: how long the storage side must stay idle
CASES = ("ttfb", "big", "concurrent", "disconnect", "member")
MEMBER = "member.bin"  # the member case's member, at the archive's top level


def log(message: str) -> None:
    print(f"bench.server: {message}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _random_file(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, MiB)] if left < MiB else os.urandom(MiB))
            left -= MiB


class RssSampler:
    """The server process's RSS every 20 ms, with the time of each sample."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            try:
                self.samples.append((time.monotonic(), self._rss()))
            except OSError:
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((r for t, r in self.samples if start <= t <= end), default=0)


class Server:
    """`argosy serve` in its own process, stopped with SIGTERM on exit."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "argosy", "serve", "--listen", f"127.0.0.1:{self.port}"]
            + ["--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=log_path.open("w"),
            text=True,
        )
        assert self.proc.stdout is not None
        if "listening" not in self.proc.stdout.readline():
            raise RuntimeError(f"argosy serve did not start: {log_path.read_text()[-2000:]}")
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("argosy serve does not accept connections")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def curl(url: str, token: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {token}", "-o", out, *extra, url],
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def case_big(ctx: dict[str, Any], runs: int, work: Path) -> dict[str, Any]:
    size, url, token, env = ctx["big_size"], ctx["big_url"], ctx["token"], ctx["env"]
    source = f"s3://{ctx['bucket']}/bench/big.bin"
    target = work / "out.bin"
    served, copied, cpu = [], [], []
    for round_ in range(runs):
        order = ["serve", "cp"] if round_ % 2 == 0 else ["cp", "serve"]
        for tool in order:
            target.unlink(missing_ok=True)
            if tool == "serve":
                began = cpu_seconds(ctx["server_pid"])
                seconds = timed(lambda: curl(url, token, str(target)))
                served.append(size / MiB / seconds)
                cpu.append((cpu_seconds(ctx["server_pid"]) - began) / (size / (1 << 30)))
            else:
                seconds = timed(
                    lambda: subprocess.run(
                        [sys.executable, "-m", "argosy", "cp", "-q", source, str(target)],
                        env=env,
                        check=True,
                        timeout=3600,
                    )
                )
                copied.append(size / MiB / seconds)
            if target.stat().st_size != size:
                raise RuntimeError(f"{tool}: {target.stat().st_size} bytes, not {size}")
            log(f"big round {round_ + 1}: {tool} {size / MiB / seconds:.0f} MiB/s")
    target.unlink(missing_ok=True)
    serve_mibs, cp_mibs = statistics.median(served), statistics.median(copied)
    return {
        "size_mib": size / MiB,
        "serve_curl_mib_s": [round(x, 1) for x in served],
        "argosy_cp_mib_s": [round(x, 1) for x in copied],
        "serve_median": round(serve_mibs, 1),
        "server_cpu_s_per_gib": [round(x, 2) for x in cpu],
        "server_cpu_s_per_gib_median": round(statistics.median(cpu), 2),
        "cp_median": round(cp_mibs, 1),
        "ratio": round(serve_mibs / cp_mibs, 3),
        "target": 0.8,
        "met": serve_mibs / cp_mibs >= 0.8,
    }


def case_ttfb(ctx: dict[str, Any], count: int) -> dict[str, Any]:
    url, token = ctx["tiny_url"], ctx["token"]
    times = []
    for i in range(10 + count):
        done = curl(url, token, "/dev/null", "-w", "%{time_starttransfer}")
        if i >= 10:
            times.append(float(done.stdout.strip()) * 1000)
    p50 = statistics.median(times)
    return {
        "requests": count,
        "p50_ms": round(p50, 2),
        "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 2),
        "max_ms": round(max(times), 2),
        "target_p50_ms": 30,
        "met": p50 < 30,
    }


def case_concurrent(ctx: dict[str, Any], clients: int, sampler: RssSampler) -> dict[str, Any]:
    url, token, size = ctx["each_url"], ctx["token"], ctx["each_size"]
    single_s = timed(lambda: curl(url, token, "/dev/null"))
    single = size / MiB / single_s
    log(f"one client: {single:.0f} MiB/s")
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {token}", "-o", "/dev/null"]
            + ["-w", "%{size_download}", url],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    sizes = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"a concurrent curl failed ({proc.returncode})")
        sizes.append(int(out.strip()))
    ended = time.monotonic()
    if any(s != size for s in sizes):
        raise RuntimeError(f"short downloads: {sorted(set(sizes))}")
    seconds = ended - began
    aggregate = clients * size / MiB / seconds
    third = seconds / 3
    first, last = sampler.peak(began, began + third), sampler.peak(ended - third, ended)
    peak = sampler.peak(began, ended)
    return {
        "clients": clients,
        "each_mib": size / MiB,
        "single_mib_s": round(single, 1),
        "aggregate_mib_s": round(aggregate, 1),
        "aggregate_vs_single": round(aggregate / single, 3),
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak / MiB, 1),
        "first_third_peak_mib": round(first / MiB, 1),
        "last_third_peak_mib": round(last / MiB, 1),
        "met_rss": peak < 300 * MiB,
        "met_rss_flat": last <= first * 1.1,
        "met_throughput": aggregate >= 0.8 * single,
    }


def case_disconnect(ctx: dict[str, Any], proxy: Any) -> dict[str, Any]:
    """A raw client reads 1 MiB of the big artifact through the server (whose storage is
    behind the relaying proxy) and closes; seconds from the close until the proxy has no
    GET under way and relays nothing more (watched for `QUIET_S` after that moment: a
    GET started later would make it a later moment)."""
    host, port = "127.0.0.1", ctx["port"]
    stats = proxy.stats
    sock = socket.create_connection((host, port), timeout=60)
    sock.sendall(
        (
            f"GET {ctx['proxied_path']} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {ctx['token']}\r\n\r\n"
        ).encode()
    )
    got = 0
    while got < MiB:
        data = sock.recv(1 << 16)
        if not data:
            raise RuntimeError("the server closed before 1 MiB")
        got += len(data)
    relayed_at_close, cut_before = stats.bytes_down, stats.answers_cut
    closed = time.monotonic()
    sock.close()
    quiet_since: float | None = None
    last_bytes = -1
    deadline = closed + 30
    while time.monotonic() < deadline:
        now, relayed = time.monotonic(), stats.bytes_down
        idle = stats.answers == stats.answers_done + stats.answers_cut and relayed == last_bytes
        if not idle:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= QUIET_S:
            break
        last_bytes = relayed
        time.sleep(0.002)
    stopped = (quiet_since - closed) if quiet_since is not None else float("inf")
    return {
        "client_read_mib": round(got / MiB, 2),
        "upstream_stopped_s": round(max(stopped, 0.0), 3),
        "relayed_after_close_mib": round((stats.bytes_down - relayed_at_close) / MiB, 1),
        "gets_cut": stats.answers_cut - cut_before,
        "object_mib": ctx["big_size"] / MiB,
        "target_s": 1.0,
        "met": stopped <= 1.0,
    }


def packed_archive(path: Path, archive_mib: int, member_mib: int) -> bytes:
    """A seekable tar.zst of about `archive_mib` MiB written by Argosy's own writer
    (`compress_seekable`, its member index told of each member as the tar writer tells
    it): files of 64 MiB of random bytes on either side of one `member_mib` MiB member
    (`MEMBER`). Every file repeats one random block, which no 4 MiB frame can compress.
    Returns the member's bytes."""
    from argosy.artifacts.archive import tarformat as tf
    from argosy.artifacts.archive.entry import EntryType
    from argosy.artifacts.archive.seekwriter import MemberIndex, compress_seekable

    block = os.urandom(min(64, archive_mib) * MiB)
    member = os.urandom(member_mib * MiB)
    count = max(2, archive_mib * MiB // len(block))
    names = [f"before-{i:02d}.bin" for i in range(count // 2)] + [MEMBER]
    names += [f"zafter-{i:02d}.bin" for i in range(count - count // 2)]
    index = MemberIndex()

    def tar() -> Any:
        written = 0
        for name in names:
            body = member if name == MEMBER else block
            header = tf.encode_header(
                name.encode(), mode=0o644, size=len(body), mtime=0, typeflag=tf.REGULAR
            )
            index(
                name.encode(),
                EntryType.FILE,
                size=len(body),
                mode=0o644,
                mtime=0,
                linkname=b"",
                header=written,
                data=written + len(header),
            )
            yield header
            written += len(header)
            for at in range(0, len(body), MiB):
                yield body[at : at + MiB]
            written += len(body)
            pad = tf.padding(len(body))
            if pad:
                yield pad
                written += len(pad)
        yield tf.end_of_archive(written)

    with path.open("wb") as out:
        for chunk in compress_seekable(tar(), level=1, index=index):
            out.write(chunk)
    return member


def case_member(ctx: dict[str, Any], proxy: Any) -> dict[str, Any]:
    """The member fetched once through the server (its index not read before), the
    storage bytes counted by the relaying proxy, against the frames the member lies in
    and the archive's trailing index frame and seek table."""
    from argosy.artifacts.archive import seekable

    layout = ctx["member_index"]
    member = layout.member(MEMBER)
    frames = layout.frames_for(member)
    frame_bytes = layout.frames.packed[frames.stop] - layout.frames.packed[frames.start]
    index_bytes = layout.size - layout.frames.packed[-2]  # index frame + seek table
    stats = proxy.stats
    before, requests = stats.bytes_down, stats.requests
    out = ctx["work"] / "member.out"
    seconds = timed(lambda: curl(ctx["member_url"], ctx["token"], str(out)))
    relayed = stats.bytes_down - before
    got = out.read_bytes()
    out.unlink()
    if got != ctx["member_bytes"]:
        raise RuntimeError(f"the member came back wrong ({len(got)} bytes)")
    limit = 2 * frame_bytes + index_bytes
    assert isinstance(layout, seekable.SeekableIndex)
    return {
        "archive_mib": round(layout.size / MiB, 1),
        "member_mib": round(member.size / MiB, 2),
        "frames": len(frames),
        "frames_bytes": frame_bytes,
        "index_and_table_bytes": index_bytes,
        "storage_bytes_read": relayed,
        "storage_requests": stats.requests - requests,
        "read_vs_frames": round(relayed / frame_bytes, 3),
        "seconds": round(seconds, 3),
        "target_bytes": limit,
        "met": relayed <= limit,
    }


def run_versions() -> dict[str, str]:
    return {"curl": versions.first_line(["curl", "--version"])} | versions.git()


def setup(gateway: rgw.Rgw, api: gc_kube.KubeApi, bucket: str, work: Path, args: Any) -> Any:
    from kubernetes import client, config

    env = {**os.environ, **gateway.env()}
    subprocess.run(
        [sys.executable, "-m", "argosy", "mb", f"s3://{bucket}"], env=env, check=True, timeout=120
    )
    sizes = {"big.bin": args.big_mib * MiB, "each.bin": args.each_mib * MiB, "tiny.txt": 1024}
    needed = {
        "big.bin": {"big", "disconnect"},
        "each.bin": {"concurrent"},
        "tiny.txt": {"ttfb"},
        "packed.tar.zst": {"member"},
    }

    def upload(path: Path, name: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "argosy", "cp", "-q", str(path), f"s3://{bucket}/bench/{name}"],
            env=env,
            check=True,
            timeout=3600,
        )
        path.unlink()

    for name, size in sizes.items():
        if needed[name] & set(args.cases):
            _random_file(work / name, size)
            upload(work / name, name)
    args.member_bytes = args.member_index = None
    if "member" in args.cases:
        from argosy.artifacts.archive import seekable
        from argosy.artifacts.drivers.local import LocalDriver

        (work / "archive").mkdir()
        path = work / "archive" / "packed.tar.zst"
        args.member_bytes = packed_archive(path, args.archive_mib, args.member_mib)
        local = LocalDriver(work, "archive")
        args.member_index = seekable.read_index(local, "packed.tar.zst")
        if args.member_index is None or args.member_index.member(MEMBER) is None:
            raise RuntimeError("the member case's archive has no member index")
        upload(path, "packed.tar.zst")
    sizes["packed.tar.zst"] = 0
    api_client = config.new_client_from_config(config_file=str(api.kubeconfig))
    gc_kube.setup_namespace(api_client, gateway, bucket, NS)
    custom = client.CustomObjectsApi(api_client)
    keys = [f"bench/{n}" for n in sizes]
    gc_kube.create(custom, NS, gc_kube.workflow("wf", keys, "Succeeded"))
    return api_client, custom, env, keys


def proxied_workflow(
    api_client: Any, custom: Any, gateway: rgw.Rgw, proxy_url: str, keys: list[str]
) -> None:
    """A ConfigMap whose repository reaches RGW through the proxy, and a workflow on it."""
    from kubernetes import client

    relayed = rgw.Rgw(
        proxy_url, gateway.access_key, gateway.secret_key, gateway.region, gateway.state_dir
    )
    entry = {
        "s3": {
            "bucket": "",
            "endpoint": relayed.endpoint,
            "region": relayed.region,
            "accessKeySecret": {"name": "s3", "key": "a"},
            "secretKeySecret": {"name": "s3", "key": "s"},
        }
    }
    core: Any = client.CoreV1Api(api_client)
    current = core.read_namespaced_config_map("artifact-repositories", NS)
    entry["s3"]["bucket"] = yaml.safe_load(current.data["default"])["s3"]["bucket"]
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "proxied"}, "data": {"default": yaml.safe_dump(entry)}}
    )
    wf = gc_kube.workflow("wf-proxied", keys, "Succeeded")
    wf["status"]["artifactRepositoryRef"]["configMap"] = "proxied"
    gc_kube.create(custom, NS, wf)


def table(doc: dict[str, Any]) -> str:
    c = doc["cases"]
    rows = [
        f"argosy serve at {doc['meta']['versions']['argosy_git']}, {doc['meta']['started_utc']}"
    ]
    if "big" in c:
        b = c["big"]
        rows.append(
            f"big {b['size_mib']:.0f} MiB: curl via server {b['serve_median']} MiB/s, argosy cp "
            f"{b['cp_median']} MiB/s: {b['ratio']}x (>= 0.8: {b['met']}); server CPU "
            f"{b['server_cpu_s_per_gib_median']} s/GiB"
        )
    if "ttfb" in c:
        t = c["ttfb"]
        rows.append(f"ttfb 1 KiB: p50 {t['p50_ms']} ms, p90 {t['p90_ms']} ms (< 30: {t['met']})")
    if "concurrent" in c:
        k = c["concurrent"]
        rows.append(
            f"{k['clients']} x {k['each_mib']:.0f} MiB: {k['aggregate_mib_s']} MiB/s vs one "
            f"{k['single_mib_s']} ({k['aggregate_vs_single']}x); peak RSS {k['peak_rss_mib']} MiB, "
            f"first third {k['first_third_peak_mib']}, last {k['last_third_peak_mib']}"
        )
    if "disconnect" in c:
        d = c["disconnect"]
        rows.append(f"disconnect: upstream stopped after {d['upstream_stopped_s']} s ({d['met']})")
    if "member" in c:
        m = c["member"]
        rows.append(
            f"member {m['member_mib']} MiB of a {m['archive_mib']:.0f} MiB seekable tar.zst: "
            f"{m['storage_bytes_read']} bytes read in {m['storage_requests']} requests, "
            f"{m['read_vs_frames']}x its {m['frames']} frames ({m['frames_bytes']} bytes) "
            f"+ index {m['index_and_table_bytes']} (<= {m['target_bytes']}: {m['met']})"
        )
    meta = doc["meta"]
    rows.append(
        f"load average at start {meta['loadavg_start'][0]:.1f}, end {meta['loadavg_end'][0]:.1f} "
        f"({meta['cpus']} CPUs; RGW shares them)"
    )
    return "\n".join(rows)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", type=Path, default=os.environ.get("ARGOSY_RGW_ENV") or None)
    p.add_argument("--runs", type=int, default=3, help="rounds of the big case")
    p.add_argument("--big-mib", type=int, default=1024)
    p.add_argument("--each-mib", type=int, default=256)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--ttfb", type=int, default=100)
    p.add_argument("--archive-mib", type=int, default=1024, help="the member case's archive")
    p.add_argument("--member-mib", type=int, default=1, help="the member case's member")
    p.add_argument(
        "--cases",
        type=lambda v: [c for c in v.split(",") if c],
        default=list(CASES),
        help=f"comma-separated, of {','.join(CASES)} (all by default)",
    )
    p.add_argument("--tmp", type=Path, default=None)
    p.add_argument("--no-save", action="store_true", help="print, write no results file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from argosy.testing.faults import FaultProxy

    args = parse(argv)
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        raise SystemExit(f"bench.server: unknown case {', '.join(unknown)} ({','.join(CASES)})")
    if shutil.which("curl") is None:
        raise SystemExit("bench.server: curl is not installed")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="argosy-bench-server-", dir=args.tmp))
    own = not args.env
    gateway = rgw.from_env_file(args.env) if args.env else rgw.start(work / "rgw")
    bucket = f"bench-server-{os.getpid()}"
    server: Server | None = None
    try:
        meta: dict[str, Any] = {
            "started_utc": stamp,
            "endpoint": gateway.endpoint,
            "own_rgw": own,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "versions": run_versions(),
        }
        with gc_kube.KubeApi(work) as api, FaultProxy(gateway.endpoint) as proxy:
            api_client, custom, env, keys = setup(gateway, api, bucket, work, args)
            proxied_workflow(api_client, custom, gateway, proxy.url, keys)
            token = yaml.safe_load(api.kubeconfig.read_text())["users"][0]["user"]["token"]
            server = Server(api.kubeconfig, work / "serve.log")
            base = f"{server.url}/artifacts/{NS}/wf/wf-1"
            ctx = {
                "token": token,
                "env": env,
                "bucket": bucket,
                "port": server.port,
                "server_pid": server.proc.pid,
                "big_size": args.big_mib * MiB,
                "each_size": args.each_mib * MiB,
                "big_url": f"{base}/a0",
                "each_url": f"{base}/a1",
                "tiny_url": f"{base}/a2",
                "proxied_path": f"/artifacts/{NS}/wf-proxied/wf-proxied-1/a0",
                "member_url": f"{server.url}/artifact-files/{NS}/workflows/wf-proxied/"
                f"wf-proxied-1/outputs/a3/{MEMBER}",
                "member_bytes": args.member_bytes,
                "member_index": args.member_index,
                "work": work,
            }
            cases: dict[str, Any] = {}
            with RssSampler(server.proc.pid) as sampler:
                for case in CASES:
                    if case not in args.cases:
                        continue
                    log(case)
                    if case == "ttfb":
                        cases["ttfb"] = case_ttfb(ctx, args.ttfb)
                    elif case == "big":
                        cases["big"] = case_big(ctx, args.runs, work)
                    elif case == "concurrent":
                        cases["concurrent"] = case_concurrent(ctx, args.clients, sampler)
                    elif case == "disconnect":
                        cases["disconnect"] = case_disconnect(ctx, proxy)
                    else:
                        cases["member"] = case_member(ctx, proxy)
                cases["server_peak_rss_mib"] = round(sampler.peak() / MiB, 1)
        meta.update(loadavg_end=os.getloadavg(), seconds=round(time.monotonic() - began, 1))
        doc = {"meta": meta, "cases": cases}
        print(table(doc))
        if not args.no_save:
            RESULTS.mkdir(parents=True, exist_ok=True)
            out = RESULTS / f"server-{stamp}.json"
            out.write_text(json.dumps(doc, indent=2) + "\n")
            print(f"results: {out}")
        return 0
    finally:
        if server is not None:
            server.stop()
        subprocess.run(
            [sys.executable, "-m", "argosy", "rm", "-q", "-r", f"s3://{bucket}/"],
            env={**os.environ, **gateway.env()},
            capture_output=True,
            timeout=600,
        )
        if own:
            rgw.stop(work / "rgw")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
