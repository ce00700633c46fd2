# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import sqlite3

import pytest

from ansible_collections.mnaas.backup.plugins.modules import hive_refresh


def found(name: str, records: int, customer: str = 'ACME') -> dict:
    return {'customer': customer, 'domain': 'traffic', 'name': name, 'path': '/in/' + name, 'size': 10,
            'mtime': 1_764_021_600.0, 'records': records, 'sha256': 'cd' * 32}


FILES = [found('a.csv', 3), found('b.csv', 4), found('c.csv', 5, 'GLOBEX')]


@pytest.fixture
def database(tmp_path) -> str:
    return str(tmp_path / 'warehouse.sqlite')


def args(database: str, files=None, run_id: str = 'run-1', **extra) -> dict:
    result = {'database': database, 'files': FILES if files is None else files, 'run_id': run_id,
              'staging_table': 'stage', 'final_table': 'final'}
    result.update(extra)
    return result


def final_rows(database: str) -> list[tuple]:
    conn = sqlite3.connect(database)
    try:
        return sorted(conn.execute('SELECT customer, file_name, records, run_id FROM final').fetchall())
    finally:
        conn.close()


def test_check_mode_returns_statements_and_creates_nothing(run_module, database, tmp_path):
    result = run_module(hive_refresh, args(database), check_mode=True)
    assert result['changed'] is True
    assert (result['to_update'], result['up_to_date'], result['records']) == (3, 0, 12)
    assert result['statements'][:3] == [
        'CREATE TABLE IF NOT EXISTS stage (customer TEXT, domain TEXT, file_name TEXT, file_size INTEGER, file_mtime TEXT, '
        'records INTEGER, sha256 TEXT, run_id TEXT)',
        'CREATE TABLE IF NOT EXISTS final (customer TEXT, domain TEXT, file_name TEXT, file_size INTEGER, file_mtime TEXT, '
        'records INTEGER, sha256 TEXT, run_id TEXT)',
        'DELETE FROM stage',
    ]
    assert result['statements'][3].endswith('  -- 24 parameters')
    assert os.listdir(str(tmp_path)) == []


def test_load_then_second_load_unchanged(run_module, database):
    first = run_module(hive_refresh, args(database))
    assert first['changed'] is True
    assert final_rows(database) == [('ACME', 'a.csv', 3, 'run-1'), ('ACME', 'b.csv', 4, 'run-1'), ('GLOBEX', 'c.csv', 5, 'run-1')]
    second = run_module(hive_refresh, args(database, run_id='run-2'))
    assert (second['changed'], second['statements'], second['up_to_date']) == (False, [], 3)
    check = run_module(hive_refresh, args(database, run_id='run-3'), check_mode=True)
    assert check['changed'] is False
    assert final_rows(database)[0][3] == 'run-1'


def test_rerun_safe_capped_runs(run_module, database):
    run_module(hive_refresh, args(database, [found('a.csv', 3), found('b.csv', 4)]))
    run_module(hive_refresh, args(database, [found('b.csv', 4), found('c.csv', 5)], run_id='run-2'))
    result = run_module(hive_refresh, args(database, [found('a.csv', 3), found('b.csv', 4)], run_id='run-3'))
    assert result['changed'] is False
    rows = final_rows(database)
    assert [r[1] for r in rows] == ['a.csv', 'b.csv', 'c.csv']
    assert sum(r[2] for r in rows) == 12


def test_check_mode_on_existing_db_writes_nothing(run_module, database):
    run_module(hive_refresh, args(database))
    before = os.stat(database).st_mtime_ns
    result = run_module(hive_refresh, args(database, [found('a.csv', 30)]), check_mode=True)
    assert (result['changed'], result['to_update']) == (True, 1)
    assert os.stat(database).st_mtime_ns == before
    assert final_rows(database)[0][2] == 3


def test_refresh_statement(run_module, database):
    result = run_module(hive_refresh, args(database, refresh_statement='ANALYZE {table}'), check_mode=True)
    assert result['statements'][-1] == 'ANALYZE final'


def test_diff(run_module, database):
    result = run_module(hive_refresh, args(database), check_mode=True, diff=True)
    assert result['diff']['prepared'].splitlines()[2] == 'DELETE FROM stage;'
    assert 'diff' not in run_module(hive_refresh, args(database), check_mode=True)


@pytest.mark.parametrize('key, value', [('final_table', 'final; DROP TABLE x'), ('staging_table', 'a.b.c'), ('final_table', '1abc'),
                                        ('staging_table', '')])
def test_bad_identifier(run_module, database, tmp_path, key, value):
    result = run_module(hive_refresh, args(database, **{key: value}))
    assert result['failed'] is True
    assert key in result['msg']
    assert repr(value) in result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_staging_and_final_must_differ(run_module, database):
    """One table as both staging and final would have the update empty the final table."""
    run_module(hive_refresh, args(database))
    result = run_module(hive_refresh, args(database, [found('d.csv', 1)], staging_table='final'))
    assert result['failed'] is True
    assert 'staging_table' in result['msg']
    assert len(final_rows(database)) == 3


def test_quotes_in_file_names_are_bound(run_module, database):
    files = [found("it's; DROP TABLE final; --.csv", 7)]
    assert run_module(hive_refresh, args(database, files))['changed'] is True
    assert final_rows(database) == [('ACME', "it's; DROP TABLE final; --.csv", 7, 'run-1')]
    assert run_module(hive_refresh, args(database, files))['changed'] is False


def test_bad_file_entry(run_module, database, tmp_path):
    result = run_module(hive_refresh, args(database, [found('a.csv', 1), dict(found('b.csv', 1), customer='A/B')]))
    assert result['failed'] is True
    assert 'files[1].customer' in result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_relative_database(run_module):
    result = run_module(hive_refresh, args('warehouse.sqlite'))
    assert result['failed'] is True
    assert "'warehouse.sqlite'" in result['msg']


def test_database_directory_missing_fails_cleanly(run_module, tmp_path):
    database = str(tmp_path / 'absent' / 'warehouse.sqlite')
    result = run_module(hive_refresh, args(database))
    assert result['failed'] is True
    assert database in result['msg']
