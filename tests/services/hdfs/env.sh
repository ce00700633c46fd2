# shellcheck shell=bash disable=SC2034
# (SC2034: the variables are used by the scripts that source this file.)
# Settings shared by start.sh, stop.sh and fsshell.sh (sourced, not run).
#
#   MNAAS_HDFS_LIB   where the Hadoop jars are cached   (default ~/.cache/mnaas-backup/hdfs-lib)
#   MNAAS_HDFS_BASE  the running cluster's directory     (default /tmp/mnaas-hdfs)
#   MNAAS_HDFS_RPC_PORT   NameNode RPC port, what FsShell talks to   (default 8020)
#   MNAAS_HDFS_HTTP_PORT  NameNode HTTP port, WebHDFS                (default 9870)
#   MNAAS_HDFS_AUDIT      1: the NameNode's audit log (one line per namespace operation) goes to hdfs.log
#   MNAAS_HDFS_KEEP       1: stop.sh keeps the base directory and start.sh restarts on the storage it finds there
#                         (NameNode metadata and DataNode blocks), without formatting: a restart that keeps the data
#
# The cluster listens on 127.0.0.1 only. A second cluster beside the shared one (a benchmark's own)
# needs its own base and both ports, e.g. MNAAS_HDFS_BASE=/tmp/x MNAAS_HDFS_RPC_PORT=18020 MNAAS_HDFS_HTTP_PORT=19870.

HDFS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HDFS_HERE/../lib.sh"
HDFS_LIB=${MNAAS_HDFS_LIB:-$HOME/.cache/mnaas-backup/hdfs-lib}
HDFS_BASE=${MNAAS_HDFS_BASE:-/tmp/mnaas-hdfs}
HDFS_PID_FILE=$HDFS_BASE/hdfs.pid
HDFS_LOG=$HDFS_BASE/hdfs.log
log_prefix=hdfs
log_file=$HDFS_LOG
HDFS_READY_FILE=$HDFS_BASE/cluster-conf.xml
HDFS_KEEP=${MNAAS_HDFS_KEEP:-}
# The first NameNode storage directory MiniDFSCluster manages: present once a namespace was formatted there.
HDFS_NAME_VERSION=$HDFS_BASE/dfs/name-0-1/current/VERSION
HDFS_RPC_PORT=${MNAAS_HDFS_RPC_PORT:-8020}
HDFS_HTTP_PORT=${MNAAS_HDFS_HTTP_PORT:-9870}
HDFS_AUDIT_LEVEL=WARN
[ "${MNAAS_HDFS_AUDIT:-}" = 1 ] && HDFS_AUDIT_LEVEL=INFO
HDFS_URL=http://127.0.0.1:$HDFS_HTTP_PORT
HDFS_MAIN=org.apache.hadoop.test.MiniDFSClusterManager
HDFS_FALLBACK_MAIN=MnaasMiniHdfs

# The --add-opens that later Hadoop releases pass on Java 17 (Hadoop 3.4.1 predates them).
HDFS_JAVA_OPTS=(
  -XX:+IgnoreUnrecognizedVMOptions -Djava.net.preferIPv4Stack=true
  --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.math=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.text=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.zip=ALL-UNNAMED --add-opens=java.base/sun.security.util=ALL-UNNAMED
  --add-opens=java.base/sun.security.x509=ALL-UNNAMED
)

# Refuse base directories whose removal would hurt, and ports that are not ports.
hdfs_check_base() {
  local port
  for port in "$HDFS_RPC_PORT" "$HDFS_HTTP_PORT"; do
    case "$port" in
      '' | *[!0-9]*)
        echo "MNAAS_HDFS_RPC_PORT / MNAAS_HDFS_HTTP_PORT must be port numbers, got '$port'" >&2
        exit 2
        ;;
    esac
  done
  if [ "$HDFS_RPC_PORT" = "$HDFS_HTTP_PORT" ]; then
    echo "MNAAS_HDFS_RPC_PORT and MNAAS_HDFS_HTTP_PORT are both $HDFS_RPC_PORT" >&2
    exit 2
  fi
  case "$HDFS_BASE" in
    '' | / | /tmp | /tmp/ | "$HOME" | "$HOME"/)
      echo "MNAAS_HDFS_BASE=$HDFS_BASE is not a directory this script may own and remove" >&2
      exit 2
      ;;
  esac
}

# The pid of our running cluster JVM, or nothing (a stale or foreign pid file yields nothing).
hdfs_our_pid() {
  live_pid "$HDFS_PID_FILE" "$HDFS_MAIN" "$HDFS_FALLBACK_MAIN"
}

# Write core-site.xml, hdfs-site.xml and log4j.properties into directory $1; $2 is the log level,
# $3 the audit log's (WARN: off; INFO: one line per namespace operation).
hdfs_write_conf() {
  local dir=$1 level=$2 audit=${3:-WARN}
  mkdir -p "$dir"
  cat >"$dir/core-site.xml" <<EOF
<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://127.0.0.1:$HDFS_RPC_PORT</value></property>
  <property><name>hadoop.security.authentication</name><value>simple</value></property>
  <property><name>hadoop.proxyuser.root.hosts</name><value>*</value></property>
  <property><name>hadoop.proxyuser.root.groups</name><value>*</value></property>
</configuration>
EOF
  cat >"$dir/hdfs-site.xml" <<EOF
<?xml version="1.0"?>
<configuration>
  <property><name>dfs.replication</name><value>1</value></property>
  <property><name>dfs.permissions.enabled</name><value>true</value></property>
  <property><name>dfs.namenode.resource.du.reserved</name><value>0</value></property>
  <property><name>dfs.namenode.fs-limits.min-block-size</name><value>0</value></property>
  <!-- Closing a file polls the NameNode until the DataNode has reported the last block, sleeping
       400 ms first by default (in FsShell, and in the DataNode's own client behind WebHDFS): most
       small files then cost 0.4 s here. Poll from 10 ms, with retries for about 10 s in all. -->
  <property><name>dfs.client.block.write.locateFollowingBlock.initial.delay.ms</name><value>10</value></property>
  <property><name>dfs.client.block.write.locateFollowingBlock.retries</name><value>10</value></property>
</configuration>
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=$level, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.BlockStateChange=WARN
log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN
log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=$audit
EOF
}
