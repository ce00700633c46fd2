# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.mnaas.backup.plugins.modules import run_lock


@pytest.fixture
def lock(tmp_path) -> str:
    return str(tmp_path / 'job.sem')


def args(lock: str, run_id: str | None = 'run-1', **extra) -> dict:
    result = {'path': lock, 'run_id': run_id, 'host': 'edge1'}
    result.update(extra)
    return result


def holder_of(lock: str) -> dict:
    with open(lock) as stream:
        return json.load(stream)


def make_old(lock: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(lock, (then, then))


def test_acquire_and_reacquire(run_module, lock):
    result = run_module(run_lock, args(lock))
    assert (result['changed'], result['held'], result['taken_over']) == (True, False, False)
    assert holder_of(lock)['run_id'] == 'run-1'
    assert holder_of(lock)['host'] == 'edge1'
    assert set(holder_of(lock)) == {'host', 'run_id', 'pid', 'started'}
    again = run_module(run_lock, args(lock))
    assert (again['changed'], again['held']) == (False, True)
    assert again['holder']['run_id'] == 'run-1'


def test_check_mode_creates_nothing(run_module, lock, tmp_path):
    result = run_module(run_lock, args(lock), check_mode=True)
    assert result['changed'] is True
    assert os.listdir(str(tmp_path)) == []


def test_held_by_other_fails(run_module, lock):
    run_module(run_lock, args(lock, 'run-1'))
    result = run_module(run_lock, args(lock, 'run-2', host='edge9'))
    assert result['failed'] is True
    assert 'run-1' in result['msg'] and 'edge1' in result['msg']
    assert result['holder']['run_id'] == 'run-1'
    assert holder_of(lock)['run_id'] == 'run-1'


def test_held_by_other_fails_in_check_mode_too(run_module, lock):
    run_module(run_lock, args(lock, 'run-1'))
    assert run_module(run_lock, args(lock, 'run-2'), check_mode=True)['failed'] is True


def test_stale_lock_taken_over(run_module, lock):
    run_module(run_lock, args(lock, 'dead'))
    make_old(lock, 7200)
    check = run_module(run_lock, args(lock, 'run-2', stale_after=3600), check_mode=True)
    assert (check['changed'], check['taken_over'], check['stale']) == (True, True, True)
    assert holder_of(lock)['run_id'] == 'dead'
    result = run_module(run_lock, args(lock, 'run-2', stale_after=3600))
    assert (result['changed'], result['taken_over'], result['stale']) == (True, True, True)
    assert result['holder']['run_id'] == 'dead'
    assert 'dead' in json.dumps(result.get('warnings', []))
    assert holder_of(lock)['run_id'] == 'run-2'


def test_release(run_module, lock):
    run_module(run_lock, args(lock))
    check = run_module(run_lock, args(lock, state='released'), check_mode=True)
    assert check['changed'] is True
    assert os.path.exists(lock)
    result = run_module(run_lock, args(lock, state='released'))
    assert result['changed'] is True
    assert not os.path.exists(lock)
    assert run_module(run_lock, args(lock, state='released'))['changed'] is False


def test_release_by_other_refused_unless_forced(run_module, lock):
    run_module(run_lock, args(lock, 'run-1'))
    refused = run_module(run_lock, args(lock, 'run-2', state='released'))
    assert refused['failed'] is True
    assert 'not released' in refused['msg']
    assert os.path.exists(lock)
    forced = run_module(run_lock, args(lock, 'run-2', state='released', force=True))
    assert forced['changed'] is True
    assert not os.path.exists(lock)


def test_legacy_sem_file_counts_as_held(run_module, lock):
    with open(lock, 'w') as stream:
        stream.write('12345\n')
    result = run_module(run_lock, args(lock))
    assert result['failed'] is True
    with open(lock) as stream:
        assert stream.read() == '12345\n'


def test_inspected(run_module, lock):
    result = run_module(run_lock, {'path': lock, 'state': 'inspected'})
    assert (result['changed'], result['held'], result['holder'], result['age']) == (False, False, None, None)
    run_module(run_lock, args(lock))
    result = run_module(run_lock, {'path': lock, 'state': 'inspected'})
    assert (result['changed'], result['held'], result['holder']['run_id']) == (False, True, 'run-1')
    assert os.path.exists(lock)


@pytest.mark.parametrize('state', ['acquired', 'released'])
def test_run_id_required(run_module, lock, state):
    result = run_module(run_lock, {'path': lock, 'state': state})
    assert result['failed'] is True
    assert 'run_id' in result['msg']


def test_missing_directory(run_module, tmp_path):
    path = str(tmp_path / 'absent' / 'job.sem')
    result = run_module(run_lock, args(path))
    assert result['failed'] is True
    assert str(tmp_path / 'absent') in result['msg']


def test_relative_path(run_module):
    result = run_module(run_lock, args('state/job.sem'))
    assert result['failed'] is True
    assert "'state/job.sem'" in result['msg']
