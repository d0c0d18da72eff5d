#!/usr/bin/env bash
# The multi-replica topology on one machine: one PostgreSQL and one nats-server (from
# deploy/local/stack.sh infra), then several gateways on their own ports and several replicas
# of every service, all in the same NATS queue groups. Everything binds to loopback.
#
#   deploy/replicas/run.sh start     starts it all in the background and prints where it is
#   deploy/replicas/run.sh run       start, then follow all logs; Ctrl-C stops everything
#   deploy/replicas/run.sh stop      stops what start left running (by recorded pids)
#   deploy/replicas/run.sh status    what runs, on which ports
#   deploy/replicas/run.sh check     a session made on one gateway works on the other, and a
#                                    logout on one is seen by the other (needs curl)
#
# Settings (environment):
#   EJ_VAR            state directory (./var/replicas); everything lives here: PostgreSQL's and
#                     NATS's data, the file store, the grant key, pids, logs, mail
#   EJ_GATEWAYS       how many gateways (2), each on a free port
#   EJ_GATEWAY_PORTS  or one gateway per port given here ("8081 8082"); unset = free ports
#   EJ_REPLICAS       replicas of each service (2)
#   EJ_PG_PORT, EJ_NATS_PORT, EJ_NATS_MON_PORT, EJ_SMTP_PORT
#                     infrastructure ports (0 = a free port, the default, so this topology
#                     never collides with the `make run` stack); EJ_SMTP_PORT is the dev mail
#                     catcher's, which every replica sends to unless EJ_SMTP_URL names a server
#   EJ_SITE_NAME      the journal's name ("EasyJournal Demo Journal")
#   EJ_LOG_LEVEL      debug, info, warn, error (info)
#   EJ_START_TIMEOUT  seconds to wait for each process to become ready (30)
#   BUILD             build directory holding bin/ (build; relative to the repository or absolute)
# Every other EJ_* variable in the environment reaches every process unchanged (EJ_WORKERS,
# EJ_SESSION_CACHE_MS, ...). All replicas share one grant key ($EJ_VAR/grant.key, made on the
# first start, unless EJ_GRANT_KEY is set) and one local file store ($EJ_VAR/files unless
# EJ_FILES_DIR is set); every service gets EJ_SMTP_URL (the catcher's unless set).
# Free ports come from below the kernel's ephemeral range (ip_local_port_range), are checked
# against every TCP socket (listening or connected) and reserved against scripts starting at the
# same time (deploy/lib/proc.sh), so two topologies and a `make run` stack run side by side.
# A start that fails stops everything it had started, PostgreSQL and NATS included.
# The services are discovered (every services/<svc>/main.c, as the local stack does).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

