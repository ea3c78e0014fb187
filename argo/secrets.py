"""The Secrets an Argo location names (`accessKeySecret: {name, key}`), from wherever the
component that reads it finds them.

A pod has them as files in Argo's layout (`SECRETS_DIR/<name>/<key>`, `FileSecrets`); a
controller, `repo check -n`, the plugin and the server read them through the Kubernetes
API (`ApiSecrets`, with a fetch function the caller gives). Either way a reference is
checked first (`secret_ref`): only what Kubernetes allows as a Secret's name and key is
ever read, since both become a path or an API request.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from argosy.artifacts.errors import InvalidSpec

# Kubernetes' rules: a Secret's name is an RFC 1123 subdomain, its keys ConfigMap keys
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_MAX_SECRET_NAME = _MAX_SECRET_KEY = 253
DEFAULT_SECRETS_DIR = "/argo/secret"  # where Argosy's pods mount them, as Argo's executor does


def secret_ref(ref: Any, field_name: str) -> tuple[str, str]:
    """The (name, key) of a `{name, key}` reference, refused unless both are what
    Kubernetes allows in a Secret: they become a path (SECRETS_DIR/<name>/<key>) or an API
    request, and a `../` in either would send any file of the pod as a credential."""
    if not isinstance(ref, Mapping) or "name" not in ref or "key" not in ref:
        raise InvalidSpec(f"{field_name} must be {{name, key}}")
    name, key = str(ref["name"]), str(ref["key"])
    if len(name) > _MAX_SECRET_NAME or not _SECRET_NAME.fullmatch(name):
        raise InvalidSpec(f"{field_name}.name: {name!r} is not a valid Kubernetes secret name")
    if (
        len(key) > _MAX_SECRET_KEY
        or not _SECRET_KEY.fullmatch(key)
        or key == "."
        or key.startswith("..")
    ):
        raise InvalidSpec(f"{field_name}.key: {key!r} is not a valid Kubernetes secret key")
    return name, key


class SecretSource(Protocol):
    """Where a component reads the Secrets its locations name. Both methods take a checked
    (name, key) and raise InvalidSpec (code SecretNotFound) naming `field` when it is not
    there."""

    def value(self, name: str, key: str, *, field: str) -> str: ...

    def file(self, name: str, key: str, *, field: str) -> str:
        """A file holding the value (a CA bundle is handed to TLS as a file)."""
        ...


def read(source: SecretSource, ref: Any, field: str) -> str | None:
    """The value a reference names (None for no reference)."""
    if ref is None:
        return None
    name, key = secret_ref(ref, field)
    return source.value(name, key, field=field)


def read_file(source: SecretSource, ref: Any, field: str) -> str | None:
    """A file holding what a reference names (None for no reference)."""
    if ref is None:
        return None
    name, key = secret_ref(ref, field)
    return source.file(name, key, field=field)


def _missing(field: str, what: str) -> InvalidSpec:
    return InvalidSpec(f"{field}: {what}", code="SecretNotFound")


class FileSecrets:
    """Argo's layout in a pod: `folder/<name>/<key>`, values with surrounding whitespace
    stripped (as a mounted Secret written by hand often ends in a newline)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _path(self, name: str, key: str, field: str) -> Path:
        path = self.folder / name / key
        if not path.is_file():
            raise _missing(field, f"secret {name}/{key} not found (looked for {path})")
        return path

    def value(self, name: str, key: str, *, field: str) -> str:
        path = self._path(name, key, field)
        try:
            return path.read_text().strip()
        except (OSError, UnicodeDecodeError):
            raise _missing(field, f"secret {name}/{key} cannot be read ({path})") from None

    def file(self, name: str, key: str, *, field: str) -> str:
        return str(self._path(name, key, field))


class ApiSecrets:
    """Secrets of one namespace through the Kubernetes API: `fetch(name)` returns a
    Secret's decoded data, or None when there is none; it is asked at every read, so
    caching (and how long a rotated Secret may stay stale) is the caller's choice. A
    file is written once per distinct value, private to this process, removed by
    `close()`."""

    def __init__(
        self, fetch: Callable[[str], Mapping[str, bytes] | None], *, namespace: str
    ) -> None:
        self._fetch = fetch
        self.namespace = namespace
        self._folder: Path | None = None
        self._lock = threading.Lock()

    def _bytes(self, name: str, key: str, field: str) -> bytes:
        data = self._fetch(name)
        if data is None:
            raise _missing(field, f"Secret {self.namespace}/{name} not found")
        if key not in data:
            raise _missing(field, f"Secret {self.namespace}/{name} has no key {key!r}")
        return data[key]

    def value(self, name: str, key: str, *, field: str) -> str:
        try:
            return self._bytes(name, key, field).decode().strip()
        except UnicodeDecodeError:
            raise _missing(
                field, f"Secret {self.namespace}/{name} key {key!r} is not text"
            ) from None

    def file(self, name: str, key: str, *, field: str) -> str:
        data = self._bytes(name, key, field)
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="argosy-secrets-"))  # 0700
            path = self._folder / (hashlib.sha256(data).hexdigest()[:32] + ".pem")
            if not path.exists():
                path.write_bytes(data)
                path.chmod(0o600)
        return str(path)

    def close(self) -> None:
        with self._lock:
            folder, self._folder = self._folder, None
        if folder is not None:
            for entry in folder.iterdir():
                entry.unlink(missing_ok=True)
            folder.rmdir()


class NoSecrets:
    """Where no Secrets can be read: a location that names one is refused, naming it."""

    def __init__(self, why: str) -> None:
        self.why = why

    def value(self, name: str, key: str, *, field: str) -> str:
        raise _missing(field, f"names secret {name}/{key}, but {self.why}")

    def file(self, name: str, key: str, *, field: str) -> str:
        return self.value(name, key, field=field)


class FirstFound:
    """Each source in turn, the first that has the Secret answering (files mounted in
    Argo's layout before the API, as a plugin reads them): the last one's error when
    none has it."""

    def __init__(self, *sources: SecretSource) -> None:
        self.sources = sources

    def _first(self, name: str, key: str, field: str, *, as_file: bool) -> str:
        error: InvalidSpec | None = None
        for source in self.sources:
            try:
                if as_file:
                    return source.file(name, key, field=field)
                return source.value(name, key, field=field)
            except InvalidSpec as missing:
                if missing.code != "SecretNotFound":
                    raise
                error = missing
        raise error or _missing(field, f"secret {name}/{key} not found")

    def value(self, name: str, key: str, *, field: str) -> str:
        return self._first(name, key, field, as_file=False)

    def file(self, name: str, key: str, *, field: str) -> str:
        return self._first(name, key, field, as_file=True)


def cached(
    fetch: Callable[[str], Mapping[str, bytes] | None],
    *,
    ttl: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[str], Mapping[str, bytes] | None]:
    """`fetch` asked at most once per `ttl` seconds per Secret: a rotated Secret is read
    within that time, and a burst of requests does not become a burst of API calls."""
    kept: dict[str, tuple[float, Mapping[str, bytes] | None]] = {}
    lock = threading.Lock()

    def read(name: str) -> Mapping[str, bytes] | None:
        now = clock()
        with lock:
            hit = kept.get(name)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        data = fetch(name)
        with lock:
            kept[name] = (now, data)
        return data

    return read
