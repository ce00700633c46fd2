#!/usr/bin/env bash
# One edge node, run by start.sh already inside its own mount + UTS namespace:
#   setsid unshare --mount --uts --propagation private -- node-init.sh BASE NODE ROOT
# The node is a separate system: its sshd runs chrooted into its own root filesystem, an overlay of
# the shared read-only Debian root ROOT (build-root.sh) with the node's own writable layer
# (BASE/NODE/upper). It gets its own /srv/mnaas, /root, /run and /var/log, and BASE/NODE at the same
# path (its sshd_config, pid file, log and clock offset), then execs sshd in the foreground (so
# start.sh's $! is sshd's pid).
set -euo pipefail

if [ "$#" -ne 3 ]; then
  echo "usage: node-init.sh BASE NODE ROOT (run by start.sh inside unshare)" >&2
  exit 2
fi
base=$1
node=$2
root=$3
dir=$base/$node
fs=$dir/rootfs

# Nothing mounted here may leak back to the host (unshare --propagation private did this for
# the mounts at start; repeat it so the intent is plain).
mount --make-rprivate /
hostname "$node"

# The node's root: the shared Debian root, read-only, under the node's own writable layer.
mount -t overlay "mnaas-$node-root" -o "lowerdir=$root,upperdir=$dir/upper,workdir=$dir/work" "$fs"
mount -t proc proc "$fs/proc"
mount --rbind /dev "$fs/dev"
mount -t sysfs sysfs "$fs/sys"

# /srv: a small tmpfs holding only the mount point, then the node's own storage on /srv/mnaas:
# a loop-mounted ext4 image when start.sh made one (MNAAS_EDGES_STORAGE_SIZE), else a bind
# of the node's storage directory.
mount -t tmpfs -o size=1m,mode=0755 "mnaas-$node-srv" "$fs/srv"
mkdir -m 0755 "$fs/srv/mnaas"
if [ -f "$dir/storage.img" ]; then
  mount -o loop "$dir/storage.img" "$fs/srv/mnaas"
else
  mount --bind "$dir/storage" "$fs/srv/mnaas"
fi

# The node's own 0700 home (the operator's authorized_keys; prepare_nodes.yml adds the node's key).
mount --bind "$dir/home" "$fs/root"

# /run/sshd is sshd's privilege-separation directory: without it sshd (and sshd -t) exit.
mount -t tmpfs -o size=4m,mode=0755 "mnaas-$node-run" "$fs/run"
mkdir -m 0755 "$fs/run/sshd"

# Logins write wtmp/lastlog: give the node a /var/log the host can read.
mount --bind "$dir/log" "$fs/var/log"

# The node's directory of the test harness, at the same path: sshd_config, pid file, log, clock offset.
mkdir -p "$fs$dir"
mount --bind "$dir" "$fs$dir"

# The node's own host key, where a real node keeps it (prepare_nodes.yml pins it from there).
install -m 0600 "$dir/ssh_host_ed25519_key" "$fs/etc/ssh/ssh_host_ed25519_key"
install -m 0644 "$dir/ssh_host_ed25519_key.pub" "$fs/etc/ssh/ssh_host_ed25519_key.pub"

chroot "$fs" /usr/sbin/sshd -t -f "$dir/sshd_config"
exec chroot "$fs" /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log"
