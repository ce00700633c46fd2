# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults of the Hadoop parts injected into real nights (issue 6): the copy to WebHDFS SIGKILLed at several
points, the NameNode and DataNode restarted mid-run on the storage they keep, HiveServer2 stopped between
the staging load and the final update. The runs use the demo inventory with the backups, counts and flag in
the shared HDFS and the record counts in the Spark Thrift Server, as test_night_hadoop.py does.

After each fault: a clear error naming what failed, the flag FAIL where it can be written, no source touched,
nothing partial under a final name in HDFS (FsShell ``-checksum`` against the local sources). Then the cause
is removed and one run converges: every file in HDFS equal to its source, counted exactly once in the
warehouse (beeline), no temp left, flag SUCCESS; a further run changes nothing.

This module restarts the shared HDFS and HiveServer2 with their scripts (MNAAS_HDFS_KEEP=1 and
MNAAS_HS2_KEEP=1: a restart that keeps the data) and leaves them running.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from support.hadoop import (SUPERUSER, WEBHDFS, Hdfs, beeline, fs, hdfs_checksum_module, hdfs_files, hdfs_script, hdfs_tree,
                            ledger_names, tool)
from support.night import STALE, add_big, age_in_flight, age_locks, assert_nothing_partial
from support.playbook import RUN_TIMEOUT, started_task
from support.processes import kill_tree, module_pids, signal_all, wait_for

HDFS_COPY_TASK = "Copy them to the customers' HDFS backup directories"
WAREHOUSE_TASK = 'Load the record counts into the warehouse'
TEMP_MARK = '.mnaas-tmp.'
MIB = 1 << 20
# Two big files, uploaded to HDFS while a kill comes: tens of MiB each.
BIG = {'ACME_TELEMATICS': 'ACME_TELEMATICS_Traffic_20200101_9101.csv', 'GLOBEX_FLEET': 'GLOBEX_FLEET_Traffic_20200101_9102.csv'}
# The big file's upload is caught once the module has read this far into it (8 chunks queue between reading and sending).
READ_PAST = 24 * MIB
HS2_BASE = Path(os.environ.get('MNAAS_HS2_BASE', '/tmp/mnaas-hs2'))
STAGING = 'customers_files_inter_record_count'
FINAL = 'customers_files_records_count'


# ---------------------------------------------------------------------------------------------
# Helpers

def spark_settings(night, hdfs, **extra) -> dict:
    """The role variables of test_night_hadoop.py: HDFS for backups, counts and flag; counts in Spark too."""
    database = 'rel_%s' % uuid.uuid4().hex[:8]
    beeline('CREATE DATABASE %s' % database)
    return hdfs.settings(mnaas_backup_warehouse_engine='spark', mnaas_backup_warehouse_host='127.0.0.1',
                         mnaas_backup_warehouse_database=database, **extra)


def add_big_files(night) -> None:
    oldest = time.time() - 10 * 86400
    for index, (customer, name) in enumerate(sorted(BIG.items())):
        add_big(night, customer, name, oldest + index)


def hdfs_entries(hdfs) -> tuple[dict, dict]:
    """({final path: length}, {temp path: length}) of the files below the backup directories (plain WebHDFS)."""
    finals, temps = {}, {}
    for path, stat in hdfs_tree(hdfs.base + '/backup').items():
        if stat[0] == 'FILE':
            (temps if TEMP_MARK in path.rpartition('/')[2] else finals)[path] = stat[3]
    return finals, temps


def assert_nothing_partial_in_hdfs(night, hdfs, context: str) -> dict:
    """Every file under a final name in HDFS is its source, whole: HDFS's own checksum (FsShell ``-checksum``,
    computed by the DataNode) equals the one computed here from the source; returns {final path: length}."""
    finals, _temps = hdfs_entries(hdfs)
    if not finals:
        return finals
    hc = hdfs_checksum_module()
    paths = sorted(finals)
    lines = fs('-checksum', *paths).splitlines()
    assert len(lines) == len(paths), lines
    for path, line in zip(paths, lines):
        assert line.startswith(path + '\t'), line
        source = night.landing / path.rpartition('/')[2]
        assert finals[path] == source.stat().st_size, '%s is %d bytes, its source %d %s' % (path, finals[path], source.stat().st_size, context)
        with open(source, 'rb') as stream:
            assert hc.parse_fsshell(line) == hc.compute(stream), '%s differs from its source %s' % (path, context)
    return finals


