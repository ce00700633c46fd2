#!/usr/bin/env bash
# Build, once, the Debian root filesystem the test edge nodes run in, and print its path.
#
# The nodes are separate systems as real edge nodes are: Debian 11 "bullseye" (Python 3.9, the oldest
# Python the collection's modules support, the minor version of RHEL 9's system Python), minbase plus
# the packages below, and none of the collection's Python libraries (prepare_nodes.yml brings those).
# The root is cached outside the clone, keyed by suite, mirror and package list, and shared read-only
# by both nodes (each gets its own writable overlay, see node-init.sh). A build takes a few minutes and
# ~270 MB; a cached root is reused at once.
#
# Environment:
#   MNAAS_NODE_ROOT_CACHE   where roots are kept (default /var/cache/mnaas-backup/node-roots)
#   MNAAS_NODE_SUITE        Debian suite (default bullseye)
#   MNAAS_NODE_MIRROR       Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../lib.sh"
log_prefix=edge_nodes/build-root.sh

cache=${MNAAS_NODE_ROOT_CACHE:-/var/cache/mnaas-backup/node-roots}
suite=${MNAAS_NODE_SUITE:-bullseye}
mirror=${MNAAS_NODE_MIRROR:-http://deb.debian.org/debian}
# python3: the node's system Python; openssh-server: its sshd and sftp-server; faketime: the skewed-clock
# sessions of the fault tests; rsync: the benchmark's reference pull. Nothing else Python.
packages=python3,openssh-server,faketime,rsync
# Bump when the post-processing below changes: the key then names a new root.
layout=1

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"

key=$(printf '%s\n' "$suite" "$mirror" "$packages" "$layout" | sha256sum | cut -c1-12)
root=$cache/$suite-$key
if [ -f "$root/.mnaas-node-root" ]; then
  echo "$root"
  exit 0
fi

command -v debootstrap >/dev/null || apt_install debootstrap

mkdir -p "$cache"
exec 8>"$cache/.lock"
flock 8
if [ ! -f "$root/.mnaas-node-root" ]; then
  building=$root.building
  rm -rf "$building"
  log "building the $suite node root in $root (a few minutes, once)"
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$building" "$mirror" >"$cache/debootstrap-$key.log" 2>&1; then
    tail -n 30 "$cache/debootstrap-$key.log" >&2
    die "debootstrap failed (log above, $cache/debootstrap-$key.log)"
  fi
  # Each node gets its own host keys; none is shared through the root.
  rm -f "$building"/etc/ssh/ssh_host_*
  # Nothing of the collection's libraries may be there: the tests prove prepare_nodes.yml brings them.
  for module in paramiko hdfs requests pyhive thrift; do
    if chroot "$building" /usr/bin/python3 -c "import $module" 2>/dev/null; then
      die "the node root imports $module: it must be bare"
    fi
  done
  apt_clean=("$building"/var/cache/apt/archives/*.deb)
  rm -f "${apt_clean[@]}"
  chroot "$building" /usr/bin/python3 --version >"$building/.mnaas-node-root"
  mv "$building" "$root"
fi
echo "$root"
