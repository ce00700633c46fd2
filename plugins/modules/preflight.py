#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: preflight
short_description: Check the whole backup configuration before anything is written
version_added: 0.1.0
description:
  - Checks the settings of the C(mnaas.backup.mnaas_backup) role and reports every problem at once,
    each naming the key and the value; fails when there is any. Writes nothing.
  - Unknown C(mnaas_backup_) variables (typos) and unknown keys of a customer are problems, with the
    closest known name suggested.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
  - mnaas.backup.attributes.INFO_MODULE
attributes:
  idempotent:
    support: full
options:
  settings:
    description: The role's settings, by name without the C(mnaas_backup_) prefix.
    type: dict
    required: true
  known_variables:
    description: The names of the role's public variables.
    type: list
    elements: str
    default: []
  set_variables:
    description: The names of the C(mnaas_backup_) variables set for this host.
    type: list
    elements: str
    default: []
  needed_dirs:
    description: The customer settings this node needs, for example V(backup_dir) and V(edge2_backup_dir).
    type: list
    elements: str
    default: [backup_dir]
  node_role:
    description:
      - With a role, this node's filesystems are checked too; V(primary) or V(secondary).
      - The landing directory exists (primary); the state directory and each backup directory this node
        writes exist or can be created; the directories of the lock, ledger, manifest, flag and SQLite file
        exist or are the state directory; each backup filesystem has at least O(min_free_mb) MiB free.
    type: str
    choices: [primary, secondary]
  min_free_mb:
    description: The least free space, in MiB, on the filesystem of each backup directory this node writes.
    type: int
    default: 256
'''

EXAMPLES = r'''
- name: Check the configuration
  mnaas.backup.preflight:
    settings:
      source_dir: /app/hadoop_users/MNAAS/MNAAS_Input
      domains: {traffic: "*_Traffic_*.csv"}
      customers: {ACME_TELEMATICS: {backup_dir: /backup1/ACME_TELEMATICS}}
'''

RETURN = r'''
problems:
  description: Every problem found (empty when the configuration is fine).
  returned: always
  type: list
  elements: str
  sample: ["mnaas_backup_source_dir must be an absolute path, got relative path 'input'"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._preflight import check, check_node


def logic(module: AnsibleModule) -> dict:
    params = module.params
    problems = check(params['settings'], params['known_variables'], params['set_variables'], params['needed_dirs'])
    if params['node_role']:
        problems.extend(check_node(params['settings'], params['node_role'], params['min_free_mb']))
    if problems:
        raise BackupError('the configuration has %d problem(s): %s' % (len(problems), '; '.join(problems)), problems=problems)
    return {'changed': False, 'problems': problems}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'settings': {'type': 'dict', 'required': True},
            'known_variables': {'type': 'list', 'elements': 'str', 'default': []},
            'set_variables': {'type': 'list', 'elements': 'str', 'default': []},
            'needed_dirs': {'type': 'list', 'elements': 'str', 'default': ['backup_dir']},
            'node_role': {'type': 'str', 'choices': ['primary', 'secondary']},
            'min_free_mb': {'type': 'int', 'default': 256},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
