#!/usr/bin/env bash
# The Singer tap (`iterable-export singer`) piped into a real Singer target, target-jsonl
# (pinned in .ci/singer-requirements.txt, installed into target/singer-venv/), against the mock
# binary: two incremental syncs (each from the STATE the target emitted), a third killed while a
# window downloads, and a sync resumed from the STATE the target emitted then. The files the
# target wrote must hold every record the mock served, each once (purchase without the two
# fields its catalog entry deselects, as Meltano's `!purchase.userId` writes it).
#
#   .ci/singer-check.sh            # builds the debug binaries if needed; called by .ci/run
#
# Fails (non-zero, saying why) when python3 or the virtual environment is missing: it never
# passes without having run.
set -euo pipefail

CHECK=singer TOOL=target-jsonl PROBE=bin/target-jsonl MOCK_SEED=7
# shellcheck source=check-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/check-lib.sh"
TAP="$CLI"

start_mock plain
PLAIN_URL="$MOCK_URL"
# Every body of 50 kB or more stalls for 5 s: the third sync's first window (the re-read look-back
# and a day, one request) completes after its stall, and the sync is killed in its second window's.
start_mock stalling --fault stall:50000:5s:1000
STALLING_URL="$MOCK_URL"

OUT="$WORK/out"
mkdir -p "$OUT"
printf '{"destination_path": "%s", "do_timestamp_file": false}\n' "$OUT" >"$WORK/target.json"
config() { # URL END_DATE
    printf '{"api_key": "%s", "start_date": "2024-01-01T00:00:00Z", "end_date": "%s", "base_url": "%s", "requests_per_minute": 6000, "lookback": "20m"}\n' \
        "$KEY" "$2" "$1" >"$WORK/config.json"
}
config "$PLAIN_URL" 2024-01-02T00:00:00Z
"$TAP" singer --config "$WORK/config.json" --discover >"$WORK/discovered.json"
python3 - "$WORK/discovered.json" "$WORK/catalog.json" <<'EOF'
import json, sys
catalog = json.load(open(sys.argv[1]))
for stream in catalog["streams"]:
    for entry in stream["metadata"]:
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = stream["tap_stream_id"] in ("email_send", "users", "purchase")
        if stream["tap_stream_id"] == "purchase" and entry["breadcrumb"] in (["properties", "userId"], ["properties", "templateId"]):
            entry["metadata"]["selected"] = False
json.dump(catalog, open(sys.argv[2], "w"))
EOF

# sync NAME [--state FILE]: the tap piped into the target; the target's last STATE goes to
# $WORK/NAME.state.
sync() {
    local name="$1"; shift
    "$TAP" singer --config "$WORK/config.json" --catalog "$WORK/catalog.json" "$@" 2>"$WORK/$name.tap.err" \
        | "$VENV/bin/target-jsonl" --config "$WORK/target.json" >"$WORK/$name.state" 2>"$WORK/$name.target.err" \
        || { cat "$WORK/$name.tap.err" "$WORK/$name.target.err" >&2; die "sync $name failed"; }
    [[ -s "$WORK/$name.state" ]] || die "sync $name: the target emitted no STATE"
    log "sync $name: $(grep -c 'window .* done' "$WORK/$name.tap.err") windows; state $(head -c 150 "$WORK/$name.state")…"
}

sync first
config "$PLAIN_URL" 2024-01-03T00:00:00Z
sync second --state "$WORK/first.state"

# The third sync runs against the stalling mock and is killed (SIGKILL) in the stall of its
# second window, after the first was emitted with its STATE.
config "$STALLING_URL" 2024-01-05T00:00:00Z
mkfifo "$WORK/pipe"
"$VENV/bin/target-jsonl" --config "$WORK/target.json" <"$WORK/pipe" >"$WORK/third.state" 2>"$WORK/third.target.err" &
TARGET_PID=$!
"$TAP" singer --config "$WORK/config.json" --catalog "$WORK/catalog.json" --state "$WORK/second.state" \
    >"$WORK/pipe" 2>"$WORK/third.tap.err" &
TAP_PID=$!
for _ in $(seq 600); do
    grep -q 'email_send: window .* done' "$WORK/third.tap.err" && break
    kill -0 "$TAP_PID" 2>/dev/null || { cat "$WORK/third.tap.err" >&2; die "the third sync ended before it was killed"; }
    sleep 0.1
done
grep -q 'email_send: window .* done' "$WORK/third.tap.err" || die "the third sync never completed a window"
sleep 1 # the next window is now held in its 5-second stall
kill -KILL "$TAP_PID"
wait "$TAP_PID" 2>/dev/null || true
wait "$TARGET_PID" || die "the target failed after the tap was killed: $(cat "$WORK/third.target.err")"
[[ -s "$WORK/third.state" ]] || die "the target emitted no STATE for the killed sync"
log "sync third: killed after $(grep -c 'window .* done' "$WORK/third.tap.err") window(s); state $(head -c 150 "$WORK/third.state")…"

config "$PLAIN_URL" 2024-01-05T00:00:00Z
sync resumed --state "$WORK/third.state"

python3 "$ROOT/.ci/singer_compare.py" "$PLAIN_URL" "$KEY" "2024-01-01 00:00:00" "2024-01-05 00:00:00" "$OUT" \
    email_send=emailSend users=user purchase=purchase/userId,templateId || die "the target's files differ from what the mock served"
log "ok: target-jsonl holds every served record exactly once across two incremental syncs, a killed one and a resumed one"
