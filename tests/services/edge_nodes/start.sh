#!/usr/bin/env bash
# Start the two test edge nodes: separate Debian 11 systems (Python 3.9, none of the collection's
# libraries), each an sshd chrooted into its own overlay of one cached root (build-root.sh), in its own
# mount + UTS namespace, on 127.0.0.11:2222 (edge1) and 127.0.0.12:2222 (edge2). Idempotent: a node
# already running is left alone; keys, storage and what was installed on a node are kept across
# stop/start (stop.sh --purge removes them: the nodes are bare again).
#
# Environment:
#   MNAAS_EDGES_BASE          base directory (default /tmp/mnaas-edges)
#   MNAAS_EDGES_PORT          sshd port on both addresses (default 2222)
#   MNAAS_EDGES_STORAGE_SIZE  when set (e.g. 4G), each node's /srv/mnaas is a fresh loop-mounted
#                             ext4 image of that size (benchmarks) instead of a plain directory
#
# A node already running whose sshd_config changed is reloaded (SIGHUP: sshd re-executes itself
# with the new file; established sessions go on).
#
# Writes $BASE/env (KEY=VALUE lines, also printed) and $BASE/inventory.yml (Ansible inventory).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
log_prefix=edge_nodes/start.sh
base=${MNAAS_EDGES_BASE:-/tmp/mnaas-edges}
port=${MNAAS_EDGES_PORT:-2222}
storage_size=${MNAAS_EDGES_STORAGE_SIZE:-}
nodes=(edge1 edge2)
declare -A addr=([edge1]=127.0.0.11 [edge2]=127.0.0.12)

[ "$(id -u)" -eq 0 ] || die "must run as root (mount namespaces, sshd)"
case $base in
  /*) ;;
  *) die "MNAAS_EDGES_BASE must be an absolute path, got '$base'" ;;
esac

# The host needs only the SSH client (ssh-keygen, and ssh for the readiness check): each node's sshd, its
# Python and everything else it runs come from its own Debian root (build-root.sh).
if ! command -v ssh-keygen >/dev/null || ! command -v ssh >/dev/null; then
  apt_install openssh-client
fi
root=$("$here/build-root.sh")
[ -x "$root/usr/sbin/sshd" ] || die "no sshd in the node root $root"

mkdir -p "$base"
chmod 0755 "$base"
# One start or stop at a time on this base.
exec 9>"$base/.lock"
flock 9

keys=$base/keys
install -d -m 0700 "$keys"
new_key() {  # new_key FILE COMMENT: an ed25519 key without passphrase, kept when it exists
  [ -f "$1" ] || ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"
}
new_key "$keys/operator" "mnaas-edges operator"
# A second operator key: every process of its sessions on a node sees that node's clock shifted by
# the libfaketime offset in $BASE/NODE/clock_offset (e.g. "+5h", "-5h"; no file or an empty one: no
# shift). Only those sessions: the node's other sessions and its sshd keep the real clock.
new_key "$keys/skewed_clock" "mnaas-edges operator, skewed clock"
libfaketime=$(cd "$root" && compgen -G 'usr/lib/*/faketime/libfaketime.so.1' | head -1)
[ -n "$libfaketime" ] || die "libfaketime.so.1 not found in the node root $root"
libfaketime=/$libfaketime

known_line() {  # known_line NODE: the known_hosts line of a node's host key
  printf '[%s]:%s %s\n' "${addr[$1]}" "$port" "$(cut -d' ' -f1,2 "$base/$1/ssh_host_ed25519_key.pub")"
}

for node in "${nodes[@]}"; do
  dir=$base/$node
  # upper, work: the node's writable layer over the shared root; rootfs: where the node sees it.
  install -d -m 0755 "$dir" "$dir/log" "$dir/upper" "$dir/work" "$dir/rootfs"
  install -d -m 0700 "$dir/home" "$dir/home/.ssh"
  new_key "$dir/ssh_host_ed25519_key" "mnaas-edges $node host key"
  if [ -n "$storage_size" ]; then
    if [ ! -f "$dir/storage.img" ]; then
      truncate -s "$storage_size" "$dir/storage.img"
      mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dir/storage.img"
    fi
  else
    install -d -m 0755 "$dir/storage"
  fi
  cat >"$dir/sshd_config" <<CONF
# Written by tests/services/edge_nodes/start.sh for test node $node.
ListenAddress ${addr[$node]}:$port
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile $dir/sshd.pid
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
UseDNS no
MaxStartups 64:30:128
MaxSessions 64
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
# Only for the environment= options of the skewed-clock key in authorized_keys.
PermitUserEnvironment LD_PRELOAD,FAKETIME_TIMESTAMP_FILE,FAKETIME_DONT_FAKE_MONOTONIC
CONF
done

