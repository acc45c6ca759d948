#!/usr/bin/env bash
# Interoperability: independent OAuth/JWT clients against a live `handoff
# serve --dev` on a fresh data directory. interop/python (authlib, PyJWT)
# and interop/node (jose, Node's fetch) fetch the RFC 8414 metadata and the
# JWKS, exchange tokens (RFC 8693) over three hops, verify the tokens'
# signatures and claims with their own libraries, introspect (RFC 7662) and
# revoke (RFC 7009), and see the whole chain below a revoked token go
# inactive. A failure is either a server bug or a broken test: fix the one
# that is wrong, never skip the check. interop/README.md says more.
#
# Needs python3 with venv and pip, Node.js 20 or later with npm, and PyPI and
# the npm registry for the first run. Every package is pinned: Python's in
# interop/python/requirements.txt (kept in target/interop-venv, rebuilt when
# that file changes), Node's in interop/node/package-lock.json (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== interoperability (authlib, PyJWT, jose against a live handoff serve --dev)"
START=$SECONDS
VENV=target/interop-venv
REQUIREMENTS=interop/python/requirements.txt
BIN=target/debug/handoff

fail() {
  echo "interop: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not installed (Node.js 20 or later is needed)"
command -v npm >/dev/null || fail "npm is not installed"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[[ $NODE_MAJOR -ge 20 ]] || fail "Node.js $(node --version) is too old; 20 or later is needed"

# The stamp names the requirements and the interpreter; either changing
# rebuilds the venv from nothing, so no stale package survives.
STAMP="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) $(python3 --version 2>&1)"
if [[ "$(cat "$VENV/.interop-stamp" 2>/dev/null)" != "$STAMP" ]]; then
  echo "installing $REQUIREMENTS into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  "$VENV/bin/python" -m pip check
  echo "$STAMP" >"$VENV/.interop-stamp"
fi

echo "installing interop/node (npm ci)"
(cd interop/node && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)

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
"$BIN" serve --dev --data-dir "$WORK/data" --listen 127.0.0.1:0 >"$LOG" 2>&1 &
SERVER=$!

server_failed() {
  echo "interop: $1; server log:" >&2
  cat "$LOG" >&2
  exit 1
}

# GET $1 with an optional bearer token $2; succeeds on 200 only.
get_ok() {
  python3 - "$@" <<'EOF' 2>/dev/null
import sys, urllib.request
request = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    request.add_header("Authorization", "Bearer " + sys.argv[2])
with urllib.request.urlopen(request, timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

BASE=""
for _ in $(seq 300); do
  kill -0 "$SERVER" 2>/dev/null || server_failed "handoff serve exited"
  BASE=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$LOG" | head -n 1)
  if [[ -n "$BASE" ]] && get_ok "$BASE/readyz"; then
    break
  fi
  BASE=""
  sleep 0.1
done
[[ -n "$BASE" ]] || server_failed "handoff serve did not answer /readyz within 30 s"

[[ -s "$WORK/data/admin-token" ]] || server_failed "no bootstrap admin token in the data directory"
TOKEN=$(cat "$WORK/data/admin-token")
get_ok "$BASE/v1/whoami" "$TOKEN" || server_failed "the bootstrap admin token is refused by GET /v1/whoami"

# The suites set up their own policy pack and identities (random names)
# through the admin API with these two.
export HANDOFF_URL="$BASE"
export HANDOFF_ADMIN_TOKEN="$TOKEN"
# Loopback only, never through a proxy; no bytecode left in the work tree.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
export PYTHONDONTWRITEBYTECODE=1

echo "== interop: python (authlib, PyJWT) against $BASE"
python_status=0
"$VENV/bin/python" -m pytest -p no:cacheprovider -v -ra interop/python || python_status=$?

echo "== interop: node $(node --version) (jose) against $BASE"
node_status=0
(cd interop/node && node --test interop.test.mjs) || node_status=$?

ELAPSED=$((SECONDS - START))
if [[ $python_status -ne 0 || $node_status -ne 0 ]]; then
  echo "interop FAILED: python exit $python_status, node exit $node_status (${ELAPSED} s); server log tail:" >&2
  tail -n 50 "$LOG" >&2
  exit 1
fi
echo "interop passed: python and node (${ELAPSED} s)"
