"""boto3 (classic s3transfer) as a peer: one upload_file or download_file in this process.

    python -m bench.peer_boto3 default|tuned up|down FILE BUCKET KEY

default: TransferConfig() as shipped (8 MiB threshold and parts, 10 threads).
tuned: 64 MiB parts and threshold, 16 threads, payload signing off (over plain http
botocore otherwise hashes every byte with SHA-256 to sign it).
Both set flexible checksums to "when_required": RGW 16 rejects the aws-chunked CRC32
trailers botocore >= 1.36 sends by default.
Endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION. Prints {"seconds": ...} (the transfer alone, without
interpreter start-up and imports) on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1 << 20


def client_and_config(variant: str) -> tuple[Any, TransferConfig]:
    options: dict[str, Any] = {
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    transfer = TransferConfig()
    if variant == "tuned":
        options["s3"] = {"payload_signing_enabled": False}
        transfer = TransferConfig(
            multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=16
        )
    elif variant != "default":
        raise SystemExit(f"unknown variant {variant!r}")
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(**options),
    )
    return client, transfer


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[1] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    variant, direction, path, bucket, key = argv
    client, transfer = client_and_config(variant)
    t0 = time.perf_counter()
    if direction == "up":
        client.upload_file(path, bucket, key, Config=transfer)
    else:
        client.download_file(bucket, key, path, Config=transfer)
    print(json.dumps({"seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
