#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: node_libraries
short_description: Give an edge node a virtualenv holding the libraries its steps of the night import
version_added: 0.2.0
description:
  - Creates a virtualenv (without pip, since a node's Python may lack ensurepip) and installs into it the Python libraries
    of the node's O(features), as listed in the collection's C(requirements-nodes.txt), and nothing else.
  - Offline from a O(wheelhouse) on the node (built with C(make wheelhouse), copied there by
    C(playbooks/prepare_nodes.yml)), pip running from the wheelhouse's own pip wheel; or from an O(index_url).
  - Nothing is installed, and C(changed) is false, when every library is there at its least version.
  - Returns the virtualenv's Python, to be set as the node's C(ansible_python_interpreter) for the night.
author: MNAAS platform team (@mnaas)
extends_documentation_fragment:
  - mnaas.backup.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what would be created and installed; runs the virtualenv's Python only to list what it holds.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  venv:
    description: The virtualenv's directory, absolute. Created when absent; its parent must exist.
    type: path
    required: true
  features:
    description:
      - The steps of the night this node runs that import libraries.
      - V(sftp), the secondary reading the primary (paramiko); V(webhdfs), a location in HDFS (hdfs, requests,
        google-crc32c); V(hiveserver2), the hive, impala and spark warehouse engines (PyHive, thrift, thrift-sasl, pure-sasl).
      - With none, the virtualenv is created and holds nothing (the standard library serves local directories and SQLite).
    type: list
    elements: str
    choices: [sftp, webhdfs, hiveserver2]
    default: []
  python:
    description: The Python that creates the virtualenv (the Python running this module when not given).
    type: path
  wheelhouse:
    description: A directory on the node holding the wheels (C(make wheelhouse)), used offline.
    type: path
  index_url:
    description:
      - A package index to install from instead of a wheelhouse (pip's C(--index-url)). The node's Python must then
        provide pip through ensurepip (on Debian the C(python3-venv) package).
    type: str
notes:
  - Exactly one of O(wheelhouse) and O(index_url).
'''

EXAMPLES = r'''
- name: The secondary's libraries, offline
  mnaas.backup.node_libraries:
    venv: /opt/mnaas-backup/venv
    features: [sftp]
    wheelhouse: /opt/mnaas-backup/wheelhouse
  register: node_python

- name: Say which interpreter the night needs
  ansible.builtin.debug:
    msg: "ansible_python_interpreter: {{ node_python.python }}"
'''

RETURN = r'''
python:
  description: The virtualenv's Python, the C(ansible_python_interpreter) to set for the node's night.
  returned: always
  type: str
  sample: /opt/mnaas-backup/venv/bin/python
created:
  description: Whether the virtualenv was (or in check mode would be) created.
  returned: always
  type: bool
  sample: false
installed:
  description: The requirements that were (or in check mode would be) installed.
  returned: always
  type: list
  elements: str
  sample: ["paramiko>=2.10"]
libraries:
  description: Each library of the features and its version in the virtualenv afterwards (null when absent, in check mode).
  returned: always
  type: dict
  sample: {"paramiko": "3.4.0"}
'''

import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _node_env
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._module import run_module
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import for_features


def logic(module: AnsibleModule) -> dict:
    params = module.params
    venv = params['venv']
    if not os.path.isabs(venv):
        raise ConfigError('venv must be an absolute path, got %r' % venv)

    def run(argv):
        return module.run_command(argv, expand_user_and_vars=False)

    libraries = for_features(params['features'])
    before = _node_env.installed(venv, run)
    wanted = _node_env.wanting(libraries, before)
    created = before is None
    if wanted and params['wheelhouse'] and (not module.check_mode or os.path.isdir(params['wheelhouse'])):
        _node_env.pip_wheel(params['wheelhouse'])  # a wheelhouse without pip fails in check mode too (once it is there)
    after = before
    if not module.check_mode:
        if created:
            _node_env.create(venv, params['python'] or sys.executable, run)
        if wanted:
            _node_env.install(venv, wanted, run, wheelhouse=params['wheelhouse'], index_url=params['index_url'])
        if created or wanted:
            after = _node_env.installed(venv, run)
            still = _node_env.wanting(libraries, after)
            if still:
                raise ConfigError('after installing, %s still missing or too old in %s' % (', '.join(lib.requirement for lib in still), venv))
    result = {
        'changed': created or bool(wanted),
        'python': _node_env.interpreter(venv),
        'created': created,
        'installed': [lib.requirement for lib in wanted],
        'libraries': {lib.distribution: (after or {}).get(_node_env.canonical(lib.distribution)) for lib in libraries},
    }
    if module._diff:
        # A library to install shows its requirement after (in check mode, not the too old version it has now).
        shown = dict(after or {})
        for lib in wanted if module.check_mode else []:
            shown.pop(_node_env.canonical(lib.distribution), None)
        result['diff'] = {
            'before_header': '%s (%s)' % (venv, 'absent' if created else 'libraries'),
            'after_header': '%s (libraries)' % venv,
            'before': '' if created else _node_env.describe(libraries, before),
            'after': ''.join('%s %s\n' % (lib.distribution, shown.get(_node_env.canonical(lib.distribution)) or lib.requirement)
                             for lib in libraries),
        }
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'venv': {'type': 'path', 'required': True},
            'features': {'type': 'list', 'elements': 'str', 'choices': ['sftp', 'webhdfs', 'hiveserver2'], 'default': []},
            'python': {'type': 'path'},
            'wheelhouse': {'type': 'path'},
            'index_url': {'type': 'str'},
        },
        required_one_of=[('wheelhouse', 'index_url')],
        mutually_exclusive=[('wheelhouse', 'index_url')],
        supports_check_mode=True,
    )
    run_module(module, logic)


if __name__ == '__main__':
    main()