def webhdfs_read(path: str, offset: int, length: int) -> bytes:
    """Bytes of an HDFS file read with a plain WebHDFS OPEN (a file being written reads up to what the DataNode holds)."""
    url = '%s/webhdfs/v1%s?op=OPEN&offset=%d&length=%d&user.name=%s' % (WEBHDFS, urllib.parse.quote(path), offset, length, SUPERUSER)
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read()


def assert_temp_holds_data(night, hdfs, name: str, earlier) -> str:
    """A temp file of name, not among the earlier ones, exists in HDFS and already holds the source's bytes past 1 MiB."""
    _finals, temps = hdfs_entries(hdfs)
    mine = [p for p in temps if p.rpartition('/')[2].startswith('.' + name + TEMP_MARK) and p not in earlier]
    assert len(mine) == 1, 'expected one temp of %s in HDFS, got %s' % (name, sorted(temps))
    with open(night.landing / name, 'rb') as source:
        source.seek(MIB)
        expected = source.read(4096)
    assert webhdfs_read(mine[0], MIB, 4096) == expected, 'the temp %s does not hold the source bytes at 1 MiB' % mine[0]
    return mine[0]


def read_position(pid: int, path: Path) -> int:
    """How far process pid has read into path (its file offset from /proc), 0 when it has it not open."""
    with contextlib.suppress(OSError):
        for fd in os.listdir('/proc/%d/fd' % pid):
            with contextlib.suppress(OSError):
                if os.readlink('/proc/%d/fd/%s' % (pid, fd)) == str(path):
                    with open('/proc/%d/fdinfo/%s' % (pid, fd), encoding='ascii') as info:
                        return int(info.readline().split()[1])
    return 0


def hdfs_copy_pids(proc, log: Path) -> list:
    """The backup_copy process of the HDFS copy task (started after that task's banner)."""
    wait_for(lambda: started_task(log, HDFS_COPY_TASK), proc, log, 'the HDFS copy task')
    return wait_for(lambda: module_pids(proc.pid, 'backup_copy'), proc, log, 'the HDFS copy module')


def stop_mid_big_upload(night, proc, log: Path) -> tuple[list, str]:
    """SIGSTOP the HDFS copy module once it has read READ_PAST into a big file (uploading it); returns (pids, name)."""
    pids = hdfs_copy_pids(proc, log)

    def reading():
        for name in BIG.values():
            if READ_PAST <= max(read_position(pid, night.landing / name) for pid in pids) < night.files[name]['size']:
                return name
        return None

    name = wait_for(reading, proc, log, 'the upload of a big file')
    signal_all(pids, signal.SIGSTOP)
    return pids, name


def hs2_service(script: str) -> None:
    tool('hiveserver2/' + script)


def table_files(database: str, table: str) -> dict:
    """{name: (size, mtime_ns)} of a table's data files in the Spark warehouse directory."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(HS2_BASE / 'warehouse' / ('%s.db' % database) / table):
            if entry.is_file() and not entry.name.startswith(('.', '_')):
                found[entry.name] = (entry.stat().st_size, entry.stat().st_mtime_ns)
    return found


def table_text(database: str, table: str) -> str:
    return ''.join((HS2_BASE / 'warehouse' / ('%s.db' % database) / table / name).read_text(errors='replace')
                   for name in table_files(database, table))


def submitted(offset: int, fragment: str) -> bool:
    """Whether the server logged, after offset, the submission of a statement holding fragment."""
    with open(HS2_BASE / 'hs2.log', 'rb') as handle:
        handle.seek(offset)
        return any(b'Submitting query' in line and fragment.encode() in line for line in handle)


def warehouse_rows(database: str) -> list:
    """[(customer, file name, records)] of the final table, sorted (beeline)."""
    rows = beeline('SELECT customer, file_name, records FROM %s.customers_files_records_count ORDER BY customer, file_name' % database)
    return sorted(tuple(line.split('\t')[:2]) + (int(line.split('\t')[2]),) for line in rows)


def expected_rows(night, names) -> list:
    return sorted((night.files[n]['customer'], n, night.files[n]['records']) for n in names)


def flag(hdfs) -> str:
    """The flag's content in HDFS (plain WebHDFS OPEN), '' when there is none."""
    if hdfs.flag not in hdfs_tree(hdfs.base + '/flags'):
        return ''
    return webhdfs_read(hdfs.flag, 0, 1 << 16).decode()


