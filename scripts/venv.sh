#!/usr/bin/env bash
# Creates .venv (if missing) and installs Argosy editable with the given extras.
# Usage: scripts/venv.sh EXTRAS   (e.g. "test,bench" or "demo")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
fi
.venv/bin/pip install -q -e ".[${extras}]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import argosy" || { echo "scripts/venv.sh: install failed" >&2; exit 1; }
# awscrt slows and changes botocore's signing path even when unused; keep it out.
if .venv/bin/python -c "import awscrt" 2>/dev/null; then
    .venv/bin/pip uninstall -q -y awscrt
fi
