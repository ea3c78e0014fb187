"""How long a list page and a batch delete wait beyond the server's own time, with and
without asking for the ACK at once: `python -m bench.s3_ack [--env FILE]`.

Why: Ceph RGW writes an answer's headers and its body in two writes with Nagle's
algorithm on; the body is sent only once the headers are acknowledged, and Linux delays
that ACK up to 40 ms on a request/response connection. The S3 driver's botocore
connections ask for the ACK at once (`sdk.ACKING_POOLS`); this measures what that buys on
the requests the GC makes most: ListObjectsV2 pages (of 1000 keys, and of 10: a small
folder's one page) and DeleteObjects of 1000 keys.

Per request:
- `total_ms`: the driver call, wall time;
- `cpu_ms`: this thread's CPU in it (signing, botocore's serialising and parsing);
- `server_ms`: RGW's own time, the `latency=` its log gives the request (RGW sends
  these answers chunked, headers first, so the client cannot tell it from the stall);
- `wait_ms`: what is left, total - cpu - server: the wait beyond RGW's time (the
  delayed-ACK stall, if any, and waiting for a core on a loaded machine).
Needs the RGW's log (its state folder, ARGOSY_RGW_STATE in the env file).
Both ways ("before": botocore's own connections; "after": the driver's) run in turns on
the same bucket, so load that comes and goes weighs on both. Writes
bench/results/s3-ack-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import rgw, versions

RESULTS = rgw.ROOT / "bench" / "results"
TARGET_WAIT_MS = 10.0


def _pools(ack: bool) -> dict[str, Any]:
    from botocore.awsrequest import (
        AWSHTTPConnection,
        AWSHTTPConnectionPool,
    )

    from argosy.artifacts.drivers.s3 import wire

    class Connection(AWSHTTPConnection):  # type: ignore[misc]
        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            if ack:
                wire.ack_at_once(self.sock)
            return super().getresponse(*args, **kwargs)

    class Pool(AWSHTTPConnectionPool):  # type: ignore[misc]
        ConnectionCls = Connection

    return {"http": Pool}


def _driver(gateway: rgw.Rgw, bucket: str, ack: bool) -> Any:
    from argosy.artifacts.drivers.s3 import S3Driver, S3Settings
    from argosy.artifacts.drivers.s3.sdk import use_pools

    settings = S3Settings(
        endpoint=gateway.endpoint,
        region=gateway.region,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        addressing_style="path",
        max_connections=16,
    )
    driver = S3Driver(settings, bucket)
    assert use_pools(driver._client, _pools(ack)), "botocore keeps its pools elsewhere"
    return driver


def _fill(driver: Any, prefix: str, count: int) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: driver.put(f"{prefix}/{i:05d}", b"x", size=1, metadata={}),
                range(count),
            )
        )


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p90": round(ordered[round(0.9 * (len(ordered) - 1))], 2),
        "max": round(ordered[-1], 2),
    }


def _measure(samples: list[tuple[float, float, float, float]]) -> dict[str, Any]:
    return {
        "requests": len(samples),
        "total_ms": _stats([s[0] for s in samples]),
        "cpu_ms": _stats([s[1] for s in samples]),
        "server_ms": _stats([s[2] for s in samples]),
        "wait_ms": _stats([s[3] for s in samples]),
    }


class RgwLog:
    """RGW's own time per request, from the `latency=` of its beast log lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def skip(self) -> None:
        self.offset = self.path.stat().st_size

    def latency_ms(self, marker: str) -> float:
        deadline = time.monotonic() + 5
        while True:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                text = handle.read().decode(errors="replace")
            found = [line for line in text.splitlines() if "beast:" in line and marker in line]
            if found:
                self.skip()
                return float(found[-1].rsplit("latency=", 1)[1].rstrip("s")) * 1000
            if time.monotonic() > deadline:
                raise RuntimeError(f"no RGW log line for {marker} in {self.path}")
            time.sleep(0.02)


