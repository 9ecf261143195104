#!/usr/bin/env bash
# Install a Java runtime for the Spark engine's tests (PySpark launches a JVM). Idempotent.
# Debian's default-jre-headless (OpenJDK 17 on bookworm); apt runs under `flock /tmp/apt.lock`,
# so concurrent installers wait for each other.
set -euo pipefail
if command -v java >/dev/null 2>&1 || [[ -x ${JAVA_HOME:-/nonexistent}/bin/java ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-java: not root or no apt-get: install a Java runtime (17+) yourself" >&2
  # in CI the Spark engine must be tested for real; elsewhere its tests skip without Java
  [[ -n ${CI:-} ]] && exit 1
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-java: apt-get install default-jre-headless"
flock /tmp/apt.lock apt-get update -qq
flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
command -v java >/dev/null
