#!/usr/bin/env bash
# PostgreSQL server binaries (initdb, pg_ctl) for the storage tests, which start a throwaway
# cluster in a temp dir. Installs with apt-get when missing and root; otherwise says what to do.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "ensure-postgres: installing postgresql" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  exit 0
fi
echo "ensure-postgres: PostgreSQL server binaries are missing; install them with" \
     "'sudo apt-get install postgresql' (PostgreSQL storage tests are skipped without them)" >&2
exit 1
