#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: backup_copy
short_description: Copy many files to backup directories, idempotent, atomic and verified, in one call
version_added: 0.1.0
description:
  - Plans every file first from one listing of each source and destination directory, then copies
    the files that need it in parallel.
  - A file already at the destination with the same size and modification time (kept on copy, compared
    to the second) is done. With O(compare=checksum) the content is compared too.
  - A destination file that differs from the source is compared by content; if the content differs it
    is a conflict, reported and left as it is (O(on_conflict)). It is never silently overwritten.
  - Each file is written to a hidden temporary name in the destination directory, hashed (SHA-256) while
    it is written, flushed to disk, and moved into place only if the source did not change during the
    copy and, when given, its SHA-256 equals the one discovery computed. A file that appeared at the
    destination meanwhile is never replaced. Leftover temporary files of an interrupted run are removed.
  - One file's failure does not stop the others. The task fails at the end, with a summary, when a file
    failed or is in conflict (see O(fail_on_error)).
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
  - mnaas.backup.location
attributes:
  check_mode:
    support: full
    details:
      - Lists and compares only; returns the plan per file (V(would_copy), V(skipped), V(conflict), V(failed)).
  diff_mode:
    support: full
    details:
      - Per destination directory that would change, the file names before and after.
  idempotent:
    support: full
