#!/usr/bin/env bash
# bench/incremental.sh: prints each incremental run's wall time and the CLI's request summary (about 5 minutes: it
# waits out the rate limit between runs). Debug binaries: the run is bound by the rate limit, not the CPU.
# Incremental run of 3 data types at Iterable's real limit (4 requests per rolling minute): the time field kept
# (one window per type) against the same run with --omit-fields createdAt (the look-back cut into its own windows,
# the code path every incremental run took before).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet -p iterable-export-cli -p iterable-export-mock --bins
B=target/debug
W="${TMPDIR:-/tmp}/bench-incremental"; rm -rf "$W"; mkdir -p "$W"
$B/iterable-export-mock --port 18411 --rate-limit 4 --rate-window 60s --records-per-day 1000 >/dev/null 2>&1 &
MOCK=$!; trap 'kill $MOCK' EXIT; sleep 1
run() { # NAME EXTRA... : first run over 2024-01-01..02, then incremental to 2024-01-02T06:00
  local name=$1; shift
  local common=(--data-type emailSend --data-type emailOpen --data-type customEvent --lookback 1h
    -o "$W/$name" --state "$W/$name.json" --api-key test-api-key --base-url http://127.0.0.1:18411/api "$@")
  $B/iterable-export export "${common[@]}" --start 2024-01-01 --end 2024-01-02 2>"$W/$name.first.err"
  sleep 61
  local t0=$SECONDS
  $B/iterable-export export "${common[@]}" --end 2024-01-02T06:00:00Z 2>"$W/$name.incr.err"
  echo "$name: incremental $((SECONDS - t0)) s, $(cat "$W/$name"/*.ndjson | wc -l) records in the outputs; $(grep -o 'total .*' "$W/$name.incr.err")"
  sleep 61
}
run time-field
run omit-createdAt --omit-fields createdAt
