#!/usr/bin/env bash
# Runs libFuzzer targets for a bounded time each (`make fuzz`): tests/fuzz/run.sh TARGET...
#
# Each target $FUZZ_DIR/fuzz_<target> runs for $FUZZ_SECONDS seconds (default 30) on its corpus
# $FUZZ_DIR/corpus/<target> (grown from the committed seeds tests/fuzz/<target>/, and
# tests/fuzz/<target>.dict as its dictionary when there is one), its log in
# $FUZZ_DIR/<target>.log and a crashing input in $FUZZ_DIR/crash-<target>-*. Prints per target
# the executions, the coverage libFuzzer reached (cov: edges, ft: features) and the corpus size,
# then "N passed, N failed" (a target fails when it crashes or ends without its final stats).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
pass=0
fail=0

for t in "$@"; do
        bin=$FUZZ_DIR/fuzz_$t
        log=$FUZZ_DIR/$t.log
        corpus=$FUZZ_DIR/corpus/$t
        dict=()
        [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
        mkdir -p "$corpus"
        echo "fuzz $t: ${FUZZ_SECONDS}s"
        "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=1024 \
                -artifact_prefix="$FUZZ_DIR/crash-$t-" "${dict[@]}" "$corpus" "tests/fuzz/$t" \
                >"$log" 2>&1
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
        cov=$(sed -E -n 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
        ft=$(sed -E -n 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
        corp=$(sed -E -n 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$done_line")
        if ((rc == 0)) && [[ -n $execs ]]; then
                pass=$((pass + 1))
                printf 'fuzz %-12s ok: %s executions, cov %s, ft %s, corpus %s\n' "$t" "$execs" \
                        "${cov:-?}" "${ft:-?}" "${corp:-?}"
        else
                fail=$((fail + 1))
                printf 'fuzz %-12s FAILED (exit %s): see %s\n' "$t" "$rc" "$log"
                grep -E 'ERROR|property broken|SUMMARY|Test unit written' "$log" | head -n 8
        fi
done
echo "$pass passed, $fail failed"
((fail == 0))
