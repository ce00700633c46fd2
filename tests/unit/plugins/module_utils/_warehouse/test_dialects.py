# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The exact statements each engine runs, template handling, the PyHive engine against a fake connection,
and the hive_refresh module's options for the HiveServer2 engines. The real server is in tests/system."""

from __future__ import annotations

import base64
import contextlib
import json
import typing as t
from unittest import mock

import pytest
from ansible.module_utils import basic
from pyhive import exc as pyhive_exc
from TCLIService import ttypes

from ansible_collections.mnaas.backup.plugins.module_utils import _warehouse
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import row_of
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import Statement, plan_update, render_template, verify
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import pyhive
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse.sqlite import SqliteDialect
from ansible_collections.mnaas.backup.plugins.modules import hive_refresh

COLS = 'customer, domain, file_name, file_size, file_mtime, records, sha256, run_id'
F_COLS = ', '.join('f.' + c for c in COLS.split(', '))
TYPES = ('customer STRING, domain STRING, file_name STRING, file_size BIGINT, file_mtime STRING, records BIGINT, '
         'sha256 STRING, run_id STRING')
TEXT = "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' ESCAPED BY '\\\\' STORED AS TEXTFILE"
CRLF = " TBLPROPERTIES ('serialization.escape.crlf'='true')"
MARKS = '(%s, %s, %s, %s, %s, %s, %s, %s)'
MERGED = ('SELECT %s FROM (SELECT %s FROM db.final f LEFT OUTER JOIN db.stage s ON f.customer = s.customer AND f.file_name = s.file_name '
          'WHERE s.file_name IS NULL UNION ALL SELECT %s FROM db.stage) merged' % (COLS, F_COLS, COLS))
LEGACY = 'refresh $dbname.final'


def row(name: str, records: int = 10, customer: str = 'ACME') -> tuple:
    found = {'customer': customer, 'domain': 'traffic', 'name': name, 'size': 100, 'mtime': 1_764_021_600,
             'records': records, 'sha256': 'ab' * 32}
    return _warehouse.to_tuple(row_of(found, 'run-1'))


class PlanEngine(_warehouse.Engine):
    """An engine whose final table does not exist yet: plan_update's statements for a first load."""

    def __init__(self, dialect: _warehouse.Dialect) -> None:
        self.dialect = dialect

    def query(self, statement: Statement) -> list[tuple]:
        return []

    def run(self, statements: list[Statement]) -> None:
        raise AssertionError('nothing runs in these tests')

    def has_table(self, table: str) -> bool:
        return False


def plan(dialect: _warehouse.Dialect, rows: list[tuple], refresh: str | None = None, staging: str = 'db.stage',
         final: str = 'db.final') -> list[Statement]:
    return plan_update(PlanEngine(dialect), staging, final, rows, refresh, True).statements


# --- the exact statements of each engine -------------------------------------------------------------

ROWS = [row('a.csv', 3), row('b.csv', 4)]
PARAMS = tuple(v for r in ROWS for v in r)


def test_sqlite_statements():
    assert plan(SqliteDialect(), ROWS, 'ANALYZE {table}', staging='stage', final='final') == [
        Statement('CREATE TABLE IF NOT EXISTS stage (customer TEXT, domain TEXT, file_name TEXT, file_size INTEGER, file_mtime TEXT, '
                  'records INTEGER, sha256 TEXT, run_id TEXT)'),
        Statement('CREATE TABLE IF NOT EXISTS final (customer TEXT, domain TEXT, file_name TEXT, file_size INTEGER, file_mtime TEXT, '
                  'records INTEGER, sha256 TEXT, run_id TEXT)'),
        Statement('DELETE FROM stage'),
        Statement('INSERT INTO stage (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?)' % COLS, PARAMS),
        Statement('DELETE FROM final WHERE EXISTS (SELECT 1 FROM stage s WHERE s.customer = final.customer AND s.file_name = final.file_name)'),
        Statement('INSERT INTO final (%s) SELECT %s FROM stage' % (COLS, COLS)),
        Statement('ANALYZE final'),
    ]


