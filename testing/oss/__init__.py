"""The Alibaba OSS protocol test server: real HTTP on loopback for the real ``oss2`` client.

``server`` holds :class:`OssTestServer` (objects, listings, multipart, authentication checked
as OSS checks it) and its command (``python -m argosy.testing.oss_server``); ``sts`` the STS
companion for RRSA; ``auth``, ``http``, ``wire``, ``ops``, ``buckets``, ``multipart``,
``store``, ``xml`` and ``crc`` the layers under them; ``serving`` the background-thread
lifecycle both servers share.
"""

from argosy.testing.oss.server import OssTestServer
from argosy.testing.oss.sts import StsTestServer

__all__ = ["OssTestServer", "StsTestServer"]
