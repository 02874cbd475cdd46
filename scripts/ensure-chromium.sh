#!/usr/bin/env bash
# Chromium for the browser tests (Playwright drives Debian's /usr/bin/chromium; we never run
# `playwright install`). Installs with apt-get when missing and root; otherwise says what to do.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "ensure-chromium: installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  exit 0
fi
echo "ensure-chromium: /usr/bin/chromium is missing; install it with 'sudo apt-get install chromium'" \
     "(browser tests are skipped without it)" >&2
exit 1
