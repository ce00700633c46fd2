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
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "hdfs: pid $pid did not stop within 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  echo "hdfs: stopped pid $pid" >&2
fi
if [ "$HDFS_KEEP" = 1 ]; then
  echo "hdfs: kept $HDFS_BASE (MNAAS_HDFS_KEEP=1)" >&2
else
  rm -rf "$HDFS_BASE"
fi
