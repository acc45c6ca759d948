#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use answers at
# HANDOFF_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test):
# starts the local cluster when it is down, and fails loudly when it cannot.
set -euo pipefail

url="${HANDOFF_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
echo "== PostgreSQL at ${url%%\?*}"

answers() {
  psql "$url" -XAtqc 'SELECT 1' >/dev/null 2>&1
}

if ! command -v psql >/dev/null; then
  echo "psql is missing: install postgresql-client (and the server) first" >&2
  exit 1
fi

if ! answers; then
  if ! command -v pg_ctlcluster >/dev/null || [ ! -d /etc/postgresql ]; then
    echo "PostgreSQL does not answer at $url and no local cluster is installed" >&2
    exit 1
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    answers && break
    sleep 0.5
  done
fi

if ! answers; then
  echo "PostgreSQL does not answer at $url after starting it; the tests need it" >&2
  exit 1
fi
psql "$url" -XAtqc 'SHOW server_version' | sed 's/^/server version /'
