#!/usr/bin/env bash
# Load benchmark of RFC 8693 token exchange (POST /oauth2/token) on a
# release build with durable recording: every 200 is a new delegation row
# and its `delegation.create` audit record, committed (group commit,
# synchronous=FULL) before the token is answered. Loopback only; a fresh
# server and data directory per run; stops by itself.
#
# Set-up through the admin API (the CLI): a pack permitting `delegate`,
# human:alice, agent:bot and service:search (owned by alice), a credential
# for each client, alice's development token, and one exchange giving
# agent:bot its token. Load: every request exchanges that same agent token
# for service:search, authenticated with HTTP Basic (client_secret_basic).
# Afterwards the server is stopped, `handoff audit verify --data-dir` checks
# the chain and the `delegation.create` records are counted against the 200s.
#
# Usage: bash benches/http/exchange.sh [DURATION] [CONNECTIONS] [WRK_THREADS]
#   defaults: 20s, 32 connections, 1 wrk thread.
# With HANDOFF_BENCH_PARENTS=N (default 1), agent:bot gets N tokens (N
# lineages) and the requests take them in turn, so that no one parent
# collects every child (a diagnostic: the cost of a parent's fan-out).
# Needs: wrk (apt-get install -y wrk), curl, python3.
set -euo pipefail

duration=${1:-20s}
connections=${2:-32}
threads=${3:-1}
parents=${HANDOFF_BENCH_PARENTS:-1}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q -p handoff-cli
bin="$root/target/release/handoff"

work=$(mktemp -d)
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr="http://127.0.0.1:$port"
RUST_LOG=warn "$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --dev --max-fan-out 100000000 --max-depth 8 >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  curl -fsS "$addr/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

export HANDOFF_ADDR="$addr"
HANDOFF_TOKEN=$(cat "$work/data/admin-token")
export HANDOFF_TOKEN

mkdir -p "$work/pack"
cat >"$work/pack/schema.cedarschema" <<'SCHEMA'
entity Doc;
action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] };
action read appliesTo { principal: [Human, Agent, Service], resource: [Doc] };
SCHEMA
cat >"$work/pack/policies.cedar" <<'POLICIES'
@id("delegate") permit(principal, action == Action::"delegate", resource);
@id("read") permit(principal, action == Action::"read", resource);
POLICIES
"$bin" policy push "$work/pack" >/dev/null
"$bin" identity create human:alice >/dev/null
"$bin" identity create agent:bot --owner human:alice >/dev/null
"$bin" identity create service:search --owner human:alice >/dev/null
bot_secret=$("$bin" credential issue agent:bot)
search_secret=$("$bin" credential issue service:search)
human=$("$bin" token mint-human human:alice --scope read --lifetime 1h)
agent=$("$bin" delegate --client-id agent:bot --client-secret "$bot_secret" \
  --subject-token "$human" --subject-token-type jwt 2>/dev/null)
echo "$agent" >"$work/subject-tokens"

# RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
basic=$(printf '%s:%s' "service%3Asearch" "$search_secret" | base64 -w0)
bot_basic=$(printf '%s:%s' "agent%3Abot" "$bot_secret" | base64 -w0)
for _ in $(seq 2 "$parents"); do
  curl -fsS -X POST "$addr/oauth2/token" -H "Authorization: Basic $bot_basic" \
    --data-urlencode "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" \
    --data-urlencode "subject_token=$human" \
    --data-urlencode "subject_token_type=urn:ietf:params:oauth:token-type:jwt" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' >>"$work/subject-tokens"
done

# One request first: fail early if the endpoint or the credentials are wrong.
answer=$(curl -fsS -X POST "$addr/oauth2/token" -H "Authorization: Basic $basic" \
  --data-urlencode "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" \
  --data-urlencode "subject_token=$agent" \
  --data-urlencode "subject_token_type=urn:ietf:params:oauth:token-type:jwt")
echo "sample answer: ${answer:0:120}…"

echo "wrk -t$threads -c$connections -d$duration --latency -s benches/http/exchange.lua $addr/oauth2/token"
HANDOFF_BENCH_SUBJECT_TOKENS="$work/subject-tokens" HANDOFF_BENCH_BASIC="$basic" \
  HANDOFF_BENCH_RESULT="$work/wrk-result" \
  wrk -t"$threads" -c"$connections" -d"$duration" --latency \
  -s benches/http/exchange.lua "$addr/oauth2/token"

# The appender's own view: how busy the single writer was (sum of commit
# times over the run) and how many changes it committed per transaction.
curl -fsS "$addr/metrics" 2>/dev/null | python3 -c '
import sys
m = {}
for line in sys.stdin:
    parts = line.split()
    if len(parts) == 2 and not line.startswith("#"):
        m[parts[0]] = float(parts[1])
n = m.get("handoff_audit_commit_seconds_count", 0)
if n:
    busy = m["handoff_audit_commit_seconds_sum"]
    size = m.get("handoff_audit_batch_size_sum", 0) / max(m.get("handoff_audit_batch_size_count", 1), 1)
    print(f"appender: {n:.0f} commits, {busy:.1f} s committing in total, "
          f"{busy / n * 1e3:.2f} ms and {size:.1f} changes per commit on average")
' || echo "appender: metrics unavailable"

# Stop the server: requests still in flight finish, the audit queue drains.
stop_server
read -r ok other <"$work/wrk-result"
echo "audit verify: $("$bin" audit verify --data-dir "$work/data" 2>&1)"
python3 - "$work/data/handoff.db" "$ok" "$other" "$parents" <<'COUNT'
import sqlite3, sys
db, ok, other, parents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
q = lambda sql: con.execute(sql).fetchone()[0]
creates = q("SELECT COUNT(*) FROM audit_records WHERE kind = 'delegation.create'")
refusals = q("SELECT COUNT(*) FROM audit_records WHERE kind = 'delegation.refuse'")
rows = q("SELECT COUNT(*) FROM delegations")
# Set-up: one exchange per agent token (a new root and its child, one
# record each) and the sample request above (one record, one row).
load = creates - parents - 1
print(f"delegation.create records from the load: {load} (wrk counted {ok} x 200, {other} other); "
      f"delegation.refuse records: {refusals}; delegation rows: {rows}")
if load != ok:
    print(f"note: {load - ok} exchange(s) committed whose answers wrk did not count "
          "(in flight when wrk stopped at the end of the run)")
COUNT
