#!/usr/bin/env bash
# Parquet benchmark (issue 13), one run of each in one go:
#  1. the same emailSend NDJSON file (downloaded once from the mock) converted to Parquet by
#     `iterable-export convert`, DuckDB (COPY (SELECT * FROM read_json(…)) TO … (FORMAT parquet,
#     COMPRESSION zstd)) and pyarrow (pyarrow.json + pyarrow.parquet, zstd): wall, CPU, peak RSS,
#     output size, rows;
#  2. end to end from the mock: `export --format parquet` versus `export` (NDJSON);
#  3. memory flatness: `convert` of the first ~SMALL_MB MB versus the whole file.
#
#   bench/parquet.sh                         # 2,000,000 records (about 1.17 GB of NDJSON)
#   bench/parquet.sh --records-per-day N --small-mb M --out DIR
#
# Prints a Markdown table and the issue's ratios (convert vs DuckDB, export Parquet vs NDJSON), also in
# $OUT/table.md. Needs cargo, curl, python3 (venv), /usr/bin/time; installs bench/parquet-requirements.txt
# into target/parquet-bench-venv/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RPD=2000000
SMALL_MB=100
OUT="$ROOT/target/bench-parquet"
API_KEY="bench-api-key"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records-per-day) RPD="$2"; shift 2 ;;
        --small-mb) SMALL_MB="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "parquet.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
