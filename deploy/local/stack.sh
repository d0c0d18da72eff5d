#!/usr/bin/env bash
# The local EasyJournal stack: a private PostgreSQL cluster, nats-server with JetStream, every
# service and the gateway, all on loopback, all state under $EJ_VAR.
#
#   deploy/local/stack.sh infra      PostgreSQL + nats-server only; prints their env lines
#   deploy/local/stack.sh start      infra + every service + the gateway, in the background
#   deploy/local/stack.sh run        start, then all logs in the foreground; Ctrl-C stops all
#   deploy/local/stack.sh stop       stops what start/infra left running (by recorded pids)
#   deploy/local/stack.sh status     what runs, on which ports
#   deploy/local/stack.sh start-one NAME   (re)starts one stopped process: gateway, nats or a
#                                    service name; used by the fault tests
#
# Settings (environment):
#   EJ_VAR            state directory (./var)
#   EJ_HTTP_PORT      gateway port (8080)
#   EJ_PG_PORT        PostgreSQL port (55432)
#   EJ_NATS_PORT      NATS client port (4222)
#   EJ_NATS_MON_PORT  NATS monitoring port (8222)
#   EJ_NATS_GOGC      nats-server's GOGC (400: less garbage-collector CPU while files stream)
#   EJ_ADMIN_PORT     first admin port of the services; service i gets EJ_ADMIN_PORT+i and the
#                     gateway's admin listener (/metrics) the port after the last service (9101)
#   EJ_SMTP_PORT      the dev mail catcher's SMTP port (2525; 0 when EJ_HTTP_PORT is 0)
#   EJ_SMTP_URL       a real SMTP server for the services instead of the catcher (unset: the
#                     catcher, which keeps mail in memory and in $EJ_VAR/mail; see README)
#   EJ_SITE_NAME      the journal's name ("EasyJournal Demo Journal")
#   EJ_PUBLIC_URL     the address mailed links point at (http://127.0.0.1:$EJ_HTTP_PORT)
#   EJ_GDPR_SERVICES  the services whose part the users service gathers for a personal-data
#                     export (every service but users, comma-separated)
#   EJ_LOG_LEVEL      debug, info, warn, error (info)
#   EJ_START_TIMEOUT  seconds to wait for each process to become ready (30)
#   BUILD             build directory holding bin/ (build; relative to the repository or absolute)
# Any port given as 0 is replaced by a free port, reserved for a few minutes in
# $TMPDIR/easyjournal-ports so that stacks starting at once never share one. The ports chosen
# are written to $EJ_VAR/stack.env, which later commands (stop, status, start-one) read back, so
# a stack keeps its ports for its whole life. Every other EJ_* variable in the environment reaches every
# process unchanged (e.g. EJ_WORKERS, EJ_RELAY_HOLD_MS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

EJ_VAR=${EJ_VAR:-$ROOT/var}
mkdir -p "$EJ_VAR"
EJ_VAR=$(cd "$EJ_VAR" && pwd)
STACK_ENV=$EJ_VAR/stack.env
PIDS=$EJ_VAR/pids
LOGS=$EJ_VAR/log

# PostgreSQL's files. As root the cluster runs as the `postgres` user, who must reach them: when
# a directory above $EJ_VAR is closed to others (a checkout under /root, say), the cluster lives
# in a directory of its own under /var/tmp instead, named after $EJ_VAR.
PGHOME=$EJ_VAR
if [[ $(id -u) == 0 ]] && id postgres >/dev/null 2>&1; then
        chmod o+x "$EJ_VAR"
        if ! runuser -u postgres -- test -x "$EJ_VAR"; then
                PGHOME=/var/tmp/easyjournal-pg-$(printf '%s' "$EJ_VAR" | sha256sum | cut -c1-16)
                mkdir -p "$PGHOME"
                chmod 0711 "$PGHOME"
        fi
fi
RUN=$PGHOME/run

