# shellcheck shell=bash
# Functions shared by the scripts that start and stop the test services (sourced, not run). The script
# sets log_prefix (its name in messages) and, when it has one, log_file (a log whose tail die shows).

log() {
  echo "${log_prefix:-}: $*" >&2
}

die() {  # die MESSAGE: the message (and the last lines of $log_file, when there is one), exit 1
  log "$*"
  if [ -n "${log_file:-}" ] && [ -f "$log_file" ]; then
    log "last lines of $log_file:"
    tail -n 40 "$log_file" >&2
  fi
  exit 1
}

need() {  # need COMMAND WHY
  command -v "$1" >/dev/null 2>&1 || die "$1 is needed ($2) and is not on PATH"
}

apt_install() {  # apt_install PACKAGE...: install Debian packages (when a command of theirs is missing)
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# live_pid PID_FILE STRING...: the pid in the file when that process lives and its command line (arguments
# joined by spaces) holds one of the STRINGs; else nothing (no file, a stale or a foreign pid).
live_pid() {
  local file=$1 pid string
  shift
  local -a patterns=()
  [ -s "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  case $pid in '' | *[!0-9]*) return 0 ;; esac
  for string in "$@"; do patterns+=(-e "$string"); done
  if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "${patterns[@]}"; then
    echo "$pid"
  fi
}

# namespace_pids NAMESPACE: the processes in a mount namespace, named as readlink /proc/PID/ns/mnt names it
# ("mnt:[4026532195]").
namespace_pids() {
  local pattern
  pattern=$(sed 's/\[/\\[/; s/\]/\\]/' <<<"$1")  # the brackets escaped for find
  find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/mnt' -lname "$pattern" 2>/dev/null | cut -d/ -f3
}

port_open() {  # port_open HOST PORT: something accepts TCP connections there
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

poll() {  # poll TRIES COMMAND...: true as soon as COMMAND succeeds, trying TRIES times 0.1 s apart
  local tries=$1
  shift
  for _try in $(seq "$tries"); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

wait_gone() {  # wait_gone SECONDS PID...: true once every PID has exited, false when one lives after SECONDS
  local seconds=$1 pid alive
  shift
  for _try in $(seq $((seconds * 10))); do
    alive=0
    for pid in "$@"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 1 ] || return 0
    sleep 0.1
  done
  return 1
}

terminate() {  # terminate SECONDS PID...: TERM, KILL what still lives after SECONDS; returns once all are gone
  # (or 10 s after KILL: a process killed in uninterruptible sleep, or a zombie nobody reaps)
  local seconds=$1 pid
  shift
  kill -TERM "$@" 2>/dev/null || true
  wait_gone "$seconds" "$@" && return 0
  local -a alive=()
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
  done
  log "killing ${alive[*]} (still alive $seconds s after TERM)"
  kill -KILL "${alive[@]}" 2>/dev/null || true
  wait_gone 10 "${alive[@]}" || log "${alive[*]} still there 10 s after KILL"
}

# wait_started PID TIMEOUT WHAT CHECK...: run CHECK once a second until it succeeds; die when the process PID
# (WHAT, for the message) exits first, or after TIMEOUT seconds.
wait_started() {
  local pid=$1 timeout=$2 what=$3 start=$SECONDS
  shift 3
  while :; do
    kill -0 "$pid" 2>/dev/null || die "the $what (pid $pid) died while starting"
    if "$@"; then
      return 0
    fi
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      die "not ready after $timeout s (pid $pid still running; stop it with stop.sh)"
    fi
    sleep 1
  done
}