def test_hive_statements():
    assert plan(pyhive.HiveDialect(), ROWS, LEGACY) == [
        Statement('CREATE TABLE IF NOT EXISTS db.stage (%s) %s%s' % (TYPES, TEXT, CRLF)),
        Statement('CREATE TABLE IF NOT EXISTS db.final (%s) %s%s' % (TYPES, TEXT, CRLF)),
        Statement('INSERT OVERWRITE TABLE db.stage VALUES %s, %s' % (MARKS, MARKS), PARAMS),
        Statement('INSERT OVERWRITE TABLE db.final %s' % MERGED),
    ]


def test_hive_msck_repair():
    assert plan(pyhive.HiveDialect(msck_repair=True), ROWS)[-1] == Statement('MSCK REPAIR TABLE db.final')


def test_impala_statements():
    assert plan(pyhive.ImpalaDialect(), ROWS, LEGACY) == [
        Statement('CREATE TABLE IF NOT EXISTS db.stage (%s) %s' % (TYPES, TEXT)),
        Statement('CREATE TABLE IF NOT EXISTS db.final (%s) %s' % (TYPES, TEXT)),
        Statement('INSERT OVERWRITE TABLE db.stage VALUES %s, %s' % (MARKS, MARKS), PARAMS),
        Statement('INSERT OVERWRITE TABLE db.final %s' % MERGED),
        Statement('REFRESH db.final'),
    ]


def test_impala_invalidate_metadata():
    statements = plan(pyhive.ImpalaDialect(invalidate_metadata=True), ROWS)
    assert statements[-1] == Statement('INVALIDATE METADATA db.final')
    assert not [s for s in statements if s.sql.startswith('REFRESH')]


def test_spark_statements():
    assert plan(pyhive.SparkDialect(), ROWS, LEGACY) == [
        Statement('CREATE TABLE IF NOT EXISTS db.stage (%s) %s%s' % (TYPES, TEXT, CRLF)),
        Statement('CREATE TABLE IF NOT EXISTS db.final (%s) %s%s' % (TYPES, TEXT, CRLF)),
        Statement('INSERT OVERWRITE TABLE db.stage VALUES %s, %s' % (MARKS, MARKS), PARAMS),
        Statement('DROP TABLE IF EXISTS db.final__mnaas_merge'),
        Statement('CREATE TABLE db.final__mnaas_merge USING parquet AS %s' % MERGED),
        Statement('INSERT OVERWRITE TABLE db.final SELECT %s FROM db.final__mnaas_merge' % COLS),
        Statement('DROP TABLE db.final__mnaas_merge'),
        Statement('REFRESH TABLE db.final'),
    ]


@pytest.mark.parametrize('dialect', [pyhive.HiveDialect(), pyhive.ImpalaDialect(), pyhive.SparkDialect()], ids=lambda d: d.name)
def test_batches_first_overwrites_then_appends(dialect):
    rows = [row('f%04d.csv' % i, i) for i in range(_warehouse.BATCH * 2 + 50)]
    loads = [s for s in plan(dialect, rows) if s.sql.startswith('INSERT') and 'db.stage VALUES' in s.sql]
    assert [s.sql.split(' VALUES')[0] for s in loads] == [
        'INSERT OVERWRITE TABLE db.stage', 'INSERT INTO TABLE db.stage', 'INSERT INTO TABLE db.stage']
    assert [len(s.params) for s in loads] == [_warehouse.BATCH * 8, _warehouse.BATCH * 8, 50 * 8]
    assert tuple(v for s in loads for v in s.params) == tuple(v for r in rows for v in r)
    assert not [s for s in plan(dialect, rows) if s.sql.startswith('TRUNCATE')]


