"""boto3 peers for the directory benchmark (bench/dirs.py), one transfer per process.

    python -m bench.peer_dirs get BUCKET KEY FILE
        one get_object, its body streamed to FILE in 1 MiB reads: a single-stream
        download, as Argo's executor (minio-go GetObject / fget) does for an artifact
    python -m bench.peer_dirs put-each DIR BUCKET PREFIX THREADS
        one put_object per regular file under DIR (sorted walk), key PREFIX + relative
        path; THREADS=1 is file by file in sequence, more uses a ThreadPoolExecutor and one
        shared client with that many pooled connections

Client set-up: boto3 defaults (payload signing on over http, as shipped) except flexible
checksums "when_required" (RGW 16 rejects the aws-chunked CRC32 trailers botocore >= 1.36
sends by default). Endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION. Prints {"seconds": ..., "files": ..., "bytes": ...}
(the transfer alone, without interpreter start-up and imports) on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

MiB = 1 << 20


def client(pool: int = 10) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=max(pool, 10),
        ),
    )


def walk(root: str) -> Iterator[tuple[str, str]]:
    """(path, key suffix) of every regular file under root, sorted, symlinks skipped."""
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(d, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path, os.path.relpath(path, root).replace(os.sep, "/")


def get(bucket: str, key: str, dest: str) -> dict[str, Any]:
    s3 = client()
    t0 = time.perf_counter()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    n = 0
    with open(dest, "wb") as f:
        while chunk := body.read(MiB):
            f.write(chunk)
            n += len(chunk)
    return {"seconds": time.perf_counter() - t0, "files": 1, "bytes": n}


def put_each(root: str, bucket: str, prefix: str, threads: int) -> dict[str, Any]:
    s3 = client(threads)
    t0 = time.perf_counter()

    def one(item: tuple[str, str]) -> int:
        path, rel = item
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=prefix + rel, Body=f)
        return os.path.getsize(path)

    if threads == 1:
        sizes = [one(item) for item in walk(root)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            sizes = list(pool.map(one, walk(root)))
    return {"seconds": time.perf_counter() - t0, "files": len(sizes), "bytes": sum(sizes)}


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "get":
        result = get(argv[1], argv[2], argv[3])
    elif len(argv) == 5 and argv[0] == "put-each":
        result = put_each(argv[1], argv[2], argv[3], int(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
