#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: hive_refresh
short_description: Load a run's record counts into the warehouse, rerun-safely, and refresh the final table
version_added: 0.1.0
description:
  - Overwrites the staging table with one row per file of the run, then replaces the final table's rows
    of those files (same customer and file name) with the staging rows, then runs the refresh statement.
    A file is therefore counted exactly once however often it is loaded; two capped runs on one day plus
    a rerun of either give final counts equal to the sum over all files.
  - Reads the final rows of the files back afterwards and fails if they do not match the files given.
  - Nothing runs, and C(changed) is false, when the final table already holds exactly these rows.
  - Table names are checked to be SQL identifiers; every value is bound as a parameter.
  - Engine V(sqlite) is the embedded warehouse of local runs (one SQLite file), updated in one transaction.
  - Engines V(hive), V(impala) and V(spark) (the Spark Thrift Server) are reached over the HiveServer2
    protocol with PyHive, each with its own SQL. They cannot update or delete rows of plain tables, so the
    final table is rewritten with C(INSERT OVERWRITE) from its rows of other files plus the staging rows
    (Spark through a work table C(<final_table>__mnaas_merge), as it cannot overwrite a table it reads).
    The staging table is overwritten by the first batch of 200 rows, the next batches are appended.
    Statements run one by one; a run that fails half-way is repaired by the next run.
  - SQL errors are reported with the server's sqlState and the first line of its message.
author: MNAAS platform team (@mnaas)
requirements:
  - PyHive with pure-sasl (C(pyhive[hive-pure-sasl])) on the managed node, for engines V(hive), V(impala) and V(spark).
  - For O(auth=KERBEROS), the C(kerberos) Python package and a Kerberos ticket (C(kinit)) on the managed node.
extends_documentation_fragment:
  - mnaas.backup.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the final table (read-only; for the HiveServer2 engines it connects and runs C(SHOW TABLES) and
        C(SELECT)) and returns the statements it would run; runs none.
  diff_mode:
    support: full
    details:
      - The statements that would run, as prepared text.
  idempotent:
    support: full