@pytest.mark.parametrize('dialect', [pyhive.HiveDialect(), pyhive.ImpalaDialect(), pyhive.SparkDialect()], ids=lambda d: d.name)
def test_no_update_or_delete(dialect):
    """These engines cannot UPDATE or DELETE rows of plain tables."""
    assert not [s for s in plan(dialect, ROWS) if s.sql.split()[0] in ('UPDATE', 'DELETE', 'MERGE')]


def test_merge_does_not_depend_on_table_names():
    """Aliases in the merge are fixed; tables named like them (f, s) are referred to by their names only in FROM."""
    merge = pyhive.HiveDialect().merge('db.f', 'db.s')[0].sql
    assert 'FROM db.s f LEFT OUTER JOIN db.f s ON f.customer = s.customer' in merge
    assert merge.endswith('UNION ALL SELECT %s FROM db.f) merged' % COLS)


def test_exists_statement():
    dialect = pyhive.SparkDialect()
    assert dialect.exists('db.t') == Statement("SHOW TABLES IN db LIKE 't'")
    assert dialect.exists('t') == Statement("SHOW TABLES LIKE 't'")


def test_values_are_parameters_never_spliced():
    name = "it's'); DROP TABLE db.final; --.csv"
    statements = plan(pyhive.SparkDialect(), [row(name)])
    assert all(name not in s.sql for s in statements)
    assert name in statements[2].params
    assert statements[2].shown() == 'INSERT OVERWRITE TABLE db.stage VALUES %s  -- 8 parameters' % MARKS


# --- refresh templates --------------------------------------------------------------------------------

@pytest.mark.parametrize('template, expected', [
    ('REFRESH {table}', 'REFRESH db.final'),
    ('refresh $dbname.final', 'refresh db.final'),
    ('refresh ${dbname}.final;', 'refresh db.final'),
    ('  COMPUTE STATS $dbname.FINAL ; ', 'COMPUTE STATS db.final'),
    ('ANALYZE TABLE {table} COMPUTE STATISTICS', 'ANALYZE TABLE db.final COMPUTE STATISTICS'),
])
def test_render_template(template, expected):
    assert render_template(template, 'db.final') == expected


def test_render_template_unqualified_table():
    assert render_template('refresh $dbname.customers_files_records_count', 'customers_files_records_count') == \
        'refresh customers_files_records_count'


@pytest.mark.parametrize('template, needle', [
    ('refresh $dbname.other_table', "names the table 'other_table'"),
    ('refresh $db.final', "unknown placeholder '$db'"),
    ('refresh ${dbname}', "unknown placeholder '${dbname}'"),
    ('INVALIDATE METADATA $dbname', "unknown placeholder '$dbname'"),
    ('refresh {final_table}', "unknown placeholder '{final_table}'"),
    ('refresh $table_name', "unknown placeholder '$table_name'"),
    ('refresh {table}; DROP TABLE x', 'single statement'),
])
def test_render_template_rejects(template, needle):
    with pytest.raises(ConfigError) as caught:
        render_template(template, 'db.final')
    assert needle in caught.value.msg
    assert repr(template) in caught.value.msg
    assert caught.value.msg.startswith('refresh_statement ')


@pytest.mark.parametrize('dialect, expected', [
    (SqliteDialect(), [Statement('refresh db.final')]),
    (pyhive.HiveDialect(), []),
    (pyhive.HiveDialect(msck_repair=True), [Statement('MSCK REPAIR TABLE db.final')]),
    (pyhive.ImpalaDialect(), [Statement('REFRESH db.final')]),
    (pyhive.ImpalaDialect(invalidate_metadata=True), [Statement('INVALIDATE METADATA db.final')]),
    (pyhive.SparkDialect(), [Statement('REFRESH TABLE db.final')]),
], ids=['sqlite', 'hive', 'hive-msck', 'impala', 'impala-invalidate', 'spark'])
def test_legacy_template_means_each_engines_refresh(dialect, expected):
    assert dialect.refresh('db.final', 'refresh $dbname.final') == expected


