# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hive_refresh with engine spark against a real HiveServer2-protocol server: the Spark Thrift Server.

The server is the one tests/services/hiveserver2/start.sh runs (pyspark 4.0.1, 127.0.0.1:10000). The
module fixture starts it when it does not answer and stops it at the end; with MNAAS_HS2_STARTED=1
(the Makefile started it for the whole run) it must already answer and is left running. A server
that cannot be started is a failure, never a skip.

The module runs as operators run it, in a play of ansible-playbook (the registered result is saved as JSON).
Table contents are read with the beeline bundled with Spark (tests/services/hiveserver2/beeline.sh),
independent of PyHive and of the code under test: each row as JSON (``to_json(struct(*))``), so
that commas, quotes and line breaks in values survive the trip.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HS2_SERVICE = REPO_ROOT / 'tests' / 'services' / 'hiveserver2'
HOST, PORT = '127.0.0.1', int(os.environ.get('MNAAS_HS2_PORT', '10000'))
MTIME = 1_764_021_600
COLUMNS = ('customer', 'domain', 'file_name', 'file_size', 'file_mtime', 'records', 'sha256', 'run_id')
MODULE_TIMEOUT = 600


# ---------------------------------------------------------------------------------------------
# The server and the independent client

def service_env() -> dict:
    """The scripts use this Python's environment (pyspark, PyHive)."""
    return dict(os.environ, MNAAS_PYTHON=sys.executable)


def answering() -> bool:
    """The port accepts connections and a session answers SELECT 1."""
    try:
        with socket.create_connection((HOST, PORT), timeout=5):
            pass
    except OSError:
        return False
    from pyhive import hive  # pylint: disable=import-outside-toplevel
    try:
        conn = hive.connect(host=HOST, port=PORT, username='test', auth='NONE')
        try:
            cursor = conn.cursor()
            cursor.execute('SELECT 1')
            return cursor.fetchall() == [(1,)]
        finally:
            conn.close()
    except Exception:  # pylint: disable=broad-exception-caught
        return False