def assert_converged(night, hdfs, database: str, result) -> None:
    """Every file backed up in HDFS (HDFS's checksum equal to the source's) and on both nodes, counted exactly once in
    the warehouse and the HDFS counts, recorded in the ledger; no temp anywhere, flag SUCCESS, no lock."""
    names = sorted(night.expected)
    finals, temps = hdfs_entries(hdfs)
    assert not temps, 'temp files left in HDFS: %s%s' % (sorted(temps), result)
    expected = {'%s/backup/%s/%s' % (hdfs.base, night.files[n]['customer'], n) for n in names}
    assert set(finals) == expected, 'HDFS backups: missing %s, unexpected %s%s' % (
        sorted(expected - set(finals)), sorted(set(finals) - expected), result)
    assert_nothing_partial_in_hdfs(night, hdfs, 'after the converging run')
    hdfs.assert_counts(names, result)
    assert warehouse_rows(database) == expected_rows(night, names), 'the warehouse does not count each file exactly once%s' % result
    assert flag(hdfs) == 'SUCCESS\n', result
    assert ledger_names(night) == names, result
    night.assert_backups(names, result)
    night.assert_unlocked(result)


# ---------------------------------------------------------------------------------------------
# 1. SIGKILL during the copy to WebHDFS

def test_sigkill_during_the_hdfs_copy_then_convergence(night, hadoop, tmp_path):  # pylint: disable=redefined-outer-name,unused-argument
    """Three runs killed during the HDFS copy stage: (a) only the copy module, while a 48 MiB file is uploaded (its
    temp in HDFS holds data); (b) the whole run (controller and modules) at the same point; (c) only the copy module
    between files, once some files are committed under their final names and others wait under temp names. After
    each: no partial file under a final name in HDFS, nothing recorded or counted, the flag never SUCCESS. The next
    run removes the temps, copies what is missing, counts every file exactly once; a further run changes nothing."""
    age_in_flight(night)
    add_big_files(night)
    hdfs = Hdfs(night)
    settings = spark_settings(night, hdfs, **STALE)
    database = settings['mnaas_backup_warehouse_database']
    landing = night.tree_hash(night.landing)
    earlier: set = set()

    def start(point: str):
        earlier.clear()
        earlier.update(hdfs_entries(hdfs)[1])
        log = tmp_path / ('%s.log' % point)
        return night.start(*night.extra_vars(**settings), log=log), log

    # (a) Only the HDFS copy module killed while a big file is uploaded.
    proc, log = start('module-mid-upload')
    pids, name = stop_mid_big_upload(night, proc, log)
    assert_temp_holds_data(night, hdfs, name, earlier)
    signal_all(pids, signal.SIGKILL)
    assert proc.wait(timeout=RUN_TIMEOUT) == 2, log.read_text()
    output = log.read_text(errors='replace')
    assert 'edge1 failed; the flag says FAIL' in output and HDFS_COPY_TASK in output, output
    assert flag(hdfs) == 'FAIL\n', output
    assert assert_nothing_partial_in_hdfs(night, hdfs, 'after the upload was killed') == {}, 'committed before the kill?\n' + output
    assert hdfs_entries(hdfs)[1], 'the killed module left no temp file in HDFS: was it killed mid-copy?\n' + output
    assert ledger_names(night) == [] and hdfs_files(hdfs.base + '/counts') == [] and table_files(database, FINAL) == {}, output
    assert_nothing_partial(night, 'after the upload was killed')
    night.assert_unlocked()

    # (b) The whole run killed at the same point: no flag written, the locks stay.
    age_locks(night)
    proc, log = start('tree-mid-upload')
    pids, name = stop_mid_big_upload(night, proc, log)
    assert_temp_holds_data(night, hdfs, name, earlier)
    kill_tree(proc)
    assert assert_nothing_partial_in_hdfs(night, hdfs, 'after the run was killed') == {}, log.read_text()
    assert night.lock('edge1').exists() and flag(hdfs) == 'FAIL\n', log.read_text()
    assert ledger_names(night) == [] and hdfs_files(hdfs.base + '/counts') == [] and table_files(database, FINAL) == {}
    assert_nothing_partial(night, 'after the run was killed')

    # (c) Only the copy module killed between files: some committed, the others staged under temp names.
    age_locks(night)
    proc, log = start('module-between-files')
    pids = hdfs_copy_pids(proc, log)
    wait_for(lambda: hdfs_entries(hdfs)[0], proc, log, 'a file committed in HDFS', timeout=RUN_TIMEOUT)
    signal_all(pids, signal.SIGSTOP)
    finals, temps = hdfs_entries(hdfs)
    waiting = [p for p in temps if p not in earlier]
    assert finals and waiting, 'not between files: %d committed, %d temps of this run' % (len(finals), len(waiting))
    signal_all(pids, signal.SIGKILL)
    assert proc.wait(timeout=RUN_TIMEOUT) == 2, log.read_text()
    output = log.read_text(errors='replace')
    assert 'edge1 failed; the flag says FAIL' in output and HDFS_COPY_TASK in output, output
    assert 'stale lock' in output, output  # the lock the whole-run kill left, taken over
    assert flag(hdfs) == 'FAIL\n', output
    committed = assert_nothing_partial_in_hdfs(night, hdfs, 'after a kill between files')
    assert set(finals) <= set(committed) and len(committed) < len(night.expected), output
    assert ledger_names(night) == [] and hdfs_files(hdfs.base + '/counts') == [] and table_files(database, FINAL) == {}, output
    assert_nothing_partial(night, 'after a kill between files')
    night.assert_unlocked()
    assert night.tree_hash(night.landing) == landing, 'sources changed'

    # The next run converges: the temps removed, what is missing copied, each file counted exactly once.
    result = night.run(*night.extra_vars(**settings))
    assert_converged(night, hdfs, database, result)
    assert night.tree_hash(night.landing) == landing, 'sources changed'
    tree = hdfs_tree(hdfs.base)
    again = night.run(*night.extra_vars(**settings))
    assert again.changed('edge1') == 0 and again.changed('edge2') == 0, again
    assert hdfs_tree(hdfs.base) == tree


