# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _manifest
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation

MTIME = 1_764_021_600.75      # 2025-11-24T22:00:00.75Z
SHA = 'ab' * 32


def found(**changes) -> dict:
    item = {'customer': 'ACME', 'domain': 'traffic', 'name': 'ACME_Traffic_1.csv', 'path': '/in/ACME_Traffic_1.csv',
            'size': 20, 'mtime': MTIME, 'records': 3, 'sha256': SHA}
    item.update(changes)
    return item


def test_row_of():
    assert _manifest.row_of(found(), 'run-1') == {
        'customer': 'ACME', 'domain': 'traffic', 'file_name': 'ACME_Traffic_1.csv', 'file_size': '20',
        'file_mtime': '2025-11-24T22:00:00Z', 'records': '3', 'sha256': SHA, 'run_id': 'run-1',
    }


def test_row_of_accepts_numeric_strings():
    row = _manifest.row_of(found(size='20', records='3', mtime=str(MTIME)), 'r')
    assert (row['file_size'], row['records'], row['file_mtime']) == ('20', '3', '2025-11-24T22:00:00Z')


@pytest.mark.parametrize('changes, words', [
    ({'customer': 'AC/ME'}, ['files[4].customer', "'AC/ME'"]),
    ({'customer': '..'}, ['files[4].customer', "'..'"]),
    ({'domain': 'traf fic'}, ['files[4].domain', "'traf fic'"]),
    ({'name': 'a/b.csv'}, ['files[4].name', "'a/b.csv'"]),
    ({'name': '..'}, ['files[4].name', "'..'"]),
    ({'size': 'big'}, ['files[4] has a bad value', 'big']),
    ({'records': None}, ['files[4] has a bad value']),
    ({'mtime': 'yesterday'}, ['files[4] has a bad value', 'yesterday']),
])
def test_row_of_bad_values(changes, words):
    with pytest.raises(ConfigError) as caught:
        _manifest.row_of(found(**changes), 'r', 4)
    for word in words:
        assert word in caught.value.msg


@pytest.mark.parametrize('key', ['customer', 'domain', 'name', 'size', 'mtime', 'records', 'sha256'])
def test_row_of_missing_key(key):
    item = found()
    del item[key]
    with pytest.raises(ConfigError, match=r"files\[2\] lacks the key '%s'" % key):
        _manifest.row_of(item, 'r', 2)


def test_iso_and_epoch_round_trip():
    assert _manifest.iso_utc(MTIME) == '2025-11-24T22:00:00Z'
    assert _manifest.epoch_of('2025-11-24T22:00:00Z') == int(MTIME)


def rows(*names, run_id='run-1', **changes) -> list[dict[str, str]]:
    return [_manifest.row_of(found(name=n, **changes), run_id) for n in names]


def test_render_parse_round_trip():
    original = rows('ACME_Traffic_1.csv', 'ACME_Traffic_"quoted", and ,commas.csv', "ACME_Traffic_it's;x.csv")
    data = _manifest.render(original)
    assert data.startswith(b'customer,domain,file_name,file_size,file_mtime,records,sha256,run_id\n')
    assert data.count(b'\n') == 4
    assert _manifest.parse(data, '/m.csv') == original


@pytest.mark.parametrize('name', ['ACME_Traffic_car\riage.csv', 'ACME_Traffic_new\nline.csv', 'ACME_Traffic_both\r\n.csv',
                                  'ACME_Traffic_tab\tand spaces.csv', 'ACME_Traffic_unicodé_日本.csv'])
def test_render_parse_round_trip_of_names_with_line_breaks(name):
    """A carriage return in a name was written unquoted and the file could not be read back (issue 6)."""
    original = rows('ACME_Traffic_1.csv', name, 'ACME_Traffic_2.csv')
    data = _manifest.render(original)
    assert _manifest.parse(data, '/m.csv') == original
    assert b'"ACME_Traffic_1.csv"' not in data  # rows without a line break keep the minimal quoting


def test_parse_malformed_csv_is_a_clear_error():
    data = b'customer,domain,file_name,file_size,file_mtime,records,sha256,run_id\nACME,traffic,A\rB.csv,1,x,1,s,r\n'
    with pytest.raises(BackupError, match=r'^/m\.csv: line \d+ is not valid CSV'):
        _manifest.parse(data, '/m.csv')


def test_render_empty_has_header_only():
    data = _manifest.render([])
    assert data == b'customer,domain,file_name,file_size,file_mtime,records,sha256,run_id\n'
    assert _manifest.parse(data, '/m.csv') == []


@pytest.mark.parametrize('data', [None, b''])
def test_parse_missing_or_empty(data):
    assert _manifest.parse(data, '/m.csv') == []


