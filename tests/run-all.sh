#!/usr/bin/env bash
# Runs EasyJournal's test suites and ends with one line "N passed, N failed".
#
#   tests/run-all.sh            format (clang-format, include cycles), unit, system, browser,
#                               fault (what `make test` runs)
#   tests/run-all.sh SUITE      one of: format unit system browser fault
#
# Each suite runs under a time limit and reports "N passed, N failed"; a suite that ends
# without that line (crash, timeout) counts as a failure. Exits non-zero on any failure.
# Everything a suite starts is stopped on the way out, also on Ctrl-C.
#
# Environment: BUILD (build), SANITIZE (set by `make sanitize`: longer limits),
# EJ_TEST_KEEP=1 keeps the work directory (logs, screenshots) for a look afterwards.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
export BUILD=${BUILD:-build}
export SANITIZE=${SANITIZE:-}
STACK=$ROOT/deploy/local/stack.sh

# Sanitizer builds run several times slower.
SLOW=1
[[ -n $SANITIZE ]] && SLOW=3
if [[ -n $SANITIZE ]]; then
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:print_summary=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        export EJ_START_TIMEOUT=${EJ_START_TIMEOUT:-90}
fi

ALL_SUITES=(format unit system browser fault)
if (($# > 0)) && [[ $1 != all ]]; then
        SUITES=("$@")
else
        SUITES=("${ALL_SUITES[@]}")
fi
for s in "${SUITES[@]}"; do
        [[ " ${ALL_SUITES[*]} " == *" $s "* ]] || {
                echo "run-all: unknown suite '$s' (suites: ${ALL_SUITES[*]})" >&2
                exit 2
        }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ej-tests.XXXXXX")
# PostgreSQL runs as its own user when we are root: it must be able to pass through.
chmod 711 "$WORK"
INFRA_VAR=""
CHILD=""

cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
                # The suite runs in its own process group (setsid): stop all of it. Node tests
                # stop their stacks on SIGTERM.
                kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null
                for _ in $(seq 1 100); do
                        kill -0 "$CHILD" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL -- "-$CHILD" 2>/dev/null || true
        fi
        if [[ -n $INFRA_VAR ]]; then
                EJ_VAR=$INFRA_VAR "$STACK" stop >/dev/null 2>&1 || true
        fi
        # Stacks the node suites create live under $WORK (TMPDIR): none may outlive us, even
        # when a suite was killed before it could stop its own.
        for d in "$WORK"/ej-stack-*; do
                [[ -f $d/stack.env ]] && EJ_VAR=$d "$STACK" stop >/dev/null 2>&1
        done
        if [[ -n ${EJ_TEST_KEEP:-} ]]; then
                echo "run-all: work directory kept: $WORK" >&2
        else
                rm -rf "$WORK"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'echo "run-all: interrupted" >&2; exit 130' INT TERM

# Runs "$@" in its own session with a time limit of $1 seconds, output to the terminal and to
# $WORK/$name.out. Sets RC.
run_limited() {
        local secs=$1 out=$2 fifo=$WORK/fifo tee_pid
        shift 2
        rm -f "$fifo"
        mkfifo "$fifo"
        tee -a "$out" <"$fifo" &
        tee_pid=$!
        setsid timeout -k 10 "$secs" "$@" >"$fifo" 2>&1 </dev/null &
        CHILD=$!
        wait "$CHILD"
        RC=$?
        CHILD=""
        # The summary is read from $out next: tee must have written everything.
        wait "$tee_pid"
        if ((RC == 124 || RC == 137)); then
                echo "run-all: TIMEOUT after ${secs}s: $*" | tee -a "$out"
        fi
}

# Totals.
declare -A S_PASS S_FAIL S_NOTE
TOTAL_PASS=0
TOTAL_FAIL=0

record() { # suite passed failed note
        S_PASS[$1]=$2
        S_FAIL[$1]=$3
        S_NOTE[$1]=${4:-}
        TOTAL_PASS=$((TOTAL_PASS + $2))
        TOTAL_FAIL=$((TOTAL_FAIL + $3))
}

# The last "N passed, N failed" line of a file, as "N N"; empty when there is none.
summary_of() {
        grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" 2>/dev/null | tail -n 1 |
                sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/'
}

banner() {
        echo
        echo "==== $1 ===="
}

suite_format() {
        local out=$WORK/format.out pass=0 fail=0 notes=""
        banner "format-check"
        run_limited 120 "$out" make --no-print-directory format-check
        if ((RC == 0)); then
                pass=$((pass + 1))
        else
                fail=$((fail + 1))
                notes="clang-format would change files (make format)"
        fi
        # No two C modules include each other (the check, then its own test on a made-up cycle).
        run_limited 60 "$out" tools/check-includes.sh
        if ((RC == 0)); then
                pass=$((pass + 1))
        else
                fail=$((fail + 1))
                notes="${notes:+$notes; }include cycle (tools/check-includes.sh)"
        fi
        run_limited 60 "$out" tools/check-includes.sh --self-test
        if ((RC == 0)); then
                pass=$((pass + 1))
        else
                fail=$((fail + 1))
                notes="${notes:+$notes; }tools/check-includes.sh --self-test"
        fi
        record format "$pass" "$fail" "$notes"
}

# Unit tests: every $BUILD/tests/test_* binary and tests/deploy/test_*.sh script, with a private PostgreSQL and nats-server for
# the ones that need them (EJ_TEST_DB_URL, EJ_TEST_NATS_URL).
suite_unit() {
        local bins=() b name out sum p f pass=0 fail=0 notes="" env_out
        banner "unit"
        for b in "$BUILD"/tests/test_*; do
                [[ -x $b && ! -d $b && $b != *.d ]] && bins+=("$b")
        done
        # Checks of the deployment files (package list, manifests): scripts, run the same way.
        for b in tests/deploy/test_*.sh; do
                [[ -x $b ]] && bins+=("$b")
        done
        if ((${#bins[@]} == 0)); then
                echo "run-all: no unit test binaries in $BUILD/tests (make all first)"
                record unit 0 1 "no test binaries"
                return
        fi
        INFRA_VAR=$WORK/infra
        mkdir -p "$INFRA_VAR"
        if ! env_out=$(EJ_VAR=$INFRA_VAR EJ_HTTP_PORT=0 EJ_PG_PORT=0 EJ_NATS_PORT=0 \
                EJ_NATS_MON_PORT=0 EJ_ADMIN_PORT=0 "$STACK" infra); then
                echo "run-all: could not start PostgreSQL and nats-server for the unit tests"
                record unit 0 1 "test infrastructure did not start"
                return
        fi
        EJ_TEST_DB_URL=$(sed -n 's/^EJ_DB_URL="\(.*\)"$/\1/p' <<<"$env_out")
        EJ_TEST_NATS_URL=$(sed -n 's/^EJ_NATS_URL=\(.*\)$/\1/p' <<<"$env_out")
        export EJ_TEST_DB_URL EJ_TEST_NATS_URL
        for b in "${bins[@]}"; do
                name=$(basename "$b")
                out=$WORK/unit-$name.out
                echo "-- $name"
                run_limited $((120 * SLOW)) "$out" "$b"
                sum=$(summary_of "$out")
                if [[ -z $sum ]]; then
                        echo "run-all: $name ended (exit $RC) without its summary line"
                        fail=$((fail + 1))
                        notes="$notes $name:crashed"
                        continue
                fi
                read -r p f <<<"$sum"
                pass=$((pass + p))
                fail=$((fail + f))
                if ((RC != 0 && f == 0)); then
                        echo "run-all: $name exited $RC although it reported no failure"
                        fail=$((fail + 1))
                        notes="$notes $name:exit-$RC"
                elif ((f > 0)); then
                        notes="$notes $name"
                fi
        done
        EJ_VAR=$INFRA_VAR "$STACK" stop >/dev/null 2>&1 || true
        INFRA_VAR=""
        record unit "$pass" "$fail" "${notes# }"
}

# A suite written for node's test runner: TAP's "# pass N" / "# fail N" become the summary.
node_suite() { # suite limit files...
        local suite=$1 secs=$2 out=$WORK/$1.out p f c
        shift 2
        banner "$suite"
        if ! command -v node >/dev/null; then
                record "$suite" 0 1 "node not installed"
                return
        fi
        run_limited "$secs" "$out" env TMPDIR="$WORK" EJ_SHOT_DIR="$WORK/screenshots" \
                node --test --test-reporter=tap --test-concurrency=1 "$@"
        p=$(grep -E '^# pass [0-9]+$' "$out" | tail -n 1 | awk '{print $3}')
        f=$(grep -E '^# fail [0-9]+$' "$out" | tail -n 1 | awk '{print $3}')
        c=$(grep -E '^# cancelled [0-9]+$' "$out" | tail -n 1 | awk '{print $3}')
        if [[ -z $p || -z $f ]]; then
                echo "run-all: $suite ended (exit $RC) without a test summary"
                record "$suite" "${p:-0}" $((${f:-0} + 1)) "crashed or timed out"
                return
        fi
        f=$((f + ${c:-0}))
        echo "$p passed, $f failed" | tee -a "$out"
        if ((RC != 0 && f == 0)); then
                record "$suite" "$p" 1 "exit $RC"
        else
                record "$suite" "$p" "$f"
        fi
}

suite_system() {
        # About 310 s on a quiet 2-core machine (nine files, each with its own stack): the limit
        # stops a hang, it is not a speed target.
        node_suite system $((480 * SLOW)) tests/system/*.test.js
}

# The accessibility sweep (a11y.test.js: axe on every page, role and theme, and the journeys by
# keyboard) takes about 100 s of the browser suite (whole suite: 280 s) on the 2-core box at a
# load average of 9.
suite_browser() {
        mkdir -p "$WORK/screenshots"
        node_suite browser $((360 * SLOW)) tests/browser/*.test.js
}

suite_fault() {
        node_suite fault $((300 * SLOW)) tests/fault/*.test.js
}

for s in "${SUITES[@]}"; do
        "suite_$s"
done

echo
echo "==== summary ===="
for s in "${SUITES[@]}"; do
        printf '%-8s %4s passed, %4s failed  %s\n' "$s" "${S_PASS[$s]}" "${S_FAIL[$s]}" "${S_NOTE[$s]}"
done
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
((TOTAL_FAIL == 0))