# ---------------------------------------------------------------------------------------------
# 2. NameNode and DataNode restarted mid-run, on the storage they keep

def test_namenode_and_datanode_restarted_mid_copy(night, hadoop, tmp_path, monkeypatch):  # pylint: disable=redefined-outer-name,unused-argument
    """The HDFS copy module is frozen (SIGSTOP) while it uploads a 48 MiB file; the whole cluster (NameNode and
    DataNode, one JVM) is stopped and started again on its kept storage (MNAAS_HDFS_KEEP=1), the module resumes.
    The files written before the restart are still there; the upload cut by the restart fails and is named,
    nothing partial is committed, the flag says what happened. The next run converges."""
    age_in_flight(night)
    add_big_files(night)
    hdfs = Hdfs(night)
    settings = spark_settings(night, hdfs)
    database = settings['mnaas_backup_warehouse_database']
    landing = night.tree_hash(night.landing)
    marker = hdfs.base + '/before-restart.txt'
    fs('-touchz', marker)

    log = tmp_path / 'restart.log'
    # A cut upload may wait for its answer until the timeout: 10 s rather than the default 30 in this run.
    proc = night.start(*night.extra_vars(**dict(settings, mnaas_backup_hdfs_location=hdfs.location(timeout=10.0))), log=log)
    pids, stopped = [], False
    try:
        pids, name = stop_mid_big_upload(night, proc, log)
        temp = assert_temp_holds_data(night, hdfs, name, ())
        monkeypatch.setenv('MNAAS_HDFS_KEEP', '1')
        hdfs_script('stop.sh')
        stopped = True
        hdfs_script('start.sh')
        stopped = False
        # The same namespace came back: what was there before the restart still is.
        tree = hdfs_tree(hdfs.base)
        assert marker in tree and temp in tree, sorted(tree)
    finally:
        if stopped:
            hdfs_script('start.sh')
        monkeypatch.delenv('MNAAS_HDFS_KEEP', raising=False)
        signal_all(pids, signal.SIGCONT)
    rc = proc.wait(timeout=RUN_TIMEOUT)
    output = log.read_text(errors='replace')
    committed = assert_nothing_partial_in_hdfs(night, hdfs, 'after the restart')
    assert night.tree_hash(night.landing) == landing, 'sources changed'
    night.assert_unlocked()
    # Truthful, whatever the outcome: FAIL naming the cut upload and recording nothing of it, or SUCCESS with everything.
    if rc == 0:
        assert flag(hdfs) == 'SUCCESS\n', output
        assert_converged(night, hdfs, database, '\n' + output)
    else:
        assert rc == 2, output
        assert flag(hdfs) == 'FAIL\n', output
        errors = '\n'.join(line for line in output.splitlines() if line.startswith('fatal: '))
        assert name in errors and hdfs.base + '/backup' in errors and 'upload to DataNode' in errors, output
        recorded = ledger_names(night)
        assert name not in recorded, output
        in_hdfs = {path.rpartition('/')[2] for path in committed}
        assert set(recorded) <= in_hdfs, 'recorded as done without its HDFS backup: %s' % sorted(set(recorded) - in_hdfs)
        if recorded:
            assert warehouse_rows(database) == expected_rows(night, recorded), output

    result = night.run(*night.extra_vars(**settings))
    assert_converged(night, hdfs, database, result)
    assert fs('-ls', marker).strip(), 'the file written before the restart is gone'


