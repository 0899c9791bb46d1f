#!/usr/bin/env bash
# Exactly-once edges, measured in one run against the mock server (loopback only):
#
#  1. The largest look-back (24h) on a busy project (--records-per-day emailSend records a day,
#     default 1,000,000): a first run of one day remembers the whole day; the incremental run
#     after it re-reads that day, drops every record of it, and remembers the next day. Reports
#     the state file size and the CLI's peak resident memory of both runs, against a run of the
#     same day with no look-back.
#  2. Blocking I/O off the runtime: three data types exported concurrently (one process, one
#     rate limiter) versus each alone, with --state (an fsync per window) — the concurrent run
#     should take close to the slowest alone, not the sum. Measured twice: as is (on 2 cores the
#     mock's record generation makes this CPU-bound, so it shows the CPU sharing, not blocking),
#     and on a simulated slow disk — every fsync/fdatasync delayed by --fsync-delay-ms through
#     strace's fault injection, with fewer records — where blocking the runtime would add the
#     three types' fsync delays up.
#
#   bench/edges.sh [--records-per-day N] [--runs N] [--fsync-delay-ms N]
#
# Prints Markdown tables. Needs cargo, python3, /usr/bin/time, strace (for the slow disk).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RPD=1000000
RUNS=3
FSYNC_DELAY_MS=100
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records-per-day) RPD="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --fsync-delay-ms) FSYNC_DELAY_MS="$2"; shift 2 ;;
        *) echo "edges.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { printf '[edges %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

log "building release binaries"
cargo build --release --quiet -p iterable-export-cli -p iterable-export-mock
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
CLI="$TARGET_DIR/release/iterable-export"
MOCK="$TARGET_DIR/release/iterable-export-mock"
OUT="$TARGET_DIR/bench-edges"
rm -rf "$OUT"; mkdir -p "$OUT"
KEY="bench-api-key"

"$MOCK" --host 127.0.0.1 --port 0 --rate-limit 0 --seed 1 --api-key "$KEY" --records-per-day "$RPD" \
    >"$OUT/mock.out" 2>"$OUT/mock.err" &
MOCK_PID=$!
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
URL=""
for _ in $(seq 100); do
    URL="$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' "$OUT/mock.out" | head -1)"
    [[ -n "$URL" ]] && break
    sleep 0.1
done
[[ -n "$URL" ]] || { echo "mock did not start" >&2; exit 1; }

# run NAME ARGS...: the CLI under /usr/bin/time; prints "wall_s rss_kib".
run() {
    local name="$1"; shift
    /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$CLI" --quiet --api-key "$KEY" --base-url "$URL" "$@" \
        >"$OUT/$name.out" 2>"$OUT/$name.err" || { cat "$OUT/$name.err" >&2; exit 1; }
    tail -n 1 "$OUT/$name.time"
}

# --- 1. look-back state and memory ---
echo
echo "### Look-back: $RPD emailSend records a day"
echo
echo "| run | look-back | records remembered | state file | peak RSS | wall |"
echo "|---|---|---|---|---|---|"
for lookback in 0s 24h; do
    dir="$OUT/lookback-$lookback"; mkdir -p "$dir"
    common=(export --data-type emailSend --output "$dir" --state "$dir/state.json" --lookback "$lookback"
        --requests-per-minute 600 --window 1d)
    read -r wall rss < <(run "lb1-$lookback" "${common[@]}" --start 2024-01-01 --end 2024-01-02)
    state=$(stat -c %s "$dir/state.json")
    remembered=$([[ $lookback == 0s ]] && echo 0 || echo "$RPD")
    echo "| first day | $lookback | $remembered | $(python3 -c "print(round($state/1048576,1))") MiB | $(python3 -c "print(round($rss/1024,1))") MiB | ${wall} s |"
    read -r wall rss < <(run "lb2-$lookback" "${common[@]}" --end 2024-01-03)
    state=$(stat -c %s "$dir/state.json")
    lines=$(wc -l <"$dir/emailSend.ndjson")
    [[ "$lines" == "$((2 * RPD))" ]] || { echo "edges.sh: $lines records after two runs, expected $((2 * RPD))" >&2; exit 1; }
    echo "| incremental next day (re-reads the look-back) | $lookback | $remembered | $(python3 -c "print(round($state/1048576,1))") MiB | $(python3 -c "print(round($rss/1024,1))") MiB | ${wall} s |"
