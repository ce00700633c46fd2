#!/usr/bin/env bash
# Stop the test edge nodes (all, or the ones named): TERM every process of the node's mount
# namespace (sshd and its sessions), KILL what is left after 5 s, unmount anything of the base
# left in this namespace, remove the pid files. Idempotent.
#
#   stop.sh [--purge] [edge1|edge2 ...]    --purge also removes $MNAAS_EDGES_BASE (keys, storage)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib.sh"
log_prefix=edge_nodes/stop.sh
base=${MNAAS_EDGES_BASE:-/tmp/mnaas-edges}
purge=0
nodes=()
for arg in "$@"; do
  case $arg in
    --purge) purge=1 ;;
    edge1 | edge2) nodes+=("$arg") ;;
    *) echo "usage: stop.sh [--purge] [edge1|edge2 ...]" >&2; exit 2 ;;
  esac
done
[ "${#nodes[@]}" -gt 0 ] || nodes=(edge1 edge2)
[ -d "$base" ] || exit 0
if [ -z "${MNAAS_EDGES_LOCKED:-}" ]; then  # start.sh calls us with its lock held
  exec 9>"$base/.lock"
  flock 9
fi

node_pids() {  # node_pids NODE: its sshd (checked by command line) and every process in its mount namespace
  local dir=$base/$1
  live_pid "$dir/sshd.pid" "-f $dir/sshd_config"
  if [ -s "$dir/mntns" ]; then
    namespace_pids "$(cat "$dir/mntns")"
  fi
  return 0
}

pids=()
for node in "${nodes[@]}"; do
  [ -d "$base/$node" ] || continue
  mapfile -t node_pid_list < <(node_pids "$node" | sort -u)
  if [ "${#node_pid_list[@]}" -gt 0 ]; then
    echo "stopping $node (${node_pid_list[*]})"
    pids+=("${node_pid_list[@]}")
  fi
done
if [ "${#pids[@]}" -gt 0 ]; then
  terminate 5 "${pids[@]}"
fi
for node in "${nodes[@]}"; do
  rm -f "$base/$node/sshd.pid" "$base/$node/mntns"
done

# The nodes' mounts live and die with their namespaces; unmount anything of the base that
# ended up in this namespace all the same (deepest first).
mapfile -t mounts < <(findmnt -rn -o TARGET | grep -F "$base/" | sort -r || true)
for target in "${mounts[@]}"; do
  umount -l "$target" || true
done

if [ "$purge" -eq 1 ]; then
  running=0
  for node in edge1 edge2; do
    [ -s "$base/$node/sshd.pid" ] && running=1
  done
  if [ "$running" -eq 0 ]; then
    chattr -R -i "$base" 2>/dev/null || true
    rm -rf "$base"
  else
    echo "stop.sh: --purge skipped: a node of $base is still running" >&2
  fi
fi
