#!/usr/bin/env bash
# Stop the server started by start.sh: SIGTERM, SIGKILL after 60 s, then remove its base directory
# (MNAAS_HS2_BASE, default /tmp/mnaas-hs2), unless MNAAS_HS2_KEEP=1: then the metastore and the
# warehouse stay for a restart that keeps them (start.sh with MNAAS_HS2_KEEP=1). Stopping a server
# that is not running is fine; a directory start.sh did not create is left alone.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

hs2_check_base
pid=$(hs2_our_pid)
if [ -n "$pid" ]; then
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "hiveserver2: pid $pid did not stop within 60 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  echo "hiveserver2: stopped pid $pid" >&2
fi
if [ "$HS2_KEEP" = 1 ]; then
  echo "hiveserver2: kept $HS2_BASE (MNAAS_HS2_KEEP=1)" >&2
elif [ -d "$HS2_BASE" ]; then
  if [ -f "$HS2_MARK" ]; then
    rm -rf "$HS2_BASE"
  else
    echo "hiveserver2: $HS2_BASE was not created by start.sh ($HS2_MARK missing); left alone" >&2
  fi
fi
