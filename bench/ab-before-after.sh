#!/usr/bin/env bash
# A/B: the CLI before this session (fe97689) and now (HEAD), same mock, interleaved.
set -euo pipefail
# Build the "before" binary first, e.g. in a worktree of fe97689: cargo build --release -p iterable-export-cli
OLD=${OLD:-/tmp/benchwt/target/release/iterable-export}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEW=${NEW:-$ROOT/target/release/iterable-export}
MOCK=${MOCK:-$ROOT/target/release/iterable-export-mock}
OUT=/tmp/ab; rm -rf $OUT; mkdir -p $OUT
$MOCK --host 127.0.0.1 --port 0 --rate-limit 0 --seed 1 --api-key k --records-per-day 2000000 > $OUT/mock.out 2>/dev/null &
MP=$!; trap 'kill $MP' EXIT
for _ in $(seq 50); do URL=$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' $OUT/mock.out); [[ -n "$URL" ]] && break; sleep 0.1; done
for run in 1 2 3; do
  for fmt in csv ndjson; do
    for which in OLD NEW; do
      bin=${!which}; d=$OUT/$which-$fmt-$run; mkdir -p $d
      /usr/bin/time -f "%e %U %S %M" -o $d.time $bin --quiet --api-key k --base-url $URL export --data-type emailSend \
        --start 2024-01-01 --end 2024-01-02 --window 1d --requests-per-minute 600 --format $fmt --output $d
      echo "$which $fmt run$run $(cat $d.time)"
      rm -rf $d
    done
  done
done