options:
  transfers:
    description: The directories to copy between.
    type: list
    elements: dict
    required: true
    suboptions:
      src:
        description: Source directory, absolute, in O(src_location).
        type: str
        required: true
      dest:
        description: Destination directory, absolute, in O(dest_location); created when missing. Each O(transfers[].dest) must be different.
        type: str
        required: true
      files:
        description:
          - Files of O(transfers[].src) to copy, as names or as dicts with V(name) and optionally V(size),
            V(mtime) and V(sha256) as M(mnaas.backup.discover) returns them.
          - When V(size) and V(mtime) are given, a source that no longer matches them is not copied
            (it changed since discovery). When V(sha256) is given, the copied bytes must match it.
          - In check mode a listed file with V(size) and V(mtime) that is missing from the source is
            planned as a copy (an earlier task of the same run would have written it).
        type: list
        elements: raw
        default: []
      sync:
        description: Also copy every other regular, non-hidden file of O(transfers[].src).
        type: bool
        default: false
      customer:
        description: The customer whose files these are; with O(ledger), the ledger's files of this customer are copied too.
        type: str
  ledger:
    description:
      - A ledger of processed files (the CSV M(mnaas.backup.manifest) writes with O(mnaas.backup.manifest#module:mode=merge)),
        read in O(src_location). Each transfer with a O(transfers[].customer) also copies the files the ledger lists
        for that customer, and each copy must match the size, modification time and SHA-256 recorded there.
      - This is how the secondary edge node copies only what the primary backed up and verified, never a file the
        primary left in conflict. A missing ledger lists nothing (with a warning).
    type: str
  compare:
    description:
      - V(size_mtime) treats a destination with the same size and modification time as done.
      - V(checksum) compares content too (reads both files).
    type: str
    choices: [size_mtime, checksum]
    default: size_mtime
  on_conflict:
    description:
      - What to do with a destination file whose content differs from the source.
      - V(fail) leaves it as it is and fails the task at the end. V(skip) leaves it as it is and warns.
        V(overwrite) replaces it atomically.
    type: str
    choices: [fail, skip, overwrite]
    default: fail
  workers:
    description: Files copied in parallel.
    type: int
    default: 4
  fsync:
    description: Flush each file and each destination directory to disk before reporting success.
    type: bool
    default: true
  fail_on_error:
    description:
      - Fail the task at the end when a file failed or (with O(on_conflict=fail)) is in conflict.
      - With V(false) the task succeeds and the caller reads RV(summary) and RV(files).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Back up tonight's files of one customer
  mnaas.backup.backup_copy:
    transfers:
      - src: /app/hadoop_users/MNAAS/MNAAS_Input
        dest: /backup1/MNAAS/Customer_backup/ACME_TELEMATICS
        files: "{{ found.files | selectattr('customer', 'eq', 'ACME_TELEMATICS') }}"

- name: Keep a second directory in step with the first
  mnaas.backup.backup_copy:
    transfers:
      - src: /backup1/MNAAS/Customer_backup/ACME_TELEMATICS
        dest: /backup2/MNAAS/Customer_backup/ACME_TELEMATICS
        sync: true
    compare: checksum

- name: Copy what the ledger says the primary backed up, verified against its SHA-256
  mnaas.backup.backup_copy:
    transfers:
      - customer: ACME_TELEMATICS
        src: /backup1/MNAAS/Customer_backup/ACME_TELEMATICS
        dest: /backup2/MNAAS/Customer_backup/ACME_TELEMATICS
    ledger: /app/hadoop_users/MNAAS/MNAAS_backup_state/MNAAS_backup_files_process_ledger.csv
'''

RETURN = r'''
summary:
  description: Number of files per status.
  returned: always
  type: dict
  sample: {copied: 12, would_copy: 0, skipped: 288, conflict: 0, failed: 0}
copied:
  description: Destination path of every file copied, sorted; details of each are in the run's manifest.
  returned: always
  type: list
  elements: str
  sample: [/backup1/ACME_TELEMATICS/ACME_TELEMATICS_Traffic_20261124_0001.csv]
files:
  description:
    - One entry per file to copy (check mode), in conflict or failed, sorted by destination.
    - Copied files are listed in RV(copied), skipped files only counted in RV(summary).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: File name., type: str, returned: always, sample: ACME_TELEMATICS_Traffic_20261124_0001.csv}
    customer:
      description: The customer of its transfer (O(transfers[].customer)), empty when not given.
      type: str
      returned: always
      sample: ACME_TELEMATICS
    src: {description: Source path., type: str, returned: always, sample: /data/in/ACME_TELEMATICS_Traffic_20261124_0001.csv}
    dest: {description: Destination path., type: str, returned: always, sample: /backup1/ACME_TELEMATICS/ACME_TELEMATICS_Traffic_20261124_0001.csv}
    status:
      description: V(would_copy) (check mode), V(conflict) or V(failed).
      type: str
      returned: always
      sample: failed
    reason: {description: Why., type: str, returned: always, sample: missing at destination}
    size: {description: 'Source size in bytes, when known.', type: int, returned: always, sample: 20480}
    mtime: {description: 'Source modification time, when known.', type: float, returned: always, sample: 1764021600.0}
    sha256: {description: 'SHA-256 as given by discovery, when known.', type: str, returned: always, sample: 9f86d0...}
removed_temps:
  description: Leftover temporary files of interrupted runs that were (or in check mode would be) removed.
  returned: always
  type: list
  elements: str
  sample: [/backup1/ACME_TELEMATICS/.ACME_TELEMATICS_Traffic_20261124_0001.csv.mnaas-tmp.0f3a9c1b2d4e]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _copy, _manifest
from ansible_collections.mnaas.backup.plugins.module_utils._locations import read_small
from ansible_collections.mnaas.backup.plugins.module_utils._locations.factory import LOCATION_SPEC, open_location
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module


def logic(module: AnsibleModule) -> dict:
    params = module.params
    transfers = _copy.parse_transfers(params['transfers'])
    opts = _copy.Options(params['compare'], params['on_conflict'], params['workers'], params['fsync'])
    src_loc = open_location(params['src_location'], 'src_location', module.warn)
    try:
        dest_loc = open_location(params['dest_location'], 'dest_location', module.warn)
        try:
            if params['ledger']:
                data = read_small(src_loc, params['ledger'])
                if data is None:
                    module.warn('ledger %s does not exist: nothing recorded to copy from it' % src_loc.describe(params['ledger']))
                transfers = _copy.add_ledger(transfers, _manifest.parse(data, params['ledger']))
            plan = _copy.plan(transfers, src_loc, dest_loc, opts, module.check_mode)
            outcomes = _copy.planned_outcomes(plan) if module.check_mode else _copy.execute(plan, src_loc, dest_loc, opts)
        finally:
            dest_loc.close()
    finally:
        src_loc.close()
    summary = _copy.summarize(outcomes)
    result = {
        'changed': bool(summary['copied'] or summary['would_copy'] or plan.temps),
        'summary': summary,
        # Skipped files are only counted and copied ones only named: a night over thousands of files
        # returns a short result (its size cost more than the copy, docs/performance.md).
        'files': [o.as_dict() for o in outcomes if o.status not in ('skipped', 'copied')],
        'copied': [o.action.dest_path for o in outcomes if o.status == 'copied'],
        'removed_temps': plan.temps,
    }
    if module._diff:
        result['diff'] = _copy.diff(plan)
    conflicts = [o for o in outcomes if o.status == 'conflict']
    if conflicts and params['on_conflict'] == 'skip':
        module.warn('%d destination file(s) differ from their source and were left as they are, e.g. %s'
                    % (len(conflicts), conflicts[0].action.dest_path))
    bad = [o for o in outcomes if o.status == 'failed' or (o.status == 'conflict' and params['on_conflict'] == 'fail')]
    if bad and params['fail_on_error']:
        raise BackupError('%d of %d file(s) not backed up: %s' % (len(bad), len(outcomes), '; '.join(
            '%s: %s' % (o.action.dest_path, o.reason) for o in bad[:5])), **result)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'transfers': {'type': 'list', 'elements': 'dict', 'required': True, 'options': {
                'src': {'type': 'str', 'required': True},
                'dest': {'type': 'str', 'required': True},
                'files': {'type': 'list', 'elements': 'raw', 'default': []},
                'sync': {'type': 'bool', 'default': False},
                'customer': {'type': 'str'},
            }},
            'ledger': {'type': 'str'},
            'src_location': {'type': 'dict', 'options': LOCATION_SPEC},
            'dest_location': {'type': 'dict', 'options': LOCATION_SPEC},
            'compare': {'type': 'str', 'choices': ['size_mtime', 'checksum'], 'default': 'size_mtime'},
            'on_conflict': {'type': 'str', 'choices': ['fail', 'skip', 'overwrite'], 'default': 'fail'},
            'workers': {'type': 'int', 'default': 4},
            'fsync': {'type': 'bool', 'default': True},
            'fail_on_error': {'type': 'bool', 'default': True},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
