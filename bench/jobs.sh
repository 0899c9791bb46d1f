#!/usr/bin/env bash
# Export jobs benchmark: one emailSend export of >= 1 GB from the mock, in one run —
#   1. curl of /export/data.json (the bytes, nothing else),
#   2. iterable-export streaming data.json (the default, --via data-json),
#   3. iterable-export --via jobs (the job's files downloaded 4 at a time, while the job runs, into
#      a spool of 32 files; and with --spool-files 128, the whole job, when the binary has it),
#   4. the same job driven by a script: its preparation time (POST /export/start until the job is
#      completed and every file listed, at the API's 1 request per second) reported apart from
#      the transfer of its files (4 parallel downloads, as raw bytes).
# Every output is compared byte for byte with curl's data.json body.
#
#   bench/jobs.sh                                  # 1 day x 2,000,000 emailSend ≈ 1.17 GB
#   bench/jobs.sh --records-per-day 200000         # a smoke test (≈ 117 MB)
#
# Prints a Markdown table (also in $OUT/table.md). Needs cargo, curl, python3, /usr/bin/time.
# The mock runs with its default job settings (files of at most 10 MB, one new file per 100 ms
# while a job runs, at least 2 s per job, 1 start-or-files request per second). Loopback only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RPD=2000000
OUT="$ROOT/target/bench-jobs"
API_KEY="bench-api-key"
DAY="2024-01-01"
NEXT="2024-01-02"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records-per-day) RPD="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "jobs.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
log() { printf '[jobs %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
for tool in curl python3 /usr/bin/time cargo cmp; do
    command -v "$tool" >/dev/null || { echo "jobs.sh: $tool is required" >&2; exit 2; }
done

log "building release binaries"
cargo build --release --quiet -p iterable-export-cli -p iterable-export-mock --bins
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
MOCK_BIN="$TARGET_DIR/release/iterable-export-mock"
CLI_BIN="$TARGET_DIR/release/iterable-export"

rm -rf "$OUT"
mkdir -p "$OUT/work"
WORK="$OUT/work"
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
URL=""
for _ in $(seq 100); do
    URL="$(sed -n 's/^iterable-export-mock listening on \(http[^ ]*\)$/\1/p' "$OUT/mock.out" | head -1)"
    [[ -n "$URL" ]] && break
    sleep 0.1
done
[[ -n "$URL" ]] || { echo "jobs.sh: the mock did not start" >&2; cat "$OUT/mock.err" >&2; exit 1; }
log "mock at $URL: emailSend $DAY..$NEXT, $RPD records"

TSV="$OUT/runs.tsv"
printf 'what\twall_s\tuser_s\tsys_s\trss_kib\tbytes\tsame_bytes\n' >"$TSV"
measure() { # NAME OUTPUT_FILE CMD...
    local name="$1" file="$2"; shift 2
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@"
    read -r wall user sys rss < <(tail -n 1 "$WORK/time")
    local bytes same=reference
    bytes="$(stat -c %s "$file")"
    if [[ "$file" != "$REFERENCE" ]]; then
        if cmp -s "$file" "$REFERENCE"; then same=yes; else same=NO; fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$wall" "$user" "$sys" "$rss" "$bytes" "$same" >>"$TSV"
    log "$name: ${wall}s, $bytes bytes, same bytes: $same"
}

Q="dataTypeName=emailSend&startDateTime=$DAY%2000%3A00%3A00&endDateTime=$NEXT%2000%3A00%3A00"
REFERENCE="$WORK/curl.ndjson"
measure "curl data.json" "$REFERENCE" curl -sS --fail -H "Api-Key: $API_KEY" -o "$REFERENCE" "$URL/export/data.json?$Q"

CLI=("$CLI_BIN" export --data-type emailSend --start "$DAY" --end "$NEXT" --quiet
    --lookback 0s --api-key "$API_KEY" --base-url "$URL" --requests-per-minute 600)
ONE=(--window 1d --max-window 1d)
measure "iterable-export (data.json streaming)" "$WORK/stream/emailSend.ndjson" "${CLI[@]}" "${ONE[@]}" --output "$WORK/stream"
rm -rf "$WORK/stream"
measure "iterable-export --via jobs (4 downloads)" "$WORK/jobs/emailSend.ndjson" "${CLI[@]}" "${ONE[@]}" --via jobs --output "$WORK/jobs"
rm -rf "$WORK/jobs"
if "$CLI_BIN" export --help | grep -q -- --spool-files; then
    measure "iterable-export --via jobs --spool-files 128" "$WORK/jobs128/emailSend.ndjson" "${CLI[@]}" "${ONE[@]}" --via jobs \
        --spool-files 128 --output "$WORK/jobs128"
    rm -rf "$WORK/jobs128"
fi

# Four 6-hour windows: four jobs, prepared at once (3 started ahead of the one downloading).
# Compared with the streaming export of the same windows (a window's body is in the API's
# order, so other windows give other bytes).
SIX=(--window 6h --max-window 6h)
REFERENCE_DAY="$REFERENCE"
REFERENCE="$WORK/stream6/emailSend.ndjson"
measure "iterable-export (data.json, 6 h windows)" "$WORK/stream6/emailSend.ndjson" "${CLI[@]}" "${SIX[@]}" --output "$WORK/stream6"
measure "iterable-export --via jobs, 6 h windows (4 jobs at once)" "$WORK/jobs6/emailSend.ndjson" "${CLI[@]}" "${SIX[@]}" --via jobs --output "$WORK/jobs6"
rm -rf "$WORK/jobs6" "$WORK/stream6"
REFERENCE="$REFERENCE_DAY"

# The job on its own: preparation (start, poll, list every file at 1 request/s), then the
# transfer of its files, 4 at a time, as raw bytes concatenated in file order.
python3 - "$URL" "$API_KEY" "$DAY" "$NEXT" "$WORK/script.ndjson" "$OUT/job-times" <<'PY'
import json, sys, time, urllib.error, urllib.request, concurrent.futures
url, key, day, nxt, out, times = sys.argv[1:]
spaced = 1.05  # the mock's 1 request per second, with a margin
last = [0.0]
def api(method, path, body=None):
    wait = last[0] + spaced - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    last[0] = time.monotonic()
    req = urllib.request.Request(url + path, method=method, headers={"Api-Key": key, "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        if e.code != 429:
            raise
        return api(method, path, body)  # the limit's window still held an earlier request
t0 = time.monotonic()
job = api("POST", "/export/start", {"dataTypeName": "emailSend", "outputFormat": "application/x-json-stream",
                                    "startDateTime": f"{day} 00:00:00", "endDateTime": f"{nxt} 00:00:00"})["jobId"]
files, after = [], None
while True:
    page = api("GET", f"/export/{job}/files" + (f"?startAfter={after}" if after else ""))
    files += page["files"]
    if page["files"]:
        after = page["files"][-1]["file"]
        continue
    if page["jobState"].lower() == "completed":
        break
    if page["jobState"].lower() not in ("enqueued", "running"):
        sys.exit(f"job {job} is {page['jobState']}")
prepared = time.monotonic() - t0
def fetch(f):  # the file host: no key
    with urllib.request.urlopen(f["url"]) as r:
        return r.read()
t1 = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(4) as pool, open(out, "wb") as o:
    for body in pool.map(fetch, files):
        o.write(body)
transfer = time.monotonic() - t1
with open(times, "w") as t:
    t.write(f"{len(files)}\t{prepared:.1f}\t{transfer:.1f}\n")
PY
read -r JOB_FILES PREP TRANSFER <"$OUT/job-times"
if cmp -s "$WORK/script.ndjson" "$REFERENCE"; then SAME=yes; else SAME=NO; fi
log "job alone: $JOB_FILES files; prepared (and listed) in ${PREP}s, transferred in ${TRANSFER}s; same bytes: $SAME"

{
    echo "| what | wall (s) | user (s) | sys (s) | max RSS (MiB) | bytes | same bytes as the reference |"
    echo "|---|---:|---:|---:|---:|---:|:---:|"
    tail -n +2 "$TSV" | while IFS=$'\t' read -r what wall user sys rss bytes same; do
        echo "| $what | $wall | $user | $sys | $(( rss / 1024 )) | $bytes | $same |"
    done
    echo "| the job alone: preparation ($JOB_FILES files listed at 1 request/s) | $PREP | | | | | |"
    echo "| the job alone: transfer of its files (4 parallel, Python) | $TRANSFER | | | | | $SAME |"
    echo
    # Ratios against this run's own baselines (the machine's load moves them together).
    python3 - "$TSV" "$PREP" "$TRANSFER" <<'PY'
import csv, sys
rows = {r["what"]: float(r["wall_s"]) for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")}
prep, transfer = float(sys.argv[2]), float(sys.argv[3])
stream = rows["iterable-export (data.json streaming)"]
print("| --via jobs, 1 window | ÷ data.json streaming | ÷ job alone (preparation + transfer) | ÷ preparation | after preparation (s) |")
print("|---|---:|---:|---:|---:|")
for name, wall in rows.items():
    if name.startswith("iterable-export --via jobs") and "6 h" not in name:
        label = name.removeprefix("iterable-export ")
        print(f"| {label} | {wall / stream:.2f} | {wall / (prep + transfer):.2f} | {wall / prep:.2f} | {wall - prep:.1f} |")
PY
} | tee "$OUT/table.md"
