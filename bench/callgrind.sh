#!/usr/bin/env bash
# Instructions per delivery with 1 and with 2 worker threads, counted by
# valgrind's callgrind (repeatable, unlike wall time on a shared machine).
# Usage: bench/callgrind.sh [SUBS] [EVENTS]     (defaults 1000 and 50)
# Each run: ssehub under callgrind, SUBS streams, EVENTS pipelined publishes;
# the count covers the whole process life (start, connects, fan-out, stop), so
# the same fixed work is divided by the deliveries in both runs.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUBS=${1:-1000}
EVENTS=${2:-50}
BENCH=$ROOT/build/ssebench
SSEHUB=${SSEHUB:-$ROOT/build/ssehub}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$BENCH" ] && [ -x "$SSEHUB" ] || { echo "callgrind.sh: run make build/ssehub build/ssebench first" >&2; exit 1; }
WORK=$(mktemp -d /tmp/ssehub-callgrind.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

run() {
    local workers=$1 port pid i out
    port=$("$BENCH" freeport)
    mkdir -p "$WORK/w$workers"
    (cd "$WORK/w$workers" && exec env SSE_HOST=127.0.0.1 SSE_PORT="$port" SSE_APP_KEY=callgrind-key-0123456789abcdef0123456789 \
        SSE_BROADCASTER_USERNAME=pub SSE_BROADCASTER_PASSWORD=pub-pass \
        SSE_CLIENT_USERNAME=sub SSE_CLIENT_PASSWORD=sub-pass SSE_DB=off \
        SSE_WORKERS="$workers" SSE_LOG_LEVEL=warn \
        valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$workers" "$SSEHUB") 2>"$WORK/w$workers.log" &
    pid=$!
    for i in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    out=$(timeout 300 "$BENCH" load --port "$port" --server-pid "$pid" --sub-login sub:sub-pass \
        --pub-login pub:pub-pass --type sse --src-addrs 4 -n "$SUBS" --count "$EVENTS" --depth 32 \
        --connect-timeout 120 --drain 30 2>/dev/null)
    kill -TERM "$pid"
    wait "$pid"
    local deliveries ir
    deliveries=$(echo "$out" | grep -o ' deliveries=[0-9]*' | cut -d= -f2)
    ir=$(sed -n 's/^summary: //p' "$WORK/cg.$workers")
    echo "workers=$workers deliveries=${deliveries:-0} instructions=${ir:-0}" \
        "per_delivery=$(awk -v i="${ir:-0}" -v d="${deliveries:-0}" 'BEGIN { printf "%.0f", d ? i / d : 0 }')"
}

run 1
run 2
