#!/usr/bin/env bash
# Restart a running node's sshd the way an operator would, leaving its established sessions alone
# (as real OpenSSH does: each session is a process of its own).
#
#   restart.sh --reload NODE            SIGHUP: the listener re-executes itself (same pid) and reads
#                                       its sshd_config again
#   restart.sh [--down SECONDS] NODE    stop the listener only (TERM to its pid), wait SECONDS (default
#                                       0), start a new listener inside the node's namespaces, as
#                                       `systemctl restart ssh` does on Debian (KillMode=process)
#
# Returns once the node accepts a login again. A node whose listener was its last process (no session
# open) has lost its namespaces with it: it is started again by start.sh, with the same keys and storage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
log_prefix=edge_nodes/restart.sh
base=${MNAAS_EDGES_BASE:-/tmp/mnaas-edges}
reload=0
down=0
node=
while [ "$#" -gt 0 ]; do
  case $1 in
    --reload) reload=1 ;;
    --down) down=$2; shift ;;
    edge1 | edge2) node=$1 ;;
    *) echo "usage: restart.sh [--reload | --down SECONDS] edge1|edge2" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$node" ] || { echo "usage: restart.sh [--reload | --down SECONDS] edge1|edge2" >&2; exit 2; }
dir=$base/$node

listener() {  # the node's listening sshd, checked by its command line
  local pid
  pid=$(live_pid "$dir/sshd.pid" "-f $dir/sshd_config")
  [ -n "$pid" ] && echo "$pid"
}

login() {
  # shellcheck disable=SC1091
  . "$base/env"
  local host=MNAAS_${node^^}_HOST
  ssh -p "$MNAAS_EDGES_PORT" -i "$MNAAS_EDGES_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5 \
    -o UserKnownHostsFile="$MNAAS_EDGES_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o LogLevel=ERROR \
    "root@${!host}" "test \"\$(hostname)\" = $node"
}

wait_login() {
  poll 100 login 2>/dev/null || login || die "$node: no key-based login after the restart (see $dir/sshd.log)"
}

pid=$(listener) || die "$node is not running (start it with start.sh)"
exec 9>"$base/.lock"
flock 9

if [ "$reload" -eq 1 ]; then
  kill -HUP "$pid"
  wait_login
  exit 0
fi

namespace=$(cat "$dir/mntns")
kill -TERM "$pid"
wait_gone 5 "$pid" || die "$node: the listener $pid is still there 5 s after TERM"
sleep "$down"

# A process still in the node's mount namespace (a session) to enter its namespaces through.
inside=$(namespace_pids "$namespace" | head -1 || true)
if [ -z "$inside" ]; then
  flock -u 9
  MNAAS_EDGES_BASE=$base "$here/start.sh" >/dev/null
  exit 0
fi
# Without -D sshd detaches itself (as the system's sshd does) and writes its pid file.
nsenter --target "$inside" --mount --uts --root -- /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
new_listener() {
  local new
  new=$(listener) && [ "$new" != "$pid" ]
}
poll 50 new_listener || die "$node: no new listener after the restart (see $dir/sshd.log)"
wait_login
