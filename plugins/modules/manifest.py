#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: manifest
short_description: Write the CSV manifest of a run, or merge it into the ledger of processed files
version_added: 0.1.0
description:
  - Writes one CSV row per file (customer, domain, file_name, file_size, file_mtime, records, sha256,
    run_id), header first, sorted by customer and file name, atomically (temporary file, flush, rename).
  - With O(mode=replace) the file lists exactly O(files) (the run manifest). With O(mode=merge) the rows
    of O(files) replace the rows of the same customer and file name and the other rows are kept (the
    ledger of processed files that M(mnaas.backup.discover) reads).
  - Nothing is written, and C(changed) is false, when the file already lists the same files with the
    same sizes, times, counts and checksums; the run id alone does not make a change.
  - An existing file that is not a manifest of this collection is an error and is left as it is.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The CSV before and after.
  idempotent:
    support: full
options:
  path:
    description: The CSV file, absolute. Its directory must exist.
    type: path
    required: true
  files:
    description: The files, as M(mnaas.backup.discover) returns them (V(customer), V(domain), V(name), V(size), V(mtime), V(records), V(sha256)).
    type: list
    elements: dict
    required: true
  run_id:
    description: The run that lists the files, written in each new row.
    type: str
    required: true
  mode:
    description: V(replace) writes exactly O(files); V(merge) updates them into the existing rows.
    type: str
    choices: [replace, merge]
    default: replace
'''

EXAMPLES = r'''
- name: Write the run manifest
  mnaas.backup.manifest:
    path: /app/hadoop_users/MNAAS/MNAAS_backup_files_process_list.csv
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"

- name: Record the files as processed
  mnaas.backup.manifest:
    path: /app/hadoop_users/MNAAS/state/MNAAS_backup_files_process_ledger.csv
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"
    mode: merge
'''

RETURN = r'''
rows:
  description: Number of data rows in the file after the task.
  returned: always
  type: int
  sample: 288
added:
  description: Rows that are new or changed by this task.
  returned: always
  type: int
  sample: 12
path:
  description: The file written.
  returned: always
  type: str
  sample: /app/hadoop_users/MNAAS/MNAAS_backup_files_process_list.csv
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _manifest
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import read_file, write_file_atomic
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute


def logic(module: AnsibleModule) -> dict:
    params = module.params
    path = check_absolute(params['path'], 'path')
    if not module.check_mode and not os.path.isdir(os.path.dirname(path)):
        raise ConfigError('path %r: directory %r does not exist' % (path, os.path.dirname(path)))
    new = [_manifest.row_of(found, params['run_id'], i) for i, found in enumerate(params['files'])]
    old_data = read_file(path)
    existing = _manifest.parse(old_data, path)
    rows = _manifest.merge(existing, new) if params['mode'] == 'merge' else _manifest.merge([], new)
    changed = old_data is None or _manifest.meaning(rows) != _manifest.meaning(existing)
    old_meaning = set(_manifest.meaning(existing))
    result = {'changed': changed, 'rows': len(rows), 'path': path,
              'added': sum(1 for m in _manifest.meaning(rows) if m not in old_meaning)}
    data = _manifest.render(rows) if changed else old_data
    if changed and not module.check_mode:
        write_file_atomic(path, data)
    if module._diff:
        result['diff'] = {'before_header': path, 'after_header': path,
                          'before': (old_data or b'').decode('utf-8'), 'after': data.decode('utf-8')}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'path': {'type': 'path', 'required': True},
            'files': {'type': 'list', 'elements': 'dict', 'required': True},
            'run_id': {'type': 'str', 'required': True},
            'mode': {'type': 'str', 'choices': ['replace', 'merge'], 'default': 'replace'},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
