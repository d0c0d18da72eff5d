#!/usr/bin/env bash
# deploy/replicas/run.sh as a new user runs it: two topologies started side by side (at the same
# time, in their own state directories) while the ports a `make run` stack and the old defaults
# use (8080, 2525, 8081, 8082) are held by someone else. Each must come up on ports of its own,
# with every secret generated and every file under its state directory, pass its own
# cross-gateway check, and stop completely. Then a start that fails (a setting every service
# refuses) must stop what it started, PostgreSQL and NATS included. Bounded: each start waits
# at most EJ_START_TIMEOUT seconds per process. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
ROOT=$PWD
RUN=$ROOT/deploy/replicas/run.sh

pass=0
fail=0
ok() {
        echo "ok   $1"
        pass=$((pass + 1))
}
bad() {
        echo "FAIL $1"
        fail=$((fail + 1))
}
check() { # name command...
        local name=$1
        shift
        if "$@"; then ok "$name"; else bad "$name"; fi
}

BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
if [[ ! -x $BUILD/bin/ej-gateway ]]; then
        bad "no $BUILD/bin/ej-gateway (make all first)"
        echo "$pass passed, $fail failed"
        exit 1
fi
export BUILD EJ_START_TIMEOUT=${EJ_START_TIMEOUT:-30} EJ_LOG_LEVEL=warn

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ej-replicas-test.XXXXXX")
chmod 711 "$WORK"
HOLDER=""

cleanup() {
        local d
        for d in "$WORK"/a "$WORK"/b "$WORK"/c; do
                [[ -d $d ]] && EJ_VAR=$d "$RUN" stop >/dev/null 2>&1
        done
        [[ -n $HOLDER ]] && kill "$HOLDER" 2>/dev/null
        rm -rf "$WORK"
}
trap cleanup EXIT

# Holds the fixed ports of a `make run` stack and the old defaults, where free, as listening
# sockets (where taken, someone already holds them: the same situation).
python3 -c '
import socket, time
held = []
for p in (8080, 2525, 8081, 8082):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); s.listen(1); held.append(s)
    except OSError:
        pass
time.sleep(300)
' &
HOLDER=$!

# Pids recorded under state directory $1 that still run.
live_pids() {
        local f pid n=0
        for f in "$1"/replica-pids/*.pid "$1"/pids/*.pid; do
                [[ -f $f ]] || continue
                pid=$(cat "$f")
                [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && n=$((n + 1))
        done
        # PostgreSQL is started by pg_ctl: its pid lives in its data directory.
        for f in "$1"/pg/postmaster.pid /var/tmp/easyjournal-pg-*/pg/postmaster.pid; do
                [[ -f $f ]] || continue
                [[ $f == "$1"/* ]] || grep -q "$1" "$f" 2>/dev/null || continue
                pid=$(head -n 1 "$f")
                [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && n=$((n + 1))
        done
        echo "$n"
}

mkdir -p "$WORK/a" "$WORK/b"
EJ_VAR=$WORK/a EJ_REPLICAS=1 "$RUN" start >"$WORK/a.out" 2>&1 &
pa=$!
EJ_VAR=$WORK/b EJ_REPLICAS=1 "$RUN" start >"$WORK/b.out" 2>&1 &
pb=$!
wait "$pa"
ra=$?
wait "$pb"
rb=$?
check "first topology starts beside the second (exit $ra)" test "$ra" = 0
check "second topology starts beside the first (exit $rb)" test "$rb" = 0
((ra == 0)) || tail -n 30 "$WORK/a.out"
((rb == 0)) || tail -n 30 "$WORK/b.out"

ports_a=$(cat "$WORK/a/gateway-ports" 2>/dev/null)
ports_b=$(cat "$WORK/b/gateway-ports" 2>/dev/null)
lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range)
all_ok=1
for p in $ports_a $ports_b; do
        ((p < lo)) || all_ok=0
        [[ " 8080 8081 8082 2525 " == *" $p "* ]] && all_ok=0
done
check "gateway ports ($ports_a / $ports_b) are below the ephemeral range ($lo) and not the fixed ones" \
        test "$all_ok" = 1
check "the two topologies use different gateway ports" test "$ports_a" != "$ports_b"

if ((ra == 0 && rb == 0)); then
        # Its own lines indented: only this script's summary line may start a line.
        for d in a b; do
                EJ_VAR=$WORK/$d "$RUN" check >"$WORK/check-$d.out" 2>&1
                rc=$?
                sed 's/^/    /' "$WORK/check-$d.out"
                check "cross-gateway check of topology $d" test "$rc" = 0
        done
fi
for d in a b; do
        check "$d: the grant key was generated in the state directory" test -s "$WORK/$d/grant.key"
        check "$d: the file store is in the state directory" test -d "$WORK/$d/files"
        check "$d: the services were given EJ_SMTP_URL" \
                bash -c "! grep -q 'EJ_SMTP_URL is not set' '$WORK/$d'/log/*.log"
done

EJ_VAR=$WORK/a "$RUN" stop >/dev/null 2>&1
EJ_VAR=$WORK/b "$RUN" stop >/dev/null 2>&1
check "stop leaves nothing of the first running" test "$(live_pids "$WORK/a")" = 0
check "stop leaves nothing of the second running" test "$(live_pids "$WORK/b")" = 0

# A start that fails (every service refuses EJ_WORKERS=0) stops PostgreSQL, NATS and the
# catcher it had started, and says so.
mkdir -p "$WORK/c"
EJ_VAR=$WORK/c EJ_REPLICAS=1 EJ_WORKERS=0 EJ_START_TIMEOUT=15 "$RUN" start >"$WORK/c.out" 2>&1
rc=$?
check "a start that cannot succeed fails (exit $rc)" test "$rc" != 0
check "the failed start stopped what it had started" test "$(live_pids "$WORK/c")" = 0
check "the failed start says it stopped" grep -q "stopping what was started" "$WORK/c.out"

echo "$pass passed, $fail failed"
((fail == 0))
