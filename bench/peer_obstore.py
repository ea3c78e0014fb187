"""obstore (Python bindings of Rust's `object_store`) as a peer, in its best set-up.

    python -m bench.peer_obstore up|down FILE BUCKET KEY

Upload: `obstore.put(store, key, Path(FILE), chunk_size=64 MiB, max_concurrency=16)`, a
multipart upload of 64 MiB parts, 16 in flight. Download: a HEAD for the size, then
`get_range_async` over 16 MiB ranges, 8 in flight on one event loop, each range written at
its offset (`os.pwrite`) into a file preallocated to the size: obstore's own `get` is one
stream. S3Store(bucket, endpoint, keys, region, path-style, allow_http) from the AWS_*
variables; payload signing off (`unsigned_payload`), as for tuned boto3. Prints
{"seconds": ...} (the transfer alone) on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import obstore
from obstore.store import S3Store

MiB = 1 << 20
PART = 64 * MiB
UP_CONCURRENCY = 16
RANGE = 16 * MiB
DOWN_CONCURRENCY = 8


def store_for(bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=os.environ["AWS_ENDPOINT_URL"],
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        virtual_hosted_style_request=False,
        unsigned_payload=True,
        client_options={"allow_http": True},
    )


async def download(store: S3Store, key: str, path: str) -> None:
    size = (await obstore.head_async(store, key))["size"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        gate = asyncio.Semaphore(DOWN_CONCURRENCY)

        async def one(start: int) -> None:
            async with gate:
                data = await obstore.get_range_async(
                    store, key, start=start, end=min(start + RANGE, size)
                )
                os.pwrite(fd, memoryview(data), start)

        await asyncio.gather(*(one(s) for s in range(0, size, RANGE)))
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    direction, path, bucket, key = argv
    store = store_for(bucket)
    t0 = time.perf_counter()
    if direction == "up":
        obstore.put(store, key, Path(path), chunk_size=PART, max_concurrency=UP_CONCURRENCY)
    else:
        asyncio.run(download(store, key, path))
    print(json.dumps({"seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
