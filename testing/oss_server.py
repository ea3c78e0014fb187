"""``python -m argosy.testing.oss_server``: the OSS protocol test server as a command.

The server lives in :mod:`argosy.testing.oss`; this module keeps the command and the
names it has always exported (``from argosy.testing.oss_server import OssTestServer``).
"""

from __future__ import annotations

from argosy.testing.oss.server import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET,
    Fault,
    OssTestServer,
    RequestRecord,
    ServerStats,
    StsToken,
    main,
)

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET",
    "Fault",
    "OssTestServer",
    "RequestRecord",
    "ServerStats",
    "StsToken",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