@pytest.mark.parametrize('data', [
    b'name,size\na,1\n',
    b'customer,domain,file_name,file_size,file_mtime,records,sha256\nA,t,f,1,2025-11-24T22:00:00Z,1,x\n',
    b'run_id,customer,domain,file_name,file_size,file_mtime,records,sha256\n',
    b'just some text\n',
])
def test_parse_foreign_header_is_an_error(data):
    with pytest.raises(BackupError) as caught:
        _manifest.parse(data, '/data/other.csv')
    assert '/data/other.csv' in caught.value.msg
    assert 'not overwritten' in caught.value.msg


def test_merge_replaces_same_key_and_keeps_others():
    existing = rows('a.csv', 'b.csv', run_id='old')
    new = rows('b.csv', 'c.csv', run_id='new', size=99)
    merged = _manifest.merge(existing, new)
    assert [(r['file_name'], r['file_size'], r['run_id']) for r in merged] == [
        ('a.csv', '20', 'old'), ('b.csv', '99', 'new'), ('c.csv', '99', 'new')]


def test_merge_key_is_customer_and_file_name():
    existing = rows('a.csv', customer='ACME')
    merged = _manifest.merge(existing, rows('a.csv', customer='GLOBEX'))
    assert [(r['customer'], r['file_name']) for r in merged] == [('ACME', 'a.csv'), ('GLOBEX', 'a.csv')]


def test_merge_keeps_old_row_when_only_run_id_differs():
    existing = rows('a.csv', run_id='first')
    merged = _manifest.merge(existing, rows('a.csv', run_id='rerun'))
    assert merged == existing


def test_merge_is_sorted():
    merged = _manifest.merge(rows('c.csv', customer='B'), rows('b.csv', 'a.csv', customer='A'))
    assert [(r['customer'], r['file_name']) for r in merged] == [('A', 'a.csv'), ('A', 'b.csv'), ('B', 'c.csv')]


def test_meaning_ignores_run_id_and_order():
    first = rows('a.csv', 'b.csv', run_id='one')
    second = list(reversed(rows('a.csv', 'b.csv', run_id='two')))
    assert _manifest.meaning(first) == _manifest.meaning(second)
    assert _manifest.meaning(first) != _manifest.meaning(rows('a.csv', 'b.csv', records=4))


def test_done_index():
    ledger = _manifest.parse(_manifest.render(rows('a.csv', 'b.csv', size=7)), '/l.csv')
    assert _manifest.done_index(ledger) == {('ACME', 'a.csv'): (7, int(MTIME)), ('ACME', 'b.csv'): (7, int(MTIME))}


def test_target_of_is_the_day_of_the_file_not_of_the_run():
    row = _manifest.row_of(found(mtime=MTIME + 7200), 'run-1')  # 2025-11-25T00:00:00Z
    assert _manifest.target_of('/counts', row) == '/counts/ACME/ACME_20251125.csv'
    assert _manifest.target_of('/counts', _manifest.row_of(found(), 'other-run')) == '/counts/ACME/ACME_20251124.csv'


class CountingLocation(LocalLocation):
    """A local directory that counts the calls a remote location pays a round trip for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def listdir(self, path):
        self.calls.append(('listdir', path))
        return super().listdir(path)

    def stat(self, path):
        self.calls.append(('stat', path))
        return super().stat(path)

    def open_read(self, path):
        self.calls.append(('read', path))
        return super().open_read(path)


def test_plan_lists_each_directory_once_and_reads_only_existing_files(tmp_path):
    base = str(tmp_path)
    rows = [_manifest.row_of(found(name='ACME_%d.csv' % i, mtime=MTIME + i * 86400), 'run-1') for i in range(3)]
    rows.append(_manifest.row_of(found(customer='GLOBEX', name='GLOBEX_1.csv'), 'run-1'))
    wanted = _manifest.targets(base, rows, 'customer_day')
    location = CountingLocation()
    writes = _manifest.plan(location, wanted, True)
    assert [w.changed for w in writes] == [True] * 4 and all(w.before is None for w in writes)
    assert sorted(location.calls) == [('listdir', base + '/ACME'), ('listdir', base + '/GLOBEX')]
    _manifest.apply(location, writes, base, 'tok')
    location.calls.clear()
    again = _manifest.plan(location, wanted, True)
    assert [w.changed for w in again] == [False] * 4
    assert sorted(call for call in location.calls if call[0] == 'listdir') == [('listdir', base + '/ACME'), ('listdir', base + '/GLOBEX')]
    assert sorted(call[1] for call in location.calls if call[0] == 'read') == sorted(w.path for w in writes)
