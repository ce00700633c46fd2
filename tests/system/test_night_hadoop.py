# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whole nights of the demo playbook with the record counts in a real HiveServer2 (Spark Thrift Server)
and the backups, the per-customer counts and the flag in a real HDFS, checked with beeline and Hadoop's
FsShell (``-cat``, ``-checksum``, ``-ls -R``, ``-stat``), never with the collection's own readers.

The services are those of ``make system`` (MNAAS_HS2_STARTED=1, MNAAS_HDFS_STARTED=1), or
started here with their scripts when nothing answers; a service that does not come up fails the test.
"""
from __future__ import annotations

import uuid

from support.hadoop import Hdfs, beeline, hdfs_tree, per_customer_counts, warehouse_counts


def test_night_with_results_in_hdfs_and_spark(night, hadoop):  # pylint: disable=redefined-outer-name,unused-argument
    """Two capped runs (backups, counts and flag in HDFS, counts in Spark), a --check --diff between them
    that changes nothing anywhere, then a no-op rerun."""
    hdfs = Hdfs(night)
    database = 'night_%s' % uuid.uuid4().hex[:8]
    beeline('CREATE DATABASE %s' % database)
    settings = hdfs.settings(mnaas_backup_warehouse_engine='spark', mnaas_backup_warehouse_host='127.0.0.1',
                             mnaas_backup_warehouse_database=database)
    regular = night.names('regular')
    cap = len(regular) // 2

    first = night.run(*night.extra_vars(**dict(settings, mnaas_backup_max_files=cap)))
    assert first.changed('edge1') > 0
    done = night.oldest_first(regular)[:cap]
    assert sorted(p for p, stat in hdfs_tree(hdfs.base + '/backup').items() if stat[0] == 'FILE') == sorted(
        '%s/backup/%s/%s' % (hdfs.base, night.files[n]['customer'], n) for n in done)

    # A preview of the rest: nothing changes in HDFS or in the warehouse; the plan shows the statements and the counts.
    tree, table = hdfs_tree(hdfs.base), beeline('SELECT * FROM %s.customers_files_records_count ORDER BY file_name' % database)
    landing = night.tree_hash(night.landing)
    plan = night.run(*night.extra_vars(**settings), check=True, diff=True)
    assert hdfs_tree(hdfs.base) == tree
    assert beeline('SELECT * FROM %s.customers_files_records_count ORDER BY file_name' % database) == table
    assert night.tree_hash(night.landing) == landing
    assert plan.task('Write the per-customer counts')['edge1'] == 'changed', plan
    assert plan.task("Copy them to the customers' HDFS backup directories")['edge1'] == 'changed', plan
    assert 'INSERT' in plan.diff_text() and 'customers_files_records_count' in plan.diff_text(), plan
    later = sorted(set(regular) - set(done))
    day = night.files[later[0]]
    shown = '%s/counts/%s/%s_' % (hdfs.base, day['customer'], day['customer'])
    assert any(line.startswith('+++ after: ' + shown) for line in plan.diff_text().splitlines()), plan
    assert any(line.startswith('+') and later[0] in line for line in plan.diff_text().splitlines()), plan

    second = night.run(*night.extra_vars(**settings))
    assert second.changed('edge1') > 0
    hdfs.assert_backups(regular, second)
    hdfs.assert_counts(regular, second)
    assert warehouse_counts(database) == per_customer_counts(night, regular)
    assert hdfs.flag_content() == 'SUCCESS\n'
    night.assert_backups(regular, second)

    tree = hdfs_tree(hdfs.base)
    again = night.run(*night.extra_vars(**settings))
    assert again.changed('edge1') == 0 and again.changed('edge2') == 0, again
    assert hdfs_tree(hdfs.base) == tree
    assert warehouse_counts(database) == per_customer_counts(night, regular)