def run(gateway: rgw.Rgw, pages: int, batches: int, log: Any) -> dict[str, Any]:
    from argosy.artifacts.drivers.s3 import S3Driver, S3Settings

    bucket = f"ack-{int(time.time())}"
    plain = S3Driver(
        S3Settings(
            endpoint=gateway.endpoint,
            region=gateway.region,
            access_key=gateway.access_key,
            secret_key=gateway.secret_key,
            addressing_style="path",
        ),
        bucket,
    )
    plain.create_bucket()
    ways = {"before": _driver(gateway, bucket, False), "after": _driver(gateway, bucket, True)}
    log(f"filling {bucket}: a 1000-key page to list, {2 * batches} x 1000 keys to delete")
    _fill(plain, "list", 1000)  # list/00000 ... list/00999; list/0000 holds 10
    for i in range(2 * batches):
        _fill(plain, f"del{i}", 1000)
    lists: dict[str, list[tuple[float, float, float, float]]] = {"before": [], "after": []}
    small: dict[str, list[tuple[float, float, float, float]]] = {"before": [], "after": []}
    deletes: dict[str, list[tuple[float, float, float, float]]] = {"before": [], "after": []}

    assert gateway.state_dir is not None, "the RGW's state folder (for its log) is unknown"
    rgw_log = RgwLog(gateway.state_dir / "log" / "ceph-client.rgw.a.log")

    def timed(call: Any, marker: str) -> tuple[float, float, float, float]:
        rgw_log.skip()
        started, cpu = time.perf_counter(), time.thread_time()
        call()
        total = (time.perf_counter() - started) * 1000
        cpu_ms = (time.thread_time() - cpu) * 1000
        server = rgw_log.latency_ms(marker)
        return total, cpu_ms, server, max(0.0, total - cpu_ms - server)

    for i in range(pages):
        for way in ("before", "after") if i % 2 == 0 else ("after", "before"):
            driver = ways[way]
            lists[way].append(timed(lambda d=driver: d.list("list/", limit=1000), "list-type=2"))
            small[way].append(timed(lambda d=driver: d.list("list/0000"), "list-type=2"))
    for i in range(batches):
        for j, way in enumerate(("before", "after") if i % 2 == 0 else ("after", "before")):
            driver, prefix = ways[way], f"del{2 * i + j}/"
            keys = [f"{prefix}{k:05d}" for k in range(1000)]
            deletes[way].append(timed(lambda d=driver, k=keys: d.delete(k), "?delete"))
    left = plain.list("del", limit=10).objects
    return {
        "bucket": bucket,
        "list_page_1000": {w: _measure(lists[w]) for w in ways},
        "list_page_10": {w: _measure(small[w]) for w in ways},
        "delete_objects_1000": {w: _measure(deletes[w]) for w in ways},
        "left_after_deletes": len(left),
    }


def table(doc: dict[str, Any]) -> str:
    rows = [
        "| request | way | total p50 / p90 | client CPU p50 | RGW p50 "
        "| wait beyond both p50 / p90 / max |"
    ]
    rows.append("|---|---|---|---|---|---|")
    for name, what in (
        ("list_page_1000", "ListObjectsV2, 1000 keys"),
        ("list_page_10", "ListObjectsV2, 10 keys"),
        ("delete_objects_1000", "DeleteObjects, 1000 keys"),
    ):
        for way in ("before", "after"):
            m = doc["result"][name][way]
            rows.append(
                f"| {what} ({m['requests']}) | {way} | {m['total_ms']['p50']} / "
                f"{m['total_ms']['p90']} ms | {m['cpu_ms']['p50']} ms | "
                f"{m['server_ms']['p50']} ms | "
                f"{m['wait_ms']['p50']} / {m['wait_ms']['p90']} / {m['wait_ms']['max']} ms |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.s3_ack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--env",
        type=Path,
        default=os.environ.get("ARGOSY_RGW_ENV") or None,
        help="a running RGW's env file (required)",
    )
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args(argv)
    if args.env is None:
        print("bench.s3_ack: give --env FILE (or ARGOSY_RGW_ENV) of a running RGW", file=sys.stderr)
        return 2
    gateway = rgw.from_env_file(args.env)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    load_start = os.getloadavg()
    result = run(
        gateway,
        args.pages,
        args.batches,
        lambda m: print(f"bench.s3_ack: {m}", file=sys.stderr, flush=True),
    )
    doc = {
        "meta": {
            "started_utc": stamp,
            "endpoint": gateway.endpoint,
            "cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "versions": versions.git(),
            "loadavg_end": os.getloadavg(),
            "target_wait_ms": TARGET_WAIT_MS,
        },
        "result": result,
    }
    after = [
        result[n]["after"]["wait_ms"]["p90"] for n in ("list_page_1000", "delete_objects_1000")
    ]
    doc["met"] = all(w < TARGET_WAIT_MS for w in after)
    print(table(doc))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"s3-ack-{stamp}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {out}")
    return 0 if doc["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
