"""S3's dates, parsed natively.

The odd forms S3 never sends go to a parser the caller gives: botocore's, which only
`sdk.py` may import (the client passes it; the direct path loads it for such a date).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def http_date(value: str) -> datetime:
    """HTTP's own date form, `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate);
    ValueError for anything else. (`email.utils` parses it too, but importing it cost
    ~9 ms of every command's start.)"""
    try:
        _, day, month, year, clock, zone = value.split()
        hour, minute, second = clock.split(":")
        if zone != "GMT":
            raise ValueError(value)
        return datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except (KeyError, ValueError) as error:
        raise ValueError(f"not an HTTP date: {value!r}") from error


def timestamp(value: Any, *, otherwise: Callable[[Any], datetime]) -> datetime:
    """The forms S3 sends, parsed natively (ISO 8601 in XML bodies, RFC 1123 in headers:
    ~0.1-17 us, where botocore's dateutil takes 50-300 us each); other RFC 2822 dates go
    to `email.utils`; anything else, or a date without a zone, to `otherwise` (botocore's
    parser)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if value[:4].isdigit() else http_date(value)
        except (ValueError, TypeError, IndexError):
            parsed = None
        if parsed is None and not value[:4].isdigit():
            from email.utils import parsedate_to_datetime

            try:
                parsed = parsedate_to_datetime(value)
            except (ValueError, TypeError, IndexError):
                parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return otherwise(value)  # the rare odd form
