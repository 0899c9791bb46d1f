#!/usr/bin/env bash
# Singer benchmark: records per second of `iterable-export singer | target-jsonl` against
# `tap-iterable | target-jsonl`, on the same emailSend data from the mock (records from
# yesterday 00:00 UTC to now: tap-iterable has no end date). Also each tap alone into /dev/null,
# and each tap's peak resident memory.
#
#   bench/singer.sh                      # 50,000 records, 3 runs
#   bench/singer.sh --records 100000 --runs 1
#
# Needs cargo, python3 (with venv), /usr/bin/time. Installs target-jsonl (pinned:
# .ci/singer-requirements.txt) into target/singer-venv/ and tap-iterable 1.0.1 into
# target/bench-venv/tap/ (as bench/e2e.sh does) on the first run. tap-iterable has no base-URL
# setting: bench/shim/sitecustomize.py redirects its requests to the mock, and bench/shim/run_tap.py
# works around its crash on an object `transactionalData`. Everything listens on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RECORDS=50000
RUNS=3
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "singer.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { printf '[singer-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cargo build --release --quiet -p iterable-export-cli -p iterable-export-mock --bins
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
TAP="$TARGET_DIR/release/iterable-export"
MOCK_BIN="$TARGET_DIR/release/iterable-export-mock"

TARGET_VENV="$TARGET_DIR/singer-venv"
if ! cmp -s .ci/singer-requirements.txt "$TARGET_VENV/requirements.txt" 2>/dev/null; then
    log "installing target-jsonl into $TARGET_VENV"
    rm -rf "$TARGET_VENV"
    python3 -m venv "$TARGET_VENV"
    "$TARGET_VENV/bin/pip" install -q --disable-pip-version-check -r .ci/singer-requirements.txt
    cp .ci/singer-requirements.txt "$TARGET_VENV/requirements.txt"
fi
TAP_VENV="$TARGET_DIR/bench-venv/tap"
if [[ ! -x "$TAP_VENV/bin/tap-iterable" ]]; then
    log "installing tap-iterable==1.0.1 into $TAP_VENV"
    python3 -m venv "$TAP_VENV"
    "$TAP_VENV/bin/pip" install -q --disable-pip-version-check tap-iterable==1.0.1
fi

WORK="$(mktemp -d)"
MOCK_PID=""
cleanup() {
    [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

KEY="bench-api-key"
YESTERDAY="$(date -u -d yesterday +%F)"
NOW_S="$(date -u +%s)"; MIDNIGHT_Y="$(date -u -d "$YESTERDAY" +%s)"
# Records per day such that [yesterday 00:00, now) holds about RECORDS records.
RPD=$(( RECORDS * 86400 / (NOW_S - MIDNIGHT_Y) + 1 ))
"$MOCK_BIN" --host 127.0.0.1 --port 0 --rate-limit 0 --seed 1 --api-key "$KEY" --records-per-day "$RPD" \
    --data-start "$YESTERDAY" >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do
    MOCK_URL="$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' "$WORK/mock.out" | head -1)"
    [[ -n "$MOCK_URL" ]] && break
    sleep 0.1
done
[[ -n "$MOCK_URL" ]] || { cat "$WORK/mock.err" >&2; exit 1; }
log "mock at $MOCK_URL: emailSend from $YESTERDAY, $RPD records/day"

# Our tap: the catalog from --discover with email_send selected.
printf '{"api_key":"%s","start_date":"%sT00:00:00Z","base_url":"%s","requests_per_minute":6000}\n' \
    "$KEY" "$YESTERDAY" "$MOCK_URL" >"$WORK/ours.json"
"$TAP" singer --config "$WORK/ours.json" --discover >"$WORK/ours-discovered.json"
# tap-iterable: its own discovery, through the shim.
printf '{"api_key":"%s","start_date":"%sT00:00:00Z"}\n' "$KEY" "$YESTERDAY" >"$WORK/theirs.json"
export BENCH_MOCK_URL="${MOCK_URL%/api}" TZ=UTC
PYTHONPATH="$ROOT/bench/shim" "$TAP_VENV/bin/tap-iterable" --config "$WORK/theirs.json" --discover \
    >"$WORK/theirs-discovered.json" 2>"$WORK/theirs-discover.err"
for side in ours theirs; do
    python3 - "$WORK/$side-discovered.json" "$WORK/$side-catalog.json" <<'EOF'
import json, sys
catalog = json.load(open(sys.argv[1]))
catalog["streams"] = [s for s in catalog["streams"] if s["tap_stream_id"] == "email_send"]
for stream in catalog["streams"]:
    for entry in stream["metadata"]:
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = True
json.dump(catalog, open(sys.argv[2], "w"))
EOF
done
printf '{"destination_path": "%s/out", "do_timestamp_file": false}\n' "$WORK" >"$WORK/target.json"

# The two taps as commands (so that /usr/bin/time measures each tap on its own).
printf '#!/bin/sh\nexec "%s" singer --config "%s" --catalog "%s"\n' "$TAP" "$WORK/ours.json" "$WORK/ours-catalog.json" \
    >"$WORK/ours.sh"
printf '#!/bin/sh\nPYTHONPATH="%s" exec "%s" "%s" --config "%s" --catalog "%s"\n' "$ROOT/bench/shim" "$TAP_VENV/bin/python" \
    "$ROOT/bench/shim/run_tap.py" "$WORK/theirs.json" "$WORK/theirs-catalog.json" >"$WORK/theirs.sh"
chmod +x "$WORK/ours.sh" "$WORK/theirs.sh"

# run NAME TAP MODE (TAP: ours or theirs): MODE "target" pipes into target-jsonl, "alone" into /dev/null.
# Prints: name mode wall_s records records_per_s tap_peak_rss_mib
run() {
    local name="$1" tap="$2" mode="$3"
    rm -rf "$WORK/out"
    local start end records
    start="$(date +%s.%N)"
    if [[ "$mode" == target ]]; then
        /usr/bin/time -f '%M' -o "$WORK/rss" "$WORK/$tap.sh" 2>"$WORK/$tap.err" \
            | "$TARGET_VENV/bin/target-jsonl" --config "$WORK/target.json" >/dev/null 2>"$WORK/target.err"
        records="$(wc -l <"$WORK/out/email_send.jsonl")"
    else
        /usr/bin/time -f '%M' -o "$WORK/rss" "$WORK/$tap.sh" 2>"$WORK/$tap.err" \
            | grep -c '"type": *"RECORD"' >"$WORK/count" || true
        records="$(cat "$WORK/count")"
    fi
    end="$(date +%s.%N)"
    python3 -c "import sys; n,s,e,m,name,mode=sys.argv[1:]; w=float(e)-float(s); print(f'{name}\t{mode}\t{w:.2f}\t{n}\t{int(n)/w:.0f}\t{int(m)/1024:.1f}')" \
        "$records" "$start" "$end" "$(tail -n 1 "$WORK/rss")" "$name" "$mode"
}

printf 'tool\tmode\twall_s\trecords\trecords_per_s\ttap_peak_rss_mib\n'
for i in $(seq "$RUNS"); do
    run "iterable-export singer" ours target
    run "tap-iterable 1.0.1" theirs target
    run "iterable-export singer" ours alone
    run "tap-iterable 1.0.1" theirs alone
done
