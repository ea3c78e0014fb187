"""S3's dates, parsed natively."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any


def timestamp(value: Any) -> datetime:
    """The two forms S3 sends, parsed natively (ISO 8601 in XML bodies, RFC 1123 in
    headers: ~0.1-17 us, where botocore's dateutil takes 50-300 us each); anything else,
    or a date without a zone, goes to botocore's own parser."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if value[:4].isdigit() else \
                parsedate_to_datetime(value)
        except (ValueError, TypeError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    from argosy.artifacts.drivers.s3.sdk import parse_any_timestamp  # the rare odd form

    parsed = parse_any_timestamp(value)
    assert isinstance(parsed, datetime)
    return parsed
