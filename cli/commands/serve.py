"""`argosy serve`: Argo Server's artifact URLs on Argosy's engine (argosy.server).

The kubeconfig (or the pod's service account) gives the API server's address and CA; in
the default `--auth client` mode every Kubernetes call made for a request carries the
caller's own token. SIGTERM stops accepting connections and gives the streams in flight
`--shutdown-grace` seconds to finish.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys

from argosy.artifacts.connect import default_local_root
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.settings import MiB


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--listen",
        default="127.0.0.1:2746",
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:2746, Argo Server's port)",
    )
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="the Kubernetes API (default: in a pod its service account, else "
        "KUBECONFIG or ~/.kube/config)",
    )
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve only this namespace (repeatable; default: every namespace)",
    )
    p.add_argument(
        "--auth",
        default="client",
        choices=("client", "server", "none"),
        help="client: Kubernetes calls carry the caller's token (default); "
        "server: the server's credentials after reviewing the caller's token; "
        "none: no check, loopback only",
    )
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", metavar="FILE", help="and this key")
    p.add_argument(
        "--memory-budget",
        type=int,
        default=192,
        metavar="MiB",
        help="part buffers shared by all streams (default 192)",
    )
    p.add_argument(
        "--max-upload-bytes",
        type=int,
        default=1 << 30,
        metavar="N",
        help="largest upload (default 1 GiB)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=25.0,
        metavar="S",
        help="after SIGTERM, seconds streams get to finish (default 25)",
    )
    p.add_argument(
        "--default-repository",
        metavar="FILE",
        help="the Argo controller's default repository entry (YAML), for workflows that "
        "used it and uploads in a namespace without artifact-repositories",
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="access log lines as text or JSON",
    )


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidSpec(f"--listen must be HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from argosy.argo.kube import Kube
    from argosy.argo.repository import read_default_repository
    from argosy.server.app import make_app
    from argosy.server.context import CONTEXT
    from argosy.server.settings import DEFAULT_CSP, DEFAULT_X_FRAME_OPTIONS, ServerSettings

    host, port = _listen(args.listen)
    env = os.environ
    settings = ServerSettings(
        host=host,
        port=port,
        auth=args.auth,
        namespaces=tuple(args.namespace),
        memory_budget=args.memory_budget * MiB,
        max_upload_bytes=args.max_upload_bytes,
        content_security_policy=env.get("ARGO_ARTIFACT_CONTENT_SECURITY_POLICY", DEFAULT_CSP),
        x_frame_options=env.get("ARGO_ARTIFACT_X_FRAME_OPTIONS", DEFAULT_X_FRAME_OPTIONS),
        shutdown_grace=args.shutdown_grace,
        log_format=args.log_format,
        local_root=default_local_root(env),
        default_repository=(
            read_default_repository(args.default_repository) if args.default_repository else None
        ),
    )
    tls = None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InvalidSpec("--tls-cert and --tls-key go together")
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise InvalidSpec(f"cannot load --tls-cert/--tls-key: {error}") from None
    kube = Kube.connect(args.kubeconfig)
    app = make_app(settings, kube)

    async def draining(app: web.Application) -> None:
        app[CONTEXT].draining = True

    app.on_shutdown.append(draining)
    # access lines on stderr as they are (a JSON line stays one JSON object), not under
    # the command's `argosy: ` prefix
    access = logging.getLogger("argosy.server.access")
    access.setLevel(logging.INFO)
    access.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    scheme = "https" if tls else "http"
    print(f"argosy serve: listening on {scheme}://{host}:{port} (auth {settings.auth})", flush=True)
    web.run_app(
        app,
        host=host,
        port=port,
        ssl_context=tls,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace,
        print=None,
        handle_signals=True,
    )
    return 0
