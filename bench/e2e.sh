#!/usr/bin/env bash
# End-to-end export benchmark: the same emailSend export from the mock server, one tool after
# another in one run — curl, our CLI (NDJSON and CSV), the `decode_events` example (ndjson() into
# Event), and the Python connectors airbyte-source-iterable and tap-iterable.
#
#   bench/e2e.sh                          # headline: 1 day x 2,000,000 emailSend ≈ 1.17 GB, 3 runs
#   bench/e2e.sh --quick                  # a smoke test: 200,000 records, 1 run, small Python runs
#   bench/e2e.sh --records-per-day 2000000 --days 1 --runs 3 --py-records 100000 [--skip-python]
#
# Prints a Markdown table (also written to $OUT/table.md; raw measurements in $OUT/runs.tsv).
# Needs: cargo, curl, python3 (with venv), /usr/bin/time; installs the Python tools from PyPI
# into target/bench-venv/ on the first run. Everything listens on 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RPD=2000000
DAYS=1
RUNS=3
PY_RECORDS=100000
SMALL_MB=100
SKIP_PYTHON=0
OUT="$ROOT/target/bench-e2e"
API_KEY="bench-api-key"
START_DAY="2024-01-01"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records-per-day) RPD="$2"; shift 2 ;;
        --days) DAYS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --py-records) PY_RECORDS="$2"; shift 2 ;;
        --small-mb) SMALL_MB="$2"; shift 2 ;;
        --skip-python) SKIP_PYTHON=1; shift ;;
        --out) OUT="$2"; shift 2 ;;
        --quick) RPD=200000; RUNS=1; PY_RECORDS=5000; SMALL_MB=20; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "e2e.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

