# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from unittest import mock

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mnaas.backup.plugins.module_utils import _node_env
from ansible_collections.mnaas.backup.plugins.module_utils._node_env import PIP_FROM_WHEEL
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import for_features
from ansible_collections.mnaas.backup.plugins.modules import node_libraries

PIP = 'pip-24.0-py3-none-any.whl'


class Node:
    """The edge node behind ``AnsibleModule.run_command``: ``python -m venv`` makes a ``bin/python`` file, the
    virtualenv's Python lists ``dists``, pip installs each requirement at its least version (unless ``pip_works`` is
    false: then it exits 0 and installs nothing, or ``pip_rc`` says otherwise)."""

    def __init__(self, dists: dict[str, str] | None = None, pip_works: bool = True, pip_rc: int = 0) -> None:
        self.dists = dict(dists or {})
        self.pip_works = pip_works
        self.pip_rc = pip_rc
        self.calls: list[list[str]] = []

    def __call__(self, module, argv, **kwargs):
        assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv), argv
        assert not kwargs.get('use_unsafe_shell')
        self.calls.append(argv)
        if argv[1:4] == ['-m', 'venv', '--without-pip']:
            python = Path(argv[4], 'bin', 'python')
            python.parent.mkdir(parents=True)
            python.write_text('')
            return 0, '', ''
        if argv[1:3] == ['-c', _node_env._INVENTORY]:  # pylint: disable=protected-access
            return 0, json.dumps(self.dists), ''
        if 'install' in argv:
            if self.pip_rc:
                return self.pip_rc, '', 'ERROR: Could not find a version that satisfies the requirement\n'
            if self.pip_works:
                for requirement in argv[argv.index('--') + 1:]:
                    name, minimum = requirement.split('>=')
                    self.dists[name] = minimum
            return 0, 'Successfully installed\n', ''
        return 0, '', ''

    def installs(self) -> list[list[str]]:
        return [argv for argv in self.calls if 'install' in argv]


@pytest.fixture
def node(monkeypatch) -> Node:
    fake = Node()
    monkeypatch.setattr(AnsibleModule, 'run_command', mock.create_autospec(AnsibleModule.run_command, side_effect=fake))
    return fake


@pytest.fixture
def wheelhouse(tmp_path) -> str:
    path = tmp_path / 'wheelhouse'
    path.mkdir()
    (path / PIP).write_bytes(b'')
    return str(path)


@pytest.fixture
def venv(tmp_path) -> str:
    return str(tmp_path / 'venv')


def existing(venv: str) -> None:
    """A virtualenv already on the node (its Python a file the fake node answers for)."""
    os.makedirs(os.path.join(venv, 'bin'))
    Path(venv, 'bin', 'python').write_text('')


def test_bare_node_check_mode(run_module, node, venv, wheelhouse, tmp_path):
    args = {'venv': venv, 'features': ['webhdfs', 'hiveserver2'], 'wheelhouse': wheelhouse}
    result = run_module(node_libraries, args, check_mode=True, diff=True)
    libraries = for_features(['webhdfs', 'hiveserver2'])
    assert (result['changed'], result['created']) == (True, True)
    assert result['installed'] == [lib.requirement for lib in libraries]
    assert result['installed'][:3] == ['hdfs>=2.7.0', 'requests>=2.20', 'google-crc32c>=1.5.0']
    assert result['python'] == os.path.join(venv, 'bin', 'python')
    assert result['libraries'] == {lib.distribution: None for lib in libraries}
    assert result['diff']['before'] == ''
    assert result['diff']['after'] == ''.join('%s %s\n' % (lib.distribution, lib.requirement) for lib in libraries)
    assert venv in result['diff']['before_header'] and 'absent' in result['diff']['before_header']
    assert node.calls == []
    assert sorted(os.listdir(str(tmp_path))) == ['wheelhouse']


