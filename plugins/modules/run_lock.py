#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: run_lock
short_description: Acquire, release or inspect the single-instance semaphore of the nightly run
version_added: 0.1.0
description:
  - The lock is a file (the legacy job's C(.sem) semaphore) created atomically (C(O_CREAT|O_EXCL)); it
    records the holder's host, run id, process id and start time.
  - A lock older than O(stale_after) seconds is stale, left by a run that died; O(state=acquired) takes
    it over with a warning. A fresh lock held by another run makes the task fail with the holder shown.
  - O(state=released) removes the lock only when this run (O(run_id)) holds it, unless O(force=true).
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
attributes:
  check_mode:
    support: full
    details:
      - Only inspects; reports whether the lock could be acquired or released, creates and removes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Acquiring a lock this run already holds, or releasing one that is absent, changes nothing.
options:
  path:
    description: The lock file, absolute. Its directory must exist.
    type: path
    required: true
  state:
    description: V(acquired), V(released), or V(inspected) (report only).
    type: str
    choices: [acquired, released, inspected]
    default: acquired
  run_id:
    description: This run's id. Required for V(acquired) and V(released).
    type: str
  host:
    description: The name recorded as the holder's host.
    type: str
  stale_after:
    description: Age in seconds after which a lock is stale and may be taken over. V(0) never.
    type: int
    default: 21600
  force:
    description: With O(state=released), remove the lock whoever holds it.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Take the semaphore
  mnaas.backup.run_lock:
    path: /app/hadoop_users/MNAAS/MNAAS_backup_files_process.sem
    run_id: "{{ run_id }}"
    host: "{{ inventory_hostname }}"

- name: Give it back
  mnaas.backup.run_lock:
    path: /app/hadoop_users/MNAAS/MNAAS_backup_files_process.sem
    run_id: "{{ run_id }}"
    state: released
'''

RETURN = r'''
held:
  description: Whether the lock was held before the task.
  returned: always
  type: bool
  sample: false
holder:
  description: The holder before the task (host, run_id, pid, started), or null.
  returned: always
  type: dict
  sample: {host: edge1, run_id: 20261125T020000Z-4711, pid: 4711, started: "2026-11-25T02:00:00Z"}
age:
  description: Age of the lock before the task, seconds, or null.
  returned: always
  type: float
  sample: 12.5
stale:
  description: Whether the lock was older than O(stale_after).
  returned: always
  type: bool
  sample: false
taken_over:
  description: Whether a stale lock was taken over.
  returned: always
  type: bool
  sample: false
'''

import datetime
import os
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _lock
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute


def logic(module: AnsibleModule) -> dict:
    params = module.params
    path = check_absolute(params['path'], 'path')
    if not module.check_mode and not os.path.isdir(os.path.dirname(path)):
        raise ConfigError('path %r: directory %r does not exist' % (path, os.path.dirname(path)))
    state = _lock.inspect(path, params['stale_after'])
    result = {'changed': False, 'held': state.held, 'holder': state.holder, 'age': state.age, 'stale': state.stale,
              'taken_over': False}
    mine = bool(state.holder) and state.holder.get('run_id') == params['run_id']
    if params['state'] == 'acquired':
        if mine:
            return result
        if state.held and not state.stale:
            raise _lock.held_error(path, state, **result)
        result['changed'] = True
        result['taken_over'] = state.held
        if state.held:
            module.warn('taking over the stale lock %s held by %s' % (path, _lock.describe(state)))
        if not module.check_mode:
            holder = {'host': params['host'] or socket.gethostname(), 'run_id': params['run_id'], 'pid': os.getpid(),
                      'started': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}
            result['taken_over'] = _lock.acquire(path, holder, params['stale_after'])[0]
    elif params['state'] == 'released' and state.held:
        if not mine and not params['force']:
            raise _lock.held_error(path, state, params['run_id'], **result)
        result['changed'] = True
        if not module.check_mode:
            _lock.release(path, params['run_id'], params['force'])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'path': {'type': 'path', 'required': True},
            'state': {'type': 'str', 'choices': ['acquired', 'released', 'inspected'], 'default': 'acquired'},
            'run_id': {'type': 'str'},
            'host': {'type': 'str'},
            'stale_after': {'type': 'int', 'default': 21600},
            'force': {'type': 'bool', 'default': False},
        },
        required_if=[('state', 'acquired', ['run_id']), ('state', 'released', ['run_id'])],
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
