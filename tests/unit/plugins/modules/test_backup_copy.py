# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.mnaas.backup.plugins.modules import backup_copy

OLD = 1_700_000_000.0


def write(directory, name: str, data: bytes, mtime: float = OLD) -> str:
    os.makedirs(str(directory), exist_ok=True)
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as stream:
        stream.write(data)
    os.utime(path, (mtime, mtime))
    return path


def tree(directory) -> dict[str, bytes]:
    """Every file under ``directory`` (hidden ones too) with its bytes."""
    found = {}
    for root, _dirs, files in os.walk(str(directory)):
        for name in files:
            path = os.path.join(root, name)
            with open(path, 'rb') as stream:
                found[os.path.relpath(path, str(directory))] = stream.read()
    return found


@pytest.fixture
def source(tmp_path):
    src = tmp_path / 'in'
    write(src, 'ACME_Traffic_1.csv', b'1\n2\n')
    write(src, 'ACME_Traffic_2.csv', b'3\n', OLD + 10)
    return src


def args(source, dest, files=('ACME_Traffic_1.csv', 'ACME_Traffic_2.csv'), **extra) -> dict:
    result = {'transfers': [{'src': str(source), 'dest': str(dest), 'files': list(files)}], 'workers': 2}
    result.update(extra)
    return result


def test_check_mode_writes_nothing(run_module, source, tmp_path):
    before = tree(tmp_path)
    result = run_module(backup_copy, args(source, tmp_path / 'backup' / 'ACME'), check_mode=True)
    assert result['changed'] is True
    assert result['summary'] == {'copied': 0, 'would_copy': 2, 'skipped': 0, 'conflict': 0, 'failed': 0}
    assert [f['status'] for f in result['files']] == ['would_copy', 'would_copy']
    assert tree(tmp_path) == before
    assert not os.path.exists(str(tmp_path / 'backup'))


