"""The S3 driver's one error table: every SDK failure lands on the right branch."""

from __future__ import annotations

import ssl

import botocore.exceptions as bx
import pytest

from argosy.artifacts import errors
from argosy.artifacts.drivers.s3 import map_error


def _client_error(
    code: str, status: int, message: str = "m", operation: str = "GetObject"
) -> bx.ClientError:
    return bx.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "RequestId": "",
                "HostId": "",
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        operation,
    )


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("NoSuchKey", 404, errors.NotFound),
        ("NoSuchBucket", 404, errors.NotFound),
        ("404", 404, errors.NotFound),
        ("AccessDenied", 403, errors.AccessDenied),
        ("SignatureDoesNotMatch", 403, errors.AccessDenied),
        ("InvalidAccessKeyId", 403, errors.AccessDenied),
        ("ExpiredToken", 400, errors.AccessDenied),
        ("PreconditionFailed", 412, errors.PreconditionFailed),
        ("SlowDown", 503, errors.ThrottledError),
        ("503", 503, errors.ThrottledError),
        ("RequestTimeout", 400, errors.TransientError),
        ("InternalError", 500, errors.TransientError),
        ("SomethingNew", 502, errors.TransientError),
        ("SomethingNew", 400, errors.PermanentError),
        ("NotImplemented", 501, errors.PermanentError),
        ("InvalidRange", 416, errors.IntegrityError),
    ],
)
def test_client_errors_map_by_code_then_status(code: str, status: int, expected: type) -> None:
    mapped = map_error(_client_error(code, status), "s3://b/k")
    assert type(mapped) is expected
    assert mapped.message.startswith("s3://b/k: ") and mapped.code == code


def test_not_implemented_is_not_retried_as_a_server_error() -> None:
    assert not isinstance(
        map_error(_client_error("NotImplemented", 501), "x"), errors.TransientError
    )


@pytest.mark.parametrize(
    "error, expected",
    [
        (bx.EndpointConnectionError(endpoint_url="http://h:1"), errors.TransientError),
        (bx.ReadTimeoutError(endpoint_url="http://h:1"), errors.RequestStalled),
        (bx.ConnectTimeoutError(endpoint_url="http://h:1"), errors.RequestStalled),
        (bx.ConnectionClosedError(endpoint_url="http://h:1"), errors.TransientError),
        (bx.NoCredentialsError(), errors.AccessDenied),
        (
            bx.SSLError(
                endpoint_url="http://h:1",
                error=ssl.SSLCertVerificationError(
                    1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
                ),
            ),
            errors.PermanentError,
        ),
        (ConnectionResetError(), errors.TransientError),
    ],
)
def test_transport_failures_map_to_transient_or_permanent(error: Exception, expected: type) -> None:
    assert type(map_error(error, "s3://b/k")) is expected


def test_a_timeout_names_the_request_and_the_endpoint_it_waited_for() -> None:
    read = map_error(
        bx.ReadTimeoutError(endpoint_url="http://h:1"), "s3://b/k", request="PutObject"
    )
    assert str(read) == "s3://b/k: timed out waiting for the answer to PutObject from http://h:1"
    assert isinstance(read, errors.TransientError)
    connect = map_error(
        bx.ConnectTimeoutError(endpoint_url="http://AK:SECRET@h:1"),
        "s3://b/k",
        request="HeadObject",
    )
    assert "a connection to http://***@h:1 for HeadObject" in str(connect)
    assert connect.code == "EndpointUnreachable" and "SECRET" not in str(connect)


def test_a_secret_in_the_server_message_never_reaches_ours() -> None:
    error = _client_error(
        "SignatureDoesNotMatch", 403, "StringToSign with secret AKIASECRET", "PutObject"
    )
    assert "AKIASECRET" not in str(map_error(error, "s3://b/k"))