# known_hosts from the host keys (no trust on first use), for the operator.
{ for node in "${nodes[@]}"; do known_line "$node"; done; } >"$base/known_hosts"
chmod 0644 "$base/known_hosts"
# The operator's keys are authorised on each node; the nodes do not trust each other yet (a bare node:
# prepare_nodes.yml gives the secondary its key and authorises it on the primary). Lines added by others
# are kept across starts.
operator_lines() {
  cat "$keys/operator.pub"
  printf 'environment="LD_PRELOAD=%s",environment="FAKETIME_TIMESTAMP_FILE=%s",environment="FAKETIME_DONT_FAKE_MONOTONIC=1" %s\n' \
    "$libfaketime" "$base/$1/clock_offset" "$(cat "$keys/skewed_clock.pub")"
}
for node in "${nodes[@]}"; do
  authorized=$base/$node/home/.ssh/authorized_keys
  others=$(grep -v -F -e "$(cut -d' ' -f2 "$keys/operator.pub")" -e "$(cut -d' ' -f2 "$keys/skewed_clock.pub")" "$authorized" 2>/dev/null || true)
  { operator_lines "$node"; [ -z "$others" ] || printf '%s\n' "$others"; } >"$authorized.new"
  chmod 0600 "$authorized.new"
  mv "$authorized.new" "$authorized"
done

running() {  # running NODE: its sshd is alive and is the one started for it
  [ -n "$(live_pid "$base/$1/sshd.pid" "-f $base/$1/sshd_config")" ]
}

login() {  # login NODE: a real key-based login with strict host key checking
  ssh -p "$port" -i "$keys/operator" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5 \
    -o UserKnownHostsFile="$base/known_hosts" -o StrictHostKeyChecking=yes -o LogLevel=ERROR \
    "root@${addr[$1]}" "test \"\$(hostname)\" = $1"
}

started=()
reloaded=()
declare -A launcher=()
for node in "${nodes[@]}"; do
  if running "$node"; then
    # sshd_config.loaded: the file as the running sshd read it (at start or at its last reload).
    if ! cmp -s "$base/$node/sshd_config" "$base/$node/sshd_config.loaded"; then
      pid=$(cat "$base/$node/sshd.pid")
      # Checked inside the node (/run/sshd is there): a bad file would make the re-executed sshd exit.
      nsenter --target "$pid" --mount --uts --root -- /usr/sbin/sshd -t -f "$base/$node/sshd_config"
      kill -HUP "$pid"
      cp "$base/$node/sshd_config" "$base/$node/sshd_config.loaded"
      reloaded+=("$node")
    fi
    continue
  fi
  # Leftovers of a node that died (its sessions, sftp-server processes) go first.
  MNAAS_EDGES_LOCKED=1 MNAAS_EDGES_BASE=$base "$here/stop.sh" "$node" >/dev/null
  : >"$base/$node/sshd.log"
  cp "$base/$node/sshd_config" "$base/$node/sshd_config.loaded"
  # setsid -w: the launcher lives exactly as long as the node (sshd writes its own pid file).
  setsid -w unshare --mount --uts --propagation private -- "$here/node-init.sh" "$base" "$node" "$root" \
    </dev/null >>"$base/$node/sshd.log" 2>&1 &
  launcher[$node]=$!
  started+=("$node")
done

up() {  # up NODE: it accepts a login; dies when its sshd has exited
  if ! kill -0 "${launcher[$1]}" 2>/dev/null; then
    cat "$base/$1/sshd.log" >&2
    die "$1: sshd exited during start (log above, $base/$1/sshd.log)"
  fi
  running "$1" && login "$1" 2>/dev/null
}

for node in "${started[@]}"; do
  poll 100 up "$node" || login "$node" || die "$node: no key-based login to ${addr[$node]}:$port (see $base/$node/sshd.log)"
  readlink "/proc/$(cat "$base/$node/sshd.pid")/ns/mnt" >"$base/$node/mntns"
done
for node in "${reloaded[@]}"; do  # listening again once it has re-executed itself
  poll 100 login "$node" 2>/dev/null || login "$node" || die "$node: no key-based login after reloading sshd (see $base/$node/sshd.log)"
done

cat >"$base/env" <<ENV
MNAAS_EDGES_BASE=$base
MNAAS_EDGES_PORT=$port
MNAAS_EDGES_USER=root
MNAAS_EDGES_KEY=$keys/operator
MNAAS_EDGES_SKEWED_CLOCK_KEY=$keys/skewed_clock
MNAAS_EDGES_KNOWN_HOSTS=$base/known_hosts
MNAAS_EDGES_INVENTORY=$base/inventory.yml
MNAAS_EDGE1_HOST=${addr[edge1]}
MNAAS_EDGE2_HOST=${addr[edge2]}
MNAAS_EDGE1_PID=$(cat "$base/edge1/sshd.pid")
MNAAS_EDGE2_PID=$(cat "$base/edge2/sshd.pid")
MNAAS_EDGES_STORAGE=/srv/mnaas
MNAAS_EDGES_ROOT=$root
MNAAS_EDGES_NODE_PYTHON=/usr/bin/python3
ENV

{
  echo "# Written by tests/services/edge_nodes/start.sh: the two test edge nodes over real SSH."
  echo "all:"
  echo "  children:"
  echo "    edge_nodes:"
  echo "      hosts:"
  for node in "${nodes[@]}"; do
    echo "        $node:"
    echo "          ansible_host: ${addr[$node]}"
    echo "          ansible_port: $port"
    echo "          ansible_user: root"
    echo "          ansible_ssh_private_key_file: $keys/operator"
    echo "          ansible_ssh_common_args: '-o UserKnownHostsFile=$base/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'"
    echo "          ansible_python_interpreter: /usr/bin/python3"
  done
} >"$base/inventory.yml"

cat "$base/env"
