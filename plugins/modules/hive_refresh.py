#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: hive_refresh
short_description: Load a run's record counts into the warehouse, rerun-safely, and refresh the final table
version_added: 0.1.0
description:
  - Overwrites the staging table with one row per file of the run, then replaces the final table's rows
    of those files (same customer and file name) with the staging rows, then runs the refresh statement.
    A file is therefore counted exactly once however often it is loaded; two capped runs on one day plus
    a rerun of either give final counts equal to the sum over all files.
  - Reads the final rows of the files back afterwards and fails if they do not match the files given.
  - Nothing runs, and C(changed) is false, when the final table already holds exactly these rows.
  - Table names are checked to be SQL identifiers; every value is bound as a parameter.
  - Engine V(sqlite) is the embedded warehouse of local runs (one SQLite file).
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the final table (read-only) and returns the statements it would run; runs none.
  diff_mode:
    support: full
    details:
      - The statements that would run, as prepared text.
  idempotent:
    support: full
options:
  engine:
    description: The warehouse engine.
    type: str
    choices: [sqlite]
    default: sqlite
  database:
    description: For V(sqlite), the database file, absolute; created when missing (its directory must exist).
    type: path
    required: true
  staging_table:
    description: The staging table (legacy C(customers_files_inter_record_count_tblname)).
    type: str
    default: customers_files_inter_record_count
  final_table:
    description: The final table (legacy C(customers_files_records_count_tblname)).
    type: str
    default: customers_files_records_count
  create_tables:
    description: Create both tables when they do not exist.
    type: bool
    default: true
  refresh_statement:
    description:
      - Statement run after the update, with V({table}) replaced by O(final_table); none when empty.
    type: str
  files:
    description: The files of the run, as M(mnaas.backup.discover) returns them.
    type: list
    elements: dict
    required: true
  run_id:
    description: The run, written in each row.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Count tonight's records into the embedded warehouse
  mnaas.backup.hive_refresh:
    engine: sqlite
    database: /var/lib/mnaas/warehouse.sqlite
    files: "{{ found.files }}"
    run_id: "{{ run_id }}"
'''

RETURN = r'''
statements:
  description: The statements run (or, in check mode, that would run); parameters are counted, not shown.
  returned: always
  type: list
  elements: str
  sample: ["DELETE FROM customers_files_inter_record_count", "INSERT INTO customers_files_inter_record_count (...) VALUES (?, ...)  -- 8 parameters"]
to_update:
  description: Files whose final row is missing or different.
  returned: always
  type: int
  sample: 12
up_to_date:
  description: Files whose final row already holds these values.
  returned: always
  type: int
  sample: 0
records:
  description: Sum of the records of the files given.
  returned: always
  type: int
  sample: 25460
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _warehouse
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import row_of
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse.sqlite import SqliteEngine


def logic(module: AnsibleModule) -> dict:
    params = module.params
    staging = _warehouse.check_identifier(params['staging_table'], 'staging_table')
    final = _warehouse.check_identifier(params['final_table'], 'final_table')
    database = check_absolute(params['database'], 'database')
    rows = [_warehouse.to_tuple(row_of(found, params['run_id'], i)) for i, found in enumerate(params['files'])]
    engine = SqliteEngine(database, read_only=module.check_mode)
    try:
        plan = _warehouse.plan_update(engine, staging, final, rows, params['refresh_statement'], params['create_tables'])
        if plan.statements and not module.check_mode:
            engine.run(plan.statements)
            _warehouse.verify(engine, final, rows)
    finally:
        engine.close()
    shown = [s.shown() for s in plan.statements]
    result = {'changed': bool(plan.statements), 'statements': shown, 'to_update': plan.to_update,
              'up_to_date': plan.up_to_date, 'records': sum(int(f['records']) for f in params['files'])}
    if module._diff and shown:
        result['diff'] = {'prepared': '\n'.join(s + ';' for s in shown)}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'engine': {'type': 'str', 'choices': ['sqlite'], 'default': 'sqlite'},
            'database': {'type': 'path', 'required': True},
            'staging_table': {'type': 'str', 'default': 'customers_files_inter_record_count'},
            'final_table': {'type': 'str', 'default': 'customers_files_records_count'},
            'create_tables': {'type': 'bool', 'default': True},
            'refresh_statement': {'type': 'str'},
            'files': {'type': 'list', 'elements': 'dict', 'required': True},
            'run_id': {'type': 'str', 'required': True},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