# Reads the ports recorded in $STACK_ENV. With "keep", a port the caller names explicitly (not
# 0) wins over the recorded one; with "all", the recorded values replace every current one (after
# a start in a subshell, which chose the ports this shell still holds as 0).
load_env() {
        local mode=$1 k v
        [[ -f $STACK_ENV ]] || return 0
        while IFS='=' read -r k v; do
                case $k in
                EJ_HTTP_PORT | EJ_PG_PORT | EJ_NATS_PORT | EJ_NATS_MON_PORT | EJ_ADMIN_PORT | EJ_SMTP_PORT)
                        if [[ $mode == all || -z ${!k:-} || ${!k} == 0 ]]; then
                                printf -v "$k" '%s' "$v"
                        fi
                        ;;
                esac
        done <"$STACK_ENV"
}

# A stack already set up keeps its ports: the recorded values win over the defaults and over
# 0 ("any free port"), but not over a port the caller names explicitly.
load_env keep
EJ_HTTP_PORT=${EJ_HTTP_PORT:-8080}
EJ_PG_PORT=${EJ_PG_PORT:-55432}
EJ_NATS_PORT=${EJ_NATS_PORT:-4222}
EJ_NATS_MON_PORT=${EJ_NATS_MON_PORT:-8222}
EJ_ADMIN_PORT=${EJ_ADMIN_PORT:-9101}
# --- mail (dev SMTP catcher) ---
# A stack on free ports (a test's) gets a free catcher port too.
if [[ -z ${EJ_SMTP_PORT:-} && $EJ_HTTP_PORT == 0 ]]; then
        EJ_SMTP_PORT=0