options:
  engine:
    description:
      - The warehouse engine. V(sqlite) is the embedded one; V(hive), V(impala) and V(spark) are reached over
        the HiveServer2 protocol.
    type: str
    choices: [sqlite, hive, impala, spark]
    default: sqlite
  database:
    description:
      - For V(sqlite), the database file, absolute; created when missing (its directory must exist). Required.
      - For the other engines, the database (schema) of the session, which qualifies the table names that are
        given without one; it must exist. Default V(default). (The option is of type C(path) for the SQLite file;
        a database name is left as it is.)
    type: path
  staging_table:
    description:
      - The staging table (legacy C(customers_files_inter_record_count_tblname)), optionally qualified as
        C(db.table). Overwritten on every run that changes something.
    type: str
    default: customers_files_inter_record_count
  final_table:
    description:
      - The final table (legacy C(customers_files_records_count_tblname)), optionally qualified as C(db.table).
        It must differ from O(staging_table).
    type: str
    default: customers_files_records_count
  create_tables:
    description:
      - Create both tables when they do not exist. For the HiveServer2 engines, text tables, fields separated
        by commas, escaped with a backslash.
    type: bool
    default: true
  refresh_statement:
    description:
      - Statement run after the update on the same connection; its only placeholder is the final table,
        written V({table}) or, as in the legacy properties file, V($dbname.<final table>) (both become the
        qualified final table). Any other placeholder is an error.
      - Without it, each engine refreshes its own way; V(sqlite) and V(hive) run nothing (see
        O(msck_repair)), V(impala) runs C(REFRESH <table>) (see O(invalidate_metadata)), V(spark) runs
        C(REFRESH TABLE <table>).
      - The legacy Impala template C(refresh $dbname.<final table>) means this default refresh on V(hive),
        V(impala) and V(spark) (Spark would read Impala's form as a path and refresh nothing).
    type: str
  files:
    description: The files of the run, as M(mnaas.backup.discover) returns them.
    type: list
    elements: dict
    required: true
  run_id:
    description: The run, written in each row.
    type: str
    required: true
  host:
    description: The HiveServer2 (or Impala daemon) host. Required for V(hive), V(impala) and V(spark).
    type: str
  port:
    description:
      - The HiveServer2 port. HiveServer2 and the Spark Thrift Server listen on 10000 (binary) or 10001 (HTTP);
        Impala daemons on 21050 (binary) or 28000 (HTTP).
    type: int
    default: 10000
  transport:
    description: The Thrift transport, as the server's C(hive.server2.transport.mode).
    type: str
    choices: [binary, http]
    default: binary
  http_path:
    description: For O(transport=http), the server's C(hive.server2.thrift.http.path).
    type: str
    default: cliservice
  auth:
    description:
      - The server's C(hive.server2.authentication). V(NONE) is SASL PLAIN without password check,
        V(NOSASL) a raw socket, V(LDAP) and V(CUSTOM) check O(password), V(KERBEROS) uses the ticket of the
        user running the module.
    type: str
    choices: [NONE, NOSASL, LDAP, KERBEROS, CUSTOM]
    default: NONE
  username:
    description: The user of the session; by default the user running the module.
    type: str
  password:
    description: The password, for O(auth=LDAP) and O(auth=CUSTOM).
    type: str
  kerberos_service_name:
    description: For O(auth=KERBEROS), the service principal's first part; V(hive) when not given (V(impala) for Impala).
    type: str
  use_ssl:
    description: Connect over TLS (C(hive.server2.use.SSL)), with either transport.
    type: bool
    default: false
  ca_cert:
    description: For O(use_ssl), a CA bundle to verify the server's certificate with, instead of the system's.
    type: path
  validate_certs:
    description: For O(use_ssl), verify the server's certificate and host name. Turn off only for tests.
    type: bool
    default: true
  configuration:
    description:
      - Session settings sent when the session opens (like C(SET key=value)), for example
        C(mapreduce.job.queuename) or C(spark.sql.shuffle.partitions).
    type: dict
  invalidate_metadata:
    description: For V(impala), refresh with C(INVALIDATE METADATA <table>) instead of C(REFRESH <table>).
    type: bool
    default: false
  msck_repair:
    description: For V(hive), run C(MSCK REPAIR TABLE <table>) after the update (for a partitioned final table).
    type: bool
    default: false
notes:
  - The HiveServer2 engines run the statements one by one, without a transaction. A run that stops half-way
    leaves the staging table (and for V(spark) the work table) in any state and the final table either as it
    was or updated; the next run overwrites the staging table and redoes the update, so the counts still end
    up exactly once per file.
seealso:
  - module: mnaas.backup.manifest
'''

EXAMPLES = r'''
- name: Count tonight's records into the embedded warehouse
  mnaas.backup.hive_refresh:
    engine: sqlite
    database: /var/lib/mnaas/warehouse.sqlite
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"

- name: Count them into Hive over LDAP, then refresh the table for Impala readers the legacy way
  mnaas.backup.hive_refresh:
    engine: impala
    host: impalad.example.com
    port: 21050
    auth: LDAP
    username: mnaas
    password: "{{ vault_mnaas_ldap_password }}"
    use_ssl: true
    database: mnaas
    refresh_statement: refresh $dbname.customers_files_records_count
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"

- name: Count them through the Spark Thrift Server over HTTP with Kerberos, on a queue of their own
  mnaas.backup.hive_refresh:
    engine: spark
    host: sts.example.com
    port: 10001
    transport: http
    auth: KERBEROS
    database: mnaas
    configuration:
      spark.sql.shuffle.partitions: 4
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"
'''

RETURN = r'''
statements:
  description: The statements run (or, in check mode, that would run); parameters are counted, not shown.
  returned: always
  type: list
  elements: str
  sample: ["INSERT OVERWRITE TABLE mnaas.customers_files_inter_record_count VALUES (%s, %s, %s, %s, %s, %s, %s, %s)  -- 8 parameters",
           "REFRESH TABLE mnaas.customers_files_records_count"]
to_update:
  description: Files whose final row is missing or different.
  returned: always
  type: int
  sample: 12
up_to_date:
  description: Files whose final row already holds these values.
  returned: always
  type: int
  sample: 0
records:
  description: Sum of the records of the files given.
  returned: always
  type: int
  sample: 25460
sql_state:
  description: On an SQL failure, the server's sqlState (for example V(42P01) for a missing table on Spark).
  returned: failure
  type: str
  sample: 42P01
statement:
  description: On an SQL failure, the statement that failed, as in RV(statements).
  returned: failure
  type: str
  sample: "INSERT OVERWRITE TABLE mnaas.customers_files_records_count SELECT ..."
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _warehouse
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import row_of
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import pyhive
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse.sqlite import SqliteEngine


def qualified(table: str, database: str) -> str:
    return table if '.' in table else '%s.%s' % (database, table)


def open_engine(module: AnsibleModule, staging: str, final: str) -> tuple[_warehouse.Engine, str, str]:
    """The engine of the options, opened once they are all checked, with the table names it uses."""
    params = module.params
    if params['engine'] == 'sqlite':
        database = check_absolute(params['database'], 'database')
    else:
        for key, engine in (('invalidate_metadata', 'impala'), ('msck_repair', 'hive')):
            if params[key] and params['engine'] != engine:
                raise ConfigError('%s applies to engine %s only, not %s' % (key, engine, params['engine']))
        database = _warehouse.check_identifier(params['database'] or 'default', 'database', qualified=False)
        staging, final = qualified(staging, database), qualified(final, database)
    if staging.lower() == final.lower():
        raise ConfigError('staging_table must differ from final_table (both are %r): the update would empty the final table' % final)
    if params['refresh_statement']:
        _warehouse.render_template(params['refresh_statement'], final)
    if params['engine'] == 'sqlite':
        return SqliteEngine(database, read_only=module.check_mode), staging, final
    server = pyhive.Server(
        host=params['host'], port=params['port'], transport=params['transport'], http_path=params['http_path'], auth=params['auth'],
        username=params['username'], password=params['password'],
        kerberos_service_name=params['kerberos_service_name'] or ('impala' if params['engine'] == 'impala' else None),
        database=database, configuration=params['configuration'], use_ssl=params['use_ssl'], ca_cert=params['ca_cert'],
        validate_certs=params['validate_certs'])
    dialect = pyhive.dialect_for(params['engine'], invalidate_metadata=params['invalidate_metadata'], msck_repair=params['msck_repair'])
    return pyhive.PyHiveEngine(dialect, server), staging, final


def logic(module: AnsibleModule) -> dict:
    params = module.params
    staging = _warehouse.check_identifier(params['staging_table'], 'staging_table')
    final = _warehouse.check_identifier(params['final_table'], 'final_table')
    rows = [_warehouse.to_tuple(row_of(found, params['run_id'], i)) for i, found in enumerate(params['files'])]
    engine, staging, final = open_engine(module, staging, final)
    try:
        plan = _warehouse.plan_update(engine, staging, final, rows, params['refresh_statement'], params['create_tables'])
        if plan.statements and not module.check_mode:
            engine.run(plan.statements)
            _warehouse.verify(engine, final, rows)
    finally:
        engine.close()
    shown = [s.shown() for s in plan.statements]
    result = {'changed': bool(plan.statements), 'statements': shown, 'to_update': plan.to_update,
              'up_to_date': plan.up_to_date, 'records': sum(int(f['records']) for f in params['files'])}
    if module._diff and shown:
        result['diff'] = {'prepared': '\n'.join(s + ';' for s in shown)}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'engine': {'type': 'str', 'choices': ['sqlite', 'hive', 'impala', 'spark'], 'default': 'sqlite'},
            'database': {'type': 'path'},
            'staging_table': {'type': 'str', 'default': 'customers_files_inter_record_count'},
            'final_table': {'type': 'str', 'default': 'customers_files_records_count'},
            'create_tables': {'type': 'bool', 'default': True},
            'refresh_statement': {'type': 'str'},
            'files': {'type': 'list', 'elements': 'dict', 'required': True},
            'run_id': {'type': 'str', 'required': True},
            'host': {'type': 'str'},
            'port': {'type': 'int', 'default': 10000},
            'transport': {'type': 'str', 'choices': ['binary', 'http'], 'default': 'binary'},
            'http_path': {'type': 'str', 'default': 'cliservice'},
            'auth': {'type': 'str', 'choices': ['NONE', 'NOSASL', 'LDAP', 'KERBEROS', 'CUSTOM'], 'default': 'NONE'},
            'username': {'type': 'str'},
            'password': {'type': 'str', 'no_log': True},
            'kerberos_service_name': {'type': 'str'},
            'use_ssl': {'type': 'bool', 'default': False},
            'ca_cert': {'type': 'path'},
            'validate_certs': {'type': 'bool', 'default': True},
            'configuration': {'type': 'dict'},
            'invalidate_metadata': {'type': 'bool', 'default': False},
            'msck_repair': {'type': 'bool', 'default': False},
        },
        required_if=[
            ('engine', 'sqlite', ['database']),
            ('engine', 'hive', ['host']),
            ('engine', 'impala', ['host']),
            ('engine', 'spark', ['host']),
            ('auth', 'LDAP', ['password']),
            ('auth', 'CUSTOM', ['password']),
        ],
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
