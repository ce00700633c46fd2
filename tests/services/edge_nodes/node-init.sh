#!/usr/bin/env bash
# One edge node, run by start.sh already inside its own mount + UTS namespace:
#   setsid unshare --mount --uts --propagation private -- node-init.sh BASE NODE
# Gives the node its own /srv/mnaas, /root, /run and /var/log, then execs sshd in the
# foreground (so start.sh's $! is sshd's pid).
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: node-init.sh BASE NODE (run by start.sh inside unshare)" >&2
  exit 2
fi
base=$1
node=$2
dir=$base/$node

# Nothing mounted here may leak back to the host (unshare --propagation private did this for
# the mounts at start; repeat it so the intent is plain).
mount --make-rprivate /
hostname "$node"

# /srv: a small tmpfs holding only the mount point, then the node's own storage on /srv/mnaas:
# a loop-mounted ext4 image when start.sh made one (MNAAS_EDGES_STORAGE_SIZE), else a bind
# of the node's storage directory.
mount -t tmpfs -o size=1m,mode=0755 "mnaas-$node-srv" /srv
mkdir -m 0755 /srv/mnaas
if [ -f "$dir/storage.img" ]; then
  mount -o loop "$dir/storage.img" /srv/mnaas
else
  mount --bind "$dir/storage" /srv/mnaas
fi

# The node's own 0700 home (authorized_keys, its key and known_hosts for the other node).
mount --bind "$dir/home" /root

# /run/sshd is sshd's privilege-separation directory: without it sshd (and sshd -t) exit.
mount -t tmpfs -o size=4m,mode=0755 "mnaas-$node-run" /run
mkdir -m 0755 /run/sshd

# Logins write wtmp/lastlog: give the node its own /var/log.
mount --bind "$dir/log" /var/log

# With UsePAM no, an account whose password field starts with "!" is refused even for keys:
# give this node a shadow file where root's is "*" (the host's file is left alone).
root_pw=$(getent shadow root | cut -d: -f2)
if [ "${root_pw#!}" != "$root_pw" ]; then
  sed 's/^root:![^:]*:/root:*:/' /etc/shadow >"$dir/shadow"
  chmod 0640 "$dir/shadow"
  mount --bind "$dir/shadow" /etc/shadow
fi

/usr/sbin/sshd -t -f "$dir/sshd_config"
exec /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log"