@pytest.mark.parametrize('dialect', [pyhive.HiveDialect(), pyhive.ImpalaDialect(), pyhive.SparkDialect()], ids=lambda d: d.name)
def test_other_templates_run_as_written(dialect):
    assert dialect.refresh('db.final', 'COMPUTE STATS {table}') == [Statement('COMPUTE STATS db.final')]
    assert dialect.refresh('db.final', '') == dialect.refresh('db.final', None) == dialect.default_refresh('db.final')


def test_legacy_template_of_another_table_is_not_the_refresh():
    assert pyhive.SparkDialect().refresh('db.final', 'REFRESH TABLE db.other') == [Statement('REFRESH TABLE db.other')]


# --- error messages -------------------------------------------------------------------------------------

JAVA_TRACE = ('Error running query: [TABLE_OR_VIEW_NOT_FOUND] org.apache.spark.sql.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] '
              'The table or view `db`.`nope` cannot be found. SQLSTATE: 42P01; line 1 pos 14;\n'
              "'Project [*]\n+- 'UnresolvedRelation [db, nope], [], false\n\n"
              '\tat org.apache.spark.sql.hive.thriftserver.HiveThriftServerErrors$.runningQueryError(HiveThriftServerErrors.scala:48)\n'
              '\tat java.base/java.lang.Thread.run(Thread.java:840)\n')


def server_exception(message: str = JAVA_TRACE, state: str | None = '42P01') -> Exception:
    """What PyHive raises on a server error: the response, whose status carries sqlState and errorMessage."""
    status = ttypes.TStatus(statusCode=ttypes.TStatusCode.ERROR_STATUS, sqlState=state, errorCode=0, errorMessage=message)
    return pyhive_exc.OperationalError(ttypes.TExecuteStatementResp(status=status))


def test_first_line_of_a_spark_message():
    assert pyhive.server_error(server_exception()) == (
        '42P01', '[TABLE_OR_VIEW_NOT_FOUND] The table or view `db`.`nope` cannot be found. SQLSTATE: 42P01; line 1 pos 14;')


@pytest.mark.parametrize('message, expected', [
    ('Error while compiling statement: FAILED: SemanticException [Error 10001]: Line 1:14 Table not found \'nope\'\n\tat x.y(Z.java:1)',
     "Error while compiling statement: FAILED: SemanticException [Error 10001]: Line 1:14 Table not found 'nope'"),
    ("AnalysisException: Could not resolve table reference: 'db.nope'\n", "AnalysisException: Could not resolve table reference: 'db.nope'"),
    ('\n\n  java.lang.RuntimeException: boom\n\tat a.b(C.java:1)', 'boom'),
    ('x' * 800, 'x' * 497 + '...'),
])
def test_first_line_of_other_messages(message, expected):
    assert pyhive.first_line(message) == expected


def test_transport_errors_have_no_status():
    assert pyhive.server_error(OSError('Could not connect to any of [(127.0.0.1, 10000)]')) == (
        None, 'Could not connect to any of [(127.0.0.1, 10000)]')
    assert pyhive.server_error(EOFError()) == (None, 'EOFError')


# --- the engine, over a fake DB-API connection ---------------------------------------------------------

class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.rows: list[tuple] = []

    def execute(self, sql: str, params: tuple | None = None) -> None:
        self.conn.executed.append((sql, params))
        answer = self.conn.answer(sql)
        if isinstance(answer, Exception):
            raise answer
        self.rows = answer or []

    def fetchall(self) -> list[tuple]:
        return list(self.rows)

    def close(self) -> None:
        pass


class FakeConnection:
    def __init__(self, answer: t.Callable[[str], t.Any] = lambda sql: []) -> None:
        self.answer = answer
        self.executed: list[tuple[str, tuple | None]] = []
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


SERVER = pyhive.Server(host='hs2.example.com', database='db', configuration={'spark.sql.shuffle.partitions': 4, 'flag': True})


