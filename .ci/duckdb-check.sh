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

CHECK=duckdb TOOL=DuckDB PROBE=bin/python MOCK_SEED=11
# shellcheck source=check-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/check-lib.sh"
"$VENV/bin/python" -c 'import duckdb' || die "duckdb does not import from $VENV"

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