log() { printf '[parquet-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
for tool in curl python3 /usr/bin/time cargo; do
    command -v "$tool" >/dev/null || { echo "parquet.sh: $tool is required" >&2; exit 2; }
done

log "building release binaries"
cargo build --release --quiet -p iterable-export-cli -p iterable-export-mock --bins
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
CLI="$TARGET_DIR/release/iterable-export"
MOCK_BIN="$TARGET_DIR/release/iterable-export-mock"

VENV="$TARGET_DIR/parquet-bench-venv"
REQUIREMENTS="$ROOT/bench/parquet-requirements.txt"
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null; then
    log "installing $REQUIREMENTS into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
PY="$VENV/bin/python"

rm -rf "$OUT"
mkdir -p "$OUT/work"
WORK="$OUT/work"
TSV="$OUT/runs.tsv"
printf 'what\tinput_mb\twall_s\tcpu_s\trss_mib\toutput_mb\trows\n' >"$TSV"
MOCK_PID=""
cleanup() {
    [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$MOCK_BIN" --host 127.0.0.1 --port 0 --rate-limit 0 --seed 1 --api-key "$API_KEY" --records-per-day "$RPD" \
    >"$OUT/mock.out" 2>"$OUT/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do
    URL="$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' "$OUT/mock.out" | head -1)"
    [[ -n "$URL" ]] && break
    sleep 0.1
done
[[ -n "$URL" ]] || { echo "parquet.sh: the mock did not start" >&2; exit 1; }

# measure WHAT INPUT_BYTES CMD...: one run under /usr/bin/time; the output size and rows are
# filled in by the caller through OUT_BYTES and ROWS.
measure() {
    local what="$1" input="$2"; shift 2
    local rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" || rc=$?
    read -r M_WALL M_USER M_SYS M_RSS < <(tail -n 1 "$WORK/time")
    if ((rc != 0)); then
        log "$what failed (exit $rc): $(tail -c 400 "$WORK/cmd.err")"
        M_FAILED="failed: $(tail -n 1 "$WORK/cmd.err" | cut -c 1-120)"
    else
        M_FAILED=""
    fi
    M_WHAT="$what"; M_INPUT="$input"
}
record() { # OUTPUT_BYTES ROWS
    python3 - "$TSV" "$M_WHAT" "$M_INPUT" "$M_WALL" "$M_USER" "$M_SYS" "$M_RSS" "$1" "${M_FAILED:-$2}" <<'PY'
import sys
tsv, what, inp, wall, user, sys_, rss, out, rows = sys.argv[1:]
with open(tsv, "a") as f:
    f.write(f"{what}\t{int(inp)/1e6:.0f}\t{float(wall):.1f}\t{float(user)+float(sys_):.1f}\t{int(rss)/1024:.0f}\t{int(out)/1e6:.1f}\t{rows}\n")
PY
}
parquet_bytes() { find "$1" -name '*.parquet' ! -name '.*' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
parquet_rows() {
    "$PY" -c 'import sys, pyarrow.parquet as pq, glob; print(sum(pq.ParquetFile(f).metadata.num_rows for f in glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True)))' "$1"
}

START=2024-01-01; END=2024-01-02
Q="dataTypeName=emailSend&startDateTime=2024-01-01%2000:00:00&endDateTime=2024-01-02%2000:00:00"
log "downloading the NDJSON ($RPD records)"
curl -sS --fail -H "Api-Key: $API_KEY" -o "$WORK/emailSend.ndjson" "$URL/export/data.json?$Q"
BYTES="$(stat -c %s "$WORK/emailSend.ndjson")"; RECORDS="$(wc -l <"$WORK/emailSend.ndjson")"
log "input: $RECORDS records, $BYTES bytes"
# The first ~SMALL_MB MB, cut at a line.
head -c "$((SMALL_MB * 1000000))" "$WORK/emailSend.ndjson" | sed '$d' >"$WORK/small.ndjson"
SMALL_BYTES="$(stat -c %s "$WORK/small.ndjson")"

sync; log "convert (zstd)"
measure "iterable-export convert (zstd)" "$BYTES" "$CLI" convert --data-type emailSend --format parquet \
    "$WORK/emailSend.ndjson" -o "$WORK/ours"
record "$(parquet_bytes "$WORK/ours")" "$(parquet_rows "$WORK/ours")"
rm -rf "$WORK/ours"

sync; log "convert (snappy)"
measure "iterable-export convert (snappy)" "$BYTES" "$CLI" convert --data-type emailSend --format parquet \
    --compression snappy "$WORK/emailSend.ndjson" -o "$WORK/ours"
record "$(parquet_bytes "$WORK/ours")" "$(parquet_rows "$WORK/ours")"
rm -rf "$WORK/ours"

sync; log "convert, first $SMALL_MB MB"
measure "iterable-export convert (zstd), first $SMALL_MB MB" "$SMALL_BYTES" "$CLI" convert --data-type emailSend \
    --format parquet "$WORK/small.ndjson" -o "$WORK/ours"
record "$(parquet_bytes "$WORK/ours")" "$(parquet_rows "$WORK/ours")"
rm -rf "$WORK/ours"

sync; log "duckdb"
mkdir -p "$WORK/duckdb"
measure "DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)') COPY … (FORMAT parquet, COMPRESSION zstd)" "$BYTES" \
    "$PY" -c 'import duckdb, sys; duckdb.sql(f"COPY (SELECT * FROM read_json({sys.argv[1]!r})) TO {sys.argv[2]!r} (FORMAT parquet, COMPRESSION zstd)")' \
    "$WORK/emailSend.ndjson" "$WORK/duckdb/out.parquet"
record "$(parquet_bytes "$WORK/duckdb")" "$(parquet_rows "$WORK/duckdb")"
rm -rf "$WORK/duckdb"

sync; log "pyarrow"
mkdir -p "$WORK/pyarrow"
PYARROW="pyarrow $("$PY" -c 'import pyarrow; print(pyarrow.__version__)')"
measure "$PYARROW json.read_json + parquet.write_table (zstd)" "$BYTES" \
    "$PY" "$ROOT/bench/parquet_pyarrow.py" "$WORK/emailSend.ndjson" "$WORK/pyarrow/out.parquet"
if [[ -z "$M_FAILED" ]]; then record "$(parquet_bytes "$WORK/pyarrow")" "$(parquet_rows "$WORK/pyarrow")"; else record 0 0; fi
rm -rf "$WORK/pyarrow"
if [[ -n "$M_FAILED" ]]; then
    sync; log "pyarrow with consistent fields only"
    mkdir -p "$WORK/pyarrow"
    measure "$PYARROW, fields of mixed shapes (transactionalData, …) left out" "$BYTES" \
        "$PY" "$ROOT/bench/parquet_pyarrow.py" "$WORK/emailSend.ndjson" "$WORK/pyarrow/out.parquet" --consistent-only
    if [[ -z "$M_FAILED" ]]; then record "$(parquet_bytes "$WORK/pyarrow")" "$(parquet_rows "$WORK/pyarrow")"; else record 0 0; fi
    rm -rf "$WORK/pyarrow"
fi

rm -f "$WORK/emailSend.ndjson" "$WORK/small.ndjson"
EXPORT=(export --data-type emailSend --start "$START" --end "$END" --window 1d --quiet --api-key "$API_KEY"
    --base-url "$URL" --requests-per-minute 600)
sync; log "export NDJSON"
measure "iterable-export export (NDJSON), from the mock" "$BYTES" "$CLI" "${EXPORT[@]}" --output "$WORK/nd"
record "$(stat -c %s "$WORK/nd/emailSend.ndjson")" "$(wc -l <"$WORK/nd/emailSend.ndjson")"
rm -rf "$WORK/nd"
sync; log "export Parquet"
measure "iterable-export export --format parquet, from the mock" "$BYTES" "$CLI" "${EXPORT[@]}" --format parquet \
    --output "$WORK/pq"
record "$(parquet_bytes "$WORK/pq")" "$(parquet_rows "$WORK/pq")"
rm -rf "$WORK/pq"

python3 - "$TSV" "$OUT/table.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
lines = ["| what | input MB | wall s | CPU s | MB/s (wall) | peak RSS MiB | output MB | rows |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
for r in rows:
    rate = f"{float(r['input_mb']) / max(float(r['wall_s']), 1e-9):.0f}"
    lines.append(f"| {r['what']} | {r['input_mb']} | {r['wall_s']} | {r['cpu_s']} | {rate} | {r['rss_mib']} | {r['output_mb']} | {r['rows']} |")
# The issue's targets, from this run: convert's throughput against DuckDB's (>= 1), its file size against DuckDB's
# (<= 1.1), and the Parquet export's speed against the NDJSON export's (>= 0.5).
by = lambda prefix: next((r for r in rows if r["what"].startswith(prefix)), None)
ours, duck = by("iterable-export convert (zstd)"), by("DuckDB")
nd, pq = by("iterable-export export (NDJSON)"), by("iterable-export export --format parquet")
ratio = lambda a, b, key: float(a[key]) / max(float(b[key]), 1e-9)
lines.append("")
if ours and duck:
    lines.append(f"convert vs DuckDB: throughput {ratio(duck, ours, 'wall_s'):.2f} x, CPU {ratio(ours, duck, 'cpu_s'):.2f} x, "
                 f"file size {ratio(ours, duck, 'output_mb'):.2f} x")
if nd and pq:
    lines.append(f"export --format parquet vs NDJSON: speed {ratio(nd, pq, 'wall_s'):.2f} x, CPU {ratio(pq, nd, 'cpu_s'):.2f} x")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
