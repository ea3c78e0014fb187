"""``python -m argosy.testing.faults``: the fault proxy as a command.

    python -m argosy.testing.faults --upstream URL [--listen PORT] [--delay-ms N]
                                    [--rule 'KIND NAME=VALUE ...' ...]

Prints ``{"port": N}`` once it listens, serves until SIGTERM or SIGINT, then prints its
statistics as one JSON line (connections, requests, chunks, bytes_up, bytes_down,
seconds). ``--delay-ms`` delays every request (`Delay(head=...)` on all of them, after
the ``--rule`` ones); see ``rules.parse_rule`` for the form of a rule.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import asdict

from argosy.testing.faults.proxy import FaultProxy
from argosy.testing.faults.rules import Delay, Rule, parse_rule


def main(argv: list[str] | None = None, *, prog: str = "python -m argosy.testing.faults") -> int:
    p = argparse.ArgumentParser(prog=prog, description="a fault-and-delay HTTP/1.1 proxy")
    p.add_argument("--upstream", required=True, help="http://HOST:PORT (or HOST:PORT)")
    p.add_argument(
        "--listen", "--listen-port", dest="listen", type=int, default=0, help="0: a free port"
    )
    p.add_argument("--delay-ms", type=float, default=0.0, help="delay every request")
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE",
        help="e.g. 'status status=503 method=PUT times=3' (repeatable; first match wins)",
    )
    p.add_argument("--max-connections", type=int, default=256)
    args = p.parse_args(argv)
    try:
        rules = [parse_rule(text) for text in args.rule]
        if args.delay_ms:
            rules.append(Rule(Delay(head=args.delay_ms / 1000), times=None))
        proxy = FaultProxy(
            args.upstream, rules, port=args.listen, max_connections=args.max_connections
        )
    except ValueError as error:
        p.error(str(error))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    with proxy:
        print(json.dumps({"port": proxy.port}), flush=True)
        while not stop.wait(0.5):
            pass
    stats = {**asdict(proxy.stats), "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
