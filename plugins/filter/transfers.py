# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: transfers
short_description: Turn the customers mapping into the transfers of M(mnaas.backup.backup_copy)
version_added: 0.1.0
description:
  - One transfer per customer, from a source directory to the directory that the customer's setting
    O(dest_key) names, with the customer's files of O(files).
author: MNAAS platform team (@mnaas)
options:
  _input:
    description: The customers mapping (C(mnaas_backup_customers)).
    type: dict
    required: true
  dest_key:
    description: The customer setting holding the destination directory, for example V(backup_dir).
    type: str
    required: true
  src_dir:
    description: One source directory for every customer (the landing directory). Exclusive with O(src_key).
    type: str
  src_key:
    description: The customer setting holding the source directory. Exclusive with O(src_dir).
    type: str
  files:
    description:
      - Files as M(mnaas.backup.discover) returns them; each customer's transfer gets the files whose
        V(customer) is that customer.
      - Customers without files get no transfer, unless O(sync=true) or O(include_empty=true).
    type: list
    elements: dict
    default: []
  sync:
    description: Set V(sync) on every transfer, so every file of the source directory is copied too.
    type: bool
    default: false
  include_empty:
    description: A transfer for every customer, even one without files (for example when the files come from a ledger).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Back up the discovered files
  mnaas.backup.backup_copy:
    transfers: "{{ mnaas_backup_customers | mnaas.backup.transfers('backup_dir', src_dir=mnaas_backup_source_dir, files=found.files) }}"

- name: Mirror the primary backups on the second node
  mnaas.backup.backup_copy:
    transfers: "{{ mnaas_backup_customers | mnaas.backup.transfers('edge2_backup_dir', src_key='backup_dir', sync=true) }}"
'''

RETURN = r'''
_value:
  description: The transfers, one dict per customer with V(customer), V(src), V(dest), V(files) and V(sync), sorted by customer.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleFilterError

FILE_KEYS = ('name', 'size', 'mtime', 'sha256')


def transfers(customers, dest_key, src_dir=None, src_key=None, files=None, sync=False, include_empty=False):
    if not isinstance(customers, dict):
        raise AnsibleFilterError('transfers: the input must be the customers mapping, got %r' % (customers,))
    if (src_dir is None) == (src_key is None):
        raise AnsibleFilterError('transfers: give exactly one of src_dir and src_key')
    by_customer = {}
    for found in files or []:
        # Only what backup_copy reads: smaller arguments for thousands of files.
        by_customer.setdefault(found.get('customer'), []).append({key: found[key] for key in FILE_KEYS if key in found})
    unknown = sorted(set(by_customer) - set(customers), key=str)
    if unknown:
        raise AnsibleFilterError('transfers: files of customers not in the mapping: %s' % ', '.join(map(str, unknown)))
    result = []
    for name in sorted(customers):
        settings = customers[name] or {}
        if not by_customer.get(name) and not sync and not include_empty:
            continue
        for key in (dest_key, src_key):
            if key is not None and not settings.get(key):
                raise AnsibleFilterError('transfers: customer %s has no %s' % (name, key))
        result.append({'customer': name, 'src': src_dir if src_dir is not None else settings[src_key], 'dest': settings[dest_key],
                       'files': by_customer.get(name, []), 'sync': bool(sync)})
    return result


class FilterModule:

    def filters(self):
        return {'transfers': transfers}
