#!/usr/bin/env bash
# rgw.sh - install, start and stop a real single-node Ceph RADOS Gateway (S3) on 127.0.0.1.
#
# Why: Argosy's S3 tests and benchmarks need a real S3 server (SigV4 checks, the 5 MiB
# minimum part size, real multipart/batch-delete behaviour) and CI machines have neither
# Docker nor systemd. Debian bookworm ships Ceph 16.2 (pacific), so we build a throw-away
# cluster (1 mon, 1 bluestore OSD on a sparse file, 1 radosgw with the beast frontend)
# entirely inside STATE_DIR: its own ceph.conf/fsid/keys/ports/logs, nothing in /etc/ceph
# or /var/lib/ceph, so several STATE_DIRs can run side by side.
#
# Usage (as root):
#   scripts/rgw.sh install              install the Debian packages if missing
#   scripts/rgw.sh start STATE_DIR      fresh cluster; writes STATE_DIR/env (source it)
#   scripts/rgw.sh stop STATE_DIR       stop the daemons, delete the data (logs are kept)
#   scripts/rgw.sh gc STATE_DIR         radosgw-admin gc process --include-all
#   scripts/rgw.sh status STATE_DIR     exit 0 if mon, osd and radosgw run and S3 answers
#
# STATE_DIR/env holds `export NAME=VALUE` lines (values quoted like printf %q):
# AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_DEFAULT_REGION,
# ARGOSY_RGW_STATE, ARGOSY_RGW_ENV. Logs: STATE_DIR/log. STATE_DIR must be empty or one
# made by this script (marker file .argosy-rgw), and contain no whitespace.
# Environment: RGW_PORT (S3 port; default: a free one), RGW_START_TIMEOUT (seconds,
# default 180), RGW_BLOCK_SIZE (sparse OSD file size, default 20G).
# start never skips silently: on failure it prints the tail of the relevant daemon log,
# stops whatever it started and exits 1 with a one-line "rgw.sh: ERROR: ..." message.
# Typical CI use:  trap 'scripts/rgw.sh stop "$d"' EXIT; scripts/rgw.sh start "$d"; . "$d/env"
set -euo pipefail

readonly ACCESS_KEY=argosytestkey
readonly SECRET_KEY=argosytestsecret0123456789
readonly REGION=us-east-1
readonly RGW_NAME=client.rgw.a     # short names keep unix socket paths under 108 bytes
readonly PACKAGES=(radosgw ceph-mon ceph-osd ceph-common)
readonly NEEDED_CMDS=(radosgw radosgw-admin ceph-mon ceph-osd ceph ceph-authtool monmaptool curl)
readonly MARKER=.argosy-rgw        # only dirs carrying this file are ever wiped