def engine_with(conn: FakeConnection, dialect: pyhive.HiveQLDialect | None = None) -> pyhive.PyHiveEngine:
    opened = []

    def connector(server: pyhive.Server) -> FakeConnection:
        opened.append(server)
        return conn

    engine = pyhive.PyHiveEngine(dialect or pyhive.SparkDialect(), SERVER, connector)
    assert opened == [engine.server]
    return engine


def test_engine_session_configuration():
    engine = engine_with(FakeConnection())
    assert engine.server.configuration == {'set:hiveconf:spark.sql.shuffle.partitions': '4', 'set:hiveconf:flag': 'true'}
    impala = engine_with(FakeConnection(), pyhive.ImpalaDialect())
    assert impala.server.configuration == {'spark.sql.shuffle.partitions': '4', 'flag': 'true'}
    assert pyhive.SparkDialect().session_configuration({'set:hivevar:x': 1, 'use:database': 'db'}) == {
        'set:hivevar:x': '1', 'use:database': 'db'}


def test_engine_plans_and_runs_a_first_load():
    conn = FakeConnection()
    engine = engine_with(conn)
    statements = plan_update(engine, 'db.stage', 'db.final', ROWS, None, True).statements
    assert conn.executed == [("SHOW TABLES IN db LIKE 'final'", None)]
    engine.run(statements)
    assert conn.executed[1:] == [(s.sql, s.params or None) for s in statements]
    engine.close()
    assert conn.closed


def test_engine_reads_the_final_table_when_it_exists():
    final = {}

    def answer(sql: str) -> list[tuple]:
        if sql.startswith('SHOW TABLES'):
            return [('db', 'final', False), ('db', 'final_old', False)]
        if sql.startswith('SELECT'):
            return list(final.values())
        return []

    conn = FakeConnection(answer)
    engine = engine_with(conn)
    final.update({r[2]: r for r in ROWS})
    assert plan_update(engine, 'db.stage', 'db.final', ROWS, None, True) == _warehouse.Plan([], 0, 2)
    select = conn.executed[-1]
    assert select == ('SELECT %s FROM db.final WHERE file_name IN (%%s, %%s)' % COLS, ('a.csv', 'b.csv'))
    verify(engine, 'db.final', ROWS)
    del final['b.csv']
    with pytest.raises(BackupError, match='b.csv'):
        verify(engine, 'db.final', ROWS)


def test_has_table_compares_names():
    assert not engine_with(FakeConnection(lambda sql: [('db', 'final_x', False)])).has_table('db.final')
    assert engine_with(FakeConnection(lambda sql: [('FINAL',)])).has_table('db.final')


def test_engine_reports_sql_state_and_first_line_only():
    def answer(sql: str) -> t.Any:
        return server_exception() if sql.startswith('INSERT OVERWRITE TABLE db.final') else []

    engine = engine_with(FakeConnection(answer))
    statements = plan(pyhive.SparkDialect(), ROWS)
    with pytest.raises(BackupError) as caught:
        engine.run(statements)
    msg = caught.value.msg
    assert msg.startswith('SQL failed on spark at hs2.example.com:10000 (binary, auth NONE), statement 6 of 8 (sqlState 42P01): '
                          '[TABLE_OR_VIEW_NOT_FOUND] The table or view `db`.`nope` cannot be found.')
    assert msg.endswith('; statement: INSERT OVERWRITE TABLE db.final SELECT %s FROM db.final__mnaas_merge' % COLS)
    assert '\n' not in msg and 'at org.apache' not in msg and 'AnalysisException' not in msg
    assert caught.value.details == {'sql_state': '42P01', 'statement': statements[5].shown()}


