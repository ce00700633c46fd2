# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mnaas.backup.plugins.filter.node_dirs import FilterModule, node_dirs

CUSTOMERS = {
    'GLOBEX': {'backup_dir': '/backup1/GLOBEX', 'edge2_backup_dir': '/backup2/GLOBEX'},
    'ACME': {'backup_dir': '/backup1/ACME', 'edge2_backup_dir': ''},
    'HOOLI': {'backup_dir': '/backup1/HOOLI'},
}
FILES = {'state_dir': '/var/lib/mnaas', 'lock_file': '/run/mnaas/night.lock', 'ledger_file': '/var/lib/mnaas/ledger.csv',
         'manifest_file': '/data/manifest/list.csv', 'flag_file': '/data/flag/status'}


def test_registered():
    assert FilterModule().filters() == {'node_dirs': node_dirs}


@pytest.mark.parametrize('flag_location', [None, {}, {'type': 'local'}, {'root': '/'}])
def test_primary_local_flag(flag_location):
    assert node_dirs('primary', CUSTOMERS, flag_location=flag_location, **FILES) == [
        '/var/lib/mnaas', '/run/mnaas', '/backup1/GLOBEX', '/backup1/ACME', '/backup1/HOOLI', '/data/manifest', '/data/flag']


def test_primary_flag_elsewhere_each_directory_once():
    files = {**FILES, 'manifest_file': '/var/lib/mnaas/list.csv'}
    flag_location = {'type': 'webhdfs', 'urls': ['http://nn1:9870']}
    assert node_dirs('primary', CUSTOMERS, flag_location=flag_location, **files) == [
        '/var/lib/mnaas', '/run/mnaas', '/backup1/GLOBEX', '/backup1/ACME', '/backup1/HOOLI']


def test_secondary_only_the_customers_with_a_secondary_directory():
    assert node_dirs('secondary', dict(CUSTOMERS, INITECH=None), state_dir='/var/lib/mnaas', lock_file='/var/lib/mnaas/night.lock',
                     ledger_file='/var/lib/mnaas/ledger.csv') == ['/var/lib/mnaas', '/backup2/GLOBEX']


@pytest.mark.parametrize('role', ['', 'edge1', None])
def test_bad_role(role):
    with pytest.raises(AnsibleFilterError, match='node_dirs: the input must be the node role'):
        node_dirs(role, CUSTOMERS, **FILES)


def test_customers_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match='node_dirs: customers must be a mapping'):
        node_dirs('primary', ['ACME'], **FILES)


@pytest.mark.parametrize('settings', [{}, None, {'edge2_backup_dir': '/backup2/ACME'}])
def test_primary_customer_without_backup_dir(settings):
    with pytest.raises(AnsibleFilterError, match='node_dirs: customer ACME has no backup_dir'):
        node_dirs('primary', dict(CUSTOMERS, ACME=settings), **FILES)


def test_directories_differing_in_case_are_two():
    customers = {'ACME': {'backup_dir': '/backup1/ACME'}, 'acme': {'backup_dir': '/backup1/acme'}}
    assert node_dirs('primary', customers, flag_location={'type': 'webhdfs'}, **FILES)[2:4] == ['/backup1/ACME', '/backup1/acme']
