# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mnaas.backup.plugins.filter.night import (FilterModule, backed_up, customers_with, failed_hosts, not_copied,
                                                                   readiness)

READY = {'changed': False, 'problems': [], 'settings_valid': True}
NOT_READY = {'failed': False, 'problems': ['backup_dir: /backup1/ACME is missing'], 'settings_valid': True,
             'msg': '1 problem(s) found'}
BAD_SETTINGS = {'failed': False, 'problems': ['unknown variable mnaas_backup_max_file'], 'settings_valid': False}
# What Ansible registers when the module's Python is missing or the module crashed.
CRASHED = {'failed': True, 'msg': 'MODULE FAILURE\nSee stdout/stderr for the exact error', 'rc': 1,
           'module_stderr': 'Shared connection to 127.0.0.12 closed.\r\n',
           'module_stdout': 'Traceback (most recent call last):\r\n  File "x.py", line 1\r\n'
                            "ModuleNotFoundError: No module named 'paramiko'\r\n  \r\n"}
UNREACHABLE = {'unreachable': True, 'msg': 'Failed to connect to the host via ssh', 'changed': False}
SKIPPED = {'skipped': True, 'changed': False, 'false_condition': 'false'}


def hostvars(**results):
    """hostvars with the preflight result of each host (None: the host has none)."""
    return {host: {'inventory_hostname': host} if result is None else {'_preflight': result} for host, result in results.items()}


def test_registered():
    assert FilterModule().filters() == {'readiness': readiness, 'failed_hosts': failed_hosts, 'customers_with': customers_with,
                                        'backed_up': backed_up, 'not_copied': not_copied}


# readiness ---------------------------------------------------------------------------------------------------------

def test_readiness_all_ready():
    assert readiness(['edge1', 'edge2'], hostvars(edge1=READY, edge2=READY), '_preflight') == {
        'not_ready': [], 'bad_settings': [], 'incomplete': []}


def test_readiness_problems_then_incomplete_in_play_order():
    hosts = ['edge1', 'edge2', 'edge3', 'edge4']
    result = readiness(hosts, hostvars(edge1=CRASHED, edge2=NOT_READY, edge3=BAD_SETTINGS, edge4=READY), '_preflight')
    assert result == {
        'not_ready': ['edge2', 'edge3', 'edge1'],
        'bad_settings': ['edge3'],
        'incomplete': ["edge1 (MODULE FAILURE; ModuleNotFoundError: No module named 'paramiko'; exit status 1)"],
    }


@pytest.mark.parametrize('result', [UNREACHABLE, SKIPPED, None, {}])
def test_readiness_unreachable_skipped_or_no_preflight_is_not_counted(result):
    assert readiness(['edge1', 'edge2'], hostvars(edge1=READY, edge2=result), '_preflight') == {
        'not_ready': [], 'bad_settings': [], 'incomplete': []}


@pytest.mark.parametrize('result, why', [
    # Only what there is: here no msg, nothing printed, no exit status.
    ({'failed': True}, 'edge1 ()'),
    ({'failed': True, 'msg': 'the task includes an option with an undefined variable'},
     'edge1 (the task includes an option with an undefined variable)'),
    # The last line printed, stdout after stderr; SSH's own closing line and blank lines left out.
    ({'module_stderr': 'warning: x\nShared connection to edge1 closed.\n', 'module_stdout': '\n'}, 'edge1 (warning: x)'),
    ({'module_stderr': 'err', 'module_stdout': '  out  ', 'rc': None}, 'edge1 (out; exit status None)'),
    ({'msg': None, 'rc': 0}, 'edge1 (None; exit status 0)'),
])
def test_readiness_why_incomplete(result, why):
    assert readiness(['edge1'], hostvars(edge1=result), '_preflight') == {'not_ready': ['edge1'], 'bad_settings': [], 'incomplete': [why]}


def test_readiness_hostvars_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match='readiness: hostvars of edge1 must be a mapping'):
        readiness(['edge1'], {'edge1': 'x'}, '_preflight')


# failed_hosts ------------------------------------------------------------------------------------------------------

def test_failed_hosts_gone_then_failed():
    variables = {'edge1': {'_failure': ''}, 'edge2': {'_failure': 'Copy them: 1 file(s) failed'}, 'edge3': {'_failure': ''}}
    assert failed_hosts(['edge0', 'edge1', 'edge2', 'edge3'], ['edge1', 'edge2', 'edge3'], variables, '_failure') == ['edge0', 'edge2']


def test_failed_hosts_none():
    variables = {'edge1': {'_failure': ''}, 'edge2': {}}
    assert failed_hosts(['edge1', 'edge2'], ['edge1', 'edge2'], variables, '_failure') == []


def test_failed_hosts_gone_once():
    assert failed_hosts(['edge1', 'edge1'], [], {}, '_failure') == ['edge1']


def test_failed_hosts_hostvars_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match='failed_hosts: hostvars of edge1 must be a mapping'):
        failed_hosts(['edge1'], ['edge1'], {'edge1': None}, '_failure')


# customers_with ----------------------------------------------------------------------------------------------------

def test_customers_with():
    customers = {'ACME': {'backup_dir': '/b1/ACME', 'hdfs_backup_dir': '/user/ACME'}, 'GLOBEX': {'backup_dir': '/b1/GLOBEX'},
                 'HOOLI': {'hdfs_backup_dir': ''}, 'INITECH': None}
    assert customers_with(customers, 'hdfs_backup_dir') == {'ACME': customers['ACME']}
    assert customers_with({}, 'hdfs_backup_dir') == {}


def test_customers_with_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match='customers_with: the input must be a mapping'):
        customers_with(['ACME'], 'hdfs_backup_dir')


