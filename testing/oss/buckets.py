"""Bucket-level operations of the OSS test server and the operation dispatch table.

Only as much of the bucket API as oss2-based code touches: PutBucket
(``create_bucket``), GetBucketInfo, GetBucketLocation, Get/PutBucketAcl,
HeadBucket, DeleteBucket, ListBuckets and the lifecycle trio, whose XML is
stored verbatim and returned as given (NoSuchLifecycle while unset).
"""

from __future__ import annotations

from .multipart import (
    abort_multipart_upload,
    complete_multipart_upload,
    initiate_multipart_upload,
    list_multipart_uploads,
    list_parts,
    upload_part,
    upload_part_copy,
)
from .ops import (
    REGION,
    Operation,
    _bucket,
    _owner,
    _xml_reply,
    copy_object,
    delete_multiple_objects,
    delete_object,
    get_object,
    get_object_meta,
    head_object,
    list_objects,
    list_objects_v2,
    put_object,
)
from .store import Store
from .wire import OssRequest, Reply
from .xml import OssError, XmlChild, iso8601, parse_xml

_ACLS = ("private", "public-read", "public-read-write")


def _acl(req: OssRequest) -> str:
    acl = req.header("x-oss-acl", "private")
    if acl not in _ACLS:
        raise OssError(
            "InvalidArgument",
            "no such bucket access control exists",
            extra={"ArgumentName": "x-oss-acl", "ArgumentValue": acl},
        )
    return acl


def put_bucket(store: Store, req: OssRequest) -> Reply:
    body = req.small_body()
    if body.strip():
        parse_xml(body, "CreateBucketConfiguration")
    store.create_bucket(_bucket(req), _acl(req))
    return Reply(200, {"Location": f"/{req.bucket}"})


def head_bucket(store: Store, req: OssRequest) -> Reply:
    store.bucket(_bucket(req))
    return Reply(200)


def delete_bucket(store: Store, req: OssRequest) -> Reply:
    store.delete_bucket(_bucket(req))
    return Reply(204)


def _bucket_summary(req: OssRequest, store: Store, name: str) -> list[XmlChild]:
    bucket = store.bucket(name)
    return [
        ("CreationDate", iso8601(bucket.created)),
        ("ExtranetEndpoint", req.endpoint_host),
        ("IntranetEndpoint", req.endpoint_host),
        ("Location", f"oss-{REGION}"),
        ("Region", REGION),
        ("StorageClass", "Standard"),
        ("Name", name),
    ]


def get_bucket_info(store: Store, req: OssRequest) -> Reply:
    bucket = store.bucket(_bucket(req))
    children = _bucket_summary(req, store, bucket.name) + [
        ("AccessMonitor", "Disabled"),
        ("TransferAcceleration", "Disabled"),
        ("CrossRegionReplication", "Disabled"),
        ("DataRedundancyType", "LRS"),
        ("Versioning", None),
        ("Comment", ""),
        ("Owner", _owner(req)),
        ("AccessControlList", [("Grant", bucket.acl)]),
        ("ServerSideEncryptionRule", [("SSEAlgorithm", "None")]),
    ]
    return _xml_reply("BucketInfo", [("Bucket", children)])


def get_bucket_location(store: Store, req: OssRequest) -> Reply:
    store.bucket(_bucket(req))
    return Reply(
        200,
        {"Content-Type": "application/xml"},
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + f"<LocationConstraint>oss-{REGION}</LocationConstraint>".encode(),
    )


def get_bucket_acl(store: Store, req: OssRequest) -> Reply:
    bucket = store.bucket(_bucket(req))
    return _xml_reply(
        "AccessControlPolicy",
        [("Owner", _owner(req)), ("AccessControlList", [("Grant", bucket.acl)])],
    )


def put_bucket_acl(store: Store, req: OssRequest) -> Reply:
    req.body.drain()
    with store.lock:
        bucket = store.bucket(_bucket(req))
        bucket.acl = _acl(req)
        store.set_lifecycle(bucket.name, bucket.lifecycle)  # persists bucket.json
    return Reply(200)


def list_buckets(store: Store, req: OssRequest) -> Reply:
    prefix = req.query.get("prefix", "")
    with store.lock:
        names = sorted(n for n in store.buckets if n.startswith(prefix))
    return _xml_reply(
        "ListAllMyBucketsResult",
        [
            ("Owner", _owner(req)),
            ("Buckets", [("Bucket", _bucket_summary(req, store, n)) for n in names]),
        ],
    )


def put_bucket_lifecycle(store: Store, req: OssRequest) -> Reply:
    body = req.small_body()
    if not parse_xml(body, "LifecycleConfiguration").findall("Rule"):
        raise OssError("MalformedXML", "LifecycleConfiguration needs at least one Rule.")
    store.set_lifecycle(_bucket(req), body.decode("utf-8"))
    return Reply(200)


def get_bucket_lifecycle(store: Store, req: OssRequest) -> Reply:
    lifecycle = store.bucket(_bucket(req)).lifecycle
    if lifecycle is None:
        raise OssError("NoSuchLifecycle", extra={"BucketName": _bucket(req)})
    return Reply(200, {"Content-Type": "application/xml"}, lifecycle.encode("utf-8"))


def delete_bucket_lifecycle(store: Store, req: OssRequest) -> Reply:
    store.set_lifecycle(_bucket(req), None)
    return Reply(204)


OPERATIONS: dict[str, Operation] = {
    "PutObject": put_object,
    "CopyObject": copy_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "GetObjectMeta": get_object_meta,
    "DeleteObject": delete_object,
    "DeleteMultipleObjects": delete_multiple_objects,
    "ListObjects": list_objects,
    "ListObjectsV2": list_objects_v2,
    "InitiateMultipartUpload": initiate_multipart_upload,
    "UploadPart": upload_part,
    "UploadPartCopy": upload_part_copy,
    "CompleteMultipartUpload": complete_multipart_upload,
    "AbortMultipartUpload": abort_multipart_upload,
    "ListParts": list_parts,
    "ListMultipartUploads": list_multipart_uploads,
    "PutBucket": put_bucket,
    "HeadBucket": head_bucket,
    "DeleteBucket": delete_bucket,
    "GetBucketInfo": get_bucket_info,
    "GetBucketLocation": get_bucket_location,
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "ListBuckets": list_buckets,
    "PutBucketLifecycle": put_bucket_lifecycle,
    "GetBucketLifecycle": get_bucket_lifecycle,
    "DeleteBucketLifecycle": delete_bucket_lifecycle,
}
"""OSS API name (as returned by ``ops.route``) -> implementation."""