fi
EJ_SMTP_PORT=${EJ_SMTP_PORT:-2525}
EJ_SMTP_URL_GIVEN=${EJ_SMTP_URL:-}
# --- end mail ---
EJ_SITE_NAME=${EJ_SITE_NAME:-EasyJournal Demo Journal}
EJ_LOG_LEVEL=${EJ_LOG_LEVEL:-info}
EJ_START_TIMEOUT=${EJ_START_TIMEOUT:-30}
BUILD=${BUILD:-build}
if [[ $BUILD == /* ]]; then
        BIN=$BUILD/bin
else
        BIN=$ROOT/$BUILD/bin
fi

die() {
        echo "stack: $*" >&2
        exit 1
}

say() {
        echo "stack: $*" >&2
}

# Process management (pid files, readiness, stop by pid, free ports, service discovery).
# shellcheck source=deploy/lib/proc.sh
source "$ROOT/deploy/lib/proc.sh"

# Replaces ports given as 0 with free ones. The services' admin ports are EJ_ADMIN_PORT + i and
# the gateway's the next one, so that range must be free as a whole.
pick_ports() {
        local v
        for v in EJ_HTTP_PORT EJ_PG_PORT EJ_NATS_PORT EJ_NATS_MON_PORT EJ_SMTP_PORT; do
                if [[ ${!v} == 0 ]]; then
                        free_port
                        printf -v "$v" '%s' "$FREE"
                fi
        done
        if [[ $EJ_ADMIN_PORT == 0 ]]; then
                free_port_range "$((${#SERVICES[@]} + 1))"
                EJ_ADMIN_PORT=$FREE
        fi
        return 0
}

save_env() {
        cat >"$STACK_ENV" <<EOF
EJ_HTTP_PORT=$EJ_HTTP_PORT
EJ_PG_PORT=$EJ_PG_PORT
EJ_NATS_PORT=$EJ_NATS_PORT
EJ_NATS_MON_PORT=$EJ_NATS_MON_PORT
EJ_ADMIN_PORT=$EJ_ADMIN_PORT
EJ_SMTP_PORT=$EJ_SMTP_PORT
EJ_GATEWAY_ADMIN_PORT=$(gateway_admin_port)
EOF
}

# The connection settings every process gets. The password lives in $EJ_VAR/pg.pass (0600).
conn_env() {
        local pass=""
        [[ -f $EJ_VAR/pg.pass ]] && pass=$(cat "$EJ_VAR/pg.pass")
        EJ_DB_URL="host=127.0.0.1 port=$EJ_PG_PORT dbname=easyjournal user=postgres password=$pass"
        EJ_NATS_URL="nats://127.0.0.1:$EJ_NATS_PORT"
        EJ_SMTP_URL=${EJ_SMTP_URL_GIVEN:-smtp://127.0.0.1:$EJ_SMTP_PORT}
}

# --- processes ------------------------------------------------------------------------------

# Services, in start order: every services/<svc>/main.c.
discover_services

# Runs a command as the owner of the PostgreSQL cluster: initdb refuses to run as root, so as
# root the cluster belongs to the `postgres` user Debian's package creates.
as_pg() {
        if [[ $(id -u) == 0 ]]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

pg_bindir() {
        local d v best=""
        for d in /usr/lib/postgresql/*/bin; do
                [[ -x $d/initdb ]] || continue
                v=$(basename "$(dirname "$d")")
                if [[ -z $best ]] || ((v > $(basename "$(dirname "$best")"))); then
                        best=$d
                fi
        done
        if [[ -z $best ]]; then
                best=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
                [[ -x $best/initdb ]] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
        fi
        echo "$best"
}

start_postgres() {
        local pgbin pgdata=$PGHOME/pg log=$PGHOME/postgres.log
        pgbin=$(pg_bindir)
        if live_pid postgres >/dev/null; then
                return 0
        fi
        mkdir -p "$RUN"
        if [[ $(id -u) == 0 ]]; then
                id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (apt-get install postgresql)"
                # The cluster's owner must reach its files: every directory above them must be
                # searchable (mktemp makes 0700 directories).
                chown postgres "$RUN"
                touch "$log"
                chown postgres "$log"
        fi
        chmod 0700 "$RUN"
        [[ $log == "$LOGS/postgres.log" ]] || ln -sfn "$log" "$LOGS/postgres.log"
        if [[ ! -f $pgdata/PG_VERSION ]]; then
                local pwfile
                rm -rf "$pgdata"
                mkdir -p "$pgdata"
                [[ $(id -u) == 0 ]] && chown postgres "$pgdata"
                umask 077
                head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$EJ_VAR/pg.pass"
                umask 022
                pwfile=$RUN/initdb.pw
                cp "$EJ_VAR/pg.pass" "$pwfile"
                [[ $(id -u) == 0 ]] && chown postgres "$pwfile"
                say "creating a PostgreSQL cluster in $pgdata"
                # Local socket: trust (the socket directory is 0700, only the owner reaches it);
                # TCP on loopback: password.
                if ! as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -E UTF8 --locale=C.UTF-8 \
                        --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" \
                        >"$LOGS/initdb.log" 2>&1; then
                        rm -f "$pwfile"
                        show_log "$LOGS/initdb.log"
                        die "initdb failed"
                fi
                rm -f "$pwfile"
                cat >>"$pgdata/postgresql.conf" <<EOF
# EasyJournal local stack
listen_addresses = '127.0.0.1'
unix_socket_permissions = 0700
fsync = on
max_connections = 200
shared_buffers = 64MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
        fi
        if ! as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$log" -w -t "$EJ_START_TIMEOUT" \
                -o "-p $EJ_PG_PORT -k $RUN -c listen_addresses=127.0.0.1" start >/dev/null; then
                show_log "$log"
                die "PostgreSQL did not start on 127.0.0.1:$EJ_PG_PORT"
        fi
        head -n 1 "$pgdata/postmaster.pid" >"$PIDS/postgres.pid"
        wait_ready postgres "$log" "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$EJ_PG_PORT"
        if ! as_pg "$pgbin/psql" -h "$RUN" -p "$EJ_PG_PORT" -U postgres -d postgres -tAq \
                -c "SELECT 1 FROM pg_database WHERE datname = 'easyjournal'" | grep -q 1; then
                as_pg "$pgbin/createdb" -h "$RUN" -p "$EJ_PG_PORT" -U postgres easyjournal ||
                        die "could not create the database easyjournal"
        fi
}

stop_postgres() {
        local pgbin
        # The cluster's own pid file counts too: a start interrupted before we recorded the pid
        # must not leave a server behind.
        if live_pid postgres >/dev/null || [[ -f $PGHOME/pg/postmaster.pid ]]; then
                pgbin=$(pg_bindir)
                as_pg "$pgbin/pg_ctl" -D "$PGHOME/pg" -m fast -w -t 30 stop >/dev/null 2>&1 ||
                        stop_proc postgres 10
        fi
        rm -f "$PIDS/postgres.pid"
}

start_nats() {
        local log=$LOGS/nats.log
        if live_pid nats >/dev/null; then
                return 0
        fi
        command -v nats-server >/dev/null || die "nats-server not found (apt-get install nats-server)"
        mkdir -p "$EJ_VAR/nats"
        # GOGC: nats-server's garbage collector, not its copying, is most of its CPU when file
        # chunks stream through it; 400 halves that CPU (50 MiB upload: 360 -> 190 ms) for about
        # 10 MiB more resident memory. EJ_NATS_GOGC overrides.
        GOGC=${EJ_NATS_GOGC:-400} start_proc nats "$log" nats-server -js -sd "$EJ_VAR/nats" -a 127.0.0.1 \
                -p "$EJ_NATS_PORT" -m "$EJ_NATS_MON_PORT" -n "ej-local"
        # /healthz answers 200 once JetStream is up too.
        wait_ready nats "$log" http_ok "http://127.0.0.1:$EJ_NATS_MON_PORT/healthz"
}

# --- mail (dev SMTP catcher) ---
# Starts the SMTP catcher (tools/smtp-catcher) on 127.0.0.1:$EJ_SMTP_PORT unless a real
# server is configured (EJ_SMTP_URL). It keeps mail in memory for the admin dev mail page
# (ej.devmail.list over NATS) and writes each message to $EJ_VAR/mail/<n>.eml.
start_catcher() {
        local log=$LOGS/smtp-catcher.log bin=$BIN/smtp-catcher i
        [[ -z $EJ_SMTP_URL_GIVEN ]] || return 0
        if live_pid smtp-catcher >/dev/null; then
                return 0
        fi
        if [[ ! -x $bin ]]; then
                say "$bin missing (run make): mail is queued but not caught"
                return 0
        fi
        conn_env
        mkdir -p "$EJ_VAR/mail"
        : >"$log"
        start_proc smtp-catcher "$log" env EJ_CATCHER_SMTP_ADDR="127.0.0.1:$EJ_SMTP_PORT" \
                EJ_NATS_URL="$EJ_NATS_URL" EJ_CATCHER_DIR="$EJ_VAR/mail" \
                EJ_LOG_LEVEL="$EJ_LOG_LEVEL" "$bin"
        # Its readiness check is quick: first let the child exec, so live_pid recognises it.
        for ((i = 0; i < 20; i++)); do
                live_pid smtp-catcher >/dev/null && break
                sleep 0.05
        done
        wait_ready smtp-catcher "$log" grep -q "listening on" "$log"
}
# --- end mail ---

# Starts process $1 (a service name or "gateway") with the stack's environment.
start_app() {
        local name=$1 bin log=$LOGS/$1.log i admin_port gdpr s key
        if live_pid "$name" >/dev/null; then
                return 0
        fi
        conn_env
        if [[ $name == gateway ]]; then
                bin=$BIN/ej-gateway
                [[ -x $bin ]] || die "$bin missing: run make first"
                start_proc gateway "$log" env EJ_NATS_URL="$EJ_NATS_URL" \
                        EJ_LOG_LEVEL="$EJ_LOG_LEVEL" EJ_HTTP_ADDR="127.0.0.1:$EJ_HTTP_PORT" \
                        EJ_ADMIN_ADDR="127.0.0.1:$(gateway_admin_port)" \
                        EJ_WEB_ROOT="$ROOT/gateway/web" EJ_SITE_NAME="$EJ_SITE_NAME" "$bin"
                wait_ready gateway "$log" http_ok "http://127.0.0.1:$EJ_HTTP_PORT/readyz"
                return 0
        fi
        admin_port=""
        for i in "${!SERVICES[@]}"; do
                [[ ${SERVICES[$i]} == "$name" ]] && admin_port=$((EJ_ADMIN_PORT + i))
        done
        [[ -n $admin_port ]] || die "unknown service $name (services: ${SERVICES[*]})"
        bin=$BIN/ej-$name
        [[ -x $bin ]] || die "$bin missing: run make first"
        # Every service but users answers ej.<svc>.gdpr_export.
        gdpr=""
        for s in "${SERVICES[@]}"; do
                [[ $s == users ]] || gdpr=${gdpr:+$gdpr,}$s
        done
        # Everything is worked out here, before the fork: the child only execs.
        key=${EJ_GRANT_KEY:-$(grant_key "$EJ_VAR")}
        start_proc "$name" "$log" env EJ_DB_URL="$EJ_DB_URL" EJ_NATS_URL="$EJ_NATS_URL" \
                EJ_LOG_LEVEL="$EJ_LOG_LEVEL" EJ_ADMIN_ADDR="127.0.0.1:$admin_port" \
                EJ_SMTP_URL="$EJ_SMTP_URL" EJ_SITE_NAME="$EJ_SITE_NAME" \
                EJ_PUBLIC_URL="${EJ_PUBLIC_URL:-http://127.0.0.1:$EJ_HTTP_PORT}" \
                EJ_GDPR_SERVICES="${EJ_GDPR_SERVICES-$gdpr}" \
                EJ_GRANT_KEY="$key" EJ_FILES_DIR="${EJ_FILES_DIR:-$EJ_VAR/files}" "$bin"
        # Ready = connected to NATS and PostgreSQL with its migrations applied.
        wait_ready "$name" "$log" http_ok "http://127.0.0.1:$admin_port/readyz"
}

# The gateway's admin port (/metrics, /healthz, /readyz): after the services' admin ports.
gateway_admin_port() {
        echo $((EJ_ADMIN_PORT + ${#SERVICES[@]}))
}

print_env() {
        conn_env
        cat <<EOF
EJ_GATEWAY_ADMIN_URL=http://127.0.0.1:$(gateway_admin_port)
EJ_VAR=$EJ_VAR
EJ_DB_URL="$EJ_DB_URL"
EJ_NATS_URL=$EJ_NATS_URL
EJ_NATS_MON_URL=http://127.0.0.1:$EJ_NATS_MON_PORT
EJ_SMTP_URL=$EJ_SMTP_URL
EOF
}

# Demo content for `make run` (EJ_DEMO=true; production never sets it). The journal itself is
# EJ_SITE_NAME for now. One verified account per role (admin, editor, reviewer, author
# @demo.easyjournal.org) through the operator command `ej-users create-user --update`, so a
# restart brings them back as they were. Their passwords are made up at the first seeding and
# kept in $EJ_VAR/demo-credentials.txt (0600) so each start prints the same ones; they are
# printed in this terminal only, never on a page the gateway serves.
seed_demo() {
        [[ ${EJ_DEMO:-false} == true ]] || return 0
        local file=$EJ_VAR/demo-credentials.txt role email pass out rows=()
        conn_env
        (umask 077 && touch "$file")
        chmod 600 "$file"
        for role in admin editor reviewer author; do
                email=$role@demo.easyjournal.org
                pass=$(awk -v e="$email" '$1 == e { print $2 }' "$file")
                if [[ -z $pass ]]; then
                        pass=$(head -c 15 /dev/urandom | base64 | tr '+/' 'xy')
                        echo "$email $pass" >>"$file"
                fi
                if ! out=$(printf '%s\n' "$pass" | EJ_DB_URL="$EJ_DB_URL" EJ_LOG_LEVEL=error \
                        "$BIN/ej-users" create-user --email "$email" --name "Demo ${role^}" \
                        --roles "$role" --password-stdin --update 2>&1); then
                        say "demo: could not seed $email: $out"
                        continue
                fi
                rows+=("$(printf '  %-9s %-30s %s' "$role" "$email" "$pass")")
        done
        ((${#rows[@]})) || return 0
        echo "Demo accounts (demo mode: shown in this terminal only; kept in $file):"
        printf '%s\n' "${rows[@]}"
}

cmd_infra() {
        mkdir -p "$PIDS" "$LOGS"
        pick_ports
        save_env
        start_postgres
        start_nats
        start_catcher
        print_env
}

cmd_start() {
        local s
        if live_pid gateway >/dev/null; then
                die "a stack already runs from $EJ_VAR (gateway on port $EJ_HTTP_PORT); stop it with make stop"
        fi
        mkdir -p "$PIDS" "$LOGS"
        pick_ports
        save_env
        start_postgres
        start_nats
        start_catcher
        for s in "${SERVICES[@]}"; do
                start_app "$s"
        done
        start_app gateway
        echo "EJ_HTTP_URL=http://127.0.0.1:$EJ_HTTP_PORT"
        print_env
}

cmd_stop() {
        local i run_pid
        # A `run` still following the logs in another terminal ends too (its trap stops the rest).
        run_pid=$(cat "$PIDS/run.pid" 2>/dev/null || true)
        if [[ -n $run_pid ]]; then
                if [[ $run_pid != "$$" ]] && grep -qa stack.sh "/proc/$run_pid/cmdline" 2>/dev/null; then
                        kill -TERM "$run_pid" 2>/dev/null || true
                fi
                rm -f "$PIDS/run.pid"
        fi
        stop_proc gateway 10
        for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
                stop_proc "${SERVICES[$i]}" 10
        done
        stop_proc smtp-catcher 10
        stop_proc nats 10
        stop_postgres
}

TAIL_PID=""
cmd_run() {
        trap 'run_stop' INT TERM HUP
        # In a subshell, so that a failed start-up comes back here to stop what did start.
        if ! (cmd_start >/dev/null); then
                say "start-up failed; stopping what was started"
                cmd_stop
                exit 1
        fi
        # The start ran in a subshell: the ports it chose are only in $STACK_ENV.
        load_env all
        echo "$$" >"$PIDS/run.pid"
        seed_demo
        echo "EasyJournal is running at http://127.0.0.1:$EJ_HTTP_PORT"
        echo "(logs follow; Ctrl-C stops everything)"
        local logs=("$LOGS/postgres.log" "$LOGS/nats.log") s
        for s in "${SERVICES[@]}" gateway; do
                logs+=("$LOGS/$s.log")
        done
        [[ -f $LOGS/smtp-catcher.log ]] && logs+=("$LOGS/smtp-catcher.log")
        tail -n 5 -F "${logs[@]}" &
        TAIL_PID=$!
        # `wait` returns when a signal arrives, so the trap runs promptly.
        while kill -0 "$TAIL_PID" 2>/dev/null; do
                wait "$TAIL_PID" || true
        done
        run_stop
}

run_stop() {
        trap - INT TERM HUP
        echo
        say "stopping"
        [[ -n $TAIL_PID ]] && kill "$TAIL_PID" 2>/dev/null
        cmd_stop
        say "stopped"
        exit 0
}

cmd_status() {
        local name pid state rc=0
        for name in postgres nats smtp-catcher "${SERVICES[@]}" gateway; do
                [[ $name == smtp-catcher && -n $EJ_SMTP_URL_GIVEN ]] && continue
                if pid=$(live_pid "$name"); then
                        state="running (pid $pid)"
                else
                        state="stopped"
                        rc=3
                fi
                printf '%-10s %s\n' "$name" "$state"
        done
        echo "http://127.0.0.1:$EJ_HTTP_PORT  postgres 127.0.0.1:$EJ_PG_PORT  nats 127.0.0.1:$EJ_NATS_PORT (monitor $EJ_NATS_MON_PORT)"
        return $rc
}

cmd_start_one() {
        local name=${1:-}
        [[ -n $name ]] || die "usage: stack.sh start-one gateway|nats|postgres|<service>"
        mkdir -p "$PIDS" "$LOGS"
        case $name in
        postgres) start_postgres ;;
        nats) start_nats ;;
        smtp-catcher) start_catcher ;;
        *) start_app "$name" ;;
        esac
}

case ${1:-} in
infra) cmd_infra ;;
start) cmd_start ;;
run) cmd_run ;;
stop) cmd_stop ;;
status) cmd_status ;;
start-one) cmd_start_one "${2:-}" ;;
*)
        echo "usage: $0 infra|start|run|stop|status|start-one NAME" >&2
        exit 2
        ;;
esac
