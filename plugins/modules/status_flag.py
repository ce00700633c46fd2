#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: status_flag
short_description: Write the SUCCESS or FAIL flag that downstream jobs poll
version_added: 0.1.0
description:
  - Writes the process status file of the nightly job atomically (temporary file, flush, rename), so a
    downstream job never reads a half-written flag; locally or in HDFS (O(location)), where the legacy job kept it.
  - Nothing is written, and C(changed) is false, when the file already holds the same content.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
  - mnaas.backup.location.FILE
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  path:
    description: The flag file, absolute, in O(location). Its directory must exist.
    type: str
    required: true
  status:
    description: The outcome to record.
    type: str
    choices: [SUCCESS, FAIL]
    required: true
  content:
    description:
      - The file's content, with V({status}) replaced by O(status).
      - The default, the status word and a newline, is what the legacy job wrote.
    type: str
    default: "{status}\n"
'''

EXAMPLES = r'''
- name: Tell downstream jobs the night went well
  mnaas.backup.status_flag:
    path: /app/hadoop_users/MNAAS/MNAAS_Configuration_Files/MNAAS_backup_files_process_ProcessStatusFile
    status: SUCCESS

- name: The same flag in HDFS
  mnaas.backup.status_flag:
    path: /user/MNAAS/flags/MNAAS_backup_files_process_ProcessStatusFile
    status: FAIL
    location:
      type: webhdfs
      urls: [http://nn1.example:9870, http://nn2.example:9870]
      hdfs_user: mnaas
'''

RETURN = r'''
status:
  description: The status in the file after the task.
  returned: always
  type: str
  sample: SUCCESS
previous:
  description: The file's content before the task, or null when it did not exist.
  returned: always
  type: str
  sample: "FAIL\n"
'''

import posixpath
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import read_small, write_small
from ansible_collections.mnaas.backup.plugins.module_utils._locations.factory import LOCATION_SPEC, open_location
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute


def logic(module: AnsibleModule) -> dict:
    params = module.params
    path = check_absolute(params['path'], 'path')
    wanted = params['content'].replace('{status}', params['status']).encode('utf-8')
    location = open_location(params['location'], 'location', module.warn)
    try:
        before = read_small(location, path)
        changed = before != wanted
        if changed and not module.check_mode:
            parent = location.stat(posixpath.dirname(path))
            if parent is None or parent.kind not in ('dir', 'link'):
                raise ConfigError('path %r: directory %r does not exist' % (path, location.describe(posixpath.dirname(path))))
            write_small(location, path, wanted, uuid.uuid4().hex[:12])
    finally:
        location.close()
    result = {'changed': changed, 'status': params['status'],
              'previous': before.decode('utf-8', 'replace') if before is not None else None}
    if module._diff:
        result['diff'] = {'before_header': path, 'after_header': path,
                          'before': result['previous'] or '', 'after': wanted.decode('utf-8')}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'path': {'type': 'str', 'required': True},
            'location': {'type': 'dict', 'options': LOCATION_SPEC},
            'status': {'type': 'str', 'choices': ['SUCCESS', 'FAIL'], 'required': True},
            'content': {'type': 'str', 'default': '{status}\n'},
        },
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