def test_query_error_and_lost_connection():
    engine = engine_with(FakeConnection(lambda sql: EOFError()))
    with pytest.raises(BackupError) as caught:
        engine.query(Statement('SELECT 1'))
    assert caught.value.msg == 'SQL failed on spark at hs2.example.com:10000 (binary, auth NONE): EOFError; statement: SELECT 1'
    assert caught.value.details == {'statement': 'SELECT 1'}


def test_long_statements_are_cut_in_the_message():
    engine = engine_with(FakeConnection(lambda sql: server_exception('boom', None)))
    rows = [row('f%03d.csv' % i) for i in range(50)]
    with pytest.raises(BackupError) as caught:
        engine.run([pyhive.SparkDialect().overwrite('db.stage', rows)])
    assert len(caught.value.msg) < 700
    assert caught.value.details['statement'].endswith('-- 400 parameters')


def test_connect_errors_are_wrapped():
    def refuse(server):
        raise OSError('Could not connect to any of [(%r, %d)]' % (server.host, server.port))

    with pytest.raises(BackupError) as caught:
        pyhive.PyHiveEngine(pyhive.HiveDialect(), SERVER._replace(username='etl'), refuse)
    assert caught.value.msg == ("cannot open a session on hive at hs2.example.com:10000 (binary, auth NONE) as etl, database db: "
                                "Could not connect to any of [('hs2.example.com', 10000)]")

    def no_database(server):
        raise server_exception('Error running query: [SCHEMA_NOT_FOUND] org.apache.x.NoSuchNamespaceException: [SCHEMA_NOT_FOUND] '
                               'The schema `db` cannot be found.\n\tat x', '42704')

    with pytest.raises(BackupError) as caught:
        pyhive.PyHiveEngine(pyhive.SparkDialect(), SERVER, no_database)
    assert caught.value.msg.endswith('database db (sqlState 42704): [SCHEMA_NOT_FOUND] The schema `db` cannot be found.')
    assert caught.value.details == {'sql_state': '42704'}


def test_missing_pyhive(monkeypatch):
    monkeypatch.setattr(pyhive, 'HAS_PYHIVE', False)
    monkeypatch.setattr(pyhive, 'PYHIVE_IMPORT_ERROR', 'Traceback: No module named pyhive')
    with pytest.raises(BackupError) as caught:
        pyhive.PyHiveEngine(pyhive.SparkDialect(), SERVER)
    assert 'pyhive[hive-pure-sasl]' in caught.value.msg
    assert caught.value.details == {'exception': 'Traceback: No module named pyhive'}


# --- connections: how each transport and auth reaches PyHive -------------------------------------------

