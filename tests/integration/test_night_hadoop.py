# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A whole night of the demo playbook with the counts in a real HiveServer2 (Spark Thrift Server)
and the flag in a real HDFS, checked with beeline and Hadoop's FsShell.

The services are those of ``make integration`` (MNAAS_HS2_STARTED=1, MNAAS_HDFS_STARTED=1), or
started here with their scripts when nothing answers; a service that does not come up fails the test.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = REPO_ROOT / 'tests' / 'services'
WEBHDFS = 'http://127.0.0.1:9870'


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=5):
            return True
    except OSError:
        return False


def _service(name: str, port: int, flag: str) -> None:
    """The service answers; started with its idempotent script when it does not (and left for make to stop)."""
    if _port_open(port):
        return
    if os.environ.get(flag) == '1':
        pytest.fail('%s=1 but nothing answers on port %d (tests/services/%s/start.sh)' % (flag, port, name))
    env = dict(os.environ, MNAAS_PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(SERVICES / name / 'start.sh')], env=env, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail('tests/services/%s/start.sh failed (exit %d):\n%s%s' % (name, proc.returncode, proc.stdout, proc.stderr))


def _tool(name: str, *args: str) -> str:
    env = dict(os.environ, MNAAS_PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(SERVICES / name), *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, '%s %s failed:\n%s%s' % (name, ' '.join(args), proc.stdout, proc.stderr)
    return proc.stdout


def beeline(statement: str) -> list[str]:
    out = _tool('hiveserver2/beeline.sh', '--silent=true', '--showHeader=false', '--outputformat=tsv2', '-e', statement.rstrip(';') + ';')
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture(scope='module')
def hadoop():
    _service('hdfs', 9870, 'MNAAS_HDFS_STARTED')
    _service('hiveserver2', 10000, 'MNAAS_HS2_STARTED')


def test_night_with_spark_counts_and_the_flag_in_hdfs(night, hadoop):  # pylint: disable=redefined-outer-name,unused-argument
    run = uuid.uuid4().hex[:8]
    database, flag_dir = 'night_%s' % run, '/user/root/flags_%s' % run
    beeline('CREATE DATABASE %s' % database)
    _tool('hdfs/fsshell.sh', '-mkdir', '-p', flag_dir)
    settings = night.extra_vars(
        mnaas_backup_warehouse_engine='spark', mnaas_backup_warehouse_host='127.0.0.1', mnaas_backup_warehouse_database=database,
        mnaas_backup_flag_file=flag_dir + '/MNAAS_backup_files_process_ProcessStatusFile',
        mnaas_backup_flag_location={'type': 'webhdfs', 'urls': [WEBHDFS], 'hdfs_user': 'root'})

    first = night.run(*settings)
    assert first.changed('edge1') > 0

    expected = {}
    for customer, domains in night.summary['customers'].items():
        for files in domains.values():
            for found in files:
                count, records = expected.get(customer, (0, 0))
                expected[customer] = (count + 1, records + found['records'])
    rows = beeline('SELECT customer, COUNT(*), SUM(records), COUNT(DISTINCT file_name) FROM %s.customers_files_records_count '
                   'GROUP BY customer ORDER BY customer' % database)
    got = {line.split('\t')[0]: tuple(int(x) for x in line.split('\t')[1:]) for line in rows}
    assert got == {customer: (count, records, count) for customer, (count, records) in expected.items()}
    assert _tool('hdfs/fsshell.sh', '-cat', flag_dir + '/MNAAS_backup_files_process_ProcessStatusFile') == 'SUCCESS\n'

    again = night.run(*settings)
    assert again.changed('edge1') == 0 and again.changed('edge2') == 0, again
    assert beeline('SELECT COUNT(*) FROM %s.customers_files_records_count' % database) == [str(sum(pair[0] for pair in expected.values()))]
