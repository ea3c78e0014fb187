#!/usr/bin/env bash
# chromium.sh - install Debian's chromium for the browser test (tests/server/test_browser.py)
# if it is missing, and say how long the install took. Needs root and apt-get (Debian
# bookworm) when chromium is not installed yet.
set -euo pipefail
log() { echo "chromium.sh: $*" >&2; }
if command -v chromium >/dev/null 2>&1; then
  log "$(chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { log "chromium is missing; run scripts/chromium.sh as root"; exit 1; }
command -v apt-get >/dev/null || { log "chromium is missing and there is no apt-get"; exit 1; }
t0=$(date +%s)
aptlog=$(mktemp /tmp/chromium-apt.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends chromium fonts-dejavu-core >"$aptlog" 2>&1; then
  log "apt-get install failed; running apt-get update and retrying"
  if ! { apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core; } >>"$aptlog" 2>&1; then
    tail -n 20 "$aptlog" >&2
    log "apt-get install chromium failed (see $aptlog)"
    exit 1
  fi
fi
command -v chromium >/dev/null || { log "chromium still missing after install"; exit 1; }
rm -f "$aptlog"
log "installed $(chromium --version 2>/dev/null) in $(( $(date +%s) - t0 )) s"
