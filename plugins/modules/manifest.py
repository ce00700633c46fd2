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
  - With O(split=customer_day) (and O(mode=merge)) O(path) is a directory and the rows go to one file per
    customer and day of the file's modification time (UTC), C(<path>/<customer>/<customer>_<YYYYMMDD>.csv),
    each merged as the ledger is; the customer directories are created when missing. Because the day is the
    file's, not the run's, a file is listed exactly once whichever runs (capped, failed, rerun) counted it.
    This is how the per-customer counts go to HDFS (legacy C(MNAAS_backup_filename_hdfs_customer)).
  - The files are read and written through O(location), this machine by default, or HDFS over WebHDFS;
    one directory listing per customer directory, and only the files that change are written.
  - An existing file that is not a manifest of this collection is an error and is left as it is.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
  - mnaas.backup.location.FILE
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The CSV before and after; with O(split=customer_day), of each file that changes.
  idempotent:
    support: full
options:
  path:
    description:
      - The CSV file, absolute, in O(location). Its directory must exist.
      - With O(split=customer_day), the directory of the customer directories, which must exist.
    type: str
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
  split:
    description: V(none) writes the one file O(path); V(customer_day) one file per customer and day below the directory O(path).
    type: str
    choices: [none, customer_day]
    default: none
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

- name: Per-customer counts in HDFS, one file per customer and day
  mnaas.backup.manifest:
    path: /user/MNAAS/backup_files_count/customer
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"
    mode: merge
    split: customer_day
    location:
      type: webhdfs
      urls: [http://nn1.example:9870, http://nn2.example:9870]
      hdfs_user: mnaas
'''

RETURN = r'''
rows:
  description: Number of data rows in the file (or the files that O(files) goes to) after the task.
  returned: always
  type: int
  sample: 288
added:
  description: Rows that are new or changed by this task.
  returned: always
  type: int
  sample: 12
path:
  description: The file written, or with O(split=customer_day) the directory.
  returned: always
  type: str
  sample: /app/hadoop_users/MNAAS/MNAAS_backup_files_process_list.csv
files:
  description: Each file O(files) goes to, with V(path), V(rows) after the task, V(added) rows and whether it V(changed) (in check mode, would change).
  returned: always
  type: list
  elements: dict
  sample: [{path: /user/MNAAS/backup_files_count/customer/ACME/ACME_20261125.csv, rows: 12, added: 3, changed: true}]
'''

import posixpath
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _manifest
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations.factory import LOCATION_SPEC, open_location
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute


def logic(module: AnsibleModule) -> dict:
    params = module.params
    path = check_absolute(params['path'], 'path').rstrip('/') or '/'
    split = params['split']
    if split != 'none' and params['mode'] != 'merge':
        raise ConfigError('split=%s needs mode=merge (each file keeps the rows of earlier runs), got mode=%s' % (split, params['mode']))
    new = [_manifest.row_of(found, params['run_id'], i) for i, found in enumerate(params['files'])]
    base = path if split != 'none' else posixpath.dirname(path)
    location = open_location(params['location'], 'location', module.warn)
    try:
        # A single file's directory may come from an earlier task that check mode did not run; a split's must exist.
        if split != 'none' or not module.check_mode:
            parent = location.stat(base)
            if parent is None or parent.kind not in ('dir', 'link'):
                raise ConfigError('path %r: directory %r does not exist' % (path, location.describe(base)))
        writes = _manifest.plan(location, _manifest.targets(path, new, split), params['mode'] == 'merge')
        if not module.check_mode:
            _manifest.apply(location, writes, base, uuid.uuid4().hex[:12])
    finally:
        location.close()
    result = {'changed': any(write.changed for write in writes), 'path': path,
              'rows': sum(write.rows for write in writes), 'added': sum(write.added for write in writes),
              'files': [{'path': write.path, 'rows': write.rows, 'added': write.added, 'changed': write.changed} for write in writes]}
    if module._diff:
        diffs = [{'before_header': write.path, 'after_header': write.path,
                  'before': (write.before or b'').decode('utf-8'), 'after': write.after.decode('utf-8')}
                 for write in writes if write.changed or split == 'none']
        result['diff'] = diffs[0] if split == 'none' else diffs
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'path': {'type': 'str', 'required': True},
            'files': {'type': 'list', 'elements': 'dict', 'required': True},
            'run_id': {'type': 'str', 'required': True},
            'mode': {'type': 'str', 'choices': ['replace', 'merge'], 'default': 'replace'},
            'split': {'type': 'str', 'choices': list(_manifest.SPLITS), 'default': 'none'},
            'location': {'type': 'dict', 'options': LOCATION_SPEC},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