EJ_VAR=${EJ_VAR:-$ROOT/var/replicas}
mkdir -p "$EJ_VAR"
EJ_VAR=$(cd "$EJ_VAR" && pwd)
export EJ_VAR
EJ_GATEWAY_PORTS=${EJ_GATEWAY_PORTS:-}
EJ_GATEWAYS=${EJ_GATEWAYS:-2}
EJ_REPLICAS=${EJ_REPLICAS:-2}
EJ_SITE_NAME=${EJ_SITE_NAME:-EasyJournal Demo Journal}
EJ_LOG_LEVEL=${EJ_LOG_LEVEL:-info}
EJ_START_TIMEOUT=${EJ_START_TIMEOUT:-30}
BUILD=${BUILD:-build}
if [[ $BUILD == /* ]]; then
        BIN=$BUILD/bin
else
        BIN=$ROOT/$BUILD/bin
fi
STACK=$ROOT/deploy/local/stack.sh
PIDS=$EJ_VAR/replica-pids
LOGS=$EJ_VAR/log
TOPOLOGY=$EJ_VAR/topology.txt

die() {
        echo "replicas: $*" >&2
        exit 1
}

say() {
        echo "replicas: $*" >&2
}

[[ $EJ_REPLICAS =~ ^[1-9][0-9]*$ ]] || die "EJ_REPLICAS must be a positive number"
[[ $EJ_GATEWAYS =~ ^[1-9][0-9]*$ ]] || die "EJ_GATEWAYS must be a positive number"

# Process management (pid files, readiness, stop by pid, free ports, service discovery), shared
# with the local stack.
# shellcheck source=deploy/lib/proc.sh
source "$ROOT/deploy/lib/proc.sh"

# Services: every services/<svc>/main.c.
discover_services

# Starts PostgreSQL and nats-server through the local stack's `infra` command (same state
# directory), and reads back the connection settings it prints.
start_infra() {
        local line k v out
        STACK_SMTP_URL=""
        [[ -x $STACK ]] || die "$STACK missing: the local stack provides PostgreSQL and NATS"
        out=$(EJ_PG_PORT=${EJ_PG_PORT:-0} EJ_NATS_PORT=${EJ_NATS_PORT:-0} \
                EJ_NATS_MON_PORT=${EJ_NATS_MON_PORT:-0} EJ_ADMIN_PORT=${EJ_ADMIN_PORT:-0} \
                EJ_SMTP_PORT=${EJ_SMTP_PORT:-0} "$STACK" infra) || die "deploy/local/stack.sh infra failed"
        while IFS= read -r line; do
                [[ $line == EJ_*=* ]] || continue
                k=${line%%=*}
                v=${line#*=}
                v=${v#\"}
                v=${v%\"}
                case $k in
                EJ_DB_URL) EJ_DB_URL=$v ;;
                EJ_NATS_URL) EJ_NATS_URL=$v ;;
                EJ_NATS_MON_URL) EJ_NATS_MON_URL=$v ;;
                EJ_SMTP_URL) STACK_SMTP_URL=$v ;;
                esac
        done <<<"$out"
        [[ -n ${EJ_DB_URL:-} && -n ${EJ_NATS_URL:-} ]] ||
                die "deploy/local/stack.sh infra printed no EJ_DB_URL / EJ_NATS_URL"
}

# Sets GATEWAY_PORTS: EJ_GATEWAY_PORTS, else the ones this state directory's last start chose
# ($GATEWAY_PORTS_FILE, so stop, status and check find them), else (with "new", for a start)
# EJ_GATEWAYS free ones.
GATEWAY_PORTS_FILE=$EJ_VAR/gateway-ports
gateway_ports() {
        local i
        GATEWAY_PORTS=""
        if [[ -n $EJ_GATEWAY_PORTS ]]; then
                GATEWAY_PORTS=$EJ_GATEWAY_PORTS
        elif [[ -s $GATEWAY_PORTS_FILE ]]; then
                GATEWAY_PORTS=$(cat "$GATEWAY_PORTS_FILE")
        elif [[ ${1:-} == new ]]; then
                for ((i = 0; i < EJ_GATEWAYS; i++)); do
                        free_port
                        GATEWAY_PORTS="$GATEWAY_PORTS$FREE "
                done
        fi
}

start_gateway() {
        local name=$1 port=$2 log=$LOGS/$1.log admin
        port_in_use "$port" && die "port $port is taken (set EJ_GATEWAY_PORTS)"
        free_port
        admin=$FREE
        start_proc "$name" "$log" env EJ_NATS_URL="$EJ_NATS_URL" EJ_LOG_LEVEL="$EJ_LOG_LEVEL" \
                EJ_HTTP_ADDR="127.0.0.1:$port" EJ_ADMIN_ADDR="127.0.0.1:$admin" \
                EJ_WEB_ROOT="$ROOT/gateway/web" EJ_SITE_NAME="$EJ_SITE_NAME" "$BIN/ej-gateway"
        wait_ready "$name" "$log" http_ok "http://127.0.0.1:$port/readyz"
        echo "$name http://127.0.0.1:$port admin http://127.0.0.1:$admin pid $(cat "$PIDS/$name.pid")" \
                >>"$TOPOLOGY"
}

# Starts replica $1 of service $2. All replicas share the stack's grant key, file store and
# mail catcher (EJ_* set by the caller win).
start_service() {
        local name=$1 svc=$2 log=$LOGS/$1.log port key
        free_port
        port=$FREE
        key=${EJ_GRANT_KEY:-$(grant_key "$EJ_VAR")}
        start_proc "$name" "$log" env EJ_DB_URL="$EJ_DB_URL" EJ_NATS_URL="$EJ_NATS_URL" \
                EJ_LOG_LEVEL="$EJ_LOG_LEVEL" EJ_ADMIN_ADDR="127.0.0.1:$port" \
                EJ_SITE_NAME="$EJ_SITE_NAME" EJ_GRANT_KEY="$key" \
                EJ_FILES_DIR="${EJ_FILES_DIR:-$EJ_VAR/files}" \
                EJ_SMTP_URL="${EJ_SMTP_URL:-$STACK_SMTP_URL}" "$BIN/ej-$svc"
        # Ready = connected to NATS and PostgreSQL, migrations applied.
        wait_ready "$name" "$log" http_ok "http://127.0.0.1:$port/readyz"
        echo "$name admin http://127.0.0.1:$port (queue group $svc) pid $(cat "$PIDS/$name.pid")" \
                >>"$TOPOLOGY"
}

# Names of the app processes we start, in start order.
app_names() {
        local s i n=0 p
        for s in "${SERVICES[@]}"; do
                for ((i = 1; i <= EJ_REPLICAS; i++)); do
                        echo "$s-$i"
                done
        done
        for p in $GATEWAY_PORTS; do
                n=$((n + 1))
                echo "gateway-$n"
        done
}

# On the way out of a start that failed: stop whatever it had started (by recorded pids).
start_failed() {
        local rc=$?
        trap - EXIT
        if ((rc != 0)); then
                say "start failed; stopping what was started"
                cmd_stop >/dev/null 2>&1 || true
        fi
        exit "$rc"
}

cmd_start() {
        local s i n p name
        command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
        [[ -x $BIN/ej-gateway ]] || die "$BIN/ej-gateway missing: run make first"
        for s in "${SERVICES[@]}"; do
                [[ -x $BIN/ej-$s ]] || die "$BIN/ej-$s missing: run make first"
        done
        for name in $(app_names); do
                live_pid "$name" >/dev/null && die "already running from $EJ_VAR; stop it with $0 stop"
        done
        gateway_ports new
        mkdir -p "$PIDS" "$LOGS"
        echo "$GATEWAY_PORTS" >"$GATEWAY_PORTS_FILE"
        trap start_failed EXIT
        start_infra
        : >"$TOPOLOGY"
        echo "postgres $(sed -E 's/password=[^ ]*/password=***/' <<<"$EJ_DB_URL")" >>"$TOPOLOGY"
        echo "nats $EJ_NATS_URL (monitor ${EJ_NATS_MON_URL:-?})" >>"$TOPOLOGY"
        # Services first: replicas starting together apply migrations under an advisory lock.
        for s in "${SERVICES[@]}"; do
                for ((i = 1; i <= EJ_REPLICAS; i++)); do
                        start_service "$s-$i" "$s"
                done
        done
        n=0
        for p in $GATEWAY_PORTS; do
                n=$((n + 1))
                start_gateway "gateway-$n" "$p"
        done
        trap - EXIT
        print_topology
}

print_topology() {
        echo "EasyJournal replicas (state in $EJ_VAR, logs in $LOGS):"
        sed 's/^/  /' "$TOPOLOGY"
        echo "Each gateway serves the whole site; put any load balancer in front of them."
}

cmd_stop() {
        local names=() i f name
        mapfile -t names < <(app_names)
        # Gateways first (they stop taking requests), then the services, then the infra.
        for ((i = ${#names[@]} - 1; i >= 0; i--)); do
                stop_proc "${names[$i]}"
        done
        # Replicas left over from a run with a larger EJ_REPLICAS.
        if [[ -d $PIDS ]]; then
                for f in "$PIDS"/*.pid; do
                        [[ -e $f ]] || continue
                        name=$(basename "$f" .pid)
                        stop_proc "$name"
                done
        fi
        if [[ -x $STACK ]]; then
                "$STACK" stop
        fi
        rm -f "$TOPOLOGY" "$GATEWAY_PORTS_FILE"
}

cmd_status() {
        local name pid rc=0
        for name in $(app_names); do
                if pid=$(live_pid "$name"); then
                        printf '%-12s running (pid %s)\n' "$name" "$pid"
                else
                        printf '%-12s stopped\n' "$name"
                        rc=3
                fi
        done
        # PostgreSQL and nats-server, as the local stack sees them.
        "$STACK" status 2>/dev/null | grep -E '^(postgres|nats) ' || true
        [[ -f $TOPOLOGY ]] && print_topology
        return $rc
}

cmd_run() {
        local tail_pid=""
        # shellcheck disable=SC2064 # expanded when the signal comes, tail_pid set by then
        trap 'echo; say "stopping"; [[ -n $tail_pid ]] && kill "$tail_pid" 2>/dev/null; cmd_stop; exit 0' INT TERM
        cmd_start
        echo "(logs follow; Ctrl-C stops everything)"
        tail -n +1 -F "$LOGS"/*.log &
        tail_pid=$!
        while kill -0 "$tail_pid" 2>/dev/null; do
                wait "$tail_pid" || true
        done
        cmd_stop
}

# Proves the gateways share nothing but the bus: register and log in on the first gateway,
# read /api/me on the second with the same cookie, log out on the second, and see the first
# refuse the session at once (revocation broadcast, not the cache's expiry).
cmd_check() {
        local ports=() a b jar email code fails=0
        read -r -a ports <<<"$GATEWAY_PORTS"
        ((${#ports[@]} >= 2)) || die "check needs two gateways (EJ_GATEWAY_PORTS)"
        a=http://127.0.0.1:${ports[0]}
        b=http://127.0.0.1:${ports[1]}
        jar=$(mktemp)
        trap 'rm -f "$jar"' RETURN
        email="replica-check-$RANDOM$RANDOM@example.org"
        expect() {
                if [[ $2 == "$3" ]]; then
                        echo "ok   $1 ($2)"
                else
                        echo "FAIL $1: got $2, want $3"
                        fails=$((fails + 1))
                fi
        }
        code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
                -d "{\"name\":\"Replica Check\",\"email\":\"$email\",\"password\":\"replica-check-pw\"}" \
                "$a/api/auth/register")
        expect "register on ${ports[0]}" "${code:0:1}xx" 2xx
        code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -H 'Content-Type: application/json' \
                -d "{\"email\":\"$email\",\"password\":\"replica-check-pw\"}" "$a/api/auth/login")
        expect "login on ${ports[0]}" "$code" 200
        code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$a/api/me")
        expect "/api/me on ${ports[0]}" "$code" 200
        code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$b/api/me")
        expect "/api/me on ${ports[1]} with the same cookie" "$code" 200
        code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -H 'Content-Type: application/json' \
                -d '{}' "$b/api/auth/logout")
        expect "logout on ${ports[1]}" "${code:0:1}xx" 2xx
        sleep 0.2
        code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$a/api/me")
        expect "/api/me on ${ports[0]} after the logout (cached session revoked)" "$code" 401
        echo "$((6 - fails)) passed, $fails failed"
        ((fails == 0))
}

gateway_ports

case ${1:-start} in
start) cmd_start ;;
run) cmd_run ;;
stop) cmd_stop ;;
status) cmd_status ;;
check) cmd_check ;;
*)
        echo "usage: $0 start|run|stop|status|check" >&2
        exit 2
        ;;
esac
