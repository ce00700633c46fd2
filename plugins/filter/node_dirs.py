# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: node_dirs
short_description: The directories an edge node's night writes in
version_added: 0.2.0
description:
  - From the settings of the C(mnaas.backup.mnaas_backup) role, the local directories that the night writes in on the node
    of role O(_input), which C(playbooks/prepare_nodes.yml) creates.
  - Every node writes its state directory and the directories of its lock and ledger files.
  - The B(primary) also writes each customer's C(backup_dir), the directory of the manifest, and the directory of the flag
    when the flag is written locally (O(flag_location) empty or of type V(local)).
  - The B(secondary) also writes each customer's C(edge2_backup_dir), where the customer has one.
author: MNAAS platform team (@mnaas)
options:
  _input:
    description: The role of the node whose directories these are (C(mnaas_backup_node_role)).
    type: str
    choices: [primary, secondary]
    required: true
  customers:
    description: C(mnaas_backup_customers).
    type: dict
    required: true
  state_dir:
    description: C(mnaas_backup_state_dir).
    type: str
    required: true
  lock_file:
    description: C(mnaas_backup_lock_file).
    type: str
    required: true
  ledger_file:
    description: C(mnaas_backup_ledger_file).
    type: str
    required: true
  manifest_file:
    description: C(mnaas_backup_manifest_file). Read on the primary only.
    type: str
    default: ""
  flag_file:
    description: C(mnaas_backup_flag_file). Read on the primary only.
    type: str
    default: ""
  flag_location:
    description: Where the flag is written (C(mnaas_backup_flag_location), else C(mnaas_backup_hdfs_location)). Read on the primary only.
    type: dict
    default: {}
'''

EXAMPLES = r'''
- name: Create the directories the night writes in
  ansible.builtin.file:
    path: "{{ item }}"
    state: directory
    mode: "0750"
  loop: >-
    {{ mnaas_backup_node_role | mnaas.backup.node_dirs(mnaas_backup_customers, state_dir=mnaas_backup_state_dir,
         lock_file=mnaas_backup_lock_file, ledger_file=mnaas_backup_ledger_file, manifest_file=mnaas_backup_manifest_file,
         flag_file=mnaas_backup_flag_file, flag_location=mnaas_backup_flag_location or mnaas_backup_hdfs_location) }}
'''

RETURN = r'''
_value:
  description: The directories, each once, in the order above (customers in the order of O(customers)).
  type: list
  elements: str
'''

import posixpath
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def node_dirs(node_role, customers, state_dir, lock_file, ledger_file, manifest_file='', flag_file='', flag_location=None):
    if node_role not in ('primary', 'secondary'):
        raise AnsibleFilterError('node_dirs: the input must be the node role, primary or secondary, got %r' % (node_role,))
    if not isinstance(customers, Mapping):
        raise AnsibleFilterError('node_dirs: customers must be a mapping, got %r' % (customers,))
    dirs = [state_dir, posixpath.dirname(lock_file), posixpath.dirname(ledger_file)]
    if node_role == 'primary':
        for name, settings in customers.items():
            if not isinstance(settings, Mapping) or 'backup_dir' not in settings:
                raise AnsibleFilterError('node_dirs: customer %s has no backup_dir' % name)
            dirs.append(settings['backup_dir'])
        dirs.append(posixpath.dirname(manifest_file))
        if (flag_location or {}).get('type', 'local') == 'local':
            dirs.append(posixpath.dirname(flag_file))
    else:
        dirs += [settings['edge2_backup_dir'] for settings in customers.values()
                 if isinstance(settings, Mapping) and settings.get('edge2_backup_dir')]
    return list(dict.fromkeys(dirs))


class FilterModule:

    def filters(self):
        return {'node_dirs': node_dirs}
