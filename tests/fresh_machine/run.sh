#!/usr/bin/env bash
# Proves the README's commands on a fresh Debian 12 machine:
#
#   sudo tests/fresh_machine/run.sh
#
# 1. makes a clean minbase bookworm root with debootstrap (the tarball is cached
#    under /var/tmp/fresh-cache, so a rerun only unpacks it);
# 2. gives it this machine's apt sources and resolv.conf, mounts /proc, /sys,
#    /dev and /dev/pts;
# 3. clones the committed HEAD of this repo into /root/project inside it
#    (uncommitted work is not tested);
# 4. runs `make test` there with a clean environment;
# 5. if the build passed, runs `make run` in the background, curls /health on
#    127.0.0.1, and stops the server.
#
# Everything goes to /var/tmp/fresh-last.log (plus a summary at the end). The
# exit status is make test's; if make test passed but the `make run` check
# failed, it is 10. Mounts are undone and the root removed on exit
# (KEEP=1 keeps the root for inspection, still unmounted).
#
# Knobs: MIRROR=URL (default: this machine's Debian mirror from its apt
# sources), JOBS=2 (build parallelism inside the root), SKIP_RUN=1,
# REFRESH_CACHE=1 (debootstrap again), KEEP=1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SUITE=bookworm
CACHE_DIR=/var/tmp/fresh-cache
LOG=/var/tmp/fresh-last.log
JOBS="${JOBS:-2}"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
TARBALL="$CACHE_DIR/$SUITE-minbase-$ARCH.tar"

if [[ "$(id -u)" != 0 ]]; then
  echo "fresh_machine: must run as root (debootstrap, chroot, mount)" >&2
  exit 2
fi

exec > >(tee "$LOG") 2>&1

now() { date +%s; }
log() { printf '[fresh %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# --- mirror: exactly the one this machine's apt uses ------------------------
# shellcheck source=../../scripts/apt-mirrors.sh
source "$REPO/scripts/apt-mirrors.sh"
if [[ -z "${MIRROR:-}" ]]; then
  MIRROR="$(apt_mirrors | grep -E '/debian/?$' | head -n1 || true)"
fi
if [[ -z "$MIRROR" ]]; then
  echo "fresh_machine: no Debian mirror found in /etc/apt/sources.list(.d); set MIRROR=" >&2
  exit 2
fi
command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
}

DIR="$(mktemp -d /var/tmp/fresh-XXXX)"
RUN_PID=""

