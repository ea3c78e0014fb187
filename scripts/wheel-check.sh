#!/usr/bin/env bash
# Builds a wheel and installs it (with its dependencies) into a throwaway virtualenv,
# then runs the installed command: proves the package-dir mapping works outside an
# editable install.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/argosy-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
quiet() { grep -v '^WARNING: Location' || true; }
.venv/bin/pip wheel -q --no-deps -w "$work/dist" . 2>&1 | quiet
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/argosy-*.whl 2>&1 | quiet
cd "$work"
venv/bin/argosy --version
mkdir -p root/wheel && echo "wheel install works" > f
ARGOSY_LOCAL_ROOT="$work/root" venv/bin/argosy cp -q f local://wheel/f
ARGOSY_LOCAL_ROOT="$work/root" venv/bin/argosy cat local://wheel/f | grep -q "wheel install works"
venv/bin/python - <<'PY'
import pathlib

import argosy
import argosy.artifacts.drivers.s3 as s3

assert "site-packages" in argosy.__file__ and "site-packages" in s3.__file__, argosy.__file__
assert (pathlib.Path(argosy.__file__).parent / "py.typed").exists()
print("wheel install: ok from", pathlib.Path(argosy.__file__).parent)
PY
