# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import os

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation
from ansible_collections.mnaas.backup.plugins.module_utils._preflight import check, check_node, check_primary

KNOWN = ['mnaas_backup_source_dir', 'mnaas_backup_domains', 'mnaas_backup_customers', 'mnaas_backup_max_files',
         'mnaas_backup_min_age', 'mnaas_backup_workers', 'mnaas_backup_lock_file']
GOOD = {
    'source_dir': '/data/in',
    'domains': {'traffic': '*_Traffic_*.csv'},
    'customers': {
        'ACME': {'backup_dir': '/backup1/ACME', 'edge2_backup_dir': '/backup2/ACME'},
        'GLOBEX': {'match': 'GLX_*', 'backup_dir': '/backup1/GLOBEX', 'edge2_backup_dir': '/backup2/GLOBEX'},
    },
    'max_files': 500,
    'min_age': 120,
    'workers': 4,
    'lock_file': '/state/job.sem',
}


def settings(**changes) -> dict:
    result = copy.deepcopy(GOOD)
    result.update(changes)
    return result


def customers(**changes) -> dict:
    result = copy.deepcopy(GOOD['customers'])
    result.update(changes)
    return result


@pytest.mark.parametrize('needed', [['backup_dir'], ['backup_dir', 'edge2_backup_dir'], []])
def test_good_configuration(needed):
    assert check(settings(), KNOWN, KNOWN, needed) == []


def test_unknown_variable_with_suggestion():
    problems = check(settings(), KNOWN, KNOWN + ['mnaas_backup_max_file'], ['backup_dir'])
    assert problems == ['unknown variable mnaas_backup_max_file (did you mean mnaas_backup_max_files?)']


def test_unknown_customer_key_with_suggestion():
    problems = check(settings(customers=customers(ACME={'backupdir': '/b/ACME', 'backup_dir': '/backup1/ACME'})), KNOWN, KNOWN,
                     ['backup_dir'])
    assert problems == ['mnaas_backup_customers.ACME: unknown key backupdir (did you mean backup_dir?) '
                        '(known: match, backup_dir, edge2_backup_dir, hdfs_backup_dir)']


@pytest.mark.parametrize('key', ['source_dir', 'lock_file', 'state_dir', 'ledger_file', 'manifest_file', 'flag_file',
                                 'warehouse_database'])
def test_relative_paths(key):
    problems = check(settings(**{key: 'relative/path'}), KNOWN, KNOWN, ['backup_dir'])
    assert problems == ["mnaas_backup_%s must be an absolute path, got relative path 'relative/path'" % key]


def test_dotdot_path():
    problems = check(settings(source_dir='/data/../etc'), KNOWN, KNOWN, ['backup_dir'])
    assert len(problems) == 1
    assert 'mnaas_backup_source_dir' in problems[0] and "'/data/../etc'" in problems[0]


def test_relative_customer_dir():
    problems = check(settings(customers=customers(ACME={'backup_dir': 'backup/ACME'})), KNOWN, KNOWN, ['backup_dir'])
    assert problems == ["mnaas_backup_customers.ACME.backup_dir must be an absolute path, got relative path 'backup/ACME'"]


@pytest.mark.parametrize('conf', [{}, None, {'backup_dir': ''}, {'backup_dir': None}])
def test_missing_backup_dir(conf):
    problems = check(settings(customers=customers(ACME=conf)), KNOWN, KNOWN, ['backup_dir'])
    assert problems == ['mnaas_backup_customers.ACME.backup_dir is missing; this node needs it']


def test_secondary_needs_edge2_backup_dir():
    conf = {'backup_dir': '/backup1/ACME'}
    assert check(settings(customers=customers(ACME=conf)), KNOWN, KNOWN, ['backup_dir']) == []
    problems = check(settings(customers=customers(ACME=conf)), KNOWN, KNOWN, ['backup_dir', 'edge2_backup_dir'])
    assert problems == ['mnaas_backup_customers.ACME.edge2_backup_dir is missing; this node needs it']


@pytest.mark.parametrize('first, second', [('/backup1/shared', '/backup1/shared'), ('/backup1/shared/', '/backup1//shared')])
def test_two_customers_sharing_a_backup_dir(first, second):
    conf = customers(ACME={'backup_dir': first}, GLOBEX={'match': 'GLX_*', 'backup_dir': second})
    problems = check(settings(customers=conf), KNOWN, KNOWN, ['backup_dir'])
    assert len(problems) == 1
    assert 'mnaas_backup_customers.GLOBEX.backup_dir' in problems[0]
    assert 'ACME' in problems[0]
    assert '/backup1/shared' in problems[0]


