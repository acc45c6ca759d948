#!/usr/bin/env bash
# Throughput of access evaluation (POST /access/v1/evaluation, every
# decision logged durably) and RFC 8693 token exchange (POST /oauth2/token,
# a delegation row and its audit record per 200) in three set-ups, one after
# the other in the same run with the same load generator:
#
#   sqlite-1    one node on the embedded SQLite database
#   postgres-1  one node on PostgreSQL
#   postgres-2  two nodes on one PostgreSQL database, the load split evenly
#               (one wrk per node, half the connections each; figures summed)
#
# Release build, loopback only, fresh data directory / database per set-up.
# Usage: bash benches/http/cluster.sh [DURATION] [CONNECTIONS]
#   defaults: 15s, 32 connections in total per workload.
# Needs: wrk, curl, python3, psql and PostgreSQL at HANDOFF_BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test; a database is created
# next to it per set-up and dropped afterwards).
set -euo pipefail

duration=${1:-15s}
connections=${2:-32}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
url=${HANDOFF_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q -p handoff-cli
bin="$root/target/release/handoff"

work=$(mktemp -d)
pids=()
databases=()
stop_nodes() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_nodes
  for db in "${databases[@]}"; do
    psql "$url" -XAtqc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" keys master-key >"$work/master.key"
chmod 600 "$work/master.key"
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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_node NAME [DATABASE_URL]: sets node_addr (not a subshell: the pid
# must reach stop_nodes).
start_node() {
  local name=$1 database=${2:-} port
  port=$(free_port)
  local args=(serve --data-dir "$work/$name" --listen "127.0.0.1:$port" --public-url http://handoff.bench
    --dev --max-fan-out 100000000 --max-depth 8)
  if [ -n "$database" ]; then
    args+=(--database "$database" --master-key-file "$work/master.key")
  fi
  RUST_LOG=warn "$bin" "${args[@]}" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/$name.log" >&2; exit 1; }
  node_addr="http://127.0.0.1:$port"
}

# setup ADDR TOKEN: pack, identities, credentials, the agent's token;
# leaves pdp token, Basic header and subject token files in $work.
setup() {
  export HANDOFF_ADDR=$1 HANDOFF_TOKEN=$2
  "$bin" policy push "$work/pack" >/dev/null
  "$bin" identity create human:alice >/dev/null
  "$bin" identity create agent:bot --owner human:alice >/dev/null
  "$bin" identity create service:search --owner human:alice >/dev/null
  local bot_secret search_secret human
  bot_secret=$("$bin" credential issue agent:bot 2>/dev/null)
  search_secret=$("$bin" credential issue service:search 2>/dev/null)
  human=$("$bin" token mint-human human:alice --scope read --lifetime 1h)
  "$bin" delegate --client-id agent:bot --client-secret "$bot_secret" \
    --subject-token "$human" --subject-token-type jwt 2>/dev/null >"$work/subject-tokens"
  printf '%s:%s' "service%3Asearch" "$search_secret" | base64 -w0 >"$work/basic"
  "$bin" token create bench --role pdp 2>/dev/null >"$work/pdp-token"
  unset HANDOFF_ADDR HANDOFF_TOKEN
}

# load WORKLOAD ADDR... : one wrk per address, connections split evenly, run
# at once; prints the summed requests/s and each wrk's latency line.
load() {
  local workload=$1
  shift
  local per=$((connections / $#)) i=0 path script
  case $workload in
    evaluation) path=/access/v1/evaluation script=benches/http/evaluation.lua ;;
    exchange) path=/oauth2/token script=benches/http/exchange.lua ;;
  esac
  local wrk_pids=()
  for addr in "$@"; do
    HANDOFF_BENCH_TOKEN=$(cat "$work/pdp-token") \
      HANDOFF_BENCH_BODY='{"subject":{"type":"Agent","id":"agent:bot"},"action":{"name":"read"},"resource":{"type":"Doc","id":"plan"}}' \
      HANDOFF_BENCH_SUBJECT_TOKENS="$work/subject-tokens" HANDOFF_BENCH_BASIC=$(cat "$work/basic") \
      HANDOFF_BENCH_RESULT="$work/wrk-result-$i" \
      wrk -t1 -c"$per" -d"$duration" --latency -s "$script" "$addr$path" >"$work/wrk-$i.out" 2>&1 &
    wrk_pids+=($!)
    i=$((i + 1))
  done
  for pid in "${wrk_pids[@]}"; do wait "$pid"; done
  python3 - "$work" "$i" "$workload" <<'SUM'
import re, sys
work, n, workload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total, lines = 0.0, []
for i in range(n):
    text = open(f"{work}/wrk-{i}.out").read()
    m = re.search(r"requests/s: (\d+)", text)
    total += float(m.group(1)) if m else 0
    p = re.search(r"p50: .*", text)
    bad = re.search(r"(non-2xx or socket errors: \d+|responses: .*)", text)
    lines.append(f"    node {i}: {m.group(1) if m else '?'} req/s, {p.group(0) if p else '?'}, {bad.group(0) if bad else ''}")
print(f"  {workload}: {total:.0f} req/s")
print("\n".join(lines))
SUM
}

run_setup() {
  local name=$1 nodes=$2 database=${3:-}
  echo "== $name"
  local addrs=()
  start_node "$name-a" "$database"
  addrs+=("$node_addr")
  local token
  token=$(cat "$work/$name-a/admin-token")
  if [ "$nodes" = 2 ]; then
    start_node "$name-b" "$database"
    addrs+=("$node_addr")
  fi
  setup "${addrs[0]}" "$token"
  load evaluation "${addrs[@]}"
  load exchange "${addrs[@]}"
  stop_nodes
  if [ -n "$database" ]; then
    echo "  audit verify: $(HANDOFF_MASTER_KEY_FILE="$work/master.key" "$bin" audit verify --database "$database" 2>&1)"
  else
    echo "  audit verify: $("$bin" audit verify --data-dir "$work/$name-a" 2>&1)"
  fi
}

new_database() {
  local name="handoff_bench_$$_$1"
  psql "$url" -XAtqc "CREATE DATABASE $name" >/dev/null
  databases+=("$name")
  echo "${url%/*}/$name"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load: wrk, $connections connections in total per workload, $duration each"
run_setup sqlite-1 1
run_setup postgres-1 1 "$(new_database p1)"
run_setup postgres-2 2 "$(new_database p2)"