log() { echo "rgw.sh: $*" >&2; }
# inside start, the EXIT trap (start_fail) reports FAIL_MSG after cleaning up
die() { FAIL_MSG="$*"; [[ -n ${IN_START:-} ]] || log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- install
cmd_install() {
  local missing=() c
  for c in "${NEEDED_CMDS[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; run 'scripts/rgw.sh install' as root"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get (Debian bookworm expected)"
  local aptlog t0; aptlog=$(mktemp /tmp/rgw-apt.XXXXXX.log); t0=$(now)
  log "installing ${PACKAGES[*]} curl (log: $aptlog)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" curl >"$aptlog" 2>&1; then
    log "apt-get install failed; running apt-get update and retrying"
    if ! { apt-get update && apt-get install -y --no-install-recommends "${PACKAGES[@]}" curl; } >>"$aptlog" 2>&1; then
      tail -n 20 "$aptlog" >&2
      die "apt-get install ${PACKAGES[*]} failed (see $aptlog)"
    fi
  fi
  for c in "${NEEDED_CMDS[@]}"; do command -v "$c" >/dev/null 2>&1 || die "$c still missing after install"; done
  log "installed in $(elapsed "$t0") s ($(radosgw --version 2>/dev/null | cut -d' ' -f1-3))"
  rm -f "$aptlog"
}

# ---------------------------------------------------------------- helpers
set_paths() {  # set_paths STATE_DIR [create]
  [[ -n ${1:-} ]] || die "usage: rgw.sh ${CMD:-CMD} STATE_DIR"
  [[ ${2:-} == create ]] && mkdir -p "$1"
  if [[ -d $1 ]]; then STATE=$(cd "$1" && pwd -P); else STATE=$(realpath -m "$1"); fi
  [[ $STATE != / ]] || die "refusing to use / as STATE_DIR"
  [[ $STATE != *[[:space:]]* ]] || die "STATE_DIR must not contain whitespace: '$STATE'"
  CONF=$STATE/ceph.conf RUN=$STATE/run LOGD=$STATE/log
}

# pid of a daemon we started from this STATE_DIR (pid file + cmdline check), or nothing
daemon_pid() {
  local f=$RUN/$1.pid pid
  [[ -r $f ]] || return 0
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && is_ours "$pid" && echo "$pid"
  return 0
}
# does process $1 have "-c $CONF" on its command line?
is_ours() { [[ -r /proc/$1/cmdline ]] && grep -qzxF -- "$CONF" "/proc/$1/cmdline" 2>/dev/null; }
# every process (daemon or stuck CLI) whose command line names this STATE_DIR's ceph.conf
all_ours() {
  local p pid
  for p in /proc/[0-9]*; do pid=${p#/proc/}; [[ $pid != "$$" ]] && is_ours "$pid" && echo "$pid"; done
  return 0
}

ceph_cli() { timeout 20 ceph -c "$CONF" --connect-timeout 15 "$@"; }
rgw_admin() { timeout "${ADMIN_TIMEOUT:-120}" radosgw-admin -c "$CONF" "$@"; }

# ports bound or connected on this machine, from /proc (no ss/netstat needed)
used_ports() {
  local f sl local_addr rest
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r sl local_addr rest; do
      [[ $sl == sl ]] && continue
      echo $((16#${local_addr##*:}))
    done <"$f"
  done
}
port_in_use() { used_ports | grep -qx -- "$1"; }
# sets FREE_PORT to a free port in 10000-32767 (below the kernel's ephemeral range and
# above Ceph's 6800-7300 OSD range), never one handed out before in this run
free_port() {
  local used p i
  used=" $(used_ports | tr '\n' ' ') ${TAKEN_PORTS:-} "
  for i in $(seq 200); do
    p=$((10000 + RANDOM % 22768))
    [[ $used == *" $p "* ]] || { TAKEN_PORTS="${TAKEN_PORTS:-} $p"; FREE_PORT=$p; return 0; }
  done
  FAIL_MSG="no free TCP port found on 127.0.0.1"; exit 1
}

# launch a daemon in the foreground of its own session, detached from our terminal/stdio
launch() {  # launch NAME CMD...
  local name=$1; shift
  setsid "$@" -f -c "$CONF" </dev/null >>"$LOGD/$name.out" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

# running = exists and not a zombie (exited daemons are reparented to init, which may reap
# them late; kill -0 would still succeed on the zombie)
running() {
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [[ ${st%% *} != Z ]]
}

# SIGTERM the given pids together, wait up to 20 s, then SIGKILL what is left
term_wait() {
  local pids=" $* " pid i alive
  [[ -n ${pids// /} ]] || return 0
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 100); do
    alive=''; for pid in $pids; do running "$pid" && alive+=" $pid"; done
    pids=$alive; [[ -z $pids ]] && return 0
    sleep 0.2
  done
  log "pids$pids ignored SIGTERM for 20 s; sending SIGKILL"
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  for i in $(seq 50); do
    alive=''; for pid in $pids; do running "$pid" && alive+=" $pid"; done
    pids=$alive; [[ -z $pids ]] && return 0
    sleep 0.1
  done
  log "WARNING: pids$pids survived SIGKILL"
}

# Stop everything started from this STATE_DIR in order: gateway (and any stray CLI), OSD,
# mon. Order matters: radosgw hangs in shutdown once the OSD is gone, and the OSD waits 5 s
# for a vanished monitor.
stop_daemons() {
  local mon osd others
  mon=$(daemon_pid mon); osd=$(daemon_pid osd)
  others=$({ daemon_pid rgw; all_ours; } | sort -u | grep -vx -e "${mon:-none}" -e "${osd:-none}" || true)
  term_wait $others
  term_wait $osd
  term_wait $mon
  rm -f "$RUN"/*.pid
}

wipe_data() {  # everything we created except the logs
  [[ -e $STATE/$MARKER ]] || return 0
  rm -rf "$STATE/mon" "$STATE/osd" "$STATE/rgw" "$STATE/run" "$STATE/crash" "$STATE/keys" \
    "$STATE/env" "$CONF" "$STATE/monmap"
}

# ---------------------------------------------------------------- start
start_fail() {
  trap - EXIT INT TERM ERR
  set +e  # best-effort cleanup from here on
  [[ ${START_OK:-0} == 1 ]] && return
  local f
  for f in ${FAIL_LOGS:-}; do
    [[ -s $f ]] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 25 "$f" >&2
  done
  [[ -n ${STATE:-} && -d ${STATE:-/nonexistent} ]] && stop_daemons && wipe_data
  log "ERROR: start failed: ${FAIL_MSG:-unexpected error at line ${ERR_LINE:-?}: ${ERR_CMD:-?}}${LOGS_AT:-}"
  exit 1
}

wait_until() {  # wait_until WHAT LOGS CMD... : poll CMD until it succeeds or the deadline
  local what=$1 logs=$2; shift 2
  FAIL_LOGS=$logs
  until "$@" >/dev/null 2>&1; do
    check_alive
    if (($(date +%s) >= DEADLINE)); then FAIL_MSG="timed out after ${TIMEOUT}s waiting for $what"; exit 1; fi
    sleep 0.5
  done
}

check_alive() {  # every daemon launched so far must still be running
  local name
  for name in ${LAUNCHED:-}; do
    if [[ -z $(daemon_pid "$name") ]]; then
      FAIL_LOGS="$LOGD/$name.out $LOGD/$(logname "$name")"
      FAIL_MSG="ceph $name daemon exited during startup"
      exit 1
    fi
  done
}
logname() { case $1 in mon) echo ceph-mon.a.log ;; osd) echo ceph-osd.0.log ;; rgw) echo "ceph-$RGW_NAME.log" ;; esac; }

osd_up() { ceph_cli osd stat -f json | grep -q '"num_up_osds":1'; }
s3_answers() {  # authenticated ListBuckets must return 200
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:$REGION:s3" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    --user "$ACCESS_KEY:$SECRET_KEY" "http://127.0.0.1:$RGW_PORT_/") == 200 ]]
}
http_answers() { curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$RGW_PORT_/"; }

cmd_start() {
  local t0; t0=$(now)
  IN_START=1 START_OK=0 ERR_LINE='' ERR_CMD='' FAIL_MSG='' FAIL_LOGS='' LAUNCHED=''
  set -E  # let the ERR trap see failures inside functions
  TIMEOUT=${RGW_START_TIMEOUT:-180}
  DEADLINE=$(($(date +%s) + TIMEOUT))
  trap 'ERR_LINE=$LINENO ERR_CMD=$BASH_COMMAND' ERR
  trap start_fail EXIT
  trap 'FAIL_MSG="interrupted"; exit 1' INT TERM

  [[ $(id -u) -eq 0 ]] || { FAIL_MSG="must run as root"; exit 1; }
  FAIL_MSG="package installation failed"; cmd_install; FAIL_MSG=''
  [[ -n ${1:-} ]] || die "usage: rgw.sh start STATE_DIR"
  [[ $1 != *[[:space:]]* ]] || die "STATE_DIR must not contain whitespace: '$1'"
  set_paths "$1" create
  if [[ -n $(ls -A "$STATE") && ! -e $STATE/$MARKER ]]; then
    STATE='' FAIL_MSG="$1 is not empty and not an rgw.sh state dir; refusing to use it"; exit 1
  fi
  if [[ -n $(all_ours) ]]; then
    STATE='' FAIL_MSG="a cluster is already running from $1; run 'rgw.sh stop $1' first"; exit 1
  fi
  wipe_data
  rm -rf "$LOGD"
  mkdir -p "$RUN" "$LOGD" "$STATE/keys" "$STATE/mon" "$STATE/osd/ceph-0" "$STATE/rgw" "$STATE/crash"
  touch "$STATE/$MARKER"
  LOGS_AT=" (logs: $LOGD)"

  # Unix sockets are limited to 107 bytes; drop the (debug-only) admin sockets if too long.
  local asok="$RUN/\$name.asok"
  if ((${#RUN} + ${#RGW_NAME} + 7 > 107)); then
    asok=''; log "note: STATE_DIR path is long; admin sockets disabled"
  fi

  # ---- ports, ids, config
  local mon_v2 mon_v1 fsid osd_uuid
  if [[ -n ${RGW_PORT:-} ]]; then
    [[ $RGW_PORT =~ ^[0-9]+$ ]] || { FAIL_MSG="RGW_PORT=$RGW_PORT is not a port number"; exit 1; }
    port_in_use "$RGW_PORT" && { FAIL_MSG="RGW_PORT=$RGW_PORT is already in use on this machine"; exit 1; }
    RGW_PORT_=$RGW_PORT TAKEN_PORTS=" $RGW_PORT"
  else
    free_port; RGW_PORT_=$FREE_PORT
  fi
  free_port; mon_v2=$FREE_PORT
  free_port; mon_v1=$FREE_PORT
  fsid=$(cat /proc/sys/kernel/random/uuid); osd_uuid=$(cat /proc/sys/kernel/random/uuid)

  cat >"$CONF" <<EOF
# Generated by scripts/rgw.sh for a throw-away single-node cluster; do not edit.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $RUN
crash dir = $STATE/crash
log to syslog = false
err to syslog = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
# a throw-away cluster on a shared disk: the mon refuses to start below 5% free by default
mon data avail crit = 0
# one mon: commit maps every 0.1 s instead of 1 s (startup 18 s -> 8 s, first bucket 2 s -> 0.3 s)
paxos propose interval = 0.1
mon cluster log file = $LOGD/ceph.\$channel.log

[client.admin]
keyring = $STATE/keys/admin.keyring

[mon]
mon data = $STATE/mon/ceph-\$id
keyring = $STATE/mon/ceph-\$id/keyring
log file = $LOGD/ceph-\$name.log
admin socket = $asok

[osd]
osd data = $STATE/osd/ceph-\$id
keyring = $STATE/osd/ceph-\$id/keyring
log file = $LOGD/ceph-\$name.log
admin socket = $asok
osd objectstore = bluestore
bluestore block path = $STATE/osd/block
bluestore block create = true
bluestore block size = ${RGW_BLOCK_SIZE:-20G}

[$RGW_NAME]
keyring = $STATE/keys/rgw.keyring
log file = $LOGD/ceph-\$name.log
admin socket = $asok
rgw data = $STATE/rgw
# no lifecycle worker: it runs only in a nightly window anyway and delays shutdown by 5-10 s
rgw enable lc threads = false
# SSE-C over plain http on loopback, so the tests can prove it (RGW requires TLS by default)
rgw crypt require ssl = false
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT_
EOF

  # ---- keys (cephx) and monmap
  local k=$STATE/keys
  FAIL_MSG="creating keys/monmap failed" FAIL_LOGS="$LOGD/keys.out"
  {
    ceph-authtool --create-keyring "$k/mon.keyring" --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool --create-keyring "$k/admin.keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
    ceph-authtool --create-keyring "$k/rgw.keyring" --gen-key -n "$RGW_NAME" \
      --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
    ceph-authtool "$k/mon.keyring" --import-keyring "$k/admin.keyring"
    ceph-authtool "$k/mon.keyring" --import-keyring "$k/rgw.keyring"
    ceph-authtool --create-keyring "$STATE/osd/ceph-0/keyring" --gen-key -n osd.0
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" \
      "$STATE/monmap"
  } >"$LOGD/keys.out" 2>&1
  chmod 600 "$k"/*.keyring "$STATE/osd/ceph-0/keyring"

  # ---- monitor
  FAIL_MSG="ceph-mon --mkfs failed" FAIL_LOGS="$LOGD/mon-mkfs.out $LOGD/ceph-mon.a.log"
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$STATE/monmap" --keyring "$k/mon.keyring" \
    >"$LOGD/mon-mkfs.out" 2>&1
  FAIL_MSG=''
  launch mon ceph-mon -i a; LAUNCHED=mon
  wait_until "the monitor (127.0.0.1:$mon_v2)" "$LOGD/mon.out $LOGD/ceph-mon.a.log" ceph_cli mon stat
  PHASES="mon $(elapsed "$t0")"

  # ---- OSD: register with the osd.0 key, mkfs on the sparse file, start
  local secret
  secret=$(ceph-authtool -p -n osd.0 "$STATE/osd/ceph-0/keyring")
  FAIL_MSG="ceph osd new failed" FAIL_LOGS="$LOGD/ceph-mon.a.log"
  local id
  id=$(echo "{\"cephx_secret\": \"$secret\"}" | ceph_cli osd new "$osd_uuid" -i -)
  [[ $id == 0 ]] || { FAIL_MSG="ceph osd new returned id '$id', expected 0"; exit 1; }
  FAIL_MSG="ceph-osd --mkfs failed" FAIL_LOGS="$LOGD/osd-mkfs.out $LOGD/ceph-osd.0.log"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$LOGD/osd-mkfs.out" 2>&1
  FAIL_MSG=''
  launch osd ceph-osd -i 0; LAUNCHED="mon osd"
  wait_until "the OSD to come up" "$LOGD/osd.out $LOGD/ceph-osd.0.log" osd_up
  PHASES+=", osd $(elapsed "$t0")"

  # ---- gateway (it creates its pools on first start), then the S3 user
  launch rgw radosgw -n "$RGW_NAME"; LAUNCHED="mon osd rgw"
  wait_until "radosgw to answer HTTP on 127.0.0.1:$RGW_PORT_" \
    "$LOGD/rgw.out $LOGD/ceph-$RGW_NAME.log" http_answers
  PHASES+=", radosgw $(elapsed "$t0")"
  FAIL_MSG="radosgw-admin user create failed" FAIL_LOGS="$LOGD/user-create.out $LOGD/ceph-$RGW_NAME.log"
  rgw_admin user create --uid=argosy --display-name="Argosy tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" --max-buckets=100000 \
    >"$LOGD/user-create.out" 2>&1  # the suite and its helpers make many buckets
  FAIL_MSG=''
  wait_until "an authenticated S3 request to succeed" "$LOGD/ceph-$RGW_NAME.log" s3_answers

  # ---- env file for callers (values shell-quoted)
  {
    printf 'export AWS_ENDPOINT_URL=%q\n' "http://127.0.0.1:$RGW_PORT_"
    printf 'export AWS_ACCESS_KEY_ID=%q\n' "$ACCESS_KEY"
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$SECRET_KEY"
    printf 'export AWS_REGION=%q\n' "$REGION"
    printf 'export AWS_DEFAULT_REGION=%q\n' "$REGION"  # what boto3/botocore itself reads
    printf 'export ARGOSY_RGW_STATE=%q\n' "$STATE"
    printf 'export ARGOSY_RGW_ENV=%q\n' "$STATE/env"
  } >"$STATE/env.tmp"
  mv "$STATE/env.tmp" "$STATE/env"
  START_OK=1
  trap - EXIT INT TERM ERR
  log "RGW ready at http://127.0.0.1:$RGW_PORT_ in $(elapsed "$t0") s [up at: $PHASES s] (env: $STATE/env)"
}

# ---------------------------------------------------------------- stop / gc / status
cmd_stop() {
  set_paths "${1:-}"
  [[ -e $STATE/$MARKER ]] || { log "nothing to stop in $STATE"; return 0; }
  local t0; t0=$(now)
  stop_daemons
  wipe_data
  log "stopped $STATE in $(elapsed "$t0") s (logs kept in $LOGD)"
}

cmd_gc() {
  set_paths "${1:-}"
  [[ -r $CONF && -n $(daemon_pid mon) && -n $(daemon_pid osd) ]] || die "no running cluster in $STATE"
  ADMIN_TIMEOUT=1800 rgw_admin gc process --include-all || die "radosgw-admin gc process failed (logs: $LOGD)"
}

cmd_status() {
  set_paths "${1:-}"
  local name
  for name in mon osd rgw; do
    [[ -n $(daemon_pid "$name") ]] || { log "not running ($name down) in $STATE"; exit 1; }
  done
  RGW_PORT_=$(sed -n 's/^rgw frontends = .*:\([0-9]*\)$/\1/p' "$CONF")
  http_answers || { log "radosgw in $STATE does not answer on 127.0.0.1:$RGW_PORT_"; exit 1; }
  echo "running: http://127.0.0.1:$RGW_PORT_ ($STATE)"
}

CMD=${1:-}
shift || true
case $CMD in
  install) cmd_install ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  gc) cmd_gc "$@" ;;
  status) cmd_status "$@" ;;
  *) echo "usage: $0 {install|start|stop|gc|status} [STATE_DIR]" >&2; exit 2 ;;
esac
