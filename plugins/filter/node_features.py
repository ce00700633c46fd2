# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: node_features
short_description: The steps of an edge node's night that import a Python library
version_added: 0.2.0
description:
  - From the settings of the C(mnaas.backup.mnaas_backup) role, the steps of the night that the node of role O(_input)
    runs and that import a Python library beyond the standard library, as O(mnaas.backup.preflight#module:features)
    takes them. The preflight checks their libraries; C(playbooks/prepare_nodes.yml) installs them.
  - A location needs the library of its C(type) (V(sftp) or V(webhdfs); V(local), the default, needs none), on the node
    that opens it.
  - The B(secondary) opens only O(primary_location), to pull the primary's backups and ledger. It writes no flag and nothing
    to HDFS.
  - The B(primary) opens O(hdfs_location) when the night writes to it (a customer with C(hdfs_backup_dir), or
    O(hdfs_count_dir)), and the flag's location (O(flag_location), else O(hdfs_location)); it loads the counts into the
    warehouse, over HiveServer2 (V(hiveserver2)) for the engines V(hive), V(impala) and V(spark).
author: MNAAS platform team (@mnaas)
options:
  _input:
    description: The node's role (C(mnaas_backup_node_role)).
    type: str
    choices: [primary, secondary]
    required: true
  primary_location:
    description:
      - How the secondary reads the primary, with the role's defaults applied (its internal C(_mnaas_backup_primary_location),
        of type V(sftp) unless C(mnaas_backup_primary_location) says otherwise). Read on the secondary only.
    type: dict
    default: {}
  hdfs_location:
    description: C(mnaas_backup_hdfs_location). Read on the primary only.
    type: dict
    default: {}
  flag_location:
    description: C(mnaas_backup_flag_location); empty means O(hdfs_location). Read on the primary only.
    type: dict
    default: {}
  hdfs_count_dir:
    description: C(mnaas_backup_hdfs_count_dir); the counts are written to O(hdfs_location) when it is set. Read on the primary only.
    type: str
    default: ""
  customers:
    description: C(mnaas_backup_customers); a customer with C(hdfs_backup_dir) is copied to O(hdfs_location). Read on the primary only.
    type: dict
    default: {}
  warehouse_engine:
    description: C(mnaas_backup_warehouse_engine). Read on the primary only.
    type: str
    default: sqlite
'''

EXAMPLES = r'''
- name: Check the libraries of this node's steps
  mnaas.backup.preflight:
    settings: {}
    features: >-
      {{ mnaas_backup_node_role | mnaas.backup.node_features(
           primary_location=_mnaas_backup_primary_location if mnaas_backup_node_role == 'secondary' else {},
           hdfs_location=mnaas_backup_hdfs_location, flag_location=mnaas_backup_flag_location,
           hdfs_count_dir=mnaas_backup_hdfs_count_dir, customers=mnaas_backup_customers,
           warehouse_engine=mnaas_backup_warehouse_engine) }}

# A primary writing its counts and flag to HDFS, with Hive as the warehouse: ['webhdfs', 'hiveserver2']
- name: Show the features of a primary
  ansible.builtin.debug:
    msg: >-
      {{ 'primary' | mnaas.backup.node_features(hdfs_location={'type': 'webhdfs', 'urls': ['http://nn1:9870']},
         hdfs_count_dir='/user/mnaas/counts', warehouse_engine='hive') }}
'''

RETURN = r'''
_value:
  description:
    - The features, among V(sftp), V(webhdfs) and V(hiveserver2), in that order; empty when the node's steps need
      nothing beyond the standard library (local directories, the embedded SQLite warehouse).
  type: list
  elements: str
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mnaas.backup.plugins.module_utils._requirements import FEATURES

# The feature of a location, by its type; a local one (the default type) needs none.
LOCATION_FEATURES = {'sftp': 'sftp', 'webhdfs': 'webhdfs'}
# The warehouse engines reached over HiveServer2 (PyHive); sqlite is the embedded one.
HIVESERVER2_ENGINES = ('hive', 'impala', 'spark')


def _location_feature(location):
    """The feature of a location option, None for an empty or local one (the role treats {} as not set)."""
    if not isinstance(location, Mapping) or not location:
        return None
    return LOCATION_FEATURES.get(location.get('type') or 'local')


def _writes_to_hdfs(customers, hdfs_count_dir):
    """Whether the primary's night writes to mnaas_backup_hdfs_location (the flag aside)."""
    if hdfs_count_dir:
        return True
    if not isinstance(customers, Mapping):
        return False   # the preflight reports it
    return any(isinstance(conf, Mapping) and conf.get('hdfs_backup_dir') for conf in customers.values())


def node_features(node_role, primary_location=None, hdfs_location=None, flag_location=None, hdfs_count_dir='', customers=None,
                  warehouse_engine='sqlite'):
    if node_role not in ('primary', 'secondary'):
        raise AnsibleFilterError('node_features: the input must be the node role, primary or secondary, got %r' % (node_role,))
    wanted = set()
    if node_role == 'secondary':
        wanted.add(_location_feature(primary_location))
    else:
        if _writes_to_hdfs(customers, hdfs_count_dir):
            wanted.add(_location_feature(hdfs_location))
        wanted.add(_location_feature(flag_location or hdfs_location))
        if warehouse_engine in HIVESERVER2_ENGINES:
            wanted.add('hiveserver2')
    return [feature for feature in FEATURES if feature in wanted]


class FilterModule:

    def filters(self):
        return {'node_features': node_features}