# backed_up ---------------------------------------------------------------------------------------------------------

def discovered(customer: str, name: str) -> dict:
    return {'customer': customer, 'domain': 'traffic', 'name': name, 'path': '/in/' + name, 'size': 1, 'mtime': 1.0, 'records': 2}


def copied(found: dict, dest_dir: str, status: str, reason: str) -> dict:
    return {'name': found['name'], 'customer': found['customer'], 'src': found['path'], 'dest': '%s/%s' % (dest_dir, found['name']),
            'status': status, 'reason': reason}


A1 = discovered('ACME', 'ACME_1.csv')
A2 = discovered('ACME', 'ACME_2.csv')
G1 = discovered('GLOBEX', 'GLX_1.csv')
UNREADABLE = {'name': 'ACME_3.csv.gz', 'customer': 'ACME', 'msg': 'ValueError: truncated gzip data'}
SKIPPED_COPY = {'changed': False, 'skipped': True, 'false_condition': 'false'}


def test_backed_up_everything():
    assert backed_up({'files': [A1, G1], 'errors': []}, [{'changed': True, 'files': []}, SKIPPED_COPY]) == {
        'files': [A1, G1], 'problems': [], 'per_customer': ''}


def test_backed_up_nothing_found():
    assert backed_up({'files': [], 'errors': []}, [SKIPPED_COPY, SKIPPED_COPY]) == {'files': [], 'problems': [], 'per_customer': ''}


def test_backed_up_only_once_every_copy_is():
    primary = {'files': [copied(A1, '/b1/ACME', 'conflict', 'destination differs from source')]}
    hdfs = {'files': [copied(G1, '/user/GLOBEX', 'failed', 'connection lost'), copied(A1, '/user/ACME', 'failed', 'quota')]}
    result = backed_up({'files': [A1, A2, G1], 'errors': [UNREADABLE]}, [primary, hdfs])
    assert result == {
        'files': [A2],
        'problems': ['ACME_3.csv.gz: ValueError: truncated gzip data', '/b1/ACME/ACME_1.csv: destination differs from source',
                     '/user/GLOBEX/GLX_1.csv: connection lost', '/user/ACME/ACME_1.csv: quota'],
        # Files, not problems: ACME_1.csv failed twice.
        'per_customer': 'ACME 2, GLOBEX 1',
    }


def test_backed_up_check_mode_plan_counts_as_done():
    primary = {'files': [copied(A1, '/b1/ACME', 'would_copy', 'missing at destination')]}
    assert backed_up({'files': [A1], 'errors': []}, [primary]) == {'files': [A1], 'problems': [], 'per_customer': ''}


@pytest.mark.parametrize('found, copies, message', [
    ({'errors': []}, [], 'the discover result has no files'),
    ({'files': []}, [], 'the discover result has no errors'),
    ([], [], 'the discover result must be a mapping'),
    ({'files': [], 'errors': []}, [None], 'a copy result must be a mapping'),
    ({'files': [{'name': 'x'}], 'errors': []}, [{'files': [{'src': '/in/x'}]}], 'a discovered file has no path'),
    ({'files': [], 'errors': [{'name': 'x'}]}, [], 'a discover error has no msg'),
    ({'files': [A1], 'errors': []}, [{'files': [{'src': A1['path'], 'dest': '/b1/x'}]}], 'a file of the copy has no reason'),
])
def test_backed_up_bad_input(found, copies, message):
    with pytest.raises(AnsibleFilterError, match='backed_up: ' + message):
        backed_up(found, copies)


# not_copied --------------------------------------------------------------------------------------------------------

SECONDARY = {'changed': True, 'files': [
    copied(A1, '/b2/ACME', 'conflict', 'destination differs from source'),
    copied(G1, '/b2/GLOBEX', 'failed', 'connection lost'),
    copied(A2, '/b2/ACME', 'failed', 'permission denied'),
    copied(A2, '/b2/HOOLI', 'would_copy', 'missing at destination'),
]}


def test_not_copied_conflicts_left_alone():
    assert not_copied(SECONDARY, 'skip') == {
        'files': SECONDARY['files'][1:3],
        'problems': ['/b2/GLOBEX/GLX_1.csv: connection lost', '/b2/ACME/ACME_2.csv: permission denied'],
        'per_customer': 'ACME 1, GLOBEX 1',
    }


def test_not_copied_conflicts_fail_after_the_failures():
    result = not_copied(SECONDARY, 'fail')
    assert result['files'] == [SECONDARY['files'][1], SECONDARY['files'][2], SECONDARY['files'][0]]
    assert result['problems'][-1] == '/b2/ACME/ACME_1.csv: destination differs from source'
    assert result['per_customer'] == 'ACME 2, GLOBEX 1'


def test_not_copied_nothing():
    assert not_copied({'files': []}, 'fail') == {'files': [], 'problems': [], 'per_customer': ''}


@pytest.mark.parametrize('copy, message', [
    ({'changed': False}, 'the copy result has no files'),
    ({'files': [{'status': 'failed', 'dest': '/b2/x'}]}, 'a file of the copy has no reason'),
])
def test_not_copied_bad_input(copy, message):
    with pytest.raises(AnsibleFilterError, match='not_copied: ' + message):
        not_copied(copy, 'skip')


def test_per_customer_ignores_case_as_jinja_groupby_did():
    files = [dict(copied(G1, '/b2/Globex', 'failed', 'x'), customer='Globex'), dict(copied(A1, '/b2/acme', 'failed', 'x'), customer='acme'),
             copied(A2, '/b2/ACME', 'failed', 'x')]
    assert not_copied({'files': files}, 'skip')['per_customer'] == 'acme 2, Globex 1'
