#!/usr/bin/env bash
# A Java runtime for the Spark engine tests (pyspark runs on the JVM). Idempotent: does nothing
# when `java` works; installs Debian's default-jre-headless as root; otherwise says what to do.
set -euo pipefail
if command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-java: installing default-jre-headless (needed by pyspark)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
  java -version >/dev/null 2>&1 && exit 0
fi
echo "ensure-java: no Java runtime found; install one (e.g. 'sudo apt-get install default-jre-headless') for the Spark tests" >&2
exit 1