log() { printf '[e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

for tool in curl python3 /usr/bin/time cargo; do
    command -v "$tool" >/dev/null || { echo "e2e.sh: $tool is required" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------------
# Build
log "building release binaries"
# Two commands: with --example, cargo builds only the named targets, not the binaries.
cargo build --release --quiet -p iterable-export-cli -p iterable-export-mock --bins
cargo build --release --quiet -p iterable-export --example decode_events
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
BIN="$TARGET_DIR/release"
MOCK_BIN="$BIN/iterable-export-mock"
CLI_BIN="$BIN/iterable-export"
DECODE_BIN="$BIN/examples/decode_events"

rm -rf "$OUT"
mkdir -p "$OUT"
WORK="$OUT/work"
mkdir -p "$WORK"
RUNS_TSV="$OUT/runs.tsv"
printf 'tool\trun\twall_s\tuser_s\tsys_s\trss_kib\trecords\tbytes\texpected\tmock_cpu_s\tgroup\n' >"$RUNS_TSV"

MOCK_PIDS=()
cleanup() {
    for pid in "${MOCK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_mock NAME ARGS... : starts a mock on a free loopback port; sets MOCK_URL (…/api), MOCK_PID.
start_mock() {
    local name="$1"; shift
    local outf="$OUT/mock-$name.out"
    "$MOCK_BIN" --host 127.0.0.1 --port 0 --rate-limit 0 --seed 1 --api-key "$API_KEY" "$@" \
        >"$outf" 2>"$OUT/mock-$name.err" &
    MOCK_PID=$!
    MOCK_PIDS+=("$MOCK_PID")
    for _ in $(seq 100); do
        MOCK_URL="$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' "$outf" | head -1)"
        [[ -n "$MOCK_URL" ]] && return 0
        sleep 0.1
    done
    echo "e2e.sh: mock $name did not start" >&2; cat "$OUT/mock-$name.err" >&2; exit 1
}

# CPU seconds (user+system) the process has used so far.
cpu_of() {
    python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); t=os.sysconf("SC_CLK_TCK"); print((int(f[11])+int(f[12]))/t)' "$1"
}

# measure CMD...: runs CMD under /usr/bin/time; sets M_WALL, M_USER, M_SYS, M_RSS (KiB) and
# M_MOCK_CPU (CPU seconds the mock used meanwhile); record_result then logs them.
measure() {
    local tf="$WORK/time"
    local before after
    before="$(cpu_of "$MOCK_PID")"
    local rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" || rc=$?
    after="$(cpu_of "$MOCK_PID")"
    # (time writes "Command exited with non-zero status N" first when the command fails)
    read -r M_WALL M_USER M_SYS M_RSS < <(tail -n 1 "$tf")
    M_MOCK_CPU="$(python3 -c "print(round($after-$before,2))")"
    return "$rc"
}
record_result() { # TOOL RUN RECORDS BYTES EXPECTED GROUP
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$M_WALL" "$M_USER" "$M_SYS" "$M_RSS" \
        "$3" "$4" "$5" "$M_MOCK_CPU" "$6" >>"$RUNS_TSV"
    if [[ "$3" != "$5" ]]; then
        log "COUNT MISMATCH: $1 run $2 exported $3 records, expected $5"
    fi
}
lines() { wc -l <"$1" | tr -d ' '; }
size() { stat -c %s "$1"; }
urlq() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# ---------------------------------------------------------------------------------------------
# Our tools and curl, on a >= 1 GB export
END_DAY="$(date -u -d "$START_DAY + $DAYS days" +%F)"
start_mock big --records-per-day "$RPD"
BIG_URL="$MOCK_URL"; BIG_PID="$MOCK_PID"
log "mock (big) at $BIG_URL: emailSend $START_DAY..$END_DAY, $RPD records/day"
Q="dataTypeName=emailSend&startDateTime=$(urlq "$START_DAY 00:00:00")&endDateTime=$(urlq "$END_DAY 00:00:00")"
JSON_URL="$BIG_URL/export/data.json?$Q"
CSV_URL="$BIG_URL/export/data.csv?$Q"
CLI_ARGS=(export --data-type emailSend --start "$START_DAY" --end "$END_DAY" --window "${DAYS}d" --quiet
    --api-key "$API_KEY" --base-url "$BIG_URL" --requests-per-minute 600)

EXPECTED=""; NDJSON_BYTES=""; CSV_BYTES=""
for run in $(seq "$RUNS"); do
    log "run $run/$RUNS"
    rm -f "$WORK"/*.ndjson "$WORK"/*.csv

    MOCK_PID="$BIG_PID"
    measure curl -sS --fail -H "Api-Key: $API_KEY" -o "$WORK/curl.ndjson" "$JSON_URL"
    n="$(lines "$WORK/curl.ndjson")"; b="$(size "$WORK/curl.ndjson")"
    if [[ -z "$EXPECTED" ]]; then EXPECTED="$n"; NDJSON_BYTES="$b"; fi
    [[ "$b" == "$NDJSON_BYTES" ]] || log "curl NDJSON size changed between runs: $b vs $NDJSON_BYTES"
    record_result "curl -o FILE" "$run" "$n" "$b" "$EXPECTED" big
    rm -f "$WORK/curl.ndjson"

    measure curl -sS --fail -H "Api-Key: $API_KEY" -o /dev/null -w '%{size_download}\n' "$JSON_URL" >"$WORK/sz"
    record_result "curl -o /dev/null" "$run" "$EXPECTED" "$(cat "$WORK/sz")" "$EXPECTED" big

    measure sh -c 'curl -sS --fail -H "Api-Key: $1" -o "$2" "$3" && sync "$2"' sh "$API_KEY" "$WORK/curlsync.ndjson" "$JSON_URL"
    record_result "curl -o FILE && sync FILE" "$run" "$(lines "$WORK/curlsync.ndjson")" "$(size "$WORK/curlsync.ndjson")" "$EXPECTED" big
    rm -f "$WORK/curlsync.ndjson"

    rm -rf "$WORK/cli"
    measure "$CLI_BIN" "${CLI_ARGS[@]}" --output "$WORK/cli"
    f="$WORK/cli/emailSend.ndjson"
    n="$(lines "$f")"
    if [[ "$run" == 1 ]]; then
        uniq_ids="$(LC_ALL=C grep -o '"recordId":"[^"]*"' "$f" | LC_ALL=C sort -u -S 256M | wc -l | tr -d ' ')"
        [[ "$uniq_ids" == "$EXPECTED" ]] || log "CLI NDJSON: $uniq_ids distinct recordIds, expected $EXPECTED"
        echo "$uniq_ids" >"$OUT/cli-distinct-record-ids"
    fi
    record_result "iterable-export (NDJSON)" "$run" "$n" "$(size "$f")" "$EXPECTED" big
    rm -rf "$WORK/cli"

    # The same without the CLI's fsync (eatmydata turns fsync/fdatasync into no-ops), to show
    # what the durability costs; only when eatmydata is installed (Debian: apt-get install eatmydata).
    if command -v eatmydata >/dev/null; then
        measure eatmydata "$CLI_BIN" "${CLI_ARGS[@]}" --output "$WORK/cli"
        f="$WORK/cli/emailSend.ndjson"
        record_result "iterable-export (NDJSON), no fsync (eatmydata)" "$run" "$(lines "$f")" "$(size "$f")" "$EXPECTED" big
        rm -rf "$WORK/cli"
    fi

    measure curl -sS --fail -H "Api-Key: $API_KEY" -o "$WORK/curl.csv" "$CSV_URL"
    # CSV: a header line, then one line per record (the mock quotes no newlines into cells).
    n=$(( $(lines "$WORK/curl.csv") - 1 )); b="$(size "$WORK/curl.csv")"
    [[ -n "$CSV_BYTES" ]] || CSV_BYTES="$b"
    record_result "curl -o FILE (CSV)" "$run" "$n" "$b" "$EXPECTED" big
    rm -f "$WORK/curl.csv"

    rm -rf "$WORK/clicsv"
    measure "$CLI_BIN" "${CLI_ARGS[@]}" --format csv --output "$WORK/clicsv"
    f="$WORK/clicsv/emailSend.csv"
    record_result "iterable-export (CSV)" "$run" "$(( $(lines "$f") - 1 ))" "$(size "$f")" "$EXPECTED" big
    rm -rf "$WORK/clicsv"

    measure "$DECODE_BIN" --base-url "$BIG_URL" --api-key "$API_KEY" --data-type emailSend \
        --start "$START_DAY" --end "$END_DAY" >"$WORK/decode.out"
    n="$(sed -n 's/^records=\([0-9]*\).*/\1/p' "$WORK/decode.out")"
    record_result "decode_events (ndjson() → Event)" "$run" "$n" "$NDJSON_BYTES" "$EXPECTED" big
done

# The same CLI and curl on a ~100 MB window (the first hours of the first day) for the RSS
# comparison.
SMALL_SECS=$(( 86400 * DAYS * SMALL_MB * 1000000 / NDJSON_BYTES / 60 * 60 ))
SMALL_END="$(date -u -d "$START_DAY 00:00:00 UTC + $SMALL_SECS seconds" +%FT%TZ)"
SQ="dataTypeName=emailSend&startDateTime=$(urlq "$START_DAY 00:00:00")&endDateTime=$(urlq "$(date -u -d "$SMALL_END" '+%F %T')")"
SMALL_EXPECTED=""
for run in $(seq "$RUNS"); do
    log "small (~$SMALL_MB MB) run $run/$RUNS: $START_DAY..$SMALL_END"
    measure curl -sS --fail -H "Api-Key: $API_KEY" -o "$WORK/small.ndjson" "$BIG_URL/export/data.json?$SQ"
    n="$(lines "$WORK/small.ndjson")"; [[ -n "$SMALL_EXPECTED" ]] || { SMALL_EXPECTED="$n"; SMALL_BYTES="$(size "$WORK/small.ndjson")"; }
    record_result "curl -o FILE" "$run" "$n" "$(size "$WORK/small.ndjson")" "$SMALL_EXPECTED" small
    rm -f "$WORK/small.ndjson"
    rm -rf "$WORK/clismall"
    measure "$CLI_BIN" export --data-type emailSend --start "${START_DAY}T00:00:00Z" --end "$SMALL_END" \
        --window "${DAYS}d" --quiet --api-key "$API_KEY" --base-url "$BIG_URL" --requests-per-minute 600 \
        --output "$WORK/clismall"
    f="$WORK/clismall/emailSend.ndjson"
    record_result "iterable-export (NDJSON)" "$run" "$(lines "$f")" "$(size "$f")" "$SMALL_EXPECTED" small
    rm -rf "$WORK/clismall"
done
kill "$BIG_PID" 2>/dev/null || true

# ---------------------------------------------------------------------------------------------
# The Python connectors, each on its own mock sized for ~PY_RECORDS records
# count_windows URL_LOG: sums the records and bytes the mock serves for the logged URLs.
count_windows() {
    local n=0 b=0 url
    while read -r url; do
        [[ "$url" == *"/export/data.json"* ]] || continue
        curl -sS --fail -H "Api-Key: $API_KEY" -o "$WORK/win.ndjson" "$url"
        n=$(( n + $(lines "$WORK/win.ndjson") )); b=$(( b + $(size "$WORK/win.ndjson") ))
    done <"$1"
    rm -f "$WORK/win.ndjson"
    echo "$n $b"
}

if [[ "$SKIP_PYTHON" == 0 ]]; then
    VENV="$TARGET_DIR/bench-venv"
    mkdir -p "$VENV"
    if [[ ! -x "$VENV/airbyte/bin/source-iterable" ]]; then
        log "installing airbyte-source-iterable==1.0.1 into $VENV/airbyte"
        python3 -m venv "$VENV/airbyte"
        "$VENV/airbyte/bin/pip" install -q --disable-pip-version-check airbyte-source-iterable==1.0.1
    fi
    if [[ ! -x "$VENV/tap/bin/tap-iterable" ]]; then
        log "installing tap-iterable==1.0.1 into $VENV/tap"
        python3 -m venv "$VENV/tap"
        "$VENV/tap/bin/pip" install -q --disable-pip-version-check tap-iterable==1.0.1
    fi
    SHIM="$ROOT/bench/shim"
    YESTERDAY="$(date -u -d yesterday +%F)"
    TODAY="$(date -u +%F)"

    # airbyte-source-iterable: its (integration-test) end_date config fixes the window to
    # [yesterday, today); the mock has PY_RECORDS records per day from yesterday on.
    start_mock airbyte --records-per-day "$PY_RECORDS" --data-start "$YESTERDAY"
    log "airbyte-source-iterable against $MOCK_URL ($YESTERDAY..$TODAY)"
    AB="$WORK/airbyte"; mkdir -p "$AB"
    printf '{"api_key":"%s","start_date":"%sT00:00:00Z","end_date":"%sT00:00:00Z"}\n' "$API_KEY" "$YESTERDAY" "$TODAY" >"$AB/config.json"
    cat >"$AB/catalog.json" <<'EOF'
{"streams":[{"stream":{"name":"email_send","json_schema":{},"supported_sync_modes":["full_refresh","incremental"]},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}
EOF
    rm -f "$AB/urls"
    export PYTHONPATH="$SHIM" BENCH_MOCK_URL="${MOCK_URL%/api}" BENCH_URL_LOG="$AB/urls"
    measure "$VENV/airbyte/bin/source-iterable" read --config "$AB/config.json" --catalog "$AB/catalog.json" \
        >"$AB/out.jsonl" 2>"$OUT/airbyte.err" || log "airbyte-source-iterable failed: see $OUT/airbyte.err"
    unset PYTHONPATH BENCH_MOCK_URL BENCH_URL_LOG
    n="$(grep -c '^{"type":"RECORD","record":{"namespace":null,"stream":"email_send"\|^{"type":"RECORD","record":{"stream":"email_send"' "$AB/out.jsonl" || true)"
    cp "$AB/urls" "$OUT/airbyte.urls" 2>/dev/null || true
    read -r exp b < <(count_windows "$AB/urls")
    record_result "airbyte-source-iterable 1.0.1" 1 "$n" "$b" "$exp" python
    rm -f "$AB/out.jsonl"

    # tap-iterable: no end date, its window always ends now; the mock has data from yesterday
    # on, sized so that [yesterday 00:00, now) holds about PY_RECORDS records.
    NOW_S="$(date -u +%s)"; MIDNIGHT_Y="$(date -u -d "$YESTERDAY" +%s)"
    TAP_RPD=$(( PY_RECORDS * 86400 / (NOW_S - MIDNIGHT_Y) + 1 ))
    start_mock tap --records-per-day "$TAP_RPD" --data-start "$YESTERDAY"
    log "tap-iterable against $MOCK_URL ($YESTERDAY..now, $TAP_RPD records/day)"
    TP="$WORK/tap"; mkdir -p "$TP"
    printf '{"api_key":"%s","start_date":"%sT00:00:00Z"}\n' "$API_KEY" "$YESTERDAY" >"$TP/config.json"
    export PYTHONPATH="$SHIM" BENCH_MOCK_URL="${MOCK_URL%/api}" BENCH_URL_LOG="$TP/disc.urls" TZ=UTC
    "$VENV/tap/bin/tap-iterable" --config "$TP/config.json" --discover >"$TP/discovered.json" 2>"$OUT/tap-discover.err"
    python3 - "$TP/discovered.json" "$TP/catalog.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["streams"] = [s for s in c["streams"] if s["tap_stream_id"] == "email_send"]
for s in c["streams"]:
    for m in s["metadata"]:
        if m["breadcrumb"] == []:
            m["metadata"]["selected"] = True
json.dump(c, open(sys.argv[2], "w"))
EOF
    rm -f "$TP/urls"
    export BENCH_URL_LOG="$TP/urls"
    measure "$VENV/tap/bin/python" "$SHIM/run_tap.py" --config "$TP/config.json" --catalog "$TP/catalog.json" \
        >"$TP/out.jsonl" 2>"$OUT/tap.err" || log "tap-iterable failed: see $OUT/tap.err"
    unset PYTHONPATH BENCH_MOCK_URL BENCH_URL_LOG TZ
    n="$(grep -c '^{"type": "RECORD", "stream": "email_send"' "$TP/out.jsonl" || true)"
    cp "$TP/urls" "$OUT/tap.urls" 2>/dev/null || true
    read -r exp b < <(count_windows "$TP/urls")
    record_result "tap-iterable 1.0.1" 1 "$n" "$b" "$exp" python
    rm -f "$TP/out.jsonl"
fi

# ---------------------------------------------------------------------------------------------
{
    echo "Command: \`bench/e2e.sh --records-per-day $RPD --days $DAYS --runs $RUNS --py-records $PY_RECORDS --small-mb $SMALL_MB$([[ $SKIP_PYTHON == 1 ]] && echo ' --skip-python')\`"
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load average before the report: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "Date: $(date -u '+%F %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (with uncommitted changes in crates/)')"
    echo
    python3 "$ROOT/bench/report.py" "$RUNS_TSV"
} | tee "$OUT/table.md"
