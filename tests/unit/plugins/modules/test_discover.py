# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _manifest
from ansible_collections.mnaas.backup.plugins.modules import discover

OLD = time.time() - 86400


def write(directory, name: str, data: bytes = b'h\n1\n2\n', mtime: float = OLD) -> str:
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as stream:
        stream.write(data)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def landing(tmp_path):
    directory = tmp_path / 'in'
    directory.mkdir()
    write(directory, 'ACME_Traffic_1.csv', b'h\n1\n2\n', OLD)
    write(directory, 'ACME_Tolling_1.csv.gz', gzip.compress(b'h\n1\n'), OLD + 1)
    write(directory, 'GLX_Traffic_1.csv', b'h\n1\n2\n3', OLD + 2)
    write(directory, 'ACME_Traffic_young.csv', b'h\n', time.time())
    return directory


def args(source_dir, **extra) -> dict:
    result = {'source_dir': str(source_dir), 'domains': {'traffic': '*_Traffic_*.csv', 'tolling': '*_Tolling_*.csv.gz'},
              'customers': {'ACME': {}, 'GLOBEX': {'match': 'GLX_*', 'backup_dir': '/ignored/here'}}, 'header_lines': 1}
    result.update(extra)
    return result


@pytest.mark.parametrize('check_mode', [False, True])
def test_discover(run_module, landing, check_mode):
    before = sorted(os.listdir(str(landing)))
    result = run_module(discover, args(landing), check_mode=check_mode)
    assert result['changed'] is False
    assert 'failed' not in result
    assert [(f['customer'], f['domain'], f['name'], f['records']) for f in result['files']] == [
        ('ACME', 'traffic', 'ACME_Traffic_1.csv', 2),
        ('ACME', 'tolling', 'ACME_Tolling_1.csv.gz', 1),
        ('GLOBEX', 'traffic', 'GLX_Traffic_1.csv', 3),
    ]
    first = result['files'][0]
    assert first['sha256'] == hashlib.sha256(b'h\n1\n2\n').hexdigest()
    assert first['path'] == str(landing / 'ACME_Traffic_1.csv')
    assert first['size'] == 6
    assert int(first['mtime']) == int(OLD)
    assert result['customers'] == {'ACME': {'traffic': 1, 'tolling': 1}, 'GLOBEX': {'traffic': 1}}
    assert result['summary']['in_flight'] == 1
    assert sorted(os.listdir(str(landing))) == before


def test_max_files(run_module, landing):
    result = run_module(discover, args(landing, max_files=2))
    assert [f['name'] for f in result['files']] == ['ACME_Traffic_1.csv', 'ACME_Tolling_1.csv.gz']
    assert result['summary']['deferred'] == 1


def test_ledger_marks_files_done(run_module, landing, tmp_path):
    first = run_module(discover, args(landing))
    ledger = tmp_path / 'ledger.csv'
    rows = [_manifest.row_of(f, 'run-1', i) for i, f in enumerate(first['files'][:2])]
    ledger.write_bytes(_manifest.render(rows))
    result = run_module(discover, args(landing, ledger=str(ledger)))
    assert [f['name'] for f in result['files']] == ['GLX_Traffic_1.csv']
    assert result['summary']['done'] == 2


def test_missing_ledger_means_nothing_done(run_module, landing, tmp_path):
    result = run_module(discover, args(landing, ledger=str(tmp_path / 'absent.csv')))
    assert len(result['files']) == 3


def test_foreign_ledger_fails(run_module, landing, tmp_path):
    ledger = tmp_path / 'ledger.csv'
    ledger.write_bytes(b'a,b\n1,2\n')
    result = run_module(discover, args(landing, ledger=str(ledger)))
    assert result['failed'] is True
    assert str(ledger) in result['msg']


def test_warnings_for_ambiguous_and_unassigned(run_module, landing):
    write(landing, 'HOOLI_Traffic_1.csv')
    write(landing, 'ACME_Traffic_Tolling_1.csv.gz', gzip.compress(b'x\n'))
    result = run_module(discover, args(landing, domains={'traffic': '*_Traffic_*', 'tolling': '*_Tolling_*'}))
    warnings = json.dumps(result.get('warnings', []))   # plain strings before ansible-core 2.19, dicts since
    assert 'HOOLI_Traffic_1.csv' in warnings
    assert 'ACME_Traffic_Tolling_1.csv.gz' in warnings
    assert result['unassigned'] == ['HOOLI_Traffic_1.csv']
    assert [a['name'] for a in result['ambiguous']] == ['ACME_Traffic_Tolling_1.csv.gz']


@pytest.mark.parametrize('data', [gzip.compress(b'1\n2\n' * 100)[:-7], b'plain text, not gzip\n'])
def test_unreadable_file_fails_at_the_end(run_module, landing, data):
    write(landing, 'ACME_Tolling_2.csv.gz', data, OLD + 3)
    result = run_module(discover, args(landing))
    assert result['failed'] is True
    assert 'ACME_Tolling_2.csv.gz' in result['msg']
    assert [e['name'] for e in result['errors']] == ['ACME_Tolling_2.csv.gz']
    assert len(result['files']) == 3


def test_unreadable_file_without_fail_on_error(run_module, landing):
    write(landing, 'ACME_Tolling_2.csv.gz', gzip.compress(b'1\n')[:-3], OLD + 3)
    result = run_module(discover, args(landing, fail_on_error=False))
    assert 'failed' not in result
    assert result['summary']['failed'] == 1
    assert len(result['files']) == 3


def test_missing_source_dir(run_module, tmp_path):
    result = run_module(discover, args(tmp_path / 'absent'))
    assert result['failed'] is True
    assert 'does not exist' in result['msg']
    assert str(tmp_path / 'absent') in result['msg']


def test_bad_customer_name(run_module, landing):
    result = run_module(discover, args(landing, customers={'../ACME': {}}))
    assert result['failed'] is True
    assert "'../ACME'" in result['msg']