# --- cleanup: stop what runs in the root, unmount, remove -------------------
cleanup() {
  local rc=$? pid m
  set +e
  if [[ -n "$RUN_PID" ]] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -TERM -- "-$RUN_PID" 2>/dev/null
    sleep 2
    kill -KILL -- "-$RUN_PID" 2>/dev/null
  fi
  # Any process still rooted in $DIR was started by this script.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [[ "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$DIR" ]] && kill -KILL "$pid" 2>/dev/null
  done
  sleep 0.5
  for m in dev/pts dev sys proc; do
    if mountpoint -q "$DIR/$m"; then
      umount "$DIR/$m" 2>/dev/null || umount -l "$DIR/$m"
    fi
  done
  if findmnt -rn -o TARGET | grep -q "^$DIR"; then
    log "ERROR: mounts left under $DIR, not removing it:"
    findmnt -rn -o TARGET | grep "^$DIR"
  elif [[ -n "${KEEP:-}" ]]; then
    log "kept $DIR (unmounted)"
  else
    rm -rf --one-file-system "$DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "repo $REPO at $(git -C "$REPO" rev-parse --short HEAD), mirror $MIRROR, root $DIR, -j$JOBS"
T0=$(now)

# --- 1. the clean root -------------------------------------------------------
if [[ -n "${REFRESH_CACHE:-}" || ! -s "$TARBALL" ]]; then
  log "debootstrap --variant=minbase $SUITE (no cache yet)"
  debootstrap --variant=minbase "$SUITE" "$DIR" "$MIRROR"
  mkdir -p "$CACHE_DIR"
  tar --numeric-owner -C "$DIR" -cpf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  BOOTSTRAP_HOW="debootstrap"
else
  log "unpacking cached root $TARBALL"
  tar --numeric-owner -C "$DIR" -xpf "$TARBALL"
  BOOTSTRAP_HOW="cached tarball"
fi
# mktemp -d made $DIR 0700; a real / is 0755 (apt's _apt sandbox needs it).
chmod 755 "$DIR"
T1=$(now)

# --- 2. what a fresh machine here has: apt sources, DNS, hosts, local CAs ----
# Machines of this workplace reach the package registries through a TLS proxy
# whose CA sits in /usr/local/share/ca-certificates; a fresh machine has it
# too. It only becomes trusted once setup.sh installs ca-certificates (whose
# postinst runs update-ca-certificates), exactly as on a new machine.
rm -f "$DIR/etc/apt/sources.list"
rm -f "$DIR"/etc/apt/sources.list.d/*.list "$DIR"/etc/apt/sources.list.d/*.sources
[[ -f /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$DIR/etc/apt/"
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] && cp "$f" "$DIR/etc/apt/sources.list.d/"
done
cp -L /etc/resolv.conf "$DIR/etc/resolv.conf"
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$DIR/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$DIR/usr/local/share/ca-certificates/"
fi
[[ -s "$DIR/etc/hosts" ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$DIR/etc/hosts"
# Daemons installed as dependencies must not start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$DIR/usr/sbin/policy-rc.d"
chmod 755 "$DIR/usr/sbin/policy-rc.d"

mount -t proc proc "$DIR/proc"
mount -t sysfs sysfs "$DIR/sys"
mount --bind /dev "$DIR/dev"
mount --bind /dev/pts "$DIR/dev/pts"

# --- 3. the project: a clone of the committed HEAD ---------------------------
git clone -q "$REPO" "$DIR/root/project"
log "cloned $(git -C "$DIR/root/project" log -1 --format='%h %s')"

in_root() {
  env -i HOME=/root TERM=dumb LANG=C.UTF-8 JOBS="$JOBS" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    chroot "$DIR" bash -lc "$1"
}

# --- 4a. the one thing README's first command needs: make -------------------
# A fresh Debian 12 (minbase, cloud image, netinst) has no `make`; everything
# else is installed by `make test` itself through scripts/setup.sh.
log "chroot: apt-get update && apt-get install -y --no-install-recommends make"
in_root 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends make'
T_MAKE=$(now)

# --- 4. make test, each line time-stamped for the phase durations ------------
log "chroot: cd /root/project && make test"
STAMPS="$(mktemp)"
set +e
in_root 'cd /root/project && make test' 2>&1 |
  while IFS= read -r line; do
    printf '%s %s\n' "$(date +%s)" "$line" >>"$STAMPS"
    printf '%s\n' "$line"
  done
TEST_RC=${PIPESTATUS[0]}
set -e
T2=$(now)
log "make test exited $TEST_RC"

# Phase boundaries from the output: cmake's first "-- " line ends setup, the
# first "[n/m]" line starts the build, ctest's banner starts the tests.
first_stamp() { { grep -m1 -E "^[0-9]+ $1" "$STAMPS" || true; } | cut -d' ' -f1; }
S_CONF="$(first_stamp '-- ')"
S_BUILD="$(first_stamp '\[[0-9]+/[0-9]+\] ')"
S_TEST="$(first_stamp '(Internal ctest|Test project)')"
dur() { [[ -n "$1" && -n "$2" ]] && echo "$(($2 - $1))s" || echo "n/a"; }
SUMMARY_RESULT="$(grep -E 'tests passed, [0-9]+ tests failed|tests passed' "$STAMPS" | tail -n1 | cut -d' ' -f2- || true)"
FAILED_TESTS="$(awk '/The following tests FAILED:/{f=1; next} f && /^[0-9]+ +[0-9]+ - /{sub(/^[0-9]+ +/, ""); print; next} f{f=0}' "$STAMPS" || true)"

# --- 5. make run: starts, answers /health, stops ------------------------------
RUN_RESULT="skipped"
if [[ -z "${SKIP_RUN:-}" && -x "$DIR/root/project/build/bin/analyticsd" ]]; then
  PORT=8000
  if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$PORT\$"; then
    PORT=$(comm -23 <(seq 18000 18999) <(ss -ltnH | awk '{sub(/.*:/, "", $4); print $4}' | sort -u) | head -n1)
    RUN_CMD="make run LISTEN=127.0.0.1:$PORT"
  else
    RUN_CMD="make run"
  fi
  log "chroot: cd /root/project && $RUN_CMD (background)"
  setsid bash -c "$(declare -f in_root); DIR='$DIR' JOBS='$JOBS' in_root 'cd /root/project && exec $RUN_CMD'" \
    >"$DIR/root/make-run.log" 2>&1 &
  RUN_PID=$!
  RUN_RESULT="FAILED: /health did not answer within 60s"
  for _ in $(seq 1 120); do
    if body="$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/health" 2>/dev/null)"; then
      RUN_RESULT="ok: GET /health -> $body"
      break
    fi
    kill -0 "$RUN_PID" 2>/dev/null || { RUN_RESULT="FAILED: make run exited"; break; }
    sleep 0.5
  done
  kill -TERM -- "-$RUN_PID" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$RUN_PID" 2>/dev/null || true
  wait "$RUN_PID" 2>/dev/null || true
  RUN_PID=""
  echo "--- make run output ---"
  cat "$DIR/root/make-run.log"
  echo "--- end make run output ---"
  log "make run: $RUN_RESULT"
fi
T3=$(now)

cat <<EOF

===== fresh machine summary =====
date:            $(date -u +%Y-%m-%dT%H:%M:%SZ)
commit:          $(git -C "$DIR/root/project" log -1 --format='%h %s')
mirror:          $MIRROR
root:            $BOOTSTRAP_HOW, $((T1 - T0))s
install make:    $(dur "$T1" "$T_MAKE")
setup (apt+npm): $(dur "$T_MAKE" "$S_CONF")
configure:       $(dur "$S_CONF" "$S_BUILD")
build (-j$JOBS):     $(dur "$S_BUILD" "$S_TEST")
tests:           $(dur "$S_TEST" "$T2")
make test:       exit $TEST_RC, $((T2 - T_MAKE))s; ${SUMMARY_RESULT:-no ctest summary}
failed tests:    ${FAILED_TESTS:+
$FAILED_TESTS}
make run:        $RUN_RESULT
total:           $((T3 - T0))s
EOF
rm -f "$STAMPS"

if ((TEST_RC != 0)); then exit "$TEST_RC"; fi
[[ "$RUN_RESULT" == ok* || "$RUN_RESULT" == skipped ]] || exit 10
exit 0
