"""Where bytes live: a URL (`s3://BUCKET/KEY`, `local://BUCKET/KEY`, `oss://BUCKET/KEY`),
a local path, or `-` for standard input/output."""

from __future__ import annotations

from dataclasses import dataclass

from argosy.artifacts.errors import InvalidSpec

REMOTE_SCHEMES = ("s3", "local", "oss")


@dataclass(frozen=True)
class Location:
    scheme: str  # "s3", "local", "oss", "file" or "stdio"
    bucket: str = ""
    key: str = ""  # for "file": the path

    @property
    def remote(self) -> bool:
        return self.scheme in REMOTE_SCHEMES

    @property
    def is_prefix(self) -> bool:
        """A remote URL ending in '/' (or naming only a bucket) names a folder of keys."""
        return self.remote and (self.key == "" or self.key.endswith("/"))

    def __str__(self) -> str:
        if self.remote:
            return (
                f"{self.scheme}://{self.bucket}/{self.key}" if self.bucket else f"{self.scheme}://"
            )
        return "-" if self.scheme == "stdio" else self.key

    def child(self, name: str) -> Location:
        return Location(self.scheme, self.bucket, self.key + name)


def parse(text: str, *, service: bool = False) -> Location:
    """`service`: a URL may name no bucket (`s3://`), meaning the service itself, as
    `argosy ls s3://` lists its buckets."""
    if text == "-":
        return Location("stdio")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if not text:
            raise InvalidSpec("empty path")
        return Location("file", key=text)
    if scheme not in REMOTE_SCHEMES:
        raise InvalidSpec(
            f"unknown scheme {scheme!r} in {text!r} (use s3://, oss://, local:// or a local path)"
        )
    bucket, _, key = rest.partition("/")
    if service and not rest:
        return Location(scheme)
    if not bucket:
        raise InvalidSpec(f"missing bucket in {text!r} (expected {scheme}://BUCKET/KEY)")
    return Location(scheme, bucket, key)