def test_primary_and_secondary_dirs_may_be_equal_paths():
    """Each node has its own storage: the same path as backup_dir and edge2_backup_dir is fine."""
    conf = customers(ACME={'backup_dir': '/backup/ACME', 'edge2_backup_dir': '/backup/ACME'})
    assert check(settings(customers=conf), KNOWN, KNOWN, ['backup_dir', 'edge2_backup_dir']) == []


@pytest.mark.parametrize('key, value', [('max_files', -1), ('min_age', 'soon'), ('max_files', True), ('min_age', 1.5)])
def test_numbers(key, value):
    problems = check(settings(**{key: value}), KNOWN, KNOWN, ['backup_dir'])
    assert problems == ['mnaas_backup_%s must be a whole number >= 0, got %r' % (key, value)]


@pytest.mark.parametrize('value', [0, -2, 'four'])
def test_workers(value):
    assert check(settings(workers=value), KNOWN, KNOWN, ['backup_dir']) == [
        'mnaas_backup_workers must be a whole number >= 1, got %r' % (value,)]


def test_bad_rules_reported():
    problems = check(settings(domains={'traffic': 'in/*.csv'}), KNOWN, KNOWN, ['backup_dir'])
    assert len(problems) == 1
    assert 'domains.traffic' in problems[0]


def test_empty_customers_reported():
    problems = check(settings(customers={}), KNOWN, KNOWN, ['backup_dir'])
    assert len(problems) == 1
    assert 'customers' in problems[0]


def test_all_problems_reported_together():
    bad = settings(
        source_dir='in',
        lock_file='job.sem',
        max_files=-5,
        workers=0,
        customers={
            'ACME': {'backup_dir': '/backup1/shared', 'edge2_backup_dir': 'b2'},
            'GLOBEX': {'match': 'GLX_*', 'backup_dir': '/backup1/shared', 'edge2': '/x'},
            'HOOLI': {},
        },
    )
    problems = check(bad, KNOWN, KNOWN + ['mnaas_backup_min_ag'], ['backup_dir', 'edge2_backup_dir'])
    expected_parts = [
        'unknown variable mnaas_backup_min_ag',
        'mnaas_backup_source_dir',
        'mnaas_backup_lock_file',
        'mnaas_backup_max_files',
        'mnaas_backup_workers',
        'mnaas_backup_customers.ACME.edge2_backup_dir must be an absolute path',
        'mnaas_backup_customers.GLOBEX: unknown key edge2',
        'mnaas_backup_customers.GLOBEX.backup_dir',
        'mnaas_backup_customers.GLOBEX.edge2_backup_dir is missing',
        'mnaas_backup_customers.HOOLI.backup_dir is missing',
        'mnaas_backup_customers.HOOLI.edge2_backup_dir is missing',
    ]
    assert len(problems) == len(expected_parts), problems
    for part in expected_parts:
        assert [p for p in problems if part in p], part


# --- this node's filesystems ------------------------------------------------------------------------

def node_settings(root, **overrides) -> dict:
    (root / 'in').mkdir(exist_ok=True)
    (root / 'out').mkdir(exist_ok=True)
    settings = {
        'source_dir': str(root / 'in'), 'state_dir': str(root / 'state'),
        'lock_file': str(root / 'state' / 'x.sem'), 'ledger_file': str(root / 'state' / 'ledger.csv'),
        'manifest_file': str(root / 'out' / 'manifest.csv'), 'flag_file': str(root / 'out' / 'flag'),
        'warehouse_database': str(root / 'state' / 'w.sqlite'),
        'customers': {'ACME': {'backup_dir': str(root / 'b1' / 'ACME'), 'edge2_backup_dir': str(root / 'b2' / 'ACME')}},
    }
    settings.update(overrides)
    return settings


def test_node_checks_pass_on_a_sound_node(tmp_path):
    settings = node_settings(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob('*'))
    assert check_node(settings, 'primary', 1) == []
    assert check_node(settings, 'secondary', 1) == []
    assert sorted(p.name for p in tmp_path.rglob('*')) == before     # checks only: nothing created


def test_node_missing_landing_dir(tmp_path):
    problems = check_node(node_settings(tmp_path, source_dir=str(tmp_path / 'nope')), 'primary', 1)
    assert problems == ["mnaas_backup_source_dir %r does not exist or is not a directory" % str(tmp_path / 'nope')]
    assert check_node(node_settings(tmp_path, source_dir=str(tmp_path / 'nope')), 'secondary', 1) == []


def test_node_manifest_directory_must_exist(tmp_path):
    problems = check_node(node_settings(tmp_path, manifest_file=str(tmp_path / 'gone' / 'm.csv')), 'primary', 1)
    assert len(problems) == 1 and 'mnaas_backup_manifest_file' in problems[0] and str(tmp_path / 'gone') in problems[0]


