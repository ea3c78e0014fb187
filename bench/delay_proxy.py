"""A proxy on 127.0.0.1 that makes every request 20 ms slower (a stand-in for a real
network between a pod and its object store): the fault proxy of `argosy.testing.faults`
with one rule, a delay on every request.

    python -m bench.delay_proxy --upstream 127.0.0.1:PORT [--listen-port 0] [--delay-ms 20]

Prints `{"port": N}` on stdout once it listens, then serves until SIGTERM/SIGINT, and at
exit prints `{"connections": N, "requests": N, "chunks": N, "bytes_up": N,
"bytes_down": N, "seconds": S}`.

Delay model: each request is held `--delay-ms` before it is forwarded upstream, so its
answer can start no earlier: each request/response exchange costs that much more, like a
network with that round trip. It is latency, not a throughput cap: once forwarded, a
large body streams at full speed, and requests on parallel connections overlap their
delays, as they would on a real network.
"""

from __future__ import annotations

import argparse
import sys

from argosy.testing.faults.__main__ import main as faults_main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.delay_proxy")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    p.add_argument("--listen-port", type=int, default=0, help="0: a free port")
    p.add_argument("--delay-ms", type=float, default=20.0)
    args = p.parse_args(argv)
    return faults_main(
        [
            "--upstream",
            args.upstream,
            "--listen",
            str(args.listen_port),
            "--delay-ms",
            str(args.delay_ms),
        ],
        prog="python -m bench.delay_proxy",
    )


if __name__ == "__main__":
    sys.exit(main())
