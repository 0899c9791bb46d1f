#!/usr/bin/env bash
# `export --format parquet` read by DuckDB (the `duckdb` Python package pinned in
# .ci/duckdb-requirements.txt, installed into target/duckdb-venv/), against the mock binary:
# an export of emailSend and user killed (SIGKILL) in the middle of its first window, then
# resumed; DuckDB must then read, per file, count(*) = count(DISTINCT messageId) (users: email),
# and per dt partition the count and the typed createdAt (profileUpdatedAt) range of exactly what
# the mock served, and nothing visible may be left of the killed window.
#
#   .ci/duckdb-check.sh            # builds the debug binaries if needed; called by .ci/run
#
# Fails (non-zero, saying why) when python3 or the virtual environment is missing: it never
# passes without having run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[duckdb-check] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed: this check needs it for DuckDB (apt-get install python3 python3-venv)"

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
VENV="$TARGET_DIR/duckdb-venv"
REQUIREMENTS="$ROOT/.ci/duckdb-requirements.txt"
# Reinstalled whenever the pinned requirements change.
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null || [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $(grep -c '==' "$REQUIREMENTS") pinned packages"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a virtual environment at $VENV (apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" \
        || die "cannot install $REQUIREMENTS into $VENV (is PyPI reachable?)"
    cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
"$VENV/bin/python" -c 'import duckdb' || die "duckdb does not import from $VENV"

cargo build --quiet -p iterable-export-cli -p iterable-export-mock --bins
CLI="$TARGET_DIR/debug/iterable-export"
MOCK_BIN="$TARGET_DIR/debug/iterable-export-mock"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

KEY="duckdb-check-key"
# start_mock NAME ARGS...: a mock on a free loopback port; sets MOCK_URL (…/api).
start_mock() {
    local name="$1"; shift
    "$MOCK_BIN" --host 127.0.0.1 --port 0 --rate-limit 0 --seed 11 --records-per-day 3000 --api-key "$KEY" "$@" \
        >"$WORK/mock-$name.out" 2>"$WORK/mock-$name.err" &
    PIDS+=("$!")
    for _ in $(seq 100); do
        MOCK_URL="$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' "$WORK/mock-$name.out" | head -1)"
        [[ -n "$MOCK_URL" ]] && return 0
        sleep 0.1
    done
    cat "$WORK/mock-$name.err" >&2
    die "the mock $name did not start"
}

start_mock plain
PLAIN_URL="$MOCK_URL"
# Every body stalls for a minute after 400 kB: the export is killed in the first window's stall (whether the
# window's temporary file was started then depends on its decoders; the library's tests cover its removal).
start_mock stalling --fault stall:400000:60s:1000
STALLING_URL="$MOCK_URL"

LAKE="$WORK/lake"
START=2024-01-01T12:00:00Z
END=2024-01-04T00:00:00Z
EXPORT=(export --data-type emailSend --data-type user --format parquet --start "$START" --end "$END"
    --window 1d --max-window 1d --requests-per-minute 6000 --output "$LAKE" --state "$LAKE/state.json")

# A simple command in the background: its PID is the CLI's own (env execs it).
env ITERABLE_API_KEY="$KEY" ITERABLE_BASE_URL="$STALLING_URL" "$CLI" "${EXPORT[@]}" >"$WORK/killed.out" 2>"$WORK/killed.err" &
EXPORT_PID=$!
for _ in $(seq 300); do
    [[ -e "$LAKE/emailSend/_lock" && -e "$LAKE/user/_lock" ]] && break
    kill -0 "$EXPORT_PID" 2>/dev/null || { cat "$WORK/killed.err" >&2; die "the export ended before it was killed"; }
    sleep 0.1
done
[[ -e "$LAKE/emailSend/_lock" ]] || die "the export never opened its output"
# Both data types' first bodies are then held in their one-minute stall after 400 kB.
sleep 3
kill -0 "$EXPORT_PID" 2>/dev/null || { cat "$WORK/killed.err" >&2; die "the export ended before it was killed"; }
kill -KILL "$EXPORT_PID"
wait "$EXPORT_PID" 2>/dev/null || true
visible="$(find "$LAKE" -name '*.parquet' ! -name '.*')"
[[ -z "$visible" ]] || die "the killed export left visible files: $visible"
log "killed in its first window: $(find "$LAKE" -name '.part-*.tmp' | wc -l) temporary file(s), nothing visible"

env ITERABLE_API_KEY="$KEY" ITERABLE_BASE_URL="$PLAIN_URL" "$CLI" "${EXPORT[@]}" >"$WORK/resumed.out" 2>"$WORK/resumed.err" \
    || { cat "$WORK/resumed.err" >&2; die "the resumed export failed"; }
leftover="$(find "$LAKE" -name '.part-*.tmp')"
[[ -z "$leftover" ]] || die "temporary files left after the resumed export: $leftover"

"$VENV/bin/python" "$ROOT/.ci/duckdb_check.py" "$PLAIN_URL" "$KEY" "$START" "$END" "$LAKE" \
    emailSend:messageId:createdAt user:email:profileUpdatedAt \
    || die "DuckDB's reading of the Parquet files differs from what the mock served"
log "ok: DuckDB reads exactly the served records, each once, in their day's partition, after a killed and resumed export"
