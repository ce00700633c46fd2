#!/usr/bin/env bash
# Run a command on the edge nodes' Debian root (build-root.sh) without starting a node: chrooted into a
# throw-away overlay of the root, in a mount namespace of its own, with the given host directories bound at
# the same paths and the current directory kept. `make units-py39` runs the unit tests so, on the nodes'
# Python 3.9. The cached root itself is never written (the running nodes share it).
#
#   in-root.sh [--rw DIR]... [--ro DIR]... -- COMMAND [ARG...]
#
# --rw / --ro: bind DIR read-write / read-only. The root's /tmp is an empty tmpfs; its /dev is the host's.
# Needs root (mount namespaces, chroot).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
log_prefix=edge_nodes/in-root.sh

usage() {
  echo "usage: in-root.sh [--rw DIR]... [--ro DIR]... -- COMMAND [ARG...]" >&2
  exit 2
}

# Outside: a directory to hold the overlay, then this script again in a new mount namespace (its mounts
# vanish with it); the directory is removed afterwards.
if [ "${1:-}" != --in-namespace ]; then
  [ "$(id -u)" -eq 0 ] || die "must run as root (mount namespaces, chroot)"
  root=$("$here/build-root.sh")
  holder=$(mktemp -d /tmp/mnaas-in-root.XXXXXX)
  rc=0
  unshare --mount --propagation private -- "$0" --in-namespace "$root" "$holder" "$@" || rc=$?
  rmdir "$holder"
  exit "$rc"
fi
root=$2
holder=$3
shift 3
binds=()
while [ "$#" -gt 0 ]; do
  case $1 in
    --rw | --ro)
      [ "$#" -ge 2 ] || usage
      case $2 in /*) ;; *) die "$1 needs an absolute path, got '$2'" ;; esac
      binds+=("$1" "$2")
      shift 2
      ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ "$#" -gt 0 ] || usage

mount -t tmpfs "mnaas-in-root" "$holder"
mkdir "$holder/upper" "$holder/work" "$holder/fs"
fs=$holder/fs
mount -t overlay "mnaas-in-root" -o "lowerdir=$root,upperdir=$holder/upper,workdir=$holder/work" "$fs"
mount -t proc proc "$fs/proc"
mount --rbind /dev "$fs/dev"
mount -t tmpfs -o mode=1777 "mnaas-in-root-tmp" "$fs/tmp"
for ((i = 0; i < ${#binds[@]}; i += 2)); do
  dir=${binds[i + 1]}
  mkdir -p "$fs$dir"
  mount --bind "$dir" "$fs$dir"
  [ "${binds[i]}" = --rw ] || mount -o remount,bind,ro "$fs$dir"
done
mkdir -p "$fs$PWD"
# shellcheck disable=SC2016  # expanded by the chrooted shell
exec chroot "$fs" /bin/sh -c 'cd "$1" && shift && exec "$@"' in-root "$PWD" "$@"
