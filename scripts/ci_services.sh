#!/usr/bin/env bash
# Installs and starts what the service-backed tests need on a fresh Debian machine:
# PostgreSQL (registry tests against a real server) and Chromium (report rendering test).
# Idempotent; prints the exports to eval. Used by .ci/run; run it yourself to run those tests.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [ -x scripts/ci_postgres.sh ]; then
  bash scripts/ci_postgres.sh
fi
