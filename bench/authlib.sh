# Shared by bench/coldstart and bench/flood (sourced, not run): builds the
# release ficha and the load driver (examples/authbench.rs), makes a
# production deployment on SQLite in a scratch directory, and starts it on
# 127.0.0.1. All traffic stays on loopback (127.0.0.1-3 as sources).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/bench/lib.sh"
FICHA="$ROOT/target/release/ficha"
DRIVER="$ROOT/target/release/examples/authbench"
SCRATCH=$(mktemp -d /tmp/ficha-authbench.XXXXXX)
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [[ "${BENCH_KEEP:-0}" == 1 ]] || rm -rf "$SCRATCH"
}
trap cleanup EXIT
export FICHA_DATABASE_URL="sqlite://$SCRATCH/ficha.db"
export FICHA_KEY_DIR="$SCRATCH/keys"

build() {
    if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
        (cd "$ROOT" && cargo build --release --locked --bin ficha --example authbench) >&2
    fi
    "$FICHA" key generate >/dev/null
}

# make_clients N FILE: N new clients, one id:secret a line.
make_clients() {
    local n=$1 file=$2 i
    : >"$file"
    for ((i = 0; i < n; i++)); do
        "$FICHA" client create --scopes transaction --json \
            | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["client_id"]+":"+d["client_secret"])' >>"$file"
    done
}

# start_server [serve flags...]: sets URL and SERVER_PID.
start_server() {
    take_port
    RUST_LOG=warn "$FICHA" serve --bind "127.0.0.1:$PORT" "$@" >"$SCRATCH/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    URL="http://127.0.0.1:$PORT/oauth2/token"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

peak_rss_mib() {
    awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status"
}
