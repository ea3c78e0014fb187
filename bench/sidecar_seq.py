"""`argosy init` with its inputs fetched one after another, in one process (for
bench/sidecar.py): Argo's order, without the start-up of one process per input.

    python -m bench.sidecar_seq INIT-ARGS...    (the arguments `argosy init` takes)

It reads the pod exactly as `argosy init` does (argosy.sidecar.context.load) and calls the same
fetch_inputs with artifact_concurrency=1 and the settings `argosy init` gives a single
input (all parts in flight for it), so each input moves as fast as it would alone and
only the overlap between inputs is taken away. Writes inputs.json like init, prints
{"seconds": ..., "failed": N} (the fetches alone) and exits 1 if any input failed.
"""

from __future__ import annotations

import json
import os
import sys
import time

from argosy.commands.pod import options
from argosy.main import parser
from argosy.sidecar import report
from argosy.sidecar.context import load, transfer_settings
from argosy.sidecar.inputs import fetch_inputs


def main(argv: list[str]) -> int:
    args = parser().parse_args(["init", *argv])
    pod = load(options(args), os.environ)
    template = pod.template
    t0 = time.perf_counter()
    results = fetch_inputs(
        template,
        ctx=pod.ctx,
        layers=pod.layers,
        root=args.root,
        settings=transfer_settings(1, os.environ),
        artifact_concurrency=1,
    )
    seconds = time.perf_counter() - t0
    report.write_json(
        args.var_dir / "inputs.json", report.inputs_document(results, template=template.name)
    )
    failed = [r for r in results if r.status != "downloaded"]
    for r in failed:
        print(f"bench.sidecar_seq: input {r.name}: {r.status} {r.reason}", file=sys.stderr)
    print(json.dumps({"seconds": seconds, "failed": len(failed)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
