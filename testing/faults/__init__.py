"""A fault-and-delay HTTP/1.1 proxy for tests, benchmarks and people: put it between a
client and any HTTP upstream (Ceph RGW, the OSS test server, moto) and choose, request by
request, what the network and the server do wrong.

    from argosy.testing.faults import Answer, FaultProxy, Rule

    with FaultProxy(rgw_url, [Rule(Answer(503), method="^PUT$", times=3)]) as proxy:
        run_client(endpoint=proxy.url)

``rules`` holds the faults (Delay, Answer, Reset, Truncate, Corrupt, BlackHole,
LoseAnswer) and the rules that pick requests; ``proxy`` the server; ``wire`` the bits of
HTTP/1.1 it reads; ``__main__`` the command
(``python -m argosy.testing.faults --upstream URL --listen PORT [--delay-ms N] [--rule R]``).
"""

from argosy.testing.faults.proxy import FaultProxy, Stats
from argosy.testing.faults.rules import (
    Answer,
    BlackHole,
    Corrupt,
    Delay,
    Fault,
    Hit,
    LoseAnswer,
    Reset,
    Rule,
    Truncate,
    parse_rule,
)

__all__ = [
    "Answer",
    "BlackHole",
    "Corrupt",
    "Delay",
    "Fault",
    "FaultProxy",
    "Hit",
    "LoseAnswer",
    "Reset",
    "Rule",
    "Stats",
    "Truncate",
    "parse_rule",
]
