#!/usr/bin/env bash
# API conformance: schemathesis generates requests from the OpenAPI document
# (GET /openapi.json) and sends them to a live `handoff serve` on a fresh
# data directory, with every check on. A failure is either a server bug or a
# document that does not state what the server enforces; fix the one that is
# wrong, never the check. .ci/schemathesis.toml holds the few settings no
# schema can express, each with its reason.
#
# Needs python3 with venv and pip, and PyPI for the first run; schemathesis
# is pinned and kept in target/ci-venv. The run is repeatable: fixed seed,
# derandomized generation (which also keeps no example database), one worker.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
SEED=20261122
VENV=target/ci-venv
BIN=target/debug/handoff

if ! "$VENV/bin/st" --version 2>/dev/null | grep -qx "st, version $SCHEMATHESIS_VERSION"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Incremental: a no-op when the test step already built the binary.
cargo build -p handoff-cli --locked --quiet

WORK=$(mktemp -d)
LOG="$WORK/serve.log"
SERVER=""
cleanup() {
  if [[ -n "$SERVER" ]]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Port 0: the kernel picks a free port, and the server logs the one it got.
"$BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 >"$LOG" 2>&1 &
SERVER=$!

server_failed() {
  echo "$1; server log:" >&2
  cat "$LOG" >&2
  exit 1
}

BASE=""
for _ in $(seq 300); do
  kill -0 "$SERVER" 2>/dev/null || server_failed "handoff serve exited"
  BASE=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$LOG" | head -n 1)
  if [[ -n "$BASE" ]] && python3 - "$BASE/healthz" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
  then
    break
  fi
  BASE=""
  sleep 0.1
done
[[ -n "$BASE" ]] || server_failed "handoff serve did not answer /healthz within 30 s"

TOKEN=$(cat "$WORK/data/admin-token")
echo "schemathesis $SCHEMATHESIS_VERSION against $BASE (seed $SEED)"
status=0
"$VENV/bin/st" --config-file .ci/schemathesis.toml --no-color run "$BASE/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --max-examples 30 \
  --seed "$SEED" \
  --generation-deterministic \
  --workers 1 \
  || status=$?
if [[ $status -ne 0 ]]; then
  echo "schemathesis found failures (exit $status); server log tail:" >&2
  tail -n 50 "$LOG" >&2
fi
exit "$status"
