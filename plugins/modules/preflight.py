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
      - A customer's own backup directory that exists but refuses writes is only a warning; the copy fails that
        customer and backs up the others.
    type: str
    choices: [primary, secondary]
  min_free_mb:
    description: The least free space, in MiB, on the filesystem of each backup directory this node writes.
    type: int
    default: 256
  primary_location:
    description:
      - On the secondary, how it reads the primary (the role's C(mnaas_backup_primary_location) with its defaults),
        in the form of O(mnaas.backup.backup_copy#module:src_location).
      - The primary must answer (host key verified, login accepted), and each customer's C(backup_dir) and the
        primary's ledger (C(primary_ledger_file) in O(settings)) must be a directory and a file where they exist,
        each problem naming the host and the path. One that does not exist yet gives a warning.
    type: dict
    suboptions:
      type:
        description: V(local), V(sftp) or V(webhdfs).
        type: str
        choices: [local, sftp, webhdfs]
        default: local
      host:
        description: For V(sftp), the host to connect to.
        type: str
      port:
        description: For V(sftp), the SSH port (22 when not given).
        type: int
      user:
        description: For V(sftp), the user to log in as.
        type: str
      private_key:
        description: For V(sftp), the private key file.
        type: path
      private_key_passphrase:
        description: For V(sftp), the passphrase of C(private_key).
        type: str
      password:
        description: For V(sftp), a password, when no key is used.
        type: str
      known_hosts:
        description: For V(sftp), the known_hosts file the host key is verified against (the user's C(~/.ssh/known_hosts) when not given).
        type: path
      host_key_policy:
        description: For V(sftp), V(reject) refuses a host whose key is not in C(known_hosts); V(accept_new) records it. A changed key is always refused.
        type: str
        choices: [reject, accept_new]
        default: reject
      urls:
        description: For V(webhdfs), the NameNode URLs.
        type: list
        elements: str
      hdfs_user:
        description: For V(webhdfs), the user of simple authentication.
        type: str
      auth:
        description: For V(webhdfs), V(simple) or V(kerberos).
        type: str
        choices: [simple, kerberos]
        default: simple
      kerberos_principal:
        description: For V(webhdfs) with Kerberos, the principal.
        type: str
      verify:
        description: For V(webhdfs), verify the TLS certificate.
        type: bool
        default: true
      ca_cert:
        description: For V(webhdfs), the CA bundle.
        type: path
      timeout:
        description: Seconds to wait for a connection or an answer.
        type: float
        default: 30.0
      retries:
        description: Attempts after a failed connection.
        type: int
        default: 3
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
settings_valid:
  description:
    - Whether the settings themselves are sound; every problem, if any, is then of this node or of the primary (a missing
      directory, too little free space, a primary that does not answer). The flag settings can then be trusted, and the
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
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._locations.factory import LOCATION_SPEC, open_location
from ansible_collections.mnaas.backup.plugins.module_utils._preflight import check, check_node, check_primary


def logic(module: AnsibleModule) -> dict:
    params = module.params
    problems = check(params['settings'], params['known_variables'], params['set_variables'], params['needed_dirs'])
    settings_valid = not problems
    notes: list[str] = []
    if params['node_role']:
        problems.extend(check_node(params['settings'], params['node_role'], params['min_free_mb'], notes))
    if params['primary_location'] is not None:
        try:
            primary = open_location(params['primary_location'], 'mnaas_backup_primary_location', module.warn)
        except BackupError as exc:
            problems.append(exc.msg)
            settings_valid = settings_valid and not isinstance(exc, ConfigError)
        else:
            try:
                found, primary_notes = check_primary(primary, params['settings'])
            finally:
                primary.close()
            problems.extend(found)
            notes.extend(primary_notes)
    for note in notes:
        module.warn(note)
    if problems:
        raise BackupError('the configuration has %d problem(s): %s' % (len(problems), '; '.join(problems)),
                          problems=problems, notes=notes, settings_valid=settings_valid)
    return {'changed': False, 'problems': problems, 'notes': notes, 'settings_valid': True}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'settings': {'type': 'dict', 'required': True},
            'known_variables': {'type': 'list', 'elements': 'str', 'default': []},
            'set_variables': {'type': 'list', 'elements': 'str', 'default': []},
            'needed_dirs': {'type': 'list', 'elements': 'str', 'default': ['backup_dir']},
            'node_role': {'type': 'str', 'choices': ['primary', 'secondary']},
            'min_free_mb': {'type': 'int', 'default': 256},
            'primary_location': {'type': 'dict', 'options': LOCATION_SPEC},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
