"""ListObjectsV2 answers on the direct path: keys and prefixes come URL-encoded (asked
with `encoding-type=url`) and are decoded as botocore decodes them; what is not a whole
listing is refused, never read as an empty or a last page."""

from __future__ import annotations

import pytest

from argosy.artifacts.drivers.s3 import direct

LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>b</Name><Prefix>p%2F</Prefix><EncodingType>url</EncodingType>"
    b"<IsTruncated>true</IsTruncated><NextContinuationToken>t+1/=</NextContinuationToken>"
    b"<Contents><Key>p/a+b%2Bc%C3%BC</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified>"
    b"<ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>"
    b"<CommonPrefixes><Prefix>p/with+space/</Prefix></CommonPrefixes>"
    b"</ListBucketResult>"
)


def test_a_listing_decodes_its_url_encoded_keys_and_keeps_its_token_as_sent() -> None:
    page = direct.parse_listing(LISTING)
    assert page.objects == [("p/a b+cü", 12, "abc", "2026-12-06T10:00:00.000Z")]
    assert page.prefixes == ["p/with space/"]
    assert page.next_token == "t+1/="


def test_a_listing_that_did_not_encode_its_keys_is_taken_as_it_is() -> None:
    raw = LISTING.replace(b"<EncodingType>url</EncodingType>", b"")
    assert direct.parse_listing(raw).objects[0][0] == "p/a+b%2Bc%C3%BC"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<Error><Code>NoSuchBucket</Code></Error>",
        LISTING.replace(b"<NextContinuationToken>t+1/=</NextContinuationToken>", b""),
        LISTING[:-20],
    ],
    ids=["empty", "an-error", "truncated-without-token", "cut-short"],
)
def test_what_is_not_a_whole_listing_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        direct.parse_listing(body)
