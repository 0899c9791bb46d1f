# Shared by the checks that run a Python tool against the mock binary (.ci/singer-check.sh,
# .ci/duckdb-check.sh). Source it after setting:
#   CHECK      the check's name: log prefix, target/<CHECK>-venv, .ci/<CHECK>-requirements.txt
#   TOOL       what the virtual environment is for (named in error messages)
#   PROBE      a path inside the virtual environment that exists once its packages are installed
#   MOCK_SEED  the mock's seed
# It defines log, die and start_mock; creates (or reuses) the pinned virtual environment; builds the debug binaries;
# and sets ROOT, TARGET_DIR, VENV, CLI, MOCK_BIN, WORK (removed on exit, with the mocks started) and KEY.
# A check never passes without having run: a missing python3 or virtual environment is a failure saying why.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[%s-check] %s\n' "$CHECK" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed: this check needs it for $TOOL (apt-get install python3 python3-venv)"

TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
VENV="$TARGET_DIR/$CHECK-venv"
REQUIREMENTS="$ROOT/.ci/$CHECK-requirements.txt"
# Reinstalled whenever the pinned requirements change.
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null || [[ ! -e "$VENV/$PROBE" ]]; then
    log "creating $VENV with $(grep -c '==' "$REQUIREMENTS") pinned packages"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a virtual environment at $VENV (apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" \
        || die "cannot install $REQUIREMENTS into $VENV (is PyPI reachable?)"
    cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
[[ -e "$VENV/$PROBE" ]] || die "$VENV/$PROBE is missing after installing $REQUIREMENTS"

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

KEY="$CHECK-check-key"
# start_mock NAME ARGS...: a mock on a free loopback port; sets MOCK_URL (…/api).
start_mock() {
    local name="$1"; shift
    "$MOCK_BIN" --host 127.0.0.1 --port 0 --rate-limit 0 --seed "$MOCK_SEED" --records-per-day 3000 --api-key "$KEY" "$@" \
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
