# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _manifest
from ansible_collections.mnaas.backup.plugins.modules import manifest

HEADER = 'customer,domain,file_name,file_size,file_mtime,records,sha256,run_id\n'


def found(name: str, records: int = 2, customer: str = 'ACME') -> dict:
    return {'customer': customer, 'domain': 'traffic', 'name': name, 'path': '/in/' + name, 'size': 6,
            'mtime': 1_764_021_600.5, 'records': records, 'sha256': 'ab' * 32}


def args(path, files, run_id: str = 'run-1', **extra) -> dict:
    result = {'path': str(path), 'files': files, 'run_id': run_id}
    result.update(extra)
    return result


def content(path) -> str:
    with open(str(path)) as stream:
        return stream.read()


def test_write_then_same_files_unchanged(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    first = run_module(manifest, args(path, [found('b.csv'), found('a.csv')]))
    assert (first['changed'], first['rows'], first['added'], first['path']) == (True, 2, 2, str(path))
    text = content(path)
    assert text.startswith(HEADER)
    assert [line.split(',')[2] for line in text.splitlines()[1:]] == ['a.csv', 'b.csv']
    mtime = os.stat(str(path)).st_mtime_ns
    second = run_module(manifest, args(path, [found('a.csv'), found('b.csv')]))
    assert (second['changed'], second['added']) == (False, 0)
    assert os.stat(str(path)).st_mtime_ns == mtime


def test_run_id_only_change_is_not_a_change(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    run_module(manifest, args(path, [found('a.csv')], run_id='first'))
    before = content(path)
    result = run_module(manifest, args(path, [found('a.csv')], run_id='rerun'))
    assert result['changed'] is False
    assert content(path) == before
    assert ',first\n' in before


def test_changed_record_count_is_a_change(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    run_module(manifest, args(path, [found('a.csv', 2)]))
    result = run_module(manifest, args(path, [found('a.csv', 3)], run_id='run-2'))
    assert (result['changed'], result['added']) == (True, 1)
    assert _manifest.parse(content(path).encode(), str(path))[0]['records'] == '3'


def test_check_mode_writes_nothing(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    result = run_module(manifest, args(path, [found('a.csv')]), check_mode=True)
    assert result['changed'] is True
    assert os.listdir(str(tmp_path)) == []
    run_module(manifest, args(path, [found('a.csv')]))
    before = content(path)
    result = run_module(manifest, args(path, [found('a.csv'), found('b.csv')]), check_mode=True)
    assert result['changed'] is True
    assert content(path) == before
    assert os.listdir(str(tmp_path)) == ['list.csv']


def test_check_mode_reports_same_changed_as_real_run(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    run_module(manifest, args(path, [found('a.csv')]))
    assert run_module(manifest, args(path, [found('a.csv')], run_id='x'), check_mode=True)['changed'] is False


def test_replace_drops_unlisted_rows(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    run_module(manifest, args(path, [found('a.csv'), found('b.csv')]))
    result = run_module(manifest, args(path, [found('b.csv')]))
    assert (result['changed'], result['rows'], result['added']) == (True, 1, 0)
    assert 'a.csv' not in content(path)


def test_merge_keeps_other_rows(run_module, tmp_path):
    path = tmp_path / 'ledger.csv'
    run_module(manifest, args(path, [found('a.csv'), found('b.csv')], mode='merge'))
    result = run_module(manifest, args(path, [found('b.csv', 9), found('c.csv')], run_id='run-2', mode='merge'))
    assert (result['changed'], result['rows'], result['added']) == (True, 3, 2)
    rows = _manifest.parse(content(path).encode(), str(path))
    assert [(r['file_name'], r['records'], r['run_id']) for r in rows] == [
        ('a.csv', '2', 'run-1'), ('b.csv', '9', 'run-2'), ('c.csv', '2', 'run-2')]
    again = run_module(manifest, args(path, [found('c.csv')], run_id='run-3', mode='merge'))
    assert again['changed'] is False


def test_empty_files_writes_header(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    result = run_module(manifest, args(path, []))
    assert (result['changed'], result['rows']) == (True, 0)
    assert content(path) == HEADER
    assert run_module(manifest, args(path, []))['changed'] is False


def test_diff(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    result = run_module(manifest, args(path, [found('a.csv')]), check_mode=True, diff=True)
    assert result['diff']['before'] == ''
    assert result['diff']['after'].startswith(HEADER)
    assert 'a.csv' in result['diff']['after']
    assert 'diff' not in run_module(manifest, args(path, [found('a.csv')]), check_mode=True)


def test_foreign_file_is_not_overwritten(run_module, tmp_path):
    path = tmp_path / 'list.csv'
    path.write_text('name,size\nx,1\n')
    result = run_module(manifest, args(path, [found('a.csv')]))
    assert result['failed'] is True
    assert 'not a manifest' in result['msg']
    assert content(path) == 'name,size\nx,1\n'


def test_missing_directory_fails(run_module, tmp_path):
    result = run_module(manifest, args(tmp_path / 'absent' / 'list.csv', [found('a.csv')]))
    assert result['failed'] is True
    assert str(tmp_path / 'absent') in result['msg']


@pytest.mark.parametrize('bad, words', [
    ({'customer': 'AC/ME'}, ['files[1].customer', "'AC/ME'"]),
    ({'records': 'many'}, ['files[1]', 'many']),
])
def test_bad_file_fails(run_module, tmp_path, bad, words):
    item = dict(found('b.csv'), **bad)
    result = run_module(manifest, args(tmp_path / 'list.csv', [found('a.csv'), item]))
    assert result['failed'] is True
    for word in words:
        assert word in result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_missing_key_fails(run_module, tmp_path):
    item = found('a.csv')
    del item['sha256']
    result = run_module(manifest, args(tmp_path / 'list.csv', [item]))
    assert result['failed'] is True
    assert "files[0] lacks the key 'sha256'" in result['msg']


# -- split=customer_day: the per-customer counts (in HDFS in production, a local directory here) ---------------------

DAY1, DAY2 = 1_764_021_600.5, 1_764_021_600.5 + 86_400  # 2025-11-24 and 2025-11-25 UTC


def counted(name: str, customer: str = 'ACME', mtime: float = DAY1, records: int = 2) -> dict:
    return dict(found(name, records, customer), mtime=mtime)


def split_args(base, files, run_id: str = 'run-1', **extra) -> dict:
    return args(base, files, run_id, mode='merge', split='customer_day', **extra)


def tree(base) -> dict:
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob('*')) if p.is_file()}


def test_split_writes_one_file_per_customer_and_day(run_module, tmp_path):
    files = [counted('a.csv'), counted('b.csv', mtime=DAY2), counted('c.csv', customer='GLOBEX')]
    result = run_module(manifest, split_args(tmp_path, files))
    assert (result['changed'], result['rows'], result['added']) == (True, 3, 3)
    written = tree(tmp_path)
    assert sorted(written) == ['ACME/ACME_20251124.csv', 'ACME/ACME_20251125.csv', 'GLOBEX/GLOBEX_20251124.csv']
    assert [line.split(',')[2] for line in written['ACME/ACME_20251124.csv'].splitlines()] == ['file_name', 'a.csv']
    assert all(text.startswith(HEADER) for text in written.values())
    assert [(f['path'], f['rows'], f['changed']) for f in result['files']] == [
        (str(tmp_path / name), 1, True) for name in sorted(written)]


def test_split_capped_runs_and_reruns_list_each_file_once(run_module, tmp_path):
    first, second = [counted('a.csv'), counted('b.csv')], [counted('c.csv'), counted('d.csv')]
    run_module(manifest, split_args(tmp_path, first))
    after_second = run_module(manifest, split_args(tmp_path, second, run_id='run-2'))
    assert (after_second['changed'], after_second['rows'], after_second['added']) == (True, 4, 2)
    stamp = (tmp_path / 'ACME' / 'ACME_20251124.csv').stat().st_mtime_ns
    for files in (first, second, first + second):
        rerun = run_module(manifest, split_args(tmp_path, files, run_id='rerun'))
        assert (rerun['changed'], rerun['added']) == (False, 0)
    rows = tree(tmp_path)['ACME/ACME_20251124.csv'].splitlines()[1:]
    assert sorted(row.split(',')[2] for row in rows) == ['a.csv', 'b.csv', 'c.csv', 'd.csv']
    assert (tmp_path / 'ACME' / 'ACME_20251124.csv').stat().st_mtime_ns == stamp


def test_split_a_changed_count_replaces_the_row(run_module, tmp_path):
    run_module(manifest, split_args(tmp_path, [counted('a.csv', records=2), counted('b.csv')]))
    result = run_module(manifest, split_args(tmp_path, [counted('a.csv', records=5)], run_id='run-2'))
    assert (result['changed'], result['rows'], result['added']) == (True, 2, 1)
    rows = [row.split(',') for row in tree(tmp_path)['ACME/ACME_20251124.csv'].splitlines()[1:]]
    assert [(row[2], row[5], row[7]) for row in rows] == [('a.csv', '5', 'run-2'), ('b.csv', '2', 'run-1')]


def test_split_check_mode_writes_nothing_and_shows_the_files(run_module, tmp_path):
    run_module(manifest, split_args(tmp_path, [counted('a.csv')]))
    before = tree(tmp_path)
    files = [counted('a.csv'), counted('b.csv'), counted('c.csv', customer='GLOBEX')]
    plan = run_module(manifest, split_args(tmp_path, files), check_mode=True, diff=True)
    assert tree(tmp_path) == before and not (tmp_path / 'GLOBEX').exists()
    assert (plan['changed'], plan['rows'], plan['added']) == (True, 3, 2)
    assert [d['after_header'] for d in plan['diff']] == [str(tmp_path / 'ACME' / 'ACME_20251124.csv'),
                                                         str(tmp_path / 'GLOBEX' / 'GLOBEX_20251124.csv')]
    assert plan['diff'][0]['before'] == before['ACME/ACME_20251124.csv']
    assert 'b.csv' in plan['diff'][0]['after'] and plan['diff'][1]['before'] == ''
    real = run_module(manifest, split_args(tmp_path, files), diff=True)
    assert (real['changed'], real['files']) == (True, plan['files'])
    assert run_module(manifest, split_args(tmp_path, files), check_mode=True, diff=True)['diff'] == []


def test_split_no_files_writes_nothing(run_module, tmp_path):
    result = run_module(manifest, split_args(tmp_path, []))
    assert (result['changed'], result['rows'], result['files']) == (False, 0, [])
    assert not list(tmp_path.iterdir())


def test_split_needs_merge(run_module, tmp_path):
    result = run_module(manifest, args(tmp_path, [counted('a.csv')], split='customer_day'))
    assert result['failed'] is True
    assert 'split=customer_day needs mode=merge' in result['msg']
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('check_mode', [False, True])
def test_split_missing_directory_fails(run_module, tmp_path, check_mode):
    result = run_module(manifest, split_args(tmp_path / 'counts', [counted('a.csv')]), check_mode=check_mode)
    assert result['failed'] is True
    assert str(tmp_path / 'counts') in result['msg']
    assert not (tmp_path / 'counts').exists()


def test_split_foreign_file_is_left_alone(run_module, tmp_path):
    (tmp_path / 'ACME').mkdir()
    (tmp_path / 'ACME' / 'ACME_20251124.csv').write_text('name,size\nx,1\n')
    result = run_module(manifest, split_args(tmp_path, [counted('a.csv'), counted('c.csv', customer='GLOBEX')]))
    assert result['failed'] is True and 'not a manifest' in result['msg']
    assert tree(tmp_path) == {'ACME/ACME_20251124.csv': 'name,size\nx,1\n'}
