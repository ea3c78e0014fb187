"""Smoke test for the RGW started by scripts/rgw.sh (reads the AWS_* variables of STATE_DIR/env).

Usage:  . STATE_DIR/env && python scripts/rgw_smoke.py
Exercises what Argosy relies on: bucket create, put/get, 3-part multipart upload with 5 MiB
parts, ListParts, abort, ListMultipartUploads, DeleteObjects (Content-MD5) and SigV4 rejection
of a wrong secret. Exits non-zero on the first failure.
"""

import base64
import hashlib
import os
import sys
import time
import uuid

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def client(secret=None):
    # botocore >= 1.36 sends CRC checksums by default; ask for them only when required.
    cfg = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 2},
    )
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=cfg,
    )


def main():
    t0 = time.monotonic()
    s3 = client()
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)

    s3.put_object(Bucket=bucket, Key="small.txt", Body=b"hello argosy")
    assert s3.get_object(Bucket=bucket, Key="small.txt")["Body"].read() == b"hello argosy"

    # 3-part multipart upload, 5 MiB parts (the last may be smaller)
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1 * MIB)]
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")
    done = []
    for n, data in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=mpu["UploadId"],
                           PartNumber=n, Body=data)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=mpu["UploadId"])["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3], listed
    assert [p["Size"] for p in listed] == [len(d) for d in parts_data], listed
    s3.complete_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=mpu["UploadId"], MultipartUpload={"Parts": done}
    )
    whole = b"".join(parts_data)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(whole) and head["ETag"].endswith('-3"'), head
    got = s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=5242870-5242889")["Body"].read()
    assert got == whole[5242870:5242890]
    body = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(whole).digest()

    # a too-small non-last part must be rejected at Complete (EntityTooSmall)
    small = s3.create_multipart_upload(Bucket=bucket, Key="small-parts.bin")
    sp = [s3.upload_part(Bucket=bucket, Key="small-parts.bin", UploadId=small["UploadId"],
                         PartNumber=n, Body=b"x" * 1024) for n in (1, 2)]
    try:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small-parts.bin", UploadId=small["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": p["ETag"]}
                                       for n, p in zip((1, 2), sp)]},
        )
        raise AssertionError("EntityTooSmall not enforced")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "EntityTooSmall", e.response

    # abort another upload
    other = s3.create_multipart_upload(Bucket=bucket, Key="aborted.bin")
    s3.upload_part(Bucket=bucket, Key="aborted.bin", UploadId=other["UploadId"], PartNumber=1,
                   Body=os.urandom(MIB))
    uploads = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    assert other["UploadId"] in uploads, uploads
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted.bin", UploadId=other["UploadId"])
    s3.abort_multipart_upload(Bucket=bucket, Key="small-parts.bin", UploadId=small["UploadId"])
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "uploads left after abort"

    # batch delete with an explicit Content-MD5 (DeleteObjects requires one on S3)
    keys = ["small.txt", "big.bin"] + [f"many/{i}" for i in range(5)]
    for k in keys[2:]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    body_md5 = {}

    def add_md5(request, **kwargs):
        md5 = base64.b64encode(hashlib.md5(request.body).digest()).decode()
        request.headers["Content-MD5"] = md5
        body_md5["sent"] = md5

    s3.meta.events.register("before-sign.s3.DeleteObjects", add_md5)
    r = s3.delete_objects(Bucket=bucket,
                          Delete={"Objects": [{"Key": k} for k in keys], "Quiet": False})
    assert body_md5.get("sent"), "Content-MD5 was not sent"
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == sorted(keys) and not r.get("Errors"), r
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)

    # SigV4 is really checked
    try:
        client(secret="wrong-secret").list_buckets()
        raise AssertionError("a wrong secret was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response

    took = time.monotonic() - t0
    print(f"rgw_smoke: OK against {os.environ['AWS_ENDPOINT_URL']} in {took:.1f} s "
          f"(boto3 {boto3.__version__}, botocore {botocore.__version__})")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line for CI logs
        print(f"rgw_smoke: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        raise
