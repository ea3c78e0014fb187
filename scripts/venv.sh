#!/usr/bin/env bash
# Creates .venv (if missing) and installs Argosy editable with the given extras.
# Usage: scripts/venv.sh EXTRAS   (e.g. "test" or "demo"). pip's chatter goes to
# .venv/pip.log and is shown only when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
log=.venv/pip.log
if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".[${extras}]"; } \
        >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" | tail -30 >&2
    echo "scripts/venv.sh: installing argosy[${extras}] failed (full log: $log)" >&2
    exit 1
fi
.venv/bin/python -c "import argosy" || { echo "scripts/venv.sh: install failed" >&2; exit 1; }
# awscrt slows and changes botocore's signing path even when unused; keep it out.
if .venv/bin/python -c "import awscrt" 2>/dev/null; then
    .venv/bin/pip uninstall -q -y awscrt
fi
echo "scripts/venv.sh: .venv ready with argosy[${extras}]"
