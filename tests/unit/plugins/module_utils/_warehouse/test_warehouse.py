# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import sqlite3

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _warehouse
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import row_of
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import Statement, check_identifier, plan_update, verify
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse.sqlite import SqliteDialect, SqliteEngine

STAGING = 'stage'
FINAL = 'final'
COLS = 'customer, domain, file_name, file_size, file_mtime, records, sha256, run_id'


# --- identifiers ---------------------------------------------------------------------------------

@pytest.mark.parametrize('value', ['t', 'T_1', '_x', 'customers_files_records_count', 'mnaas.customers', 'a' * 128, 'db_1.t_2'])
def test_check_identifier_accepts(value):
    assert check_identifier(value, 'final_table') == value


@pytest.mark.parametrize('value', [
    't; DROP TABLE x', 'a.b.c', '1abc', '', 'a-b', 'a b', 't--', "t'", 't"', '`t`', '[t]', 'a.', '.a', 'a..b',
    'db.1t', 'a' * 129, 'tablé', None, 5, ['t'], 't\n', 'db.t\n',
])
def test_check_identifier_rejects(value):
    with pytest.raises(ConfigError) as caught:
        check_identifier(value, 'final_table')
    assert 'final_table' in caught.value.msg
    assert repr(value) in caught.value.msg


def test_check_identifier_unqualified():
    assert check_identifier('t', 'k', qualified=False) == 't'
    with pytest.raises(ConfigError, match='k must be an SQL identifier'):
        check_identifier('db.t', 'k', qualified=False)


# --- dialect -------------------------------------------------------------------------------------

def test_sqlite_dialect_statements():
    dialect = SqliteDialect()
    assert dialect.create('s') == Statement(
        'CREATE TABLE IF NOT EXISTS s (customer TEXT, domain TEXT, file_name TEXT, file_size INTEGER, file_mtime TEXT, '
        'records INTEGER, sha256 TEXT, run_id TEXT)')
    assert dialect.select_rows('f', ['a', 'b']) == Statement('SELECT %s FROM f WHERE file_name IN (?, ?)' % COLS, ('a', 'b'))
    assert dialect.clear('s') == Statement('DELETE FROM s')
    assert dialect.insert('s', [tuple(range(8)), tuple(range(8, 16))]) == Statement(
        'INSERT INTO s (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?)' % COLS, tuple(range(16)))
    assert dialect.merge('s', 'f') == [
        Statement('DELETE FROM f WHERE EXISTS (SELECT 1 FROM s s WHERE s.customer = f.customer AND s.file_name = f.file_name)'),
        Statement('INSERT INTO f (%s) SELECT %s FROM s' % (COLS, COLS)),
    ]
    assert dialect.refresh('f', 'REFRESH {table}') == [Statement('REFRESH f')]
    assert dialect.refresh('f', None) == []
    assert dialect.refresh('f', '') == []


def test_generic_dialect_types():
    assert _warehouse.Dialect().create('s').sql == (
        'CREATE TABLE IF NOT EXISTS s (customer STRING, domain STRING, file_name STRING, file_size BIGINT, '
        'file_mtime STRING, records BIGINT, sha256 STRING, run_id STRING)')


def test_statement_shown_never_splices_values():
    assert Statement('DELETE FROM s').shown() == 'DELETE FROM s'
    shown = Statement('INSERT INTO s VALUES (?, ?)', ("x'; DROP TABLE s; --", 1)).shown()
    assert shown == 'INSERT INTO s VALUES (?, ?)  -- 2 parameters'


# --- plan_update on a real SQLite database -------------------------------------------------------

def row(name: str, records: int = 10, customer: str = 'ACME', run_id: str = 'run-1', size: int = 100) -> tuple:
    found = {'customer': customer, 'domain': 'traffic', 'name': name, 'size': size, 'mtime': 1_764_021_600,
             'records': records, 'sha256': 'ab' * 32}
    return _warehouse.to_tuple(row_of(found, run_id))


@pytest.fixture
def database(tmp_path) -> str:
    return str(tmp_path / 'warehouse.sqlite')


def load(database: str, rows: list[tuple], refresh: str | None = None, create: bool = True) -> _warehouse.Plan:
    engine = SqliteEngine(database)
    try:
        the_plan = plan_update(engine, STAGING, FINAL, rows, refresh, create)
        if the_plan.statements:
            engine.run(the_plan.statements)
            verify(engine, FINAL, rows)
        return the_plan
    finally:
        engine.close()


