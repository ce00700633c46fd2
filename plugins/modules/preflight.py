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
  - With O(features), this node's Python must import the libraries of those steps of the night, at their least
    versions; each one missing is a problem naming it and how to install it.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
  - mnaas.backup.attributes.INFO_MODULE
  - mnaas.backup.location.PRIMARY_LOCATION
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
      - A customer's own backup directory that exists but refuses writes is only a warning; the copy fails that
        customer and backs up the others.
    type: str
    choices: [primary, secondary]
  min_free_mb:
    description: The least free space, in MiB, on the filesystem of each backup directory this node writes.
    type: int
    default: 256
  features:
    description:
      - The steps of the night on this node that import a Python library beyond the standard library. Each library they
        need is imported with this node's Python and its installed version compared with the least one the collection
        supports, before anything is written. One that is not installed, fails to import or is too old is a problem of
        the node, not of the settings (RV(settings_valid) stays true), naming the library and the Python and saying how
        to install it. An optional library that is missing is only a note.
      - V(sftp) - the secondary reads the primary over SFTP (the role's C(mnaas_backup_primary_location), of type C(sftp)
        by default), or a flag or HDFS location of type C(sftp) on the primary. Library C(paramiko).
      - V(webhdfs) - a location of type C(webhdfs). On the primary, C(mnaas_backup_hdfs_location) where the night writes
        to it (a customer's C(hdfs_backup_dir), C(mnaas_backup_hdfs_count_dir), the flag when
        C(mnaas_backup_flag_location) is empty) and C(mnaas_backup_flag_location); on the secondary, a primary read over
        WebHDFS. Libraries C(hdfs) and C(requests); C(google-crc32c) is optional (faster HDFS checksums).
      - V(hiveserver2) - the warehouse engines V(hive), V(impala) and V(spark) (C(mnaas_backup_warehouse_engine)), on
        the primary. Libraries C(PyHive), C(thrift), C(thrift-sasl) and C(pure-sasl).
      - The role C(mnaas.backup.mnaas_backup) gives each node its features with the filter P(mnaas.backup.node_features#filter).
    type: list
    elements: str
    choices: [sftp, webhdfs, hiveserver2]
    default: []
    version_added: 0.2.0
  primary_location:
    description:
      - On the secondary, how it reads the primary (the role's C(mnaas_backup_primary_location) with its defaults),
        in the form of O(mnaas.backup.backup_copy#module:src_location).
      - The primary must answer (host key verified, login accepted), and each customer's C(backup_dir) and the
        primary's ledger (C(primary_ledger_file) in O(settings)) must be a directory and a file where they exist,
        each problem naming the host and the path. One that does not exist yet gives a warning.
    type: dict
'''

EXAMPLES = r'''
- name: Check the configuration
  mnaas.backup.preflight:
    settings:
      source_dir: /app/hadoop_users/MNAAS/MNAAS_Input
      domains: {traffic: "*_Traffic_*.csv"}
      customers: {ACME_TELEMATICS: {backup_dir: /backup1/ACME_TELEMATICS}}

- name: Check the settings, this node and the libraries of its steps (the primary of a night with HiveServer2)
  mnaas.backup.preflight:
    settings:
      source_dir: /app/hadoop_users/MNAAS/MNAAS_Input
      domains: {traffic: "*_Traffic_*.csv"}
      customers: {ACME_TELEMATICS: {backup_dir: /backup1/ACME_TELEMATICS}}
      warehouse_engine: hive
      warehouse_host: hs2.example.com
      warehouse_database: mnaas
    node_role: primary
    features: [hiveserver2]
'''

RETURN = r'''
settings_valid:
  description:
    - Whether the settings themselves are sound; every problem, if any, is then of this node or of the primary (a missing
      directory, too little free space, a Python library missing, a primary that does not answer). The flag settings can then be trusted, and the
      role writes FAIL before it stops the night.
  returned: always
  type: bool
  sample: true
notes:
  description: What is fine but worth knowing, also given as warnings (for example a primary directory that does not exist yet).
  returned: always
  type: list
  elements: str
  sample: ["mnaas_backup_primary_ledger_file sftp://mnaas@mtthdoped01:22/app/state/ledger.csv does not exist on the primary (yet): nothing of it to copy"]
problems:
  description: Every problem found (empty when the configuration is fine).
  returned: always
  type: list
  elements: str
  sample: ["mnaas_backup_source_dir must be an absolute path, got relative path 'input'"]
libraries:
  description:
    - The Python libraries of O(features), as this node's Python has them, in the order of the collection's table
      (C(requirements-nodes.txt)). Empty without O(features).
  returned: always
  type: list
  elements: dict
  version_added: 0.2.0
  contains:
    distribution:
      description: The library's distribution name, as pip knows it.
      returned: always
      type: str
      sample: PyHive
    module:
      description: The module the collection imports.
      returned: always
      type: str
      sample: pyhive
    minimum:
      description: The least version the collection supports.
      returned: always
      type: str
      sample: 0.7.0
    optional:
      description: Whether the night goes on without it (only slower); a missing optional library is a note, not a problem.
      returned: always
      type: bool
      sample: false
    version:
      description: The version installed; V(null) when it is not installed or its version cannot be read.
      returned: always
      type: str
      sample: 0.6.5
    ok:
      description: Whether it imports and is at least RV(libraries[].minimum).
      returned: always
      type: bool
      sample: false
  sample:
    - {distribution: PyHive, module: pyhive, minimum: 0.7.0, optional: false, version: 0.6.5, ok: false}
    - {distribution: thrift, module: thrift, minimum: 0.10.0, optional: false, version: null, ok: false}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._locations.factory import LOCATION_SPEC, open_location
from ansible_collections.mnaas.backup.plugins.module_utils._preflight import check, check_node, check_primary
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import FEATURES, for_features, installed


def logic(module: AnsibleModule) -> dict:
    params = module.params
    problems = check(params['settings'], params['known_variables'], params['set_variables'], params['needed_dirs'])
    settings_valid = not problems
    notes: list[str] = []
    if params['node_role']:
        problems.extend(check_node(params['settings'], params['node_role'], params['min_free_mb'], notes))
    libraries = installed(for_features(params['features']))
    problems.extend(found.problem for found in libraries if found.problem)
    notes.extend(found.note for found in libraries if found.note)
    if params['primary_location'] is not None:
        # Without its library the primary cannot be reached: that is reported above, by the library's name.
        reachable = params['primary_location']['type'] not in {found.library.feature for found in libraries if found.problem}
        try:
            primary = open_location(params['primary_location'], 'mnaas_backup_primary_location', module.warn)
        except BackupError as exc:
            if reachable or isinstance(exc, ConfigError):
                problems.append(exc.msg)
            settings_valid = settings_valid and not isinstance(exc, ConfigError)
        else:
            try:
                primary_problems, primary_notes = check_primary(primary, params['settings']) if reachable else ([], [])
            finally:
                primary.close()
            problems.extend(primary_problems)
            notes.extend(primary_notes)
    for note in notes:
        module.warn(note)
    report = [found.result() for found in libraries]
    if problems:
        raise BackupError('the configuration has %d problem(s): %s' % (len(problems), '; '.join(problems)),
                          problems=problems, notes=notes, settings_valid=settings_valid, libraries=report)
    return {'changed': False, 'problems': problems, 'notes': notes, 'settings_valid': True, 'libraries': report}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'settings': {'type': 'dict', 'required': True},
            'known_variables': {'type': 'list', 'elements': 'str', 'default': []},
            'set_variables': {'type': 'list', 'elements': 'str', 'default': []},
            'needed_dirs': {'type': 'list', 'elements': 'str', 'default': ['backup_dir']},
            'node_role': {'type': 'str', 'choices': ['primary', 'secondary']},
            'min_free_mb': {'type': 'int', 'default': 256},
            'features': {'type': 'list', 'elements': 'str', 'choices': list(FEATURES), 'default': []},
            'primary_location': {'type': 'dict', 'options': LOCATION_SPEC},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
