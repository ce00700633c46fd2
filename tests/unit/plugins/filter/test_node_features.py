# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mnaas.backup.plugins.filter.node_features import FilterModule, node_features

SFTP = {'type': 'sftp', 'host': 'edge1', 'port': 22, 'user': 'mnaas'}
HDFS = {'type': 'webhdfs', 'urls': ['http://nn1:9870'], 'hdfs_user': 'mnaas'}
LOCAL = {'type': 'local'}
HDFS_CUSTOMERS = {'ACME': {'backup_dir': '/b1/ACME', 'hdfs_backup_dir': '/user/mnaas/ACME'}, 'HOOLI': {'backup_dir': '/b1/HOOLI'}}
PLAIN_CUSTOMERS = {'ACME': {'backup_dir': '/b1/ACME', 'hdfs_backup_dir': ''}, 'HOOLI': {'backup_dir': '/b1/HOOLI'}}


def test_registered():
    assert FilterModule().filters() == {'node_features': node_features}


@pytest.mark.parametrize('settings, features', [
    # The defaults: local directories and the embedded SQLite warehouse need nothing.
    ({}, []),
    ({'warehouse_engine': 'sqlite'}, []),
    ({'warehouse_engine': 'hive'}, ['hiveserver2']),
    ({'warehouse_engine': 'impala'}, ['hiveserver2']),
    ({'warehouse_engine': 'spark'}, ['hiveserver2']),
    # HDFS: the flag goes there when flag_location is empty, the counts and the customers' HDFS copies too.
    ({'hdfs_location': HDFS}, ['webhdfs']),
    ({'hdfs_location': HDFS, 'flag_location': LOCAL, 'hdfs_count_dir': '/user/mnaas/counts'}, ['webhdfs']),
    ({'hdfs_location': HDFS, 'flag_location': LOCAL, 'customers': HDFS_CUSTOMERS}, ['webhdfs']),
    # ... but a HDFS nothing is written to needs nothing.
    ({'hdfs_location': HDFS, 'flag_location': LOCAL, 'customers': PLAIN_CUSTOMERS}, []),
    ({'flag_location': HDFS}, ['webhdfs']),
    # Without hdfs_location the counts and the HDFS copies are local directories.
    ({'hdfs_count_dir': '/counts', 'customers': HDFS_CUSTOMERS}, []),
    # A location's type decides, not its name: a flag over SFTP needs paramiko on the primary.
    ({'flag_location': SFTP}, ['sftp']),
    ({'hdfs_location': {'urls': ['http://nn1:9870']}}, []),        # no type is local (the modules' default)
    ({'hdfs_location': HDFS, 'flag_location': SFTP, 'warehouse_engine': 'spark', 'hdfs_count_dir': '/c'}, ['sftp', 'webhdfs', 'hiveserver2']),
    # The primary does not read itself.
    ({'primary_location': SFTP}, []),
])
def test_primary(settings, features):
    assert node_features('primary', **settings) == features


@pytest.mark.parametrize('settings, features', [
    ({'primary_location': SFTP}, ['sftp']),
    ({'primary_location': HDFS}, ['webhdfs']),
    ({'primary_location': LOCAL}, []),
    ({}, []),
    # The secondary writes no flag, nothing to HDFS and nothing to the warehouse.
    ({'primary_location': SFTP, 'hdfs_location': HDFS, 'flag_location': HDFS, 'hdfs_count_dir': '/c', 'customers': HDFS_CUSTOMERS,
      'warehouse_engine': 'hive'}, ['sftp']),
])
def test_secondary(settings, features):
    assert node_features('secondary', **settings) == features


@pytest.mark.parametrize('settings', [
    {'customers': ['not', 'a', 'mapping'], 'hdfs_location': HDFS, 'flag_location': LOCAL},
    {'customers': {'ACME': None}, 'hdfs_location': HDFS, 'flag_location': LOCAL},
    {'hdfs_location': 'hdfs://nn1', 'flag_location': None},
    {'hdfs_location': None, 'flag_location': None, 'customers': None, 'hdfs_count_dir': None, 'warehouse_engine': None},
])
def test_bad_settings_left_to_the_preflight(settings):
    """Settings the preflight reports by name must not break the template that calls it."""
    assert node_features('primary', **settings) == []


@pytest.mark.parametrize('role', [None, '', 'tertiary'])
def test_node_role_required(role):
    with pytest.raises(AnsibleFilterError, match='node_features: the input must be the node role'):
        node_features(role)
