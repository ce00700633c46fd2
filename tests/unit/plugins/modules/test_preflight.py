# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import sys

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _requirements
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import Library
from ansible_collections.mnaas.backup.plugins.modules import preflight

KNOWN = ['mnaas_backup_source_dir', 'mnaas_backup_domains', 'mnaas_backup_customers', 'mnaas_backup_max_files']
SETTINGS = {
    'source_dir': '/data/in',
    'domains': {'traffic': '*_Traffic_*.csv'},
    'customers': {'ACME': {'backup_dir': '/backup1/ACME'}},
    'max_files': 10,
}


def test_good_configuration(run_module):
    result = run_module(preflight, {'settings': SETTINGS, 'known_variables': KNOWN, 'set_variables': KNOWN})
    assert result['changed'] is False
    assert result['problems'] == [] and result['settings_valid'] is True
    assert 'failed' not in result


def test_check_mode_same_answer(run_module):
    result = run_module(preflight, {'settings': SETTINGS, 'known_variables': KNOWN, 'set_variables': KNOWN}, check_mode=True)
    assert (result['changed'], result['problems']) == (False, [])


def test_needed_dirs_default_is_backup_dir(run_module):
    result = run_module(preflight, {'settings': dict(SETTINGS, customers={'ACME': {'edge2_backup_dir': '/b2/ACME'}})})
    assert result['failed'] is True
    assert result['problems'] == ['mnaas_backup_customers.ACME.backup_dir is missing; this node needs it']


def test_secondary_needs_both(run_module):
    result = run_module(preflight, {'settings': SETTINGS, 'needed_dirs': ['backup_dir', 'edge2_backup_dir']})
    assert result['problems'] == ['mnaas_backup_customers.ACME.edge2_backup_dir is missing; this node needs it']


def test_every_problem_reported(run_module):
    settings = dict(SETTINGS, source_dir='in', customers={'ACME': {'backup_dir': '/b', 'bakup_dir': '/c'}})
    result = run_module(preflight, {'settings': settings, 'known_variables': KNOWN, 'set_variables': KNOWN + ['mnaas_backup_max_file']})
    assert result['failed'] is True
    assert len(result['problems']) == 3 and result['settings_valid'] is False
    assert result['msg'].startswith('the configuration has 3 problem(s): ')
    for problem in result['problems']:
        assert problem in result['msg']
    assert any('did you mean mnaas_backup_max_files?' in p for p in result['problems'])
    assert any('did you mean backup_dir?' in p for p in result['problems'])
    assert any("'in'" in p for p in result['problems'])


def test_secondary_checks_the_primary_through_its_location(run_module, tmp_path):
    """primary_location: the primary's directories as the secondary reads them; missing ones are warnings."""
    (tmp_path / 'b1' / 'ACME').mkdir(parents=True)
    settings = dict(SETTINGS, customers={'ACME': {'backup_dir': str(tmp_path / 'b1' / 'ACME'), 'edge2_backup_dir': '/b2/ACME'}},
                    primary_ledger_file=str(tmp_path / 'state' / 'ledger.csv'))
    result = run_module(preflight, {'settings': settings, 'needed_dirs': ['backup_dir', 'edge2_backup_dir'],
                                    'primary_location': {'type': 'local'}})
    assert result['problems'] == [] and 'failed' not in result
    assert result['notes'] == ['mnaas_backup_primary_ledger_file %s does not exist on the primary (yet): nothing of it to copy'
                               % (tmp_path / 'state' / 'ledger.csv')]
    assert result['notes'][0] in str(result['warnings'])   # also a warning


def test_secondary_primary_location_errors_name_the_variable(run_module):
    result = run_module(preflight, {'settings': SETTINGS, 'primary_location': {'type': 'sftp'}})
    assert result['failed'] is True
    assert result['problems'] == ['mnaas_backup_primary_location.host is required when mnaas_backup_primary_location.type is sftp']
    assert result['settings_valid'] is False


def test_secondary_missing_key_file_named(run_module, tmp_path):
    result = run_module(preflight, {'settings': SETTINGS, 'primary_location': {
        'type': 'sftp', 'host': 'edge1.example.invalid', 'user': 'mnaas', 'private_key': str(tmp_path / 'no_key'), 'retries': 0}})
    assert result['failed'] is True
    assert result['problems'] == ['mnaas_backup_primary_location: cannot reach the primary: private key file %s for sftp host '
                                  'mnaas@edge1.example.invalid:22 does not exist' % (tmp_path / 'no_key')]
    assert result['settings_valid'] is True     # sound settings, a node not ready: the role can still write FAIL