@pytest.fixture
def hive_connect(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(pyhive.hive, 'connect', lambda **kwargs: calls.append(kwargs) or FakeConnection())
    return calls


@pytest.mark.parametrize('auth, extra, expected', [
    ('NONE', {}, {'auth': 'NONE'}),
    ('NOSASL', {}, {'auth': 'NOSASL'}),
    ('LDAP', {'password': 'secret'}, {'auth': 'LDAP', 'password': 'secret'}),
    ('CUSTOM', {'password': 'secret'}, {'auth': 'CUSTOM', 'password': 'secret'}),
    ('KERBEROS', {}, {'auth': 'KERBEROS', 'kerberos_service_name': 'hive'}),
    ('KERBEROS', {'kerberos_service_name': 'impala'}, {'auth': 'KERBEROS', 'kerberos_service_name': 'impala'}),
    ('NONE', {'password': 'ignored'}, {'auth': 'NONE'}),
])
def test_binary_connections(hive_connect, auth, extra, expected):
    pyhive.connect(pyhive.Server(host='h', port=10001, auth=auth, username='u', database='db', configuration={'a': 'b'}, **extra))
    assert hive_connect == [dict(expected, host='h', port=10001, username='u', database='db', configuration={'a': 'b'})]


@pytest.mark.parametrize('use_ssl, auth, extra, header', [
    (False, 'NONE', {}, 'Basic ' + base64.b64encode(b'u:x').decode()),
    (True, 'LDAP', {'password': 'p@ss'}, 'Basic ' + base64.b64encode(b'u:p@ss').decode()),
])
def test_http_connections(hive_connect, use_ssl, auth, extra, header):
    pyhive.connect(pyhive.Server(host='h', port=10001, transport='http', http_path='/gateway/cliservice', auth=auth, username='u',
                                 use_ssl=use_ssl, **extra))
    (call,) = hive_connect
    transport = call.pop('thrift_transport')
    assert call == {'username': 'u', 'database': 'default', 'configuration': {}}
    assert (transport.scheme, transport.host, transport.port, transport.path) == ('https' if use_ssl else 'http', 'h', 10001, '/gateway/cliservice')
    assert transport._THttpClient__custom_headers == {'Authorization': header}
    if use_ssl:
        assert transport.context.verify_mode.name == 'CERT_REQUIRED'


def test_https_without_verification(hive_connect):
    pyhive.connect(pyhive.Server(host='h', transport='http', use_ssl=True, validate_certs=False))
    context = hive_connect[0]['thrift_transport'].context
    assert (context.check_hostname, context.verify_mode.name) == (False, 'CERT_NONE')


def test_http_kerberos_needs_the_kerberos_package(hive_connect, monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'kerberos', None)
    with pytest.raises(BackupError, match='kerberos'):
        pyhive.connect(pyhive.Server(host='h', transport='http', auth='KERBEROS'))
    assert hive_connect == []


@pytest.mark.parametrize('auth, transport_class', [('NOSASL', 'TBufferedTransport'), ('LDAP', 'TSaslClientTransport')])
def test_binary_tls(hive_connect, auth, transport_class):
    pyhive.connect(pyhive.Server(host='h', port=10000, auth=auth, use_ssl=True, password='p' if auth == 'LDAP' else None))
    transport = hive_connect[0]['thrift_transport']
    assert type(transport).__name__ == transport_class
    assert set(hive_connect[0]) == {'thrift_transport', 'username', 'database', 'configuration'}


# --- the module's options for the HiveServer2 engines -------------------------------------------------

FILES = [{'customer': 'ACME', 'domain': 'traffic', 'name': 'a.csv', 'size': 10, 'mtime': 1_764_021_600.0, 'records': 3, 'sha256': 'cd'}]


@contextlib.contextmanager
def module_args(args: dict) -> t.Iterator[None]:
    try:
        from ansible.module_utils.testing import patch_module_args  # pylint: disable=import-outside-toplevel
    except ImportError:  # ansible-core < 2.19
        with mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode()):
            yield
        return
    with patch_module_args(args):
        yield


def run_module(capsys, args: dict, check_mode: bool = False) -> dict:
    capsys.readouterr()
    with module_args(dict(args, _ansible_check_mode=check_mode)):
        with pytest.raises(SystemExit):
            hive_refresh.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def opened(monkeypatch) -> list[tuple[pyhive.HiveQLDialect, pyhive.Server, FakeConnection]]:
    """Every engine the module opens, with a fake connection whose final table does not exist."""
    sessions = []
    real = pyhive.PyHiveEngine.__init__

    def init(self, dialect, server, connector=None):
        conn = FakeConnection()
        sessions.append((dialect, server, conn))
        real(self, dialect, server, lambda s: conn)

    monkeypatch.setattr(pyhive.PyHiveEngine, '__init__', init)
    return sessions


def test_module_check_mode_returns_the_statements(capsys, opened):
    result = run_module(capsys, {'engine': 'spark', 'host': 'sts', 'database': 'mnaas', 'files': FILES, 'run_id': 'r1',
                                 'refresh_statement': 'refresh $dbname.customers_files_records_count',
                                 'configuration': {'spark.sql.shuffle.partitions': 2}}, check_mode=True)
    assert (result['changed'], result['to_update']) == (True, 1)
    assert result['statements'][-1] == 'REFRESH TABLE mnaas.customers_files_records_count'
    assert result['statements'][2] == 'INSERT OVERWRITE TABLE mnaas.customers_files_inter_record_count VALUES %s  -- 8 parameters' % MARKS
    ((dialect, server, conn),) = opened
    assert dialect.name == 'spark'
    assert server == pyhive.Server(host='sts', database='mnaas', configuration={'spark.sql.shuffle.partitions': 2})
    assert [sql for sql, params in conn.executed] == ["SHOW TABLES IN mnaas LIKE 'customers_files_records_count'"]