def test_node_flag_in_hdfs_is_not_a_local_directory(tmp_path):
    settings = node_settings(tmp_path, flag_file='/user/mnaas/flag', flag_location={'type': 'webhdfs'})
    assert check_node(settings, 'primary', 1) == []


def test_node_flag_in_the_hdfs_of_the_results_is_not_a_local_directory(tmp_path):
    settings = node_settings(tmp_path, flag_file='/user/mnaas/flag', flag_location={}, hdfs_location={'type': 'webhdfs'})
    assert check_node(settings, 'primary', 1) == []
    problems = check_node(dict(settings, flag_location={'type': 'local'}), 'primary', 1)
    assert len(problems) == 1 and 'mnaas_backup_flag_file' in problems[0]


def test_node_count_dir_on_this_node_must_exist(tmp_path):
    settings = node_settings(tmp_path, hdfs_count_dir=str(tmp_path / 'counts'))
    problems = check_node(settings, 'primary', 1)
    assert len(problems) == 1 and 'mnaas_backup_hdfs_count_dir' in problems[0] and str(tmp_path / 'counts') in problems[0]
    assert check_node(dict(settings, hdfs_location={'type': 'webhdfs', 'urls': ['http://nn:9870']}), 'primary', 1) == []
    (tmp_path / 'counts').mkdir()
    assert check_node(settings, 'primary', 1) == []


def test_node_backup_dir_that_cannot_be_created(tmp_path):
    (tmp_path / 'file').write_text('x')
    settings = node_settings(tmp_path)
    settings['customers']['ACME']['backup_dir'] = str(tmp_path / 'file' / 'ACME')
    problems = check_node(settings, 'primary', 1)
    assert len(problems) == 1 and 'mnaas_backup_customers.ACME.backup_dir' in problems[0] and 'cannot be created' in problems[0]


def test_node_existing_customer_dir_refusing_writes_is_a_note_not_a_problem(tmp_path, monkeypatch):
    """One customer's directory refusing writes fails that customer in the copy; the night goes on."""
    settings = node_settings(tmp_path)
    refused = str(tmp_path / 'b1' / 'ACME')
    os.makedirs(refused)
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: False if path == refused else real_access(path, mode))
    notes: list = []
    assert check_node(settings, 'primary', 1, notes) == []
    assert notes == ['mnaas_backup_customers.ACME.backup_dir %r is not writable: customer ACME will fail tonight, the others go on' % refused]
    assert check_node(settings, 'secondary', 1, notes) == [] and len(notes) == 1     # edge2_backup_dir is writable


def test_node_free_space_threshold_names_the_directory(tmp_path):
    problems = check_node(node_settings(tmp_path), 'primary', 1 << 40)
    assert len(problems) == 1
    assert 'mnaas_backup_customers.ACME.backup_dir' in problems[0] and 'mnaas_backup_min_free_mb=%d' % (1 << 40) in problems[0]
    assert check_node(node_settings(tmp_path), 'secondary', 1 << 40)[0].startswith('mnaas_backup_customers.ACME.edge2_backup_dir')


@pytest.mark.parametrize('location, needed', [({'type': 'webhdfs'}, 'urls'), ({'type': 'sftp', 'user': 'x'}, 'host')])
def test_flag_location_must_say_where(location, needed):
    settings = {'domains': {'traffic': '*_Traffic_*.csv'}, 'customers': {'ACME': {'backup_dir': '/b1/ACME'}}, 'flag_location': location}
    problems = check(settings, [], [], ['backup_dir'])
    assert problems == ['mnaas_backup_flag_location.%s is required when mnaas_backup_flag_location.type is %s' % (needed, location['type'])]


def test_flag_location_complete_or_local_is_fine():
    base = {'domains': {'traffic': '*_Traffic_*.csv'}, 'customers': {'ACME': {'backup_dir': '/b1/ACME'}}}
    assert check(dict(base, flag_location={'type': 'webhdfs', 'urls': ['http://nn:9870']}), [], [], ['backup_dir']) == []
    assert check(dict(base, flag_location={'type': 'local'}), [], [], ['backup_dir']) == []


def test_hdfs_settings():
    base = {'domains': {'traffic': '*_Traffic_*.csv'}, 'customers': {'ACME': {'backup_dir': '/b1/ACME', 'hdfs_backup_dir': '/user/b/ACME'}}}
    hdfs = {'type': 'webhdfs', 'urls': ['http://nn:9870']}
    assert check(dict(base, hdfs_location=hdfs, hdfs_count_dir='/user/counts'), [], [], ['backup_dir']) == []
    assert check(dict(base, hdfs_location={'type': 'webhdfs'}), [], [], ['backup_dir']) == [
        'mnaas_backup_hdfs_location.urls is required when mnaas_backup_hdfs_location.type is webhdfs']
    problems = check(dict(base, hdfs_count_dir='counts'), [], [], ['backup_dir'])
    assert len(problems) == 1 and 'mnaas_backup_hdfs_count_dir' in problems[0] and "'counts'" in problems[0]
    base['customers']['ACME']['hdfs_backup_dir'] = 'b/ACME'
    problems = check(base, [], [], ['backup_dir'])
    assert len(problems) == 1 and 'mnaas_backup_customers.ACME.hdfs_backup_dir' in problems[0]


