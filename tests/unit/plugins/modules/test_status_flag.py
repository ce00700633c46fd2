# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.mnaas.backup.plugins.modules import status_flag


@pytest.fixture
def flag(tmp_path) -> str:
    return str(tmp_path / 'ProcessStatusFile')


def read(path: str) -> str:
    with open(path) as stream:
        return stream.read()


def test_write_and_idempotent(run_module, flag, tmp_path):
    first = run_module(status_flag, {'path': flag, 'status': 'SUCCESS'})
    assert (first['changed'], first['status'], first['previous']) == (True, 'SUCCESS', None)
    assert read(flag) == 'SUCCESS\n'
    mtime = os.stat(flag).st_mtime_ns
    second = run_module(status_flag, {'path': flag, 'status': 'SUCCESS'})
    assert (second['changed'], second['previous']) == (False, 'SUCCESS\n')
    assert os.stat(flag).st_mtime_ns == mtime
    assert os.listdir(str(tmp_path)) == ['ProcessStatusFile']


def test_replaced_atomically(run_module, flag, tmp_path):
    """The flag is replaced by a rename: a reader that opened the old flag still reads it whole."""
    run_module(status_flag, {'path': flag, 'status': 'FAIL'})
    with open(flag) as reader:
        result = run_module(status_flag, {'path': flag, 'status': 'SUCCESS'})
        assert reader.read() == 'FAIL\n'
    assert (result['changed'], result['previous']) == (True, 'FAIL\n')
    assert read(flag) == 'SUCCESS\n'
    assert os.listdir(str(tmp_path)) == ['ProcessStatusFile']


@pytest.mark.parametrize('status', ['SUCCESS', 'FAIL'])
def test_content_template(run_module, flag, status):
    content = 'status={status}\nsource=MNAAS_backup {status}\n'
    run_module(status_flag, {'path': flag, 'status': status, 'content': content})
    assert read(flag) == 'status=%s\nsource=MNAAS_backup %s\n' % (status, status)
    assert run_module(status_flag, {'path': flag, 'status': status, 'content': content})['changed'] is False


def test_content_without_placeholder(run_module, flag):
    run_module(status_flag, {'path': flag, 'status': 'FAIL', 'content': 'done'})
    assert read(flag) == 'done'


def test_check_mode_writes_nothing(run_module, flag, tmp_path):
    result = run_module(status_flag, {'path': flag, 'status': 'SUCCESS'}, check_mode=True)
    assert result['changed'] is True
    assert os.listdir(str(tmp_path)) == []
    run_module(status_flag, {'path': flag, 'status': 'SUCCESS'})
    result = run_module(status_flag, {'path': flag, 'status': 'FAIL'}, check_mode=True)
    assert result['changed'] is True
    assert read(flag) == 'SUCCESS\n'


def test_diff(run_module, flag):
    run_module(status_flag, {'path': flag, 'status': 'SUCCESS'})
    result = run_module(status_flag, {'path': flag, 'status': 'FAIL'}, check_mode=True, diff=True)
    assert result['diff'] == {'before_header': flag, 'after_header': flag, 'before': 'SUCCESS\n', 'after': 'FAIL\n'}
    assert 'diff' not in run_module(status_flag, {'path': flag, 'status': 'FAIL'}, check_mode=True)


def test_bad_status(run_module, flag):
    result = run_module(status_flag, {'path': flag, 'status': 'OK'})
    assert result['failed'] is True
    assert 'status' in result['msg']


def test_missing_directory(run_module, tmp_path):
    result = run_module(status_flag, {'path': str(tmp_path / 'absent' / 'flag'), 'status': 'SUCCESS'})
    assert result['failed'] is True
    assert str(tmp_path / 'absent') in result['msg']
