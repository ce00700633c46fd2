#!/usr/bin/env bash
# Stop the test HDFS started by start.sh: SIGTERM, SIGKILL after 30 s, then remove its base
# directory (MNAAS_HDFS_BASE, default /tmp/mnaas-hdfs), unless MNAAS_HDFS_KEEP=1: then the storage
# stays for a restart that keeps the data (start.sh with MNAAS_HDFS_KEEP=1). Stopping a cluster that
# is not running is fine.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

hdfs_check_base
pid=$(hdfs_our_pid)
if [ -n "$pid" ]; then
  terminate 30 "$pid"
  log "stopped pid $pid"
fi
if [ "$HDFS_KEEP" = 1 ]; then
  log "kept $HDFS_BASE (MNAAS_HDFS_KEEP=1)"
else
  rm -rf "$HDFS_BASE"
fi