def test_bare_node_real_run(run_module, node, venv, wheelhouse):
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': wheelhouse})
    assert (result['changed'], result['created'], result['installed']) == (True, True, ['paramiko>=2.10'])
    assert result['python'] == os.path.join(venv, 'bin', 'python')
    assert result['libraries'] == {'paramiko': '2.10'}
    python = os.path.join(venv, 'bin', 'python')
    assert node.calls[0] == [sys.executable, '-m', 'venv', '--without-pip', venv]
    assert node.installs() == [[
        python, '-c', PIP_FROM_WHEEL, os.path.join(wheelhouse, PIP), 'install', '--disable-pip-version-check', '--no-input',
        '--no-cache-dir', '--no-index', '--find-links', wheelhouse, '--', 'paramiko>=2.10']]
    assert node.calls[-1][:2] == [python, '-c']  # listed again after installing
    assert 'diff' not in result

    again = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': wheelhouse})
    assert (again['changed'], again['created'], again['installed']) == (False, False, [])
    assert len(node.installs()) == 1


def test_python_option_creates(run_module, node, venv, wheelhouse):
    run_module(node_libraries, {'venv': venv, 'python': '/usr/bin/python3.9', 'wheelhouse': wheelhouse})
    assert node.calls[0] == ['/usr/bin/python3.9', '-m', 'venv', '--without-pip', venv]


def test_no_features_creates_empty(run_module, node, venv, wheelhouse):
    result = run_module(node_libraries, {'venv': venv, 'wheelhouse': wheelhouse})
    assert (result['changed'], result['created'], result['installed'], result['libraries']) == (True, True, [], {})
    assert node.installs() == []


@pytest.mark.parametrize('check_mode', [False, True])
def test_everything_present(run_module, node, venv, wheelhouse, check_mode):
    existing(venv)
    node.dists = {'paramiko': '3.4.0', 'PyHive': '0.7.0', 'thrift': '0.16.0', 'thrift_sasl': '0.4.3', 'pure-sasl': '0.6.2'}
    args = {'venv': venv, 'features': ['sftp', 'hiveserver2'], 'wheelhouse': wheelhouse}
    result = run_module(node_libraries, args, check_mode=check_mode, diff=True)
    assert (result['changed'], result['created'], result['installed']) == (False, False, [])
    assert result['libraries'] == {'paramiko': '3.4.0', 'PyHive': '0.7.0', 'thrift': '0.16.0', 'thrift-sasl': '0.4.3', 'pure-sasl': '0.6.2'}
    assert result['diff']['before'] == result['diff']['after']
    assert result['diff']['before'] == 'paramiko 3.4.0\nPyHive 0.7.0\nthrift 0.16.0\nthrift-sasl 0.4.3\npure-sasl 0.6.2\n'
    assert node.installs() == []
    assert len(node.calls) == 1  # only the listing


def test_too_old_check_mode_diff(run_module, node, venv, wheelhouse):
    """An upgrade shows in the diff: before the old version, after the requirement."""
    existing(venv)
    node.dists = {'paramiko': '2.9.2'}
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': wheelhouse}, check_mode=True, diff=True)
    assert (result['changed'], result['created'], result['installed']) == (True, False, ['paramiko>=2.10'])
    assert result['diff']['before'] == 'paramiko 2.9.2\n'
    assert result['diff']['after'] == 'paramiko paramiko>=2.10\n'
    assert node.installs() == []


def test_too_old_upgraded(run_module, node, venv, wheelhouse):
    existing(venv)
    node.dists = {'paramiko': '2.9.2', 'hdfs': '2.7.3'}
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp', 'webhdfs'], 'wheelhouse': wheelhouse}, diff=True)
    assert (result['changed'], result['created']) == (True, False)
    assert result['installed'] == ['paramiko>=2.10', 'requests>=2.20', 'google-crc32c>=1.5.0']
    assert node.installs()[0][-4:] == ['--', 'paramiko>=2.10', 'requests>=2.20', 'google-crc32c>=1.5.0']
    assert result['diff']['before'] == 'paramiko 2.9.2\nhdfs 2.7.3\nrequests (missing)\ngoogle-crc32c (missing)\n'
    assert result['diff']['after'] == 'paramiko 2.10\nhdfs 2.7.3\nrequests 2.20\ngoogle-crc32c 1.5.0\n'
    assert not any(argv[1:3] == ['-m', 'venv'] for argv in node.calls)