def test_run_then_second_run_unchanged(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    first = run_module(backup_copy, args(source, dest))
    assert first['changed'] is True
    assert first['summary']['copied'] == 2
    assert tree(dest) == tree(source)
    assert first['copied'] == [str(dest / 'ACME_Traffic_1.csv'), str(dest / 'ACME_Traffic_2.csv')]
    assert first['files'] == []
    second = run_module(backup_copy, args(source, dest))
    assert second['changed'] is False
    assert second['summary']['skipped'] == 2
    check = run_module(backup_copy, args(source, dest), check_mode=True)
    assert check['changed'] is False
    assert check['summary']['would_copy'] == 0


def test_diff_only_in_diff_mode(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    plain = run_module(backup_copy, args(source, dest), check_mode=True)
    assert 'diff' not in plain
    with_diff = run_module(backup_copy, args(source, dest), check_mode=True, diff=True)
    assert with_diff['diff'] == [{'before_header': str(dest), 'after_header': str(dest), 'before': '',
                                  'after': 'ACME_Traffic_1.csv\nACME_Traffic_2.csv\n'}]
    run_module(backup_copy, args(source, dest))
    assert run_module(backup_copy, args(source, dest), diff=True)['diff'] == []


def test_files_as_discover_dicts(run_module, source, tmp_path):
    st = os.stat(str(source / 'ACME_Traffic_1.csv'))
    files = [{'customer': 'ACME', 'domain': 'traffic', 'name': 'ACME_Traffic_1.csv', 'path': str(source / 'ACME_Traffic_1.csv'),
              'size': st.st_size, 'mtime': st.st_mtime, 'records': 2, 'sha256': hashlib.sha256(b'1\n2\n').hexdigest()}]
    result = run_module(backup_copy, args(source, tmp_path / 'backup', files=files))
    assert result['summary']['copied'] == 1


def test_check_mode_plans_files_an_earlier_task_would_write(run_module, tmp_path):
    files = [{'name': 'ACME_Traffic_9.csv', 'size': 3, 'mtime': OLD, 'sha256': hashlib.sha256(b'abc').hexdigest()}]
    args_ = {'transfers': [{'src': str(tmp_path / 'primary'), 'dest': str(tmp_path / 'secondary'), 'files': files, 'sync': True}]}
    result = run_module(backup_copy, args_, check_mode=True)
    assert 'failed' not in result
    assert [f['status'] for f in result['files']] == ['would_copy']


def test_conflict_fails_by_default_and_is_left_alone(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    write(dest, 'ACME_Traffic_1.csv', b'other!', OLD + 99)
    result = run_module(backup_copy, args(source, dest))
    assert result['failed'] is True
    assert 'ACME_Traffic_1.csv' in result['msg']
    assert result['summary'] == {'copied': 1, 'would_copy': 0, 'skipped': 0, 'conflict': 1, 'failed': 0}
    assert tree(dest) == {'ACME_Traffic_1.csv': b'other!', 'ACME_Traffic_2.csv': b'3\n'}


def test_conflict_skip_warns(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    write(dest, 'ACME_Traffic_1.csv', b'other!', OLD + 99)
    result = run_module(backup_copy, args(source, dest, on_conflict='skip'))
    assert 'failed' not in result
    assert 'ACME_Traffic_1.csv' in json.dumps(result.get('warnings', []))
    assert tree(dest)['ACME_Traffic_1.csv'] == b'other!'


def test_conflict_overwrite(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    write(dest, 'ACME_Traffic_1.csv', b'other!', OLD + 99)
    result = run_module(backup_copy, args(source, dest, on_conflict='overwrite'))
    assert 'failed' not in result
    assert tree(dest) == tree(source)


def test_missing_source_file_fails_at_the_end(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    result = run_module(backup_copy, args(source, dest, files=['ACME_Traffic_1.csv', 'ACME_Traffic_gone.csv']))
    assert result['failed'] is True
    assert 'ACME_Traffic_gone.csv: source is missing' in result['msg']
    assert tree(dest) == {'ACME_Traffic_1.csv': b'1\n2\n'}


def test_fail_on_error_false(run_module, source, tmp_path):
    result = run_module(backup_copy, args(source, tmp_path / 'backup', files=['ACME_Traffic_gone.csv'], fail_on_error=False))
    assert 'failed' not in result
    assert result['summary']['failed'] == 1
    assert result['changed'] is False


def test_leftover_temps(run_module, source, tmp_path):
    dest = tmp_path / 'backup'
    run_module(backup_copy, args(source, dest))
    temp = write(dest, '.ACME_Traffic_1.csv.mnaas-tmp.0123456789ab', b'half')
    check = run_module(backup_copy, args(source, dest), check_mode=True)
    assert check['changed'] is True
    assert check['removed_temps'] == [temp]
    assert os.path.exists(temp)
    real = run_module(backup_copy, args(source, dest))
    assert real['changed'] is True
    assert not os.path.exists(temp)
    assert run_module(backup_copy, args(source, dest))['changed'] is False


def test_sync(run_module, source, tmp_path):
    dest = tmp_path / 'mirror'
    result = run_module(backup_copy, {'transfers': [{'src': str(source), 'dest': str(dest), 'sync': True}], 'compare': 'checksum'})
    assert result['summary']['copied'] == 2
    assert tree(dest) == tree(source)


@pytest.mark.parametrize('transfers, words', [
    ([{'src': 'in', 'dest': '/out'}], ['transfers[0].src', "'in'"]),
    ([{'src': '/in', 'dest': '/out'}, {'src': '/in2', 'dest': '/out'}], ['transfers[1].dest']),
    ([{'src': '/in', 'dest': '/out', 'files': ['x/y.csv']}], ['transfers[0].files[0].name', "'x/y.csv'"]),
])
def test_bad_transfers(run_module, transfers, words):
    result = run_module(backup_copy, {'transfers': transfers})
    assert result['failed'] is True
    for word in words:
        assert word in result['msg']
