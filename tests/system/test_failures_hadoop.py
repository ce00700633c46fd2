# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults of the real HDFS and HiveServer2 during a night: HDFS as a user without permission (403),
the NameNode stopped in the middle of a run, a failing SQL statement. Each gives a clear error, the
flag says FAIL where it can be written, no source is touched, and the next run after the fault is
fixed converges (every file backed up and counted exactly once).

This module owns the shared HDFS (127.0.0.1:8020/9870) while the NameNode test runs: it stops the
cluster with tests/services/hdfs/stop.sh and starts it again with start.sh, and leaves it running.
"""
from __future__ import annotations

import os
import signal
import time
import uuid

from support.hadoop import Hdfs, beeline, hdfs_files, hdfs_script, ledger_names, per_customer_counts, warehouse_counts


def test_hdfs_user_without_permission(night, hadoop):  # pylint: disable=redefined-outer-name,unused-argument
    """The results' HDFS user may not write there (HTTP 403): the error says so, nothing is recorded as done,
    the flag (written as another user) says FAIL; with the right user the next run converges."""
    hdfs = Hdfs(night)
    regular = night.names('regular')
    landing = night.tree_hash(night.landing)
    settings = hdfs.settings(mnaas_backup_hdfs_location=hdfs.location(user='mnaas_intruder'),
                             mnaas_backup_flag_location=hdfs.location())

    failed = night.run(*night.extra_vars(**settings), expect_rc=2)
    assert failed.failed('edge1') == 1, failed
    errors = failed.errors()
    assert 'Permission denied' in errors and 'mnaas_intruder' in errors and hdfs.base + '/backup' in errors, failed
    assert hdfs.flag_content() == 'FAIL\n'
    assert hdfs_files(hdfs.base + '/backup') == [] and hdfs_files(hdfs.base + '/counts') == []
    assert ledger_names(night) == [] and night.final_rows() == []
    assert night.tree_hash(night.landing) == landing

    settings['mnaas_backup_hdfs_location'] = hdfs.location()
    fixed = night.run(*night.extra_vars(**settings))
    hdfs.assert_counts(regular, fixed)
    assert len(hdfs_files(hdfs.base + '/backup')) == len(regular)
    night.assert_counts(regular, fixed)
    assert hdfs.flag_content() == 'SUCCESS\n'
    assert ledger_names(night) == sorted(regular)
    assert night.tree_hash(night.landing) == landing


def test_namenode_stopped_mid_run(night, hadoop, tmp_path):  # pylint: disable=redefined-outer-name,unused-argument
    """The playbook is paused (SIGSTOP) once the primary copy starts, the NameNode is stopped, the playbook
    goes on: the HDFS steps fail with a clear error, the local flag says FAIL, no source is touched.

    Restarting the test cluster formats a fresh, empty namespace (a real NameNode would come back with
    its data): the test recreates its base directories and checks that the next run puts everything there,
    which it can only do because the failed run recorded nothing as done.
    """
    hdfs = Hdfs(night)
    regular = night.names('regular')
    landing = night.tree_hash(night.landing)
    settings = hdfs.settings(mnaas_backup_hdfs_location=hdfs.location(timeout=5.0, retries=1),
                             mnaas_backup_flag_location={'type': 'local'})
    del settings['mnaas_backup_flag_file']  # the demo's, on the primary
    log = tmp_path / 'paused-run.log'
    proc = night.start(*night.extra_vars(**settings), log=log)
    stopped = False
    try:
        deadline = time.monotonic() + 300
        while "Copy them to the customers' primary backup directories" not in log.read_text(errors='replace'):
            assert proc.poll() is None, 'the playbook ended before the primary copy:\n%s' % log.read_text()
            assert time.monotonic() < deadline, 'no primary copy after 300 s:\n%s' % log.read_text()
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            hdfs_script('stop.sh')
            stopped = True
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        rc = proc.wait(timeout=600)
        output = log.read_text(errors='replace')
        assert rc == 2, output
        assert '127.0.0.1:9870' in output and 'refused' in output, output
        assert night.flag.read_text() == 'FAIL\n'
        assert ledger_names(night) == [], output
        assert night.tree_hash(night.landing) == landing
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if stopped:
            hdfs_script('start.sh')  # the fault fixed: a fresh, empty cluster (see above)

    hdfs.create()
    fixed = night.run(*night.extra_vars(**settings))
    hdfs.assert_counts(regular, fixed)
    assert len(hdfs_files(hdfs.base + '/backup')) == len(regular)
    night.assert_counts(regular, fixed)
    assert night.flag.read_text() == 'SUCCESS\n'
    assert ledger_names(night) == sorted(regular)
    assert night.tree_hash(night.landing) == landing


def test_failing_sql_statement(night, hadoop):  # pylint: disable=redefined-outer-name,unused-argument
    """The refresh statement fails in Spark: the error names it, the flag in HDFS says FAIL, no count goes to
    HDFS and nothing is recorded as done; without the bad statement the next run counts each file once."""
    hdfs = Hdfs(night)
    database = 'fail_%s' % uuid.uuid4().hex[:8]
    beeline('CREATE DATABASE %s' % database)
    regular = night.names('regular')
    landing = night.tree_hash(night.landing)
    settings = hdfs.settings(mnaas_backup_warehouse_engine='spark', mnaas_backup_warehouse_host='127.0.0.1',
                             mnaas_backup_warehouse_database=database,
                             mnaas_backup_refresh_statement='SELECT no_such_column FROM {table}')

    failed = night.run(*night.extra_vars(**settings), expect_rc=2)
    errors = failed.errors()
    assert 'no_such_column' in errors and 'Load the record counts into the warehouse' in errors, failed
    assert hdfs.flag_content() == 'FAIL\n'
    assert hdfs_files(hdfs.base + '/counts') == []
    assert ledger_names(night) == []
    assert night.tree_hash(night.landing) == landing

    settings['mnaas_backup_refresh_statement'] = ''
    fixed = night.run(*night.extra_vars(**settings))
    hdfs.assert_counts(regular, fixed)
    assert warehouse_counts(database) == per_customer_counts(night, regular)
    assert hdfs.flag_content() == 'SUCCESS\n'
    assert ledger_names(night) == sorted(regular)
    assert night.tree_hash(night.landing) == landing