def test_index_url(run_module, node, venv):
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'index_url': 'https://pypi.example/simple'})
    assert result['changed'] is True
    python = os.path.join(venv, 'bin', 'python')
    assert [python, '-m', 'pip', '--version'] in node.calls
    [install] = node.installs()
    assert install[:3] == [python, '-m', 'pip']
    assert install[-4:] == ['--index-url', 'https://pypi.example/simple', '--', 'paramiko>=2.10']


@pytest.mark.parametrize('path', ['venv', 'opt/mnaas-backup/venv', './venv'])
def test_relative_venv(run_module, node, wheelhouse, path):
    result = run_module(node_libraries, {'venv': path, 'features': ['sftp'], 'wheelhouse': wheelhouse})
    assert result['failed'] is True
    assert repr(path) in result['msg'] and 'absolute' in result['msg']
    assert node.calls == []


@pytest.mark.parametrize('check_mode', [False, True])
def test_wheelhouse_without_pip(run_module, node, venv, tmp_path, check_mode):
    house = tmp_path / 'wheelhouse'
    house.mkdir()
    (house / 'paramiko-3.4.0-py3-none-any.whl').write_bytes(b'')
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': str(house)}, check_mode=check_mode)
    assert result['failed'] is True
    assert 'make wheelhouse' in result['msg'] and str(house) in result['msg']
    assert not os.path.exists(venv)  # failed before creating anything


def test_check_mode_wheelhouse_not_there_yet(run_module, node, venv, tmp_path):
    """In check mode the wheelhouse may not be copied yet (the play copies it first): no failure then."""
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': str(tmp_path / 'later')}, check_mode=True)
    assert (result['changed'], result['installed']) == (True, ['paramiko>=2.10'])


def test_still_missing_after_install(run_module, node, venv, wheelhouse):
    node.pip_works = False
    node.dists = {'thrift': '0.9.3'}
    result = run_module(node_libraries, {'venv': venv, 'features': ['hiveserver2'], 'wheelhouse': wheelhouse})
    assert result['failed'] is True
    assert 'PyHive>=0.7.0' in result['msg'] and 'thrift>=0.10.0' in result['msg'] and venv in result['msg']


def test_pip_fails(run_module, node, venv, wheelhouse):
    node.pip_rc = 1
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': wheelhouse})
    assert result['failed'] is True
    assert 'paramiko>=2.10' in result['msg'] and venv in result['msg'] and 'Could not find a version' in result['msg']


def test_broken_venv(run_module, venv, wheelhouse, monkeypatch):
    """A virtualenv whose Python does not run (its base Python removed): the failure names it."""
    existing(venv)
    monkeypatch.setattr(AnsibleModule, 'run_command', mock.create_autospec(
        AnsibleModule.run_command, return_value=(127, '', 'cannot execute binary file\n')))
    result = run_module(node_libraries, {'venv': venv, 'features': ['sftp'], 'wheelhouse': wheelhouse}, check_mode=True)
    assert result['failed'] is True
    assert venv in result['msg'] and 'cannot execute binary file' in result['msg']


@pytest.mark.parametrize('sources, message', [
    ({}, 'one of the following is required'),
    ({'wheelhouse': '/opt/wheelhouse', 'index_url': 'https://pypi.example/simple'}, 'mutually exclusive'),
])
def test_wheelhouse_or_index_url(run_module, node, venv, sources, message):
    result = run_module(node_libraries, dict({'venv': venv, 'features': ['sftp']}, **sources))
    assert result['failed'] is True
    assert message in result['msg'] and 'wheelhouse' in result['msg'] and 'index_url' in result['msg']
    assert node.calls == []


def test_unknown_feature(run_module, node, venv, wheelhouse):
    result = run_module(node_libraries, {'venv': venv, 'features': ['ftp'], 'wheelhouse': wheelhouse})
    assert result['failed'] is True
    assert 'ftp' in result['msg'] and 'features' in result['msg']
