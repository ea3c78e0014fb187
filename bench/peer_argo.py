"""Argo's executor's way of moving an artifact, reproduced in Python, one transfer per
process (for bench/sidecar.py).

    python -m bench.peer_argo up-file FILE BUCKET KEY
    python -m bench.peer_argo up-dir DIR BUCKET KEY STAGING
    python -m bench.peer_argo down-file BUCKET KEY FILE
    python -m bench.peer_argo down-dir BUCKET KEY DEST STAGING

What Argo does (workflow/executor, workflow/artifacts/s3, minio-go v7):
- an output folder (or a file with the default archive) is written as a .tgz into the
  executor's temp folder (Go's compress/gzip at its default level, 6), then uploaded;
  here `tarfile` 'w:gz' with compresslevel=6 (zlib), the entries under the folder's name;
- the upload is minio-go's FPutObject: 4 workers x 16 MiB parts, each part's SHA-256
  computed over plain http; here boto3 upload_file with the same threshold, part size and
  threads, payload signing left on (boto3's default over http);
- an input is loaded with minio-go's FGetObject (one GET streamed to a temp file, then
  renamed), and a .tgz is then extracted, its single top folder moved into place.

Flexible checksums are "when_required" (RGW 16 rejects the aws-chunked CRC32 trailers
botocore >= 1.36 sends by default). Endpoint and credentials come from AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION. Prints {"seconds": ...,
"staged_bytes": ...} on stdout: the transfer alone (imports excluded) and the size of the
.tgz it staged on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MiB = 1 << 20
ARGO_TRANSFER = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4
)
GZIP_LEVEL = 6  # Go's gzip.DefaultCompression, Argo's default compressionLevel


def client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def up_file(path: Path, bucket: str, key: str) -> int:
    client().upload_file(str(path), bucket, key, Config=ARGO_TRANSFER)
    return 0


def up_dir(folder: Path, bucket: str, key: str, staging: Path) -> int:
    s3 = client()
    tgz = staging / f"{folder.name}.tgz"
    try:
        with tarfile.open(tgz, "w:gz", compresslevel=GZIP_LEVEL) as tar:
            tar.add(folder, arcname=folder.name)
        staged = tgz.stat().st_size
        s3.upload_file(str(tgz), bucket, key, Config=ARGO_TRANSFER)
        return staged
    finally:
        tgz.unlink(missing_ok=True)


def _get(bucket: str, key: str, dest: Path) -> None:
    body = client().get_object(Bucket=bucket, Key=key)["Body"]
    part = dest.with_name(dest.name + ".part.minio")
    with open(part, "wb") as f:
        while chunk := body.read(MiB):
            f.write(chunk)
    os.replace(part, dest)


def down_file(bucket: str, key: str, dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    _get(bucket, key, dest)
    return 0


def down_dir(bucket: str, key: str, dest: Path, staging: Path) -> int:
    tgz = staging / "input.tgz"
    unpacked = dest.with_name(dest.name + ".tmpdir")
    try:
        _get(bucket, key, tgz)
        staged = tgz.stat().st_size
        with tarfile.open(tgz, "r:gz") as tar:
            tar.extractall(unpacked, filter="data")
        children = list(unpacked.iterdir())
        if len(children) == 1 and children[0].is_dir():
            os.replace(children[0], dest)  # Argo keeps the single folder the tar holds
        else:
            os.replace(unpacked, dest)
        return staged
    finally:
        tgz.unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    if len(argv) == 4 and argv[0] == "up-file":
        staged = up_file(Path(argv[1]), argv[2], argv[3])
    elif len(argv) == 5 and argv[0] == "up-dir":
        staged = up_dir(Path(argv[1]), argv[2], argv[3], Path(argv[4]))
    elif len(argv) == 4 and argv[0] == "down-file":
        staged = down_file(argv[1], argv[2], Path(argv[3]))
    elif len(argv) == 5 and argv[0] == "down-dir":
        staged = down_dir(argv[1], argv[2], Path(argv[3]), Path(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps({"seconds": time.perf_counter() - t0, "staged_bytes": staged}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
