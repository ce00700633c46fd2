#!/usr/bin/env bash
# Hadoop's own client, FsShell (what `hdfs dfs` runs), against the test HDFS:
#   fsshell.sh -cat /path          fsshell.sh -checksum /path          fsshell.sh -put -f local /path
# Arguments are passed through; HADOOP_USER_NAME selects the (simple auth) user, root by default.
# One JVM per call. Needs the jars start.sh downloads. MNAAS_HDFS_RPC_PORT picks the cluster (8020).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

if [ ! -f "$HDFS_LIB/hadoop-client-api-3.4.1.jar" ]; then
  echo "fsshell: no Hadoop jars in $HDFS_LIB; run start.sh first" >&2
  exit 2
fi
# A client configuration of its own (warnings only, on stderr), so that -cat prints only the file.
conf=$HDFS_LIB/client-conf
[ "$HDFS_RPC_PORT" = 8020 ] || conf=$conf-$HDFS_RPC_PORT
if [ ! -f "$conf/log4j.properties" ] || [ "$HDFS_HERE/env.sh" -nt "$conf/log4j.properties" ]; then
  hdfs_write_conf "$conf.$$" WARN
  rm -rf "$conf"
  mv -T "$conf.$$" "$conf" 2>/dev/null || rm -rf "$conf.$$"
fi
exec java -Xmx512m "${HDFS_JAVA_OPTS[@]}" -cp "$conf:$HDFS_LIB/*" org.apache.hadoop.fs.FsShell \
  -fs "hdfs://127.0.0.1:$HDFS_RPC_PORT" "$@"
