# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mnaas.backup.plugins.filter.transfers import FilterModule, transfers
from ansible_collections.mnaas.backup.plugins.module_utils._copy import FileSpec, parse_transfers

CUSTOMERS = {
    'GLOBEX': {'match': 'GLX_*', 'backup_dir': '/backup1/GLOBEX', 'edge2_backup_dir': '/backup2/GLOBEX'},
    'ACME': {'backup_dir': '/backup1/ACME', 'edge2_backup_dir': '/backup2/ACME'},
    'HOOLI': {'backup_dir': '/backup1/HOOLI', 'edge2_backup_dir': '/backup2/HOOLI'},
}


def found(customer: str, name: str) -> dict:
    return {'customer': customer, 'domain': 'traffic', 'name': name, 'size': 1, 'mtime': 1.0, 'records': 1, 'sha256': 'x'}


FILES = [found('GLOBEX', 'GLX_1.csv'), found('ACME', 'ACME_1.csv'), found('ACME', 'ACME_2.csv')]


def test_registered():
    assert FilterModule().filters() == {'transfers': transfers}


def test_src_dir_one_transfer_per_customer_with_files():
    def brief(found):
        return {key: found[key] for key in ('name', 'size', 'mtime', 'sha256')}

    assert transfers(CUSTOMERS, 'backup_dir', src_dir='/in', files=FILES) == [
        {'customer': 'ACME', 'src': '/in', 'dest': '/backup1/ACME', 'files': [brief(FILES[1]), brief(FILES[2])], 'sync': False},
        {'customer': 'GLOBEX', 'src': '/in', 'dest': '/backup1/GLOBEX', 'files': [brief(FILES[0])], 'sync': False},
    ]


def test_no_files_no_transfers():
    assert transfers(CUSTOMERS, 'backup_dir', src_dir='/in') == []
    assert transfers(CUSTOMERS, 'backup_dir', src_dir='/in', files=[]) == []


def test_src_key_sync_every_customer():
    assert transfers(CUSTOMERS, 'edge2_backup_dir', src_key='backup_dir', sync=True) == [
        {'customer': 'ACME', 'src': '/backup1/ACME', 'dest': '/backup2/ACME', 'files': [], 'sync': True},
        {'customer': 'GLOBEX', 'src': '/backup1/GLOBEX', 'dest': '/backup2/GLOBEX', 'files': [], 'sync': True},
        {'customer': 'HOOLI', 'src': '/backup1/HOOLI', 'dest': '/backup2/HOOLI', 'files': [], 'sync': True},
    ]


def test_include_empty_every_customer_without_sync():
    result = transfers(CUSTOMERS, 'edge2_backup_dir', src_key='backup_dir', include_empty=True, files=FILES[:1])
    assert [(t['customer'], len(t['files']), t['sync']) for t in result] == [('ACME', 0, False), ('GLOBEX', 1, False), ('HOOLI', 0, False)]


def test_src_key_sync_with_expected_files():
    result = transfers(CUSTOMERS, 'edge2_backup_dir', src_key='backup_dir', sync=True, files=FILES[:1])
    assert [(t['dest'], [f['name'] for f in t['files']]) for t in result] == [
        ('/backup2/ACME', []), ('/backup2/GLOBEX', ['GLX_1.csv']), ('/backup2/HOOLI', [])]


def test_output_is_valid_backup_copy_input():
    parsed = parse_transfers(transfers(CUSTOMERS, 'backup_dir', src_dir='/in', files=FILES))
    assert [(t.customer, t.dest, t.files) for t in parsed] == [
        ('ACME', '/backup1/ACME', (FileSpec('ACME_1.csv', 1, 1.0, 'x'), FileSpec('ACME_2.csv', 1, 1.0, 'x'))),
        ('GLOBEX', '/backup1/GLOBEX', (FileSpec('GLX_1.csv', 1, 1.0, 'x'),)),
    ]


@pytest.mark.parametrize('kwargs', [{}, {'src_dir': '/in', 'src_key': 'backup_dir'}])
def test_exactly_one_source(kwargs):
    with pytest.raises(AnsibleFilterError, match='exactly one of src_dir and src_key'):
        transfers(CUSTOMERS, 'backup_dir', **kwargs)


@pytest.mark.parametrize('value', [None, [], 'ACME', [{'ACME': {}}]])
def test_input_must_be_mapping(value):
    with pytest.raises(AnsibleFilterError, match='customers mapping'):
        transfers(value, 'backup_dir', src_dir='/in')


def test_files_of_unknown_customer():
    with pytest.raises(AnsibleFilterError) as caught:
        transfers(CUSTOMERS, 'backup_dir', src_dir='/in', files=FILES + [found('INITECH', 'I_1.csv'), {'name': 'n.csv'}])
    assert 'INITECH' in str(caught.value)
    assert 'None' in str(caught.value)


@pytest.mark.parametrize('settings', [{}, None, {'backup_dir': ''}])
def test_customer_without_destination(settings):
    customers = dict(CUSTOMERS, ACME=settings)
    with pytest.raises(AnsibleFilterError, match='customer ACME has no backup_dir'):
        transfers(customers, 'backup_dir', src_dir='/in', files=FILES)


def test_customer_without_source_key():
    customers = dict(CUSTOMERS, HOOLI={'edge2_backup_dir': '/backup2/HOOLI'})
    with pytest.raises(AnsibleFilterError, match='customer HOOLI has no backup_dir'):
        transfers(customers, 'edge2_backup_dir', src_key='backup_dir', sync=True)


def test_customer_without_files_needs_no_destination():
    customers = dict(CUSTOMERS, HOOLI={})
    assert len(transfers(customers, 'backup_dir', src_dir='/in', files=FILES)) == 2
