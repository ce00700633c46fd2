# shellcheck shell=bash disable=SC2034
# (SC2034: the variables are used by the scripts that source this file.)
# Settings shared by start.sh, stop.sh and beeline.sh (sourced, not run).
#
#   MNAAS_PYTHON     the Python whose environment holds pyspark and PyHive
#                    (default: .venv/bin/python of the repository)
#   MNAAS_HS2_BASE   the running server's directory: metastore, warehouse, log, pid
#                    (default /tmp/mnaas-hs2)
#   MNAAS_HS2_PORT   the HiveServer2 port on 127.0.0.1 (default 10000)
#   MNAAS_HS2_TRANSPORT  binary (default) or http (Thrift over HTTP, path /cliservice): one per server;
#                    a second server needs its own MNAAS_HS2_BASE and MNAAS_HS2_PORT
#   MNAAS_HS2_KEEP   1: stop.sh keeps the base directory and start.sh restarts on the metastore and
#                    warehouse it finds there (the databases and tables written before stay)
#
# The server is the Spark Thrift Server of PyPI's pyspark: the HiveServer2 protocol, Spark SQL dialect.

HS2_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HS2_HERE/../lib.sh"
HS2_REPO=$(cd "$HS2_HERE/../../.." && pwd)
HS2_PYTHON=${MNAAS_PYTHON:-$HS2_REPO/.venv/bin/python}
HS2_BASE=${MNAAS_HS2_BASE:-/tmp/mnaas-hs2}
HS2_PORT=${MNAAS_HS2_PORT:-10000}
HS2_TRANSPORT=${MNAAS_HS2_TRANSPORT:-binary}
HS2_HTTP_PATH=cliservice
HS2_HOST=127.0.0.1
HS2_PID_FILE=$HS2_BASE/hs2.pid
HS2_LOG=$HS2_BASE/hs2.log
log_prefix=hiveserver2
log_file=$HS2_LOG
HS2_MARK=$HS2_BASE/.mnaas-hs2
HS2_KEEP=${MNAAS_HS2_KEEP:-}
HS2_MAIN=org.apache.spark.sql.hive.thriftserver.HiveThriftServer2
HS2_PYSPARK_VERSION=4.0.1
HS2_PYHIVE_REQUIREMENT='pyhive[hive-pure-sasl]==0.7.0'

# Refuse base directories whose removal would hurt.
hs2_check_base() {
  case "$HS2_BASE" in
    '' | / | /tmp | /tmp/ | "$HOME" | "$HOME"/ | /work | /work/*)
      log "MNAAS_HS2_BASE=$HS2_BASE is not a directory this script may own and remove"
      exit 2
      ;;
  esac
}

hs2_check_python() {
  if [ ! -x "$HS2_PYTHON" ]; then
    log "no Python at $HS2_PYTHON (set MNAAS_PYTHON, or run make venv)"
    exit 2
  fi
}

# SPARK_HOME of the installed pyspark, or nothing when pyspark is missing.
hs2_spark_home() {
  "$HS2_PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null || true
}

# The pid of our running server JVM, or nothing (a stale or foreign pid file yields nothing).
hs2_our_pid() {
  live_pid "$HS2_PID_FILE" " $HS2_MAIN "
}

# True when something accepts TCP connections on the server's port.
hs2_port_answers() {
  port_open "$HS2_HOST" "$HS2_PORT"
}

# What a JDBC URL adds after host:port for the transport.
hs2_jdbc_suffix() {
  if [ "$HS2_TRANSPORT" = http ]; then
    echo "/;transportMode=http;httpPath=$HS2_HTTP_PATH"
  fi
}
