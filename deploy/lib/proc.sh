# shellcheck shell=bash
# Process management shared by deploy/local/stack.sh and deploy/replicas/run.sh: which services
# exist, free ports, starting a process with a pid file, waiting until it is ready, and stopping
# it by its recorded pid (never by name).
#
# Sourced, not run. The caller sets, before calling anything here:
#   ROOT               the repository root
#   PIDS               directory of the pid files (<name>.pid, the bare pid)
#   EJ_START_TIMEOUT   seconds wait_ready waits
#   die, say           its own error (exit 1) and message functions
# Process names: "postgres", "nats", "smtp-catcher", "gateway", a service name, or either of the
# last two with a replica number ("gateway-2", "users-1"); proc_program maps a name to the
# program its pid must still run.

# Sets SERVICES to every service, in start order (by name): each services/<svc>/main.c builds
# $BIN/ej-<svc>. Adding a service therefore needs no edit of the deploy scripts.
discover_services() {
        local m s
        SERVICES=()
        for m in "$ROOT"/services/*/main.c; do
                [[ -e $m ]] || continue
                s=${m%/main.c}
                s=${s##*/}
                [[ $s == common ]] && continue
                SERVICES+=("$s")
        done
}

# --- ports ----------------------------------------------------------------------------------

# True when some TCP socket uses local port $1 (listening or connected, IPv4 or IPv6).
port_in_use() {
        local hex
        hex=$(printf '%04X' "$1")
        awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
                /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Free ports come from below the kernel's ephemeral range, so that no outgoing connection can
# take one between our choice and the server's bind.
PORT_LO=10000
PORT_HI=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
((PORT_HI > PORT_LO + 1000)) || PORT_HI=32767

# A port is chosen long before its server binds it (PostgreSQL's cluster is created in between),
# so scripts starting at the same time could choose the same free port. Each choice is therefore
# reserved for a while in a directory every script shares: mkdir is atomic, so only one script
# wins a port. A reservation older than PORT_HOLD_MIN minutes has expired: by then its server
# listens (and port_in_use sees it) or it never will.
PORT_RESERVE_DIR=${TMPDIR:-/tmp}/easyjournal-ports
PORT_HOLD_MIN=10
if [[ ! -d $PORT_RESERVE_DIR ]]; then
        { mkdir -p "$PORT_RESERVE_DIR" && chmod 1777 "$PORT_RESERVE_DIR"; } 2>/dev/null || true
fi

# True when this script now holds port $1 against other scripts.
reserve_port() {
        local r=$PORT_RESERVE_DIR/$1
        [[ -d $PORT_RESERVE_DIR && -w $PORT_RESERVE_DIR ]] || return 0
        mkdir "$r" 2>/dev/null && return 0
        # An expired reservation is taken over (rmdir then mkdir: still only one winner).
        if [[ -n $(find "$r" -maxdepth 0 -mmin +"$PORT_HOLD_MIN" 2>/dev/null) ]]; then
                rmdir "$r" 2>/dev/null || true
                mkdir "$r" 2>/dev/null && return 0
        fi
        return 1
}

TAKEN=" "
# Sets FREE to a free port not handed out before by this script nor reserved by another (no
# subshell: TAKEN must keep what it hands out).
free_port() {
        local p i
        for ((i = 0; i < 500; i++)); do
                p=$((PORT_LO + (RANDOM * 32768 + RANDOM) % (PORT_HI - PORT_LO - 100)))
                if [[ $TAKEN != *" $p "* ]] && ! port_in_use "$p" && reserve_port "$p"; then
                        TAKEN="$TAKEN$p "
                        FREE=$p
                        return 0
                fi
        done
        die "no free TCP port found"
}

# Sets FREE to the first of $1 consecutive free ports (reserved like free_port's).
free_port_range() {
        local n=$1 p i j ok
        for ((i = 0; i < 100; i++)); do
                free_port
                p=$FREE
                ok=1
                for ((j = 1; j < n; j++)); do
                        if ((ok)) && { port_in_use $((p + j)) ||
                                [[ $TAKEN == *" $((p + j)) "* ]] ||
                                ! reserve_port $((p + j)); }; then
                                ok=0
                        fi
                done
                if ((ok)); then
                        for ((j = 1; j < n; j++)); do
                                TAKEN="$TAKEN$((p + j)) "
                        done
                        FREE=$p
                        return 0
                fi
        done
        die "no range of $n free TCP ports found"
}

# --- processes ------------------------------------------------------------------------------

# Prints the part of the command line the process named $1 must show.
proc_program() {
        case $1 in
        nats) echo nats-server ;;
        postgres) echo postgres ;;
        smtp-catcher) echo smtp-catcher ;;
        *) echo "ej-${1%-[0-9]*}" ;; # gateway-2 -> ej-gateway, users-1 -> ej-users
        esac
}