# ---------------------------------------------------------------------------------------------
# 3. HiveServer2 stopped between the staging load and the final update

# pylint: disable-next=redefined-outer-name,unused-argument
def test_hiveserver2_stopped_between_staging_load_and_final_update(night, hadoop, tmp_path, monkeypatch):
    """A first night counts half the files. In the second, hive_refresh is frozen (SIGSTOP) as soon as it submits the
    first statement of the final update (the staging table then holds this run's rows), HiveServer2 is stopped, the
    module resumes: the run fails naming the warehouse and the statement, the flag in HDFS says FAIL, the ledger and
    the HDFS counts do not list the run's files. HiveServer2 is started again on its kept metastore and warehouse:
    the staging rows are still there, the final table holds the first night's rows only. The next run counts every
    file exactly once (the leftover staging rows are not counted twice)."""
    age_in_flight(night)
    hdfs = Hdfs(night)
    settings = spark_settings(night, hdfs)
    database = settings['mnaas_backup_warehouse_database']
    landing = night.tree_hash(night.landing)
    names = night.oldest_first(night.expected)
    first, rest = names[:len(names) // 2], sorted(names[len(names) // 2:])
    night.run(*night.extra_vars(**dict(settings, mnaas_backup_max_files=len(first))))
    assert warehouse_rows(database) == expected_rows(night, first)
    final_before = table_files(database, FINAL)

    log = tmp_path / 'hs2-stopped.log'
    offset = (HS2_BASE / 'hs2.log').stat().st_size
    proc = night.start(*night.extra_vars(**settings), log=log)
    pids, stopped = [], False
    try:
        wait_for(lambda: started_task(log, WAREHOUSE_TASK), proc, log, 'the warehouse task')
        pids = wait_for(lambda: module_pids(proc.pid, 'hive_refresh'), proc, log, 'the hive_refresh module')
        # The Spark dialect's final update starts by dropping its work table: the staging load is done then.
        merge = 'DROP TABLE IF EXISTS %s.%s__mnaas_merge' % (database, FINAL)
        wait_for(lambda: submitted(offset, merge), proc, log, 'the final update', timeout=RUN_TIMEOUT)
        signal_all(pids, signal.SIGSTOP)
        staged = table_text(database, STAGING)
        assert all(',%s,' % name in staged for name in rest), 'the staging table does not hold all of this run\'s rows'
        assert not any(',%s,' % name in staged for name in first), 'the staging table holds rows of the first night'
        assert not submitted(offset, 'INSERT OVERWRITE TABLE %s.%s ' % (database, FINAL)), 'the final update was already submitted'
        monkeypatch.setenv('MNAAS_HS2_KEEP', '1')
        hs2_service('stop.sh')
        stopped = True
    finally:
        signal_all(pids, signal.SIGCONT)
    try:
        assert proc.wait(timeout=RUN_TIMEOUT) == 2, log.read_text()
        output = log.read_text(errors='replace')
        errors = '\n'.join(line for line in output.splitlines() if line.startswith('fatal: '))
        assert WAREHOUSE_TASK in errors and 'spark at 127.0.0.1:10000' in errors and 'edge1 failed; the flag says FAIL' in errors, output
        assert flag(hdfs) == 'FAIL\n', output
        assert ledger_names(night) == sorted(first), output
        hdfs.assert_counts(first)
        assert table_files(database, FINAL) == final_before, 'the final table changed'
        assert night.tree_hash(night.landing) == landing, 'sources changed'
        night.assert_unlocked()
    finally:
        if stopped:
            hs2_service('start.sh')  # on the kept metastore and warehouse
            monkeypatch.delenv('MNAAS_HS2_KEEP')

    # The server came back with its tables: the staging rows of the failed run, the final rows of the first night.
    rows = beeline("SELECT 'staging', customer, file_name FROM %s.%s UNION ALL SELECT 'final', customer, file_name FROM %s.%s"
                   % (database, STAGING, database, FINAL))
    tables = {table: sorted(line.split('\t')[2] for line in rows if line.startswith(table + '\t')) for table in ('staging', 'final')}
    assert tables == {'staging': rest, 'final': sorted(first)}, tables

    result = night.run(*night.extra_vars(**settings))
    assert_converged(night, hdfs, database, result)
    assert night.tree_hash(night.landing) == landing, 'sources changed'