done

# --- 2. concurrent data types versus each alone ---
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
TYPES=(emailSend emailOpen customEvent)
# concurrency TITLE WINDOW END PREFIX...: each type alone, then all three in one run; PREFIX runs
# the CLI (e.g. under strace).
concurrency() {
    local title="$1" window="$2" end="$3"; shift 3
    local -a prefix=("$@")
    declare -A alone=()
    local together=() r t dir wall args
    for r in $(seq "$RUNS"); do
        for t in "${TYPES[@]}"; do
            dir="$OUT/alone-$t-$r"; mkdir -p "$dir"
            read -r wall _ < <(run_with "alone-$t-$r" "${prefix[@]}" -- export --data-type "$t" --start 2024-01-01 \
                --end "$end" --window "$window" --max-window "$window" --requests-per-minute 6000 --output "$dir" \
                --state "$dir/state.json")
            alone[$t]="${alone[$t]:-} $wall"
            rm -rf "$dir"
        done
        dir="$OUT/together-$r"; mkdir -p "$dir"
        args=(export --start 2024-01-01 --end "$end" --window "$window" --max-window "$window"
            --requests-per-minute 6000 --output "$dir" --state "$dir/state.json")
        for t in "${TYPES[@]}"; do args+=(--data-type "$t"); done
        read -r wall _ < <(run_with "together-$r" "${prefix[@]}" -- "${args[@]}")
        together+=("$wall")
        rm -rf "$dir"
    done
    echo
    echo "### $title (median of $RUNS)"
    echo
    echo "| run | wall |"
    echo "|---|---|"
    local sum=0 slowest=0 m
    for t in "${TYPES[@]}"; do
        # shellcheck disable=SC2086
        m=$(median ${alone[$t]})
        echo "| $t alone | ${m} s |"
        sum=$(python3 -c "print(round($sum+$m,2))"); slowest=$(python3 -c "print(max($slowest,$m))")
    done
    m=$(median "${together[@]}")
    echo "| sum of the three alone | ${sum} s |"
    echo "| all three in one run | ${m} s: $(python3 -c "print(round($m/$slowest,2))")× the slowest alone, $(python3 -c "print(round($m/$sum,2))")× the sum |"
}

# run_with NAME PREFIX... -- ARGS...: the CLI under /usr/bin/time, behind PREFIX; prints "wall_s rss_kib".
run_with() {
    local name="$1"; shift
    local -a prefix=()
    while [[ "$1" != "--" ]]; do prefix+=("$1"); shift; done
    shift
    /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "${prefix[@]}" "$CLI" --quiet --api-key "$KEY" --base-url "$URL" "$@" \
        >"$OUT/$name.out" 2>"$OUT/$name.err" || { cat "$OUT/$name.err" >&2; exit 1; }
    tail -n 1 "$OUT/$name.time"
}

concurrency "Three data types at once versus each alone: $RPD records a day each, 1 day in 6h windows, --state" 6h 2024-01-02
if command -v strace >/dev/null; then
    # A slow disk: fewer records (a tenth of a day), hourly windows, every fsync delayed.
    delay_us=$((FSYNC_DELAY_MS * 1000))
    concurrency "The same on a slow disk: every fsync/fdatasync delayed ${FSYNC_DELAY_MS} ms (strace fault injection), 2.4 h in 10-minute windows" \
        10m 2024-01-01T02:24:00Z \
        strace -f --seccomp-bpf -qq -o /dev/null -e trace=fsync,fdatasync -e "inject=fsync,fdatasync:delay_exit=$delay_us"
else
    echo
    echo "**strace is not installed: the slow-disk measurement did not run.**"
fi