# -- the secondary's view of the primary ------------------------------------------------------

def primary_settings(root) -> dict:
    return {
        'customers': {'ACME': {'backup_dir': str(root / 'b1' / 'ACME')}, 'GLOBEX': {'backup_dir': str(root / 'b1' / 'GLOBEX')}},
        'primary_ledger_file': str(root / 'state' / 'ledger.csv'),
    }


def test_primary_sound(tmp_path):
    for part in ('b1/ACME', 'b1/GLOBEX', 'state'):
        (tmp_path / part).mkdir(parents=True)
    (tmp_path / 'state' / 'ledger.csv').write_text('')
    assert check_primary(LocalLocation(), primary_settings(tmp_path)) == ([], [])


def test_primary_missing_paths_are_notes_not_problems(tmp_path):
    """Before the primary's first night (or before it copied, in the same run) its directories are not there yet."""
    (tmp_path / 'b1' / 'ACME').mkdir(parents=True)
    problems, notes = check_primary(LocalLocation(), primary_settings(tmp_path))
    assert problems == []
    assert notes == ['mnaas_backup_customers.GLOBEX.backup_dir %s does not exist on the primary (yet): nothing of it to copy' % (tmp_path / 'b1' / 'GLOBEX'),
                     'mnaas_backup_primary_ledger_file %s does not exist on the primary (yet): nothing of it to copy' % (tmp_path / 'state' / 'ledger.csv')]


def test_primary_wrong_kinds_are_problems(tmp_path):
    (tmp_path / 'b1').mkdir()
    (tmp_path / 'b1' / 'ACME').write_text('a file where a directory belongs')
    (tmp_path / 'b1' / 'GLOBEX').mkdir()
    (tmp_path / 'state' / 'ledger.csv').mkdir(parents=True)
    problems, notes = check_primary(LocalLocation(), primary_settings(tmp_path))
    assert notes == []
    assert problems == ['mnaas_backup_customers.ACME.backup_dir %s on the primary is not a directory' % (tmp_path / 'b1' / 'ACME'),
                        'mnaas_backup_primary_ledger_file %s on the primary is not a regular file' % (tmp_path / 'state' / 'ledger.csv')]


class Unreachable(LocalLocation):
    """A location whose connection cannot be made (the SFTP location raises its errors as BackupError)."""

    def __init__(self) -> None:
        self.calls = 0

    def describe(self, path: str) -> str:
        return 'sftp://mnaas@edge1:22' + path

    def stat(self, path: str):
        self.calls += 1
        raise BackupError('cannot connect to sftp host mnaas@edge1:22: connection refused')


def test_primary_unreachable_is_one_problem(tmp_path):
    location = Unreachable()
    problems, notes = check_primary(location, primary_settings(tmp_path))
    assert problems == ['mnaas_backup_primary_location: cannot reach the primary: cannot connect to sftp host mnaas@edge1:22: connection refused']
    assert notes == [] and location.calls == 1


class Denied(LocalLocation):
    def stat(self, path: str):
        if path.endswith('GLOBEX'):
            raise PermissionError(13, 'Permission denied', path)
        return super().stat(path)


def test_primary_unreadable_path_named(tmp_path):
    (tmp_path / 'b1' / 'ACME').mkdir(parents=True)
    (tmp_path / 'state').mkdir()
    (tmp_path / 'state' / 'ledger.csv').write_text('')
    problems, notes = check_primary(Denied(), primary_settings(tmp_path))
    assert notes == [] and len(problems) == 1
    assert problems[0].startswith('mnaas_backup_customers.GLOBEX.backup_dir %s on the primary cannot be read: ' % (tmp_path / 'b1' / 'GLOBEX'))
    assert 'Permission denied' in problems[0]


def test_secondary_needs_its_primary(tmp_path):
    assert check_node(node_settings(tmp_path, primary_host=''), 'secondary', 1) == [
        'mnaas_backup_primary_host is required on the secondary: the inventory name of the primary it pulls from']
    assert check_node(node_settings(tmp_path, primary_host='edge1'), 'secondary', 1) == []
    assert check_node(node_settings(tmp_path, primary_host=''), 'primary', 1) == []
