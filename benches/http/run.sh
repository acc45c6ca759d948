#!/usr/bin/env bash
# Load benchmark of POST /access/v1/evaluation on a release build, with
# decision logging on (every decision is durable in the audit log before it
# is answered). Loopback only; stops by itself.
#
# Usage: bash benches/http/run.sh [DURATION] [CONNECTIONS] [WRK_THREADS]
#   defaults: 20s, 64 connections, 1 wrk thread (on a 2-core machine wrk
#   itself needs a core; more threads only steal from the server).
# Needs: wrk (apt-get install -y wrk).
set -euo pipefail

duration=${1:-20s}
connections=${2:-64}
threads=${3:-1}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q -p handoff-cli
bin="$root/target/release/handoff"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="http://127.0.0.1:$port"
RUST_LOG=warn "$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --policy-pack examples/authzen-certification >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  curl -fsS "$addr/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

admin=$(cat "$work/data/admin-token")
token=$(HANDOFF_ADDR="$addr" HANDOFF_TOKEN="$admin" "$bin" token create bench --role pdp 2>/dev/null)

# One request first: fail early if the endpoint or the token is wrong.
answer=$(curl -fsS -X POST "$addr/access/v1/evaluation" \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"subject":{"type":"user","id":"alice"},"action":{"name":"read"},"resource":{"type":"record","id":"record-1"}}')
echo "sample answer: $answer"

echo "wrk -t$threads -c$connections -d$duration --latency -s benches/http/evaluation.lua $addr/access/v1/evaluation"
HANDOFF_BENCH_TOKEN="$token" wrk -t"$threads" -c"$connections" -d"$duration" --latency \
  -s benches/http/evaluation.lua "$addr/access/v1/evaluation"

records=$(HANDOFF_ADDR="$addr" HANDOFF_TOKEN="$admin" "$bin" audit verify 2>&1 || true)
echo "audit log after the run: $records"