@pytest.fixture(scope='module')
def hiveserver2():
    """The server's address: started here unless it answers; stopped here only if started here."""
    if os.environ.get('MNAAS_HS2_STARTED') == '1':
        if not answering():
            pytest.fail('MNAAS_HS2_STARTED=1 but nothing answers SELECT 1 on %s:%d (tests/services/hiveserver2/start.sh)' % (HOST, PORT))
        yield HOST, PORT
        return
    started = False
    if not answering():
        result = subprocess.run([str(HS2_SERVICE / 'start.sh')], env=service_env(), capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            pytest.fail('tests/services/hiveserver2/start.sh failed (exit %d):\n%s%s' % (result.returncode, result.stdout, result.stderr))
        started = True
    try:
        yield HOST, PORT
    finally:
        if started:
            subprocess.run([str(HS2_SERVICE / 'stop.sh')], env=service_env(), capture_output=True, timeout=120, check=False)


def beeline(*statements: str, expect_rc: int = 0) -> list[str]:
    """Run statements with beeline; the output lines (tab-separated values, no header)."""
    script = ''.join(s.rstrip(';') + ';\n' for s in statements)
    proc = subprocess.run([str(HS2_SERVICE / 'beeline.sh'), '--silent=true', '--showHeader=false', '--outputformat=tsv2', '-e', script],
                          env=service_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == expect_rc, 'beeline exited %d, expected %d:\n%s\n%s' % (proc.returncode, expect_rc, proc.stdout, proc.stderr)
    return [line for line in proc.stdout.splitlines() if line.strip()] if expect_rc == 0 else [proc.stdout + proc.stderr]


def table_rows(table: str) -> list[dict]:
    """Every row of a table, read by beeline, in a stable order."""
    lines = beeline('SELECT to_json(struct(*)) FROM %s' % table)
    return sorted((json.loads(line) for line in lines), key=lambda r: (r['customer'], r['file_name']))


def tables(database: str) -> set[str]:
    return {line.split('\t')[1] for line in beeline('SHOW TABLES IN %s' % database)}


@pytest.fixture(scope='module')
def database(hiveserver2):  # pylint: disable=redefined-outer-name,unused-argument
    """A database of this module's own, created and dropped with beeline."""
    name = 'mnaas_it_%s' % uuid.uuid4().hex[:8]
    beeline('CREATE DATABASE %s' % name)
    yield name
    beeline('DROP DATABASE IF EXISTS %s CASCADE' % name)


@pytest.fixture
def names(request) -> tuple[str, str]:
    """(staging, final) table names of this test."""
    base = re.sub(r'[^a-z0-9_]', '_', request.node.name.lower())[:60]
    return 'stage_' + base, 'final_' + base


# ---------------------------------------------------------------------------------------------
# The module, run as operators run it

def found(name: str, records: int, customer: str = 'ACME', domain: str = 'traffic') -> dict:
    """One file as mnaas.backup.discover returns it."""
    return {'customer': customer, 'domain': domain, 'name': name, 'path': '/in/' + name, 'size': 100 + records,
            'mtime': MTIME, 'records': records, 'sha256': '%064x' % records}


def expected(files: list[dict], run_id: str) -> list[dict]:
    """The final rows these files make, as beeline returns them."""
    rows = [{'customer': f['customer'], 'domain': f['domain'], 'file_name': f['name'], 'file_size': f['size'],
             'file_mtime': '2025-11-24T22:00:00Z', 'records': f['records'], 'sha256': f['sha256'], 'run_id': run_id} for f in files]
    return sorted(rows, key=lambda r: (r['customer'], r['file_name']))


def hive_refresh(ansible_env: dict, cwd: Path, database: str, names: tuple[str, str], files: list[dict], run_id: str,  # pylint: disable=redefined-outer-name
                 check: bool = False, **extra) -> dict:
    """The module's result as a playbook registers it (``failed`` set on failure), from a one-task play run by ansible-playbook."""
    args = {'engine': 'spark', 'host': HOST, 'port': PORT, 'username': 'mnaas', 'database': database,
            'staging_table': names[0], 'final_table': names[1], 'files': files, 'run_id': run_id}
    args.update(extra)
    work = Path(tempfile.mkdtemp(prefix='hive-refresh-', dir=cwd))
    result_file = work / 'result.json'
    play = [{'name': 'Run hive_refresh', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'Load the counts', 'mnaas.backup.hive_refresh': args, 'register': 'hive_refresh_result', 'ignore_errors': True},
        {'name': 'Save the result', 'ansible.builtin.copy': {'content': '{{ hive_refresh_result | to_json }}', 'dest': str(result_file)},
         'check_mode': False},
    ]}]
    (work / 'play.yml').write_text(json.dumps(play))  # JSON is YAML; file names hold no "{{"
    command = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=' + sys.executable,
               str(work / 'play.yml')]
    proc = subprocess.run(command + (['--check'] if check else []), env=ansible_env, cwd=cwd, capture_output=True, text=True,
                          timeout=MODULE_TIMEOUT, check=False)
    assert proc.returncode == 0 and result_file.exists(), 'ansible-playbook failed (rc %d):\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(result_file.read_text())
    result.setdefault('failed', False)
    return result


@pytest.fixture
def run(ansible_env, ansible_workdir, database, names):  # pylint: disable=redefined-outer-name
    """``run(files, run_id, check=False, **options)``: hive_refresh on this test's tables."""
    def call(files: list[dict], run_id: str, check: bool = False, **extra) -> dict:
        return hive_refresh(ansible_env, ansible_workdir, database, names, files, run_id, check=check, **extra)
    return call


# ---------------------------------------------------------------------------------------------
# Tests

ODD = [found('a,b.csv', 3), found("it's \"quoted\".csv", 4), found('back\\slash.csv', 5), found('line\nbreak.csv', 6),
       found('été_ü.csv', 7, customer='GLOBEX'), found("x'); DROP TABLE t; --.csv", 8, customer='GLOBEX')]


def test_first_load_then_unchanged(run, database, names):  # pylint: disable=redefined-outer-name
    staging, final = names
    first = run(ODD, 'run-1', refresh_statement='refresh $dbname.%s' % final)
    assert (first['changed'], first['to_update'], first['up_to_date'], first['records']) == (True, 6, 0, 33)
    qualified = '%s.%s' % (database, final)
    assert first['statements'][0].startswith('CREATE TABLE IF NOT EXISTS %s.%s (' % (database, staging))
    assert first['statements'][2] == 'INSERT OVERWRITE TABLE %s.%s VALUES %s  -- 48 parameters' % (
        database, staging, ', '.join(['(%s, %s, %s, %s, %s, %s, %s, %s)'] * 6))
    assert first['statements'][-1] == 'REFRESH TABLE %s' % qualified  # the legacy template, the Spark way
    assert table_rows(qualified) == expected(ODD, 'run-1')
    assert final + '__mnaas_merge' not in tables(database)

    again = run(ODD, 'run-2')
    assert (again['changed'], again['statements'], again['to_update'], again['up_to_date']) == (False, [], 0, 6)
    assert table_rows(qualified) == expected(ODD, 'run-1')


