#!/usr/bin/env bash
# Start a real single-node HDFS for the tests: NameNode + DataNode of Hadoop 3.4.1 in one JVM
# (MiniDFSCluster, jars from Maven Central), on 127.0.0.1: RPC 8020, WebHDFS 9870 (or
# MNAAS_HDFS_RPC_PORT / MNAAS_HDFS_HTTP_PORT, with its own MNAAS_HDFS_BASE, for a second cluster).
#
# Idempotent: when our cluster already runs it only waits for it to be ready. Refuses to start
# when something else answers on the HTTP or RPC port. Fails fast, with the log's tail, when the JVM dies or
# is not ready within MNAAS_HDFS_TIMEOUT seconds (180). See README.md beside this file.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

TIMEOUT=${MNAAS_HDFS_TIMEOUT:-180}

http_answers() {
  curl -fs -o /dev/null --max-time 5 "$HDFS_URL/webhdfs/v1/?op=LISTSTATUS&user.name=root"
}

# Out of safe mode, so writes are taken: a NameNode restarted on kept storage stays read-only until the
# DataNode has reported its blocks.
out_of_safe_mode() {
  curl -fs --max-time 5 "$HDFS_URL/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo" | grep -q '"Safemode" : ""'
}

port_answers() {
  curl -s -o /dev/null --max-time 5 "$HDFS_URL/" || port_open 127.0.0.1 "$HDFS_RPC_PORT"
}

# 1. The jars, downloaded once into the cache.
fetch_jars() {
  if [ -f "$HDFS_LIB/hadoop-client-minicluster-3.4.1.jar" ] && [ -f "$HDFS_LIB/.complete" ]; then
    return 0
  fi
  need mvn "to download the Hadoop jars from Maven Central"
  log "downloading the Hadoop 3.4.1 jars into $HDFS_LIB (about 100 MB, once)"
  mkdir -p "$HDFS_LIB"
  mvn -B -q -Dstyle.color=never -f "$HDFS_HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$HDFS_LIB" >&2 || die "mvn could not download the jars (see above)"
  touch "$HDFS_LIB/.complete"
}

jar_lists() {
  local jar=$1 entry=$2
  if command -v unzip >/dev/null 2>&1; then
    unzip -l "$jar" "$entry" >/dev/null 2>&1
  else
    jar tf "$jar" | grep -qxF "$entry"
  fi
}

# 2. The launcher: Hadoop's MiniDFSClusterManager, or our own tiny main when the jar lacks it.
choose_main() {
  if [ "${MNAAS_HDFS_LAUNCHER:-}" != fallback ] &&
    jar_lists "$HDFS_LIB/hadoop-client-minicluster-3.4.1.jar" 'org/apache/hadoop/test/MiniDFSClusterManager.class'; then
    MAIN=$HDFS_MAIN
    return 0
  fi
  log "using the fallback launcher (MiniDFSClusterManager missing from the jar, or MNAAS_HDFS_LAUNCHER=fallback)"
  MAIN=$HDFS_FALLBACK_MAIN
  local classes=$HDFS_LIB/fallback-classes
  if [ ! -f "$classes/$HDFS_FALLBACK_MAIN.class" ] || [ "$HDFS_HERE/$HDFS_FALLBACK_MAIN.java" -nt "$classes/$HDFS_FALLBACK_MAIN.class" ]; then
    need javac "to compile the fallback launcher"
    mkdir -p "$classes"
    javac -d "$classes" -cp "$HDFS_LIB/*" "$HDFS_HERE/$HDFS_FALLBACK_MAIN.java" || die "cannot compile the fallback launcher"
  fi
}

# 3. Start the JVM: on a fresh, formatted namespace; or, with MNAAS_HDFS_KEEP=1 and the storage of an
#    earlier start in the base directory, on that storage unformatted (the NameNode loads its image and
#    edits, the DataNode reports its blocks: the files written before the restart are there).
launch() {
  local conf=$HDFS_BASE/conf keep=
  local -a format=(-format)
  if [ "$HDFS_KEEP" = 1 ] && [ -f "$HDFS_NAME_VERSION" ]; then
    format=() keep=keep
    rm -f "$HDFS_READY_FILE" "$HDFS_PID_FILE"
    [ -f "$HDFS_LOG" ] && mv "$HDFS_LOG" "$HDFS_LOG.previous"
  else
    rm -rf "$HDFS_BASE"
  fi
  mkdir -p "$HDFS_BASE"
  hdfs_write_conf "$conf" INFO "$HDFS_AUDIT_LEVEL"
  local -a cmd=(java -Xmx1g "${HDFS_JAVA_OPTS[@]}" -Dtest.build.data="$HDFS_BASE/test-data")
  if [ "$MAIN" = "$HDFS_MAIN" ]; then
    # Without -format MiniDFSClusterManager builds the cluster with format(false) on the same directories.
    cmd+=(-cp "$conf:$HDFS_LIB/*" "$MAIN" "${format[@]}" -datanodes 1 -nnport "$HDFS_RPC_PORT" -httpport "$HDFS_HTTP_PORT"
      -writeConfig "$HDFS_READY_FILE" -D hdfs.minidfs.basedir="$HDFS_BASE/dfs" -D hadoop.tmp.dir="$HDFS_BASE/tmp")
  else
    cmd+=(-Dhadoop.tmp.dir="$HDFS_BASE/tmp" -cp "$conf:$HDFS_LIB/*:$HDFS_LIB/fallback-classes" "$MAIN" "$HDFS_BASE/dfs" "$HDFS_READY_FILE"
      "$HDFS_RPC_PORT" "$HDFS_HTTP_PORT" ${keep:+"$keep"})
  fi
  nohup "${cmd[@]}" >"$HDFS_LOG" 2>&1 </dev/null &
  echo $! >"$HDFS_PID_FILE"
  log "started pid $! ($MAIN), base $HDFS_BASE, log $HDFS_LOG${keep:+, on the storage kept from the last start (not formatted)}"
}

# 4. Ready when the configuration was written (the DataNode registered), WebHDFS lists / and the
#    NameNode is out of safe mode.
ready() {
  [ -f "$HDFS_READY_FILE" ] && http_answers && out_of_safe_mode
}

wait_ready() {
  local start=$SECONDS
  wait_started "$1" "$TIMEOUT" "HDFS JVM" ready
  log "ready after $((SECONDS - start)) s: $HDFS_URL (WebHDFS), hdfs://127.0.0.1:$HDFS_RPC_PORT"
}

main() {
  hdfs_check_base
  need java "to run the NameNode and DataNode"
  need curl "to check WebHDFS answers"
  local pid
  pid=$(hdfs_our_pid)
  if [ -n "$pid" ]; then
    log "already running (pid $pid)"
    wait_ready "$pid"
    return 0
  fi
  if port_answers; then
    die "something that is not our cluster already answers on $HDFS_URL or port $HDFS_RPC_PORT; stop it first"
  fi
  fetch_jars
  choose_main
  launch
  wait_ready "$(cat "$HDFS_PID_FILE")"
}

main "$@"
