#!/usr/bin/env bash
# Start a real HiveServer2-protocol server for the tests: the Spark Thrift Server of PyPI's
# pyspark 4.0.1, on 127.0.0.1:10000 (binary Thrift, auth NONE; MNAAS_HS2_TRANSPORT=http for Thrift
# over HTTP), Derby metastore and warehouse under MNAAS_HS2_BASE (default /tmp/mnaas-hs2).
#
# Idempotent: installs pyspark (and PyHive) into MNAAS_PYTHON's environment only when missing;
# when our server already runs it only waits for it to be ready. Refuses to start when something
# else answers on the port. Ready = port open, then `SELECT 1` through PyHive. Fails fast, with
# the log's tail, when the JVM dies or is not ready within MNAAS_HS2_TIMEOUT seconds (180).
# See README.md beside this file.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

TIMEOUT=${MNAAS_HS2_TIMEOUT:-180}

# 1. pyspark and PyHive in the Python's environment, installed once.
install_missing() {
  local have
  have=$("$HS2_PYTHON" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || true)
  if [ "$have" != "$HS2_PYSPARK_VERSION" ]; then
    log "installing pyspark==$HS2_PYSPARK_VERSION into $("$HS2_PYTHON" -c 'import sys; print(sys.prefix)') (about 500 MB, once)"
    "$HS2_PYTHON" -m pip install --quiet --no-cache-dir "pyspark==$HS2_PYSPARK_VERSION" >&2 \
      || die "pip could not install pyspark==$HS2_PYSPARK_VERSION (see above)"
  fi
  if ! "$HS2_PYTHON" -c 'import pyhive.hive, thrift_sasl, puresasl' 2>/dev/null; then
    log "installing $HS2_PYHIVE_REQUIREMENT (to check the server answers)"
    "$HS2_PYTHON" -m pip install --quiet --no-cache-dir "$HS2_PYHIVE_REQUIREMENT" >&2 \
      || die "pip could not install $HS2_PYHIVE_REQUIREMENT (see above)"
  fi
}

# 2. Start the JVM (spark-submit execs java, so $! is the JVM's pid), in a session of its own so
#    that a Ctrl-C in the terminal that started it does not reach it.
launch() {
  local spark_home=$1
  local -a transport=(--hiveconf hive.server2.transport.mode="$HS2_TRANSPORT")
  case "$HS2_TRANSPORT" in
    binary) transport+=(--hiveconf hive.server2.thrift.port="$HS2_PORT") ;;
    http) transport+=(--hiveconf hive.server2.thrift.http.port="$HS2_PORT" --hiveconf hive.server2.thrift.http.path="$HS2_HTTP_PATH") ;;
    *) die "MNAAS_HS2_TRANSPORT must be binary or http, got $HS2_TRANSPORT" ;;
  esac
  if [ "$HS2_KEEP" = 1 ] && [ -f "$HS2_MARK" ] && [ -d "$HS2_BASE/metastore_db" ]; then
    # A restart that keeps the data: the Derby metastore and the warehouse of the last start stay.
    rm -f "$HS2_PID_FILE"
    [ -f "$HS2_LOG" ] && mv "$HS2_LOG" "$HS2_LOG.previous"
    log "restarting on the metastore and warehouse kept in $HS2_BASE (MNAAS_HS2_KEEP=1)"
  else
    rm -rf "$HS2_BASE"
  fi
  mkdir -p "$HS2_BASE/warehouse" "$HS2_BASE/tmp"
  touch "$HS2_MARK"
  (
    cd "$HS2_BASE"
    export SPARK_HOME=$spark_home SPARK_LOCAL_IP=$HS2_HOST
    exec setsid "$spark_home/bin/spark-submit" --master 'local[2]' --driver-memory 1g \
      --class "$HS2_MAIN" \
      --conf spark.ui.enabled=false --conf spark.driver.host=$HS2_HOST \
      --conf spark.driver.bindAddress=$HS2_HOST --conf spark.sql.shuffle.partitions=2 \
      --conf spark.sql.warehouse.dir="$HS2_BASE/warehouse" --conf spark.local.dir="$HS2_BASE/tmp" \
      --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$HS2_BASE/metastore_db;create=true" \
      --driver-java-options "-Dderby.system.home=$HS2_BASE -Djava.io.tmpdir=$HS2_BASE/tmp" \
      --hiveconf hive.server2.thrift.bind.host=$HS2_HOST "${transport[@]}" \
      >"$HS2_LOG" 2>&1 </dev/null
  ) &
  echo $! >"$HS2_PID_FILE"
  log "started pid $!, base $HS2_BASE, log $HS2_LOG"
}

# The server answers a query: what the tests and the modules need.
select_one() {
  "$HS2_PYTHON" - "$HS2_HOST" "$HS2_PORT" "$HS2_TRANSPORT" <<'PY' >/dev/null 2>&1
import sys
from pyhive import hive
if sys.argv[3] == 'http':
    conn = hive.connect(scheme='http', host=sys.argv[1], port=int(sys.argv[2]), username='mnaas')
else:
    conn = hive.connect(host=sys.argv[1], port=int(sys.argv[2]), username='mnaas', auth='NONE')
cur = conn.cursor()
cur.execute('SELECT 1')
sys.exit(0 if cur.fetchall() == [(1,)] else 1)
PY
}

# 3. Ready when the port is open and SELECT 1 answers.
ready() {
  hs2_port_answers && select_one
}

wait_ready() {
  local start=$SECONDS
  wait_started "$1" "$TIMEOUT" "server JVM" ready
  log "ready after $((SECONDS - start)) s: jdbc:hive2://$HS2_HOST:$HS2_PORT$(hs2_jdbc_suffix) (pid $1)"
}

main() {
  hs2_check_base
  hs2_check_python
  need java "to run the Spark Thrift Server"
  need setsid "to detach the server from the terminal"
  local pid
  pid=$(hs2_our_pid)
  if [ -n "$pid" ]; then
    log "already running (pid $pid)"
    wait_ready "$pid"
    return 0
  fi
  if hs2_port_answers; then
    die "something that is not our server (no live pid in $HS2_PID_FILE) already answers on $HS2_HOST:$HS2_PORT; stop it first"
  fi
  install_missing
  local spark_home
  spark_home=$(hs2_spark_home)
  [ -x "$spark_home/bin/spark-submit" ] || die "pyspark is installed but $spark_home/bin/spark-submit is missing"
  launch "$spark_home"
  wait_ready "$(cat "$HS2_PID_FILE")"
}

main "$@"
