"""minio-py as a peer: one fput_object or fget_object in this process, defaults as shipped.

    python -m bench.peer_minio up|down FILE BUCKET KEY

Minio(host, access_key, secret_key, secure=False) and nothing else: 3 parallel parts on
upload, a single-stream GET on download. Endpoint and credentials come from the AWS_*
variables. Prints {"seconds": ...} (the transfer alone) on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from urllib.parse import urlsplit

from minio import Minio


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    direction, path, bucket, key = argv
    endpoint = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    if endpoint.scheme != "http" or not endpoint.netloc:
        raise SystemExit(f"expected an http:// endpoint, got {endpoint.geturl()}")
    client = Minio(
        endpoint.netloc,
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        secure=False,
    )
    t0 = time.perf_counter()
    if direction == "up":
        client.fput_object(bucket, key, path)
    else:
        client.fget_object(bucket, key, path)
    print(json.dumps({"seconds": time.perf_counter() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
