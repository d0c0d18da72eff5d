#!/usr/bin/env bash
# File streaming through the gateway, called by tests/bench/run.sh on its running stack:
#   - one 50 MiB upload and its download (MB/s), with the peak RSS (VmHWM) of the gateway and of
#     the files service during each (the peaks are reset first: /proc/<pid>/clear_refs);
#   - 16 concurrent uploads of 20 MiB (distinct contents): the RSS growth of gateway + files
#     service over the run (their peak during it minus their RSS before), target < 32 MiB.
# Target for the single upload to the local backend: >= 300 MB/s.
#
# Environment (from run.sh): URL, COOKIE, WORK, EJ_VAR. EJ_BENCH_FILE_RUNS (3): runs of the
# single upload and download; the best and the median are printed.
set -euo pipefail

RUNS=${EJ_BENCH_FILE_RUNS:-3}
DIR=$WORK/files-bench
mkdir -p "$DIR"
MIB=$((1024 * 1024))

pid_of() { cat "$EJ_VAR/pids/$1.pid" 2>/dev/null || echo 0; }
kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
reset_peak() { [[ -w /proc/$1/clear_refs ]] && echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

GW=$(pid_of gateway)
FS=$(pid_of files)
if [[ $FS == 0 ]]; then
        echo "bench: no files service in this stack; file streaming skipped"
        exit 0
fi

# A file libmagic calls a PDF: a PDF header, then random bytes (distinct per file, so that
# content addressing stores every one).
make_pdf() { # path MiB
        {
                printf '%%PDF-1.4\n%%\342\343\317\323\n'
                head -c $(($2 * MIB)) /dev/urandom
        } | head -c $(($2 * MIB)) >"$1"
}

upload() { # file -> "code seconds id"
        local out code
        out=$(curl -sS -o "$1.resp" -w '%{http_code} %{time_total}' --max-time 120 -H 'Expect:' \
                -H "Cookie: $COOKIE" -H 'Content-Type: application/pdf' -T "$1" \
                "$URL/api/files?kind=manuscript&name=bench.pdf")
        code=${out%% *}
        printf '%s %s\n' "$out" "$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$1.resp")"
        [[ $code == 201 ]] || echo "bench: upload of $1 answered $code: $(head -c 300 "$1.resp")" >&2
}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? b / s / 1e6 : 0) }'; }
stats() { # numbers... -> "best median"
        printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%s %s", a[NR], a[int((NR + 1) / 2)] }'
}

echo
echo "bench: files: one 50 MiB upload and download, $RUNS runs each"
up_rates=()
down_rates=()
up_gw=0 up_fs=0 down_gw=0 down_fs=0
ID=""
for ((i = 1; i <= RUNS; i++)); do
        make_pdf "$DIR/single-$i.pdf" 50
        reset_peak "$GW"
        reset_peak "$FS"
        read -r code secs id < <(upload "$DIR/single-$i.pdf")
        [[ $code == 201 ]] || exit 1
        up_rates+=("$(mbps $((50 * MIB)) "$secs")")
        up_gw=$(($(kib "$GW" VmHWM) > up_gw ? $(kib "$GW" VmHWM) : up_gw))
        up_fs=$(($(kib "$FS" VmHWM) > up_fs ? $(kib "$FS" VmHWM) : up_fs))
        ID=$id

        reset_peak "$GW"
        reset_peak "$FS"
        out=$(curl -sS -o "$DIR/back.pdf" -w '%{http_code} %{time_total}' --max-time 120 \
                -H "Cookie: $COOKIE" "$URL/api/files/$id")
        [[ ${out%% *} == 200 ]] || {
                echo "bench: download answered ${out%% *}" >&2
                exit 1
        }
        cmp -s "$DIR/single-$i.pdf" "$DIR/back.pdf" || {
                echo "bench: the download differs from the upload" >&2
                exit 1
        }
        down_rates+=("$(mbps $((50 * MIB)) "${out#* }")")
        down_gw=$(($(kib "$GW" VmHWM) > down_gw ? $(kib "$GW" VmHWM) : down_gw))
        down_fs=$(($(kib "$FS" VmHWM) > down_fs ? $(kib "$FS" VmHWM) : down_fs))
        rm -f "$DIR/single-$i.pdf" "$DIR/back.pdf"
done
read -r UP_BEST UP_MED <<<"$(stats "${up_rates[@]}")"
read -r DOWN_BEST DOWN_MED <<<"$(stats "${down_rates[@]}")"
printf 'upload   50 MiB: best %5s MB/s, median %5s MB/s   peak RSS gateway %6d KiB, files %6d KiB\n' \
        "$UP_BEST" "$UP_MED" "$up_gw" "$up_fs"
printf 'download 50 MiB: best %5s MB/s, median %5s MB/s   peak RSS gateway %6d KiB, files %6d KiB\n' \
        "$DOWN_BEST" "$DOWN_MED" "$down_gw" "$down_fs"

echo "bench: files: 16 concurrent uploads of 20 MiB"
for ((i = 1; i <= 16; i++)); do make_pdf "$DIR/c-$i.pdf" 20; done
base=$(($(kib "$GW" VmRSS) + $(kib "$FS" VmRSS)))
reset_peak "$GW"
reset_peak "$FS"
t0=$(date +%s.%N)
for ((i = 1; i <= 16; i++)); do upload "$DIR/c-$i.pdf" >"$DIR/c-$i.out" & done
wait
t1=$(date +%s.%N)
ok=0
for ((i = 1; i <= 16; i++)); do [[ $(cut -d' ' -f1 "$DIR/c-$i.out") == 201 ]] && ok=$((ok + 1)); done
peak=$(($(kib "$GW" VmHWM) + $(kib "$FS" VmHWM)))
GROWTH=$((peak - base))
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
printf '16 x 20 MiB: %d/16 stored in %s s (%s MB/s in all); RSS gateway+files before %d KiB, peak %d KiB, growth %d KiB\n' \
        "$ok" "$secs" "$(mbps $((16 * 20 * MIB)) "$secs")" "$base" "$peak" "$GROWTH"
rm -f "$DIR"/c-*

echo
awk -v u="$UP_BEST" -v g="$GROWTH" -v ok="$ok" 'BEGIN {
        printf "target single upload >= 300 MB/s (local backend): %s (%s MB/s best)\n", (u >= 300 ? "met" : "MISSED"), u
        printf "target RSS growth of gateway + files < 32 MiB over 16 concurrent uploads: %s (%.1f MiB, %d/16 stored)\n",
                (g < 32 * 1024 && ok == 16 ? "met" : "MISSED"), g / 1024, ok
}'