def test_module_runs_and_verifies(capsys, opened, monkeypatch):
    monkeypatch.setattr(_warehouse, 'verify', lambda engine, final, rows: None)
    result = run_module(capsys, {'engine': 'impala', 'host': 'impalad', 'port': 21050, 'files': FILES, 'run_id': 'r1',
                                 'final_table': 'other.final', 'invalidate_metadata': True})
    assert result['changed'] is True
    conn = opened[0][2]
    assert [sql.split(' (')[0] for sql, params in conn.executed[1:3]] == [
        'CREATE TABLE IF NOT EXISTS default.customers_files_inter_record_count', 'CREATE TABLE IF NOT EXISTS other.final']
    assert conn.executed[-1] == ('INVALIDATE METADATA other.final', None)


def test_module_fails_when_verification_fails(capsys, opened):
    """The fake server accepts every statement and stores nothing: reading the counts back must fail."""
    result = run_module(capsys, {'engine': 'hive', 'host': 'hs2', 'files': FILES, 'run_id': 'r1'})
    assert result['failed'] is True
    assert 'does not match the manifest' in result['msg']
    assert result['mismatched'] == ['a.csv']


@pytest.mark.parametrize('extra, needle', [
    ({'engine': 'spark'}, 'engine is spark but all of the following are missing: host'),
    ({'engine': 'sqlite'}, 'engine is sqlite but all of the following are missing: database'),
    ({'engine': 'hive', 'host': 'h', 'auth': 'LDAP'}, 'auth is LDAP but all of the following are missing: password'),
    ({'engine': 'hive', 'host': 'h', 'database': 'a.b'}, "database must be an SQL identifier (letters, digits, \"_\"), got 'a.b'"),
    ({'engine': 'hive', 'host': 'h', 'database': 'x; DROP'}, "got 'x; DROP'"),
    ({'engine': 'spark', 'host': 'h', 'final_table': 'f; DROP TABLE x'}, "final_table must be an SQL identifier"),
    ({'engine': 'spark', 'host': 'h', 'staging_table': 'default.customers_files_records_count'}, 'staging_table must differ'),
    ({'engine': 'spark', 'host': 'h', 'database': 'db', 'staging_table': 'x', 'final_table': 'db.X'}, 'staging_table must differ'),
    ({'engine': 'spark', 'host': 'h', 'invalidate_metadata': True}, 'invalidate_metadata applies to engine impala only, not spark'),
    ({'engine': 'impala', 'host': 'h', 'msck_repair': True}, 'msck_repair applies to engine hive only, not impala'),
    ({'engine': 'impala', 'host': 'h', 'refresh_statement': 'refresh $dbname.other'}, "refresh_statement 'refresh $dbname.other' names"),
])
def test_module_rejects_bad_options_before_connecting(capsys, opened, extra, needle):
    result = run_module(capsys, dict({'files': FILES, 'run_id': 'r1'}, **extra))
    assert result['failed'] is True
    assert needle in result['msg']
    assert opened == []


def test_module_password_is_not_logged(capsys, opened):
    result = run_module(capsys, {'engine': 'hive', 'host': 'h', 'auth': 'LDAP', 'username': 'u', 'password': 'Sup3rSecret',
                                 'files': FILES, 'run_id': 'r1'}, check_mode=True)
    assert 'Sup3rSecret' not in json.dumps(result)
    assert opened[0][1].password == 'Sup3rSecret'