def final_table(database: str) -> list[tuple]:
    conn = sqlite3.connect(database)
    try:
        return sorted(conn.execute('SELECT %s FROM %s' % (COLS, FINAL)).fetchall())
    finally:
        conn.close()


def test_first_load(database):
    rows = [row('a.csv', 3), row('b.csv', 4)]
    the_plan = load(database, rows)
    assert (the_plan.to_update, the_plan.up_to_date) == (2, 0)
    assert [s.sql.split(' (')[0] for s in the_plan.statements[:3]] == [
        'CREATE TABLE IF NOT EXISTS stage', 'CREATE TABLE IF NOT EXISTS final', 'DELETE FROM stage']
    assert final_table(database) == sorted(rows)


def test_same_rows_again_no_statements(database):
    rows = [row('a.csv', 3), row('b.csv', 4)]
    load(database, rows)
    assert load(database, rows) == _warehouse.Plan([], 0, 2)


def test_run_id_alone_is_not_a_change(database):
    load(database, [row('a.csv', run_id='first')])
    assert load(database, [row('a.csv', run_id='rerun')]).statements == []
    assert final_table(database) == [row('a.csv', run_id='first')]


def test_changed_records_for_one_file(database):
    load(database, [row('a.csv', 3), row('b.csv', 4)])
    the_plan = load(database, [row('a.csv', 3), row('b.csv', 40)])
    assert (the_plan.to_update, the_plan.up_to_date) == (1, 1)
    assert final_table(database) == sorted([row('a.csv', 3), row('b.csv', 40)])


def test_rerun_safety(database):
    a, b, c = row('A.csv', 11), row('B.csv', 22), row('C.csv', 33)
    load(database, [a, b])
    load(database, [b, c])
    load(database, [a, b])
    final = final_table(database)
    assert sorted(r[2] for r in final) == ['A.csv', 'B.csv', 'C.csv']
    assert sum(r[5] for r in final) == 11 + 22 + 33


@pytest.mark.parametrize('staging, final', [('s', 'final'), ('stage', 's'), ('main.stage', 'main.final')])
def test_rerun_safety_whatever_the_table_names(database, staging, final):
    """The merge must not depend on the tables' names (e.g. a final table named like the merge's alias)."""
    engine = SqliteEngine(database)
    try:
        for rows in ([row('A.csv', 1), row('B.csv', 2)], [row('C.csv', 3)], [row('A.csv', 1)]):
            engine.run(plan_update(engine, staging, final, rows, None, True).statements)
        assert sorted(r[2] for r in engine.query(Statement('SELECT %s FROM %s' % (COLS, final)))) == ['A.csv', 'B.csv', 'C.csv']
    finally:
        engine.close()


def test_same_file_name_two_customers(database):
    load(database, [row('x.csv', 1, customer='ACME'), row('x.csv', 2, customer='GLOBEX')])
    load(database, [row('x.csv', 5, customer='ACME')])
    assert [(r[0], r[5]) for r in final_table(database)] == [('ACME', 5), ('GLOBEX', 2)]


def test_duplicate_in_final_is_repaired(database):
    load(database, [row('a.csv', 3)])
    conn = sqlite3.connect(database)
    conn.execute('INSERT INTO %s SELECT * FROM %s' % (FINAL, FINAL))
    conn.commit()
    conn.close()
    assert len(final_table(database)) == 2
    the_plan = load(database, [row('a.csv', 3)])
    assert the_plan.to_update == 1
    assert final_table(database) == [row('a.csv', 3)]


def test_many_rows_are_batched(database):
    rows = [row('f%04d.csv' % i, i) for i in range(_warehouse.BATCH * 2 + 50)]
    the_plan = load(database, rows)
    assert sum(1 for s in the_plan.statements if s.sql.startswith('INSERT INTO stage')) == 3
    assert all(len(s.params) <= _warehouse.BATCH * 8 for s in the_plan.statements)
    assert sum(r[5] for r in final_table(database)) == sum(range(len(rows)))
    assert load(database, rows).statements == []


def test_refresh_statement_comes_last(database):
    engine = SqliteEngine(database)
    try:
        the_plan = plan_update(engine, STAGING, FINAL, [row('a.csv')], 'ANALYZE {table}', True)
        assert the_plan.statements[-1] == Statement('ANALYZE final')
        engine.run(the_plan.statements)
    finally:
        engine.close()


