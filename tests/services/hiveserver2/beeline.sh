#!/usr/bin/env bash
# The beeline bundled with pyspark, connected to the test server (jdbc:hive2://127.0.0.1:10000 as
# user "test"); arguments are passed through. An independent check of what the modules wrote:
#   beeline.sh --silent=true --outputformat=csv2 -e 'SELECT * FROM db.t;'
# End every -e statement with ';'. Exit status 1 on SQL errors. One JVM per call (a few seconds).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

hs2_check_python
SPARK_HOME=$(hs2_spark_home)
if [ -z "$SPARK_HOME" ] || [ ! -x "$SPARK_HOME/bin/beeline" ]; then
  echo "beeline: pyspark is not installed for $HS2_PYTHON; run start.sh first" >&2
  exit 2
fi
export SPARK_HOME
exec "$SPARK_HOME/bin/beeline" -u "jdbc:hive2://$HS2_HOST:$HS2_PORT$(hs2_jdbc_suffix)" -n test "$@"