def test_capped_loads_and_rerun_count_every_file_once(run, database, names):  # pylint: disable=redefined-outer-name
    a, b, c, d = found('A.csv', 11), found('B.csv', 22), found('C.csv', 33), found('D.csv', 44, customer='GLOBEX')
    assert run([a, b], 'night-1a')['changed'] is True
    assert run([c, d], 'night-1b')['changed'] is True
    rerun = run([a, b], 'night-1a-rerun')
    assert (rerun['changed'], rerun['up_to_date']) == (False, 2)
    overlapping = run([b, c, found('E.csv', 55)], 'night-2')
    assert (overlapping['changed'], overlapping['to_update'], overlapping['up_to_date']) == (True, 1, 2)
    rows = table_rows('%s.%s' % (database, names[1]))
    assert sorted(r['file_name'] for r in rows) == ['A.csv', 'B.csv', 'C.csv', 'D.csv', 'E.csv']
    assert sum(r['records'] for r in rows) == 11 + 22 + 33 + 44 + 55
    # A file whose count changed (rewritten upstream) replaces its row: still once.
    assert run([found('B.csv', 23)], 'night-3')['to_update'] == 1
    rows = table_rows('%s.%s' % (database, names[1]))
    assert [(r['file_name'], r['records'], r['run_id']) for r in rows if r['file_name'] == 'B.csv'] == [('B.csv', 23, 'night-3')]
    assert len(rows) == 5


def test_batches_of_a_large_run(run, database, names):  # pylint: disable=redefined-outer-name
    files = [found('F%04d.csv' % i, i, customer='C%d' % (i % 3)) for i in range(450)]
    result = run(files, 'big')
    loads = [s.split(' VALUES')[0] for s in result['statements'] if ' VALUES ' in s]
    assert loads == ['INSERT OVERWRITE TABLE %s.%s' % (database, names[0])] + ['INSERT INTO TABLE %s.%s' % (database, names[0])] * 2
    assert beeline('SELECT count(*), sum(records), count(DISTINCT customer, file_name) FROM %s.%s' % (database, names[1])) == [
        '450\t%d\t450' % sum(range(450))]
    assert beeline('SELECT count(*) FROM %s.%s' % (database, names[0])) == ['450']
    assert run(files[:200] + [found('F9999.csv', 1)], 'big-2')['to_update'] == 1
    assert beeline('SELECT count(*) FROM %s.%s' % (database, names[0])) == ['201']  # staging overwritten, not appended to


def test_check_mode_changes_nothing(run, database, names):  # pylint: disable=redefined-outer-name
    qualified = '%s.%s' % (database, names[1])
    fresh = run([found('A.csv', 1)], 'r0', check=True)
    assert fresh['changed'] is True and fresh['to_update'] == 1
    assert fresh['statements'][-1] == 'REFRESH TABLE %s' % qualified
    assert not {names[0], names[1]} & tables(database), 'check mode created a table'

    run([found('A.csv', 1), found('B.csv', 2)], 'r1')
    before = table_rows(qualified)
    check = run([found('B.csv', 20), found('C.csv', 3)], 'r2', check=True)
    assert (check['changed'], check['to_update'], check['up_to_date']) == (True, 2, 0)
    assert [s.split(' (')[0].split(' VALUES')[0] for s in check['statements']] == [
        'CREATE TABLE IF NOT EXISTS %s.%s' % (database, names[0]),
        'CREATE TABLE IF NOT EXISTS %s' % qualified,
        'INSERT OVERWRITE TABLE %s.%s' % (database, names[0]),
        'DROP TABLE IF EXISTS %s__mnaas_merge' % qualified,
        'CREATE TABLE %s__mnaas_merge USING parquet AS SELECT customer, domain, file_name, file_size, file_mtime, records, sha256, run_id '
        'FROM' % qualified,
        'INSERT OVERWRITE TABLE %s SELECT customer, domain, file_name, file_size, file_mtime, records, sha256, run_id FROM %s__mnaas_merge'
        % (qualified, qualified),
        'DROP TABLE %s__mnaas_merge' % qualified,
        'REFRESH TABLE %s' % qualified,
    ]
    assert table_rows(qualified) == before
    assert run([found('A.csv', 1), found('B.csv', 2)], 'r3', check=True)['changed'] is False


