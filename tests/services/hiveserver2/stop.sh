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
  terminate 60 "$pid"
  log "stopped pid $pid"
fi
if [ "$HS2_KEEP" = 1 ]; then
  log "kept $HS2_BASE (MNAAS_HS2_KEEP=1)"
elif [ -d "$HS2_BASE" ]; then
  if [ -f "$HS2_MARK" ]; then
    rm -rf "$HS2_BASE"
  else
    log "$HS2_BASE was not created by start.sh ($HS2_MARK missing); left alone"
  fi
fi
