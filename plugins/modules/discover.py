#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: discover
short_description: Find the customer files of one night, oldest first, with their record counts
version_added: 0.1.0
description:
  - Lists the landing directory once and sorts every file name into a customer and a data domain
    (traffic, activations, actives, tolling, ...) by glob patterns on the file name.
  - Files already processed (found in the ledger with the same size and modification time) are
    counted as done; files younger than O(min_age) are in flight and held back; the remaining files
    are taken oldest first, at most O(max_files) of them, so a capped run always makes progress and a
    rerun picks the same batch.
  - Each file of the batch is read once, streaming, for its SHA-256 and its record count
    (newline-terminated lines, a final unterminated line counting too, O(header_lines) subtracted;
    C(.gz) files are decompressed for counting).
  - A file matching several domains or several customers is ambiguous, a file matching a domain but
    no customer is unassigned; both are reported and never selected.
  - A file that cannot be read is reported in RV(errors) and left out of the batch; the others are
    still returned. The task fails at the end when O(fail_on_error=true).
  - Never writes anything.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
  - mnaas.backup.attributes.INFO_MODULE
attributes:
  idempotent:
    support: full
options:
  source_dir:
    description: The landing directory, absolute. Only its top level is listed; hidden files are ignored.
    type: path
    required: true
  domains:
    description:
      - Data domain name to a glob, or a list of globs, matched against file names (not paths).
      - Matching is case-sensitive, like the shell.
    type: dict
    required: true
  customers:
    description:
      - Customer name to its settings. Names are letters, digits, V(_), V(.) and V(-).
      - Key V(match) is the glob (or list of globs) a file name must match to belong to the
        customer, V(<name>_*) by default. Other keys (destinations) are ignored here.
    type: dict
    required: true
  max_files:
    description: The most files to select, counting only files that still need work. V(0) for no cap.
    type: int
    default: 500
  min_age:
    description: Seconds since the last modification below which a file is in flight and held back.
    type: int
    default: 120
  header_lines:
    description: Header lines at the top of each file, not counted as records.
    type: int
    default: 0
  ledger:
    description:
      - The ledger CSV of files already processed (written by M(mnaas.backup.manifest) with O(mnaas.backup.manifest#module:mode=merge)).
        A missing ledger means nothing was processed yet.
    type: path
  workers:
    description: Files read in parallel.
    type: int
    default: 4
  fail_on_error:
    description: Fail the task at the end when a file could not be read (the other files are still returned).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Find tonight's files
  mnaas.backup.discover:
    source_dir: /app/hadoop_users/MNAAS/MNAAS_Input
    domains:
      traffic: "*_Traffic_*.csv"
      activations: ["*_Activations_*.csv", "*_Activations_*.csv.gz"]
    customers:
      ACME_TELEMATICS: {}
      GLOBEX_FLEET:
        match: "GLOBEX_*"
    max_files: 500
    min_age: 120
    header_lines: 1
    ledger: /app/hadoop_users/MNAAS/state/MNAAS_backup_files_process_ledger.csv
  register: found
'''

RETURN = r'''
files:
  description: The batch, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    customer: {description: Customer name., type: str, returned: always, sample: ACME_TELEMATICS}
    domain: {description: Domain name., type: str, returned: always, sample: traffic}
    name: {description: File name., type: str, returned: always, sample: ACME_TELEMATICS_Traffic_20261124_0001.csv}
    path: {description: Absolute source path., type: str, returned: always, sample: /data/in/ACME_TELEMATICS_Traffic_20261124_0001.csv}
    size: {description: Size in bytes., type: int, returned: always, sample: 20480}
    mtime: {description: 'Modification time, seconds since the epoch.', type: float, returned: always, sample: 1764021600.0}
    records: {description: Record count., type: int, returned: always, sample: 212}
    sha256: {description: SHA-256 of the file's bytes., type: str, returned: always, sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
customers:
  description: Per customer, the number of files of the batch per domain.
  returned: always
  type: dict
  sample: {ACME_TELEMATICS: {traffic: 12, tolling: 3}, GLOBEX_FLEET: {}}
summary:
  description: Counts of selected, failed, done, deferred (over the cap), in_flight, ambiguous, unassigned, unmatched, ignored and future files.
  returned: always
  type: dict
  sample: {selected: 15, failed: 0, done: 300, deferred: 0, in_flight: 2, ambiguous: 1, unassigned: 1, unmatched: 4, ignored: 0, future: 0}
errors:
  description: Files of the batch that could not be read, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{name: ACME_TELEMATICS_Traffic_20261124_0001.csv.gz, customer: ACME_TELEMATICS, msg: "ValueError: truncated gzip data"}]
in_flight:
  description: Files held back because they are younger than O(min_age), with their age in seconds.
  returned: always
  type: list
  elements: dict
  sample: [{name: ACME_TELEMATICS_Traffic_20261125_0001.csv, age: 3.2}]
ambiguous:
  description: Files matching more than one domain or customer, with the candidates; never selected.
  returned: always
  type: list
  elements: dict
  sample: [{name: GLOBEX_FLEET_Traffic_Tolling_20261124_0001.csv, domains: [traffic, tolling], customers: [GLOBEX_FLEET]}]
unassigned:
  description: Files matching a domain but no customer; never selected.
  returned: always
  type: list
  elements: str
  sample: [HOOLI_Traffic_20261124_0001.csv]
unmatched_sample:
  description: Up to 100 names of files matching no domain (their number is in RV(summary)).
  returned: always
  type: list
  elements: str
  sample: [README.txt]
ignored:
  description: Entries matching a domain that are not regular files (directories, symlinks, FIFOs), with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{name: ACME_TELEMATICS_Traffic_dir.csv, reason: "a dir, not a regular file"}]
future:
  description:
    - Selected files whose modification time is more than O(min_age) in the future (clock skew), with their age in seconds.
    - A file less than O(min_age) away from now, in either direction, is in flight.
  returned: always
  type: list
  elements: dict
  sample: [{name: ACME_TELEMATICS_Traffic_20261124_0001.csv, age: -86400.0}]
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation, read_file
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import done_index, parse
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._selection import compile_rules, discover


def logic(module: AnsibleModule) -> dict:
    params = module.params
    rules = compile_rules(params['domains'], params['customers'])
    done = done_index(parse(read_file(params['ledger']), params['ledger'])) if params['ledger'] else {}
    result = discover(LocalLocation(), params['source_dir'], rules, done, params['max_files'], params['min_age'],
                      time.time(), params['header_lines'], params['workers'])
    result['changed'] = False
    if result['ambiguous']:
        module.warn('%d file(s) match several domains or customers and were not backed up: %s'
                    % (len(result['ambiguous']), ', '.join(a['name'] for a in result['ambiguous'][:10])))
    if result['unassigned']:
        module.warn('%d file(s) match a domain but no customer and were not backed up: %s'
                    % (len(result['unassigned']), ', '.join(result['unassigned'][:10])))
    if result['ignored']:
        module.warn('%d entry(ies) matching a domain are not regular files or have unusable names and were not backed up: %s'
                    % (len(result['ignored']), ', '.join('%s (%s)' % (i['name'], i['reason']) for i in result['ignored'][:10])))
    if result['future']:
        module.warn('%d file(s) have a modification time in the future (clock skew?); backed up all the same: %s'
                    % (len(result['future']), ', '.join(f['name'] for f in result['future'][:10])))
    if result['errors'] and params['fail_on_error']:
        raise BackupError('%d file(s) could not be read: %s' % (len(result['errors']), '; '.join(
            '%s: %s' % (e['name'], e['msg']) for e in result['errors'][:5])), **result)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'source_dir': {'type': 'path', 'required': True},
            'domains': {'type': 'dict', 'required': True},
            'customers': {'type': 'dict', 'required': True},
            'max_files': {'type': 'int', 'default': 500},
            'min_age': {'type': 'int', 'default': 120},
            'header_lines': {'type': 'int', 'default': 0},
            'ledger': {'type': 'path'},
            'workers': {'type': 'int', 'default': 4},
            'fail_on_error': {'type': 'bool', 'default': True},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