# Prints the pid recorded for $1 when that process still runs (and still is the program we
# started: a recycled pid must never be signalled).
live_pid() {
        local f=$PIDS/$1.pid pid exe
        [[ -f $f ]] || return 1
        pid=$(cat "$f")
        [[ $pid =~ ^[0-9]+$ ]] || return 1
        [[ -r /proc/$pid/cmdline ]] || return 1
        exe=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        [[ $exe == *"$(proc_program "$1")"* ]] || return 1
        echo "$pid"
}

# Starts "$@" as process $1 in a new session (so that Ctrl-C in a foreground script reaches only
# that script, which then stops everything in order), output appended to log $2, and records
# its pid. Work everything out before calling: the child only execs.
start_proc() {
        local name=$1 log=$2
        shift 2
        setsid "$@" >>"$log" 2>&1 </dev/null &
        echo "$!" >"$PIDS/$name.pid"
}

# Sends TERM to $1, waits up to $2 seconds (10), then KILL; forgets its pid file.
stop_proc() {
        local name=$1 grace=${2:-10} pid i
        if pid=$(live_pid "$name"); then
                kill -TERM "$pid" 2>/dev/null || true
                for ((i = 0; i < grace * 10; i++)); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                if kill -0 "$pid" 2>/dev/null; then
                        say "$name (pid $pid) ignored TERM for ${grace}s; killing"
                        kill -KILL "$pid" 2>/dev/null || true
                fi
        fi
        rm -f "$PIDS/$name.pid"
}

# Prints the last lines of a log, for a start-up failure.
show_log() {
        if [[ -f $1 ]]; then
                echo "---- last lines of $1 ----" >&2
                tail -n 25 "$1" >&2
                echo "----" >&2
        fi
}

# True while $1 is a child of this shell that has not exited: between the fork and the exec of
# its program it still shows this script's command line, which live_pid rightly refuses.
own_child_runs() {
        local stat state ppid
        [[ $1 =~ ^[0-9]+$ ]] || return 1
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        # After the command name (in parentheses, may hold spaces): state, then parent pid.
        stat=${stat##*) }
        read -r state ppid _ <<<"$stat"
        [[ $ppid == "$BASHPID" && $state != Z && $state != X ]]
}

# Waits until "$@" succeeds while process $1 lives (log $2); dies with the log otherwise, or
# after EJ_START_TIMEOUT seconds. PostgreSQL is not our child (pg_ctl starts it): only the
# check counts for it.
wait_ready() {
        local name=$1 log=$2 pid rc
        shift 2
        local deadline=$((SECONDS + EJ_START_TIMEOUT))
        while ((SECONDS < deadline)); do
                if "$@" >/dev/null 2>&1; then
                        return 0
                fi
                if [[ $name != postgres ]] && ! live_pid "$name" >/dev/null; then
                        pid=$(cat "$PIDS/$name.pid" 2>/dev/null || true)
                        if ! own_child_runs "$pid"; then
                                rc=""
                                if [[ $pid =~ ^[0-9]+$ ]]; then
                                        wait "$pid" 2>/dev/null && rc=0 || rc=$?
                                fi
                                show_log "$log"
                                die "$name exited during start-up${rc:+ (exit status $rc)}"
                        fi
                fi
                sleep 0.1
        done
        show_log "$log"
        die "$name not ready after ${EJ_START_TIMEOUT}s"
}

# True when URL $1 answers 2xx within 2 seconds.
http_ok() {
        curl -fsS -o /dev/null --max-time 2 "$1"
}

# The key every service signs and checks file grants with (EJ_GRANT_KEY, 64 hex digits): made
# once per state directory $1 and kept in $1/grant.key (0600).
grant_key() {
        local f=$1/grant.key
        if [[ ! -s $f ]]; then
                (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
        fi
        cat "$f"
}