def test_create_tables_false(database):
    engine = SqliteEngine(database)
    try:
        the_plan = plan_update(engine, STAGING, FINAL, [row('a.csv')], None, False)
        assert not [s for s in the_plan.statements if s.sql.startswith('CREATE')]
        with pytest.raises(BackupError, match='no such table'):
            engine.run(the_plan.statements)
    finally:
        engine.close()


def test_empty_rows_no_statements(database):
    assert load(database, []) == _warehouse.Plan([], 0, 0)


def test_plan_without_engine():
    the_plan = plan_update(None, STAGING, FINAL, [row('a.csv')], None, True)
    assert the_plan.to_update == 1
    assert the_plan.statements[0].sql.startswith('CREATE TABLE IF NOT EXISTS stage (customer STRING')


def test_failed_run_rolls_back(database):
    load(database, [row('a.csv', 1)])
    engine = SqliteEngine(database)
    try:
        statements = plan_update(engine, STAGING, FINAL, [row('a.csv', 2)], None, True).statements
        with pytest.raises(BackupError) as caught:
            engine.run(statements + [Statement('INSERT INTO nowhere VALUES (?)', (1,))])
        assert 'INSERT INTO nowhere VALUES (?)  -- 1 parameters' in caught.value.msg
    finally:
        engine.close()
    assert final_table(database) == [row('a.csv', 1)]


def test_verify_raises_on_mismatch(database):
    rows = [row('a.csv', 3), row('b.csv', 4)]
    load(database, rows)
    conn = sqlite3.connect(database)
    conn.execute("UPDATE %s SET records = 99 WHERE file_name = 'b.csv'" % FINAL)
    conn.commit()
    conn.close()
    engine = SqliteEngine(database, read_only=True)
    try:
        with pytest.raises(BackupError) as caught:
            verify(engine, FINAL, rows)
    finally:
        engine.close()
    assert 'b.csv' in caught.value.msg
    assert caught.value.details['mismatched'] == ['b.csv']


def test_verify_raises_on_missing_row(database):
    load(database, [row('a.csv')])
    engine = SqliteEngine(database)
    try:
        with pytest.raises(BackupError, match='c.csv'):
            verify(engine, FINAL, [row('a.csv'), row('c.csv')])
    finally:
        engine.close()


def test_read_only_engine_on_missing_db_creates_nothing(tmp_path):
    database = str(tmp_path / 'absent.sqlite')
    engine = SqliteEngine(database, read_only=True)
    try:
        the_plan = plan_update(engine, STAGING, FINAL, [row('a.csv')], None, True)
        assert the_plan.to_update == 1
        with pytest.raises(BackupError, match='read-only'):
            engine.run(the_plan.statements)
    finally:
        engine.close()
    assert os.listdir(str(tmp_path)) == []


def test_read_only_engine_writes_nothing(database):
    load(database, [row('a.csv', 1)])
    before = os.stat(database).st_mtime_ns
    engine = SqliteEngine(database, read_only=True)
    try:
        the_plan = plan_update(engine, STAGING, FINAL, [row('a.csv', 2)], None, True)
        assert the_plan.to_update == 1
    finally:
        engine.close()
    assert os.stat(database).st_mtime_ns == before
    assert final_table(database) == [row('a.csv', 1)]


@pytest.mark.parametrize('file_name', ['ware#house.sqlite', 'ware?house.sqlite', 'ware%20house.sqlite', 'ware house.sqlite'])
def test_read_only_engine_any_file_name(tmp_path, file_name):
    """The read-only (check mode) engine opens exactly the database file named, whatever characters its name holds."""
    database = str(tmp_path / file_name)
    load(database, [row('a.csv', 1)])
    engine = SqliteEngine(database, read_only=True)
    try:
        assert plan_update(engine, STAGING, FINAL, [row('a.csv', 1)], None, True).statements == []
    finally:
        engine.close()
    assert os.listdir(str(tmp_path)) == [file_name]


@pytest.mark.parametrize('name', ["it's; DROP TABLE final; --.csv", 'a"b\'c.csv', 'x) OR 1=1 --.csv'])
def test_values_are_bound(database, name):
    rows = [row(name, 7), row('plain.csv', 1)]
    load(database, rows)
    assert final_table(database) == sorted(rows)
    conn = sqlite3.connect(database)
    try:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()
    assert tables == [FINAL, STAGING]
    assert load(database, rows).statements == []