def test_final_table_spark_cannot_overwrite_from_itself(run, database, names):  # pylint: disable=redefined-outer-name
    """A parquet final table: Spark refuses INSERT OVERWRITE of a table the query reads; the work table gets round it."""
    qualified = '%s.%s' % (database, names[1])
    beeline('CREATE TABLE %s (%s) USING parquet' % (qualified, ', '.join(
        '%s %s' % (c, 'BIGINT' if c in ('file_size', 'records') else 'STRING') for c in COLUMNS)))
    refused = beeline('INSERT OVERWRITE TABLE %s SELECT * FROM %s' % (qualified, qualified), expect_rc=1)[0]
    assert 'UNSUPPORTED_OVERWRITE' in refused
    run([found('A.csv', 1), found('B.csv', 2)], 'r1')
    run([found('B.csv', 20), found('C.csv', 3)], 'r2')
    assert [(r['file_name'], r['records']) for r in table_rows(qualified)] == [('A.csv', 1), ('B.csv', 20), ('C.csv', 3)]
    assert beeline('SHOW CREATE TABLE %s' % qualified)[0].count('USING parquet') == 1
    assert run([found('A.csv', 1), found('B.csv', 20), found('C.csv', 3)], 'r3')['changed'] is False


def test_failing_statement_is_reported_clearly_and_the_fixed_run_converges(run, database, names):  # pylint: disable=redefined-outer-name
    qualified = '%s.%s' % (database, names[1])
    # A final table of that name with an incompatible schema: records is an array.
    beeline('CREATE TABLE %s (customer STRING, domain STRING, file_name STRING, file_size BIGINT, file_mtime STRING, records ARRAY<INT>, '
            'sha256 STRING, run_id STRING) STORED AS TEXTFILE' % qualified)
    files = [found('A.csv', 1), found('B.csv', 2)]
    result = run(files, 'r1')
    assert result['failed'] is True
    msg = result['msg']
    assert msg.startswith('SQL failed on spark at %s:%d (binary, auth NONE), statement 5 of 8 (sqlState 42825): '
                          '[INCOMPATIBLE_COLUMN_TYPE] UNION can only be performed on tables with compatible column types.' % (HOST, PORT)), msg
    assert msg.endswith('; statement: %s' % result['statement'][:497] + ('...' if len(result['statement']) > 500 else ''))
    assert result['sql_state'] == '42825'
    assert result['statement'].startswith('CREATE TABLE %s__mnaas_merge USING parquet AS SELECT' % qualified)
    for trace in ('\n', '\tat ', 'org.apache', 'Exception', '.scala'):
        assert trace not in msg, 'a stack trace leaked into the message: %r' % msg
    # No Java anywhere in the result (ansible-core 2.19 may add a Python "exception" of its own to a failure).
    assert not re.search(r'\tat |org\.apache|\.scala|\.java', json.dumps({k: v for k, v in result.items() if k != 'statement'})), result
    assert beeline('SELECT count(*) FROM %s' % qualified) == ['0']

    # The operator fixes the table; the next run converges.
    beeline('DROP TABLE %s' % qualified)
    fixed = run(files, 'r2')
    assert fixed['changed'] is True
    assert table_rows(qualified) == expected(files, 'r2')
    assert run(files, 'r3')['changed'] is False


def test_missing_columns_fail_while_reading(run, database, names):  # pylint: disable=redefined-outer-name
    beeline('CREATE TABLE %s.%s (something STRING) STORED AS TEXTFILE' % (database, names[1]))
    result = run([found('A.csv', 1)], 'r1', check=True)
    assert result['failed'] is True
    assert result['sql_state'] == '42703'
    assert '[UNRESOLVED_COLUMN' in result['msg'] and '\n' not in result['msg']
    assert result['statement'].startswith('SELECT customer, domain, file_name')


def test_connection_refused(run, database):  # pylint: disable=redefined-outer-name
    result = run([found('A.csv', 1)], 'r1', port=PORT + 7)
    assert result['failed'] is True
    assert result['msg'] == ("cannot open a session on spark at %s:%d (binary, auth NONE) as mnaas, database %s: "
                             "Could not connect to any of [('%s', %d)]" % (HOST, PORT + 7, database, HOST, PORT + 7))