def test_node_problems_leave_the_settings_valid(run_module, tmp_path):
    """Problems of the node only (here a landing directory that is not there): the flag settings can be trusted."""
    settings = dict(SETTINGS, source_dir=str(tmp_path / 'missing'))
    result = run_module(preflight, {'settings': settings, 'node_role': 'primary', 'min_free_mb': 0})
    assert result['failed'] is True and result['settings_valid'] is True
    assert "mnaas_backup_source_dir %r does not exist or is not a directory" % str(tmp_path / 'missing') in result['problems']


# The libraries of the node's steps (features): a fake table, of modules that exist or not in this Python.
PRESENT = Library('pytest', 'pytest', '1.0', 'hiveserver2', 'the tests')
ABSENT = Library('mnaas-absent-hs2', 'mnaas_absent_hs2', '0.7.0', 'hiveserver2', 'the hive, impala and spark warehouse engines')
ABSENT_OPTIONAL = Library('mnaas-absent-crc', 'mnaas_absent_crc', '1.5.0', 'webhdfs', 'fast CRC32C for HDFS checksums', optional=True)
ABSENT_SFTP = Library('mnaas-absent-ssh', 'mnaas_absent_ssh', '2.10', 'sftp', "the secondary's pull from the primary over SFTP")


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(_requirements, 'LIBRARIES', (PRESENT, ABSENT, ABSENT_OPTIONAL, ABSENT_SFTP))


def test_no_features_no_libraries(run_module, table):
    result = run_module(preflight, {'settings': SETTINGS})
    assert result['libraries'] == [] and result['problems'] == []


def test_a_missing_library_is_a_node_problem(run_module, table):
    result = run_module(preflight, {'settings': SETTINGS, 'features': ['hiveserver2']})
    assert result['failed'] is True
    assert result['settings_valid'] is True        # the role writes the flag FAIL
    assert result['problems'] == [
        "the Python library mnaas-absent-hs2 of %s is not installed; it is needed for the hive, impala and spark warehouse engines. "
        "To install it, run playbooks/prepare_nodes.yml (mnaas.backup.prepare_nodes) for this node, or pip install "
        "'mnaas-absent-hs2>=0.7.0' into %s's environment" % (sys.executable, sys.executable)]
    assert result['problems'][0] in result['msg']
    assert result['libraries'] == [
        {'distribution': 'pytest', 'module': 'pytest', 'minimum': '1.0', 'optional': False, 'version': pytest.__version__, 'ok': True},
        {'distribution': 'mnaas-absent-hs2', 'module': 'mnaas_absent_hs2', 'minimum': '0.7.0', 'optional': False, 'version': None, 'ok': False},
    ]


def test_only_the_libraries_of_the_features_given(run_module, table):
    result = run_module(preflight, {'settings': SETTINGS, 'features': ['webhdfs']})
    assert 'failed' not in result and result['problems'] == []
    assert [(lib['distribution'], lib['ok']) for lib in result['libraries']] == [('mnaas-absent-crc', False)]
    assert len(result['notes']) == 1 and result['notes'][0].startswith('the optional Python library mnaas-absent-crc of ')
    assert result['notes'][0] in str(result['warnings'])


def test_unknown_feature_refused(run_module):
    result = run_module(preflight, {'settings': SETTINGS, 'features': ['ftp']})
    assert result['failed'] is True
    assert 'features' in result['msg'] and 'sftp, webhdfs, hiveserver2' in result['msg']


def test_library_problems_add_to_the_others(run_module, table, tmp_path):
    settings = dict(SETTINGS, source_dir=str(tmp_path / 'missing'))
    result = run_module(preflight, {'settings': settings, 'node_role': 'primary', 'min_free_mb': 0, 'features': ['hiveserver2']})
    assert result['settings_valid'] is True and len(result['problems']) == 2
    assert 'does not exist' in result['problems'][0] and 'mnaas-absent-hs2' in result['problems'][1]


def test_without_its_library_the_primary_is_not_tried(run_module, table):
    """One problem, by the library's name; not also "cannot reach the primary"."""
    result = run_module(preflight, {'settings': SETTINGS, 'features': ['sftp'], 'primary_location': {
        'type': 'sftp', 'host': 'edge1.example.invalid', 'user': 'mnaas', 'retries': 0, 'timeout': 1}})
    assert result['settings_valid'] is True
    assert len(result['problems']) == 1 and 'mnaas-absent-ssh' in result['problems'][0]


def test_without_its_library_bad_primary_settings_still_reported(run_module, table):
    result = run_module(preflight, {'settings': SETTINGS, 'features': ['sftp'], 'primary_location': {'type': 'sftp'}})
    assert result['settings_valid'] is False
    assert result['problems'][1] == 'mnaas_backup_primary_location.host is required when mnaas_backup_primary_location.type is sftp'
