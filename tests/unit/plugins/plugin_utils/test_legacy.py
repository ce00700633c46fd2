# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The legacy properties mapping: the shared example, the role variables of each key, every problem it names,
and generated files (hypothesis) that round-trip and fail where they are broken."""

from __future__ import annotations

import hashlib
import json
import posixpath
import random
import typing as t
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.plugin_utils import _legacy
from ansible_collections.mnaas.backup.plugins.plugin_utils._legacy import LegacyError, Problem, migrate, read
from ansible_collections.mnaas.backup.plugins.plugin_utils._legacy_parse import KEEP_DBNAME_TABLE
from ansible_collections.mnaas.backup.tests.unit.plugins.plugin_utils.legacy_files import (
    COMMENTS, HYPOTHESIS, Chunk, Piece, Settings, common_of, line_of, settings_strategy, text_of, write)

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / 'lookup' / 'fixtures' / 'MNAAS_backup_files_process.properties'
SHARED_NAME = Path('shared') / 'legacy' / 'MNAAS_backup_files_process.properties'
# ../shared beside the project root: found from any copy of the tree (the Makefile runs the units in .build/).
SHARED_EXAMPLE = next((up / SHARED_NAME for up in HERE.parents if (up / SHARED_NAME).is_file()), None)
# The example's body (after the shebang line) as ../shared holds it, for trees without ../shared.
SHARED_BODY_SHA256 = 'bf9948a2be90bdc9423acbef4254ab0bb35d3a2a74b02f321cfb076b9f1e6d2b'

# The common variables the example uses, and the role variables it gives (shared with the lookup's tests).
_EXPECTED = json.loads(EXAMPLE.with_name('MNAAS_backup_files_process.expected.json').read_text())
COMMON = _EXPECTED['common_variables']
EXPECTED = _EXPECTED['variables']


# ---------------------------------------------------------------------------------------------
# The shared example

def test_shared_example_gives_exactly_the_expected_variables():
    migration = read(str(EXAMPLE), COMMON)
    assert migration.variables == EXPECTED
    assert list(migration.variables) == [name for name in _legacy.ORDER if name in EXPECTED]
    assert [(u['key'], u['line']) for u in migration.unmapped] == [
        ('MNAAS_Customer_backup_files_process_Scriptname', 8), ('MNAAS_backup_files_process_logpath', 10), ('sem_extension', 21)]
    assert migration.unmapped[1]['value'] == '/app/hadoop_users/MNAAS/MNAAS_Logs/MNAAS_backup_files_process.log_'
    assert migration.missing == [] and migration.warnings == []


def test_shared_example_sources_name_key_and_line():
    sources = read(str(EXAMPLE), COMMON).sources
    assert sources['mnaas_backup_max_files'] == [{'key': 'No_of_files_to_process', 'line': 23}]
    assert sources['mnaas_backup_refresh_statement'] == [{'key': 'customer_files_record_count_tblname_refresh', 'line': 19}]
    assert sources['mnaas_backup_domains.tolling'] == [{'key': 'MNAAS_backup_files_process_file_pattern[tolling]', 'line': 31}]
    assert sources['mnaas_backup_source_dir'] == [{'key': 'MNAAS_backup_files_process_file_pattern', 'line': 27}]
    assert sources['mnaas_backup_customers.GLOBEX_FLEET.backup_dir'] == [
        {'key': 'MNAAS_backup_files_process_backup_dir[GLOBEX_FLEET]', 'line': 37}]
    assert sources['mnaas_backup_customers.GLOBEX_FLEET.edge2_backup_dir'] == [
        {'key': 'MNAAS_backup_files_edgenode2_backup_dir[GLOBEX_FLEET]', 'line': 44}]
    assert sources['mnaas_backup_customers'] == [{'key': 'MNAAS_backup_files_process_backup_dir', 'line': 35},
                                                 {'key': 'MNAAS_backup_files_edgenode2_backup_dir', 'line': 42}]


def test_shared_example_with_a_state_dir_names_the_lock():
    variables = read(str(EXAMPLE), COMMON, state_dir='/app/hadoop_users/MNAAS/state/').variables
    assert variables['mnaas_backup_state_dir'] == '/app/hadoop_users/MNAAS/state'
    assert variables['mnaas_backup_lock_file'] == '/app/hadoop_users/MNAAS/state/MNAAS_backup_files_process.sem'
    assert {k: v for k, v in variables.items() if k not in ('mnaas_backup_state_dir', 'mnaas_backup_lock_file')} == EXPECTED


def test_shared_example_needs_only_the_variables_of_mapped_keys():
    """$MNAASLocalLogPath is used only by the log path, which is not mapped: it need not be passed."""
    common = {k: v for k, v in COMMON.items() if k != 'MNAASLocalLogPath'}
    migration = read(str(EXAMPLE), common)
    assert migration.variables == EXPECTED
    logpath = [u for u in migration.unmapped if u['key'] == 'MNAAS_backup_files_process_logpath'][0]
    assert logpath['value'] is None and '$MNAASLocalLogPath, not passed' in logpath['reason']


def test_refresh_statement_keeps_dbname_table_without_the_variable():
    migration = mapped(legacy('customer_files_record_count_tblname_refresh="refresh $dbname.final"'), variables={'MNAASInputPath': '/in'})
    assert migration.variables['mnaas_backup_refresh_statement'] == 'refresh $dbname.final'
    found = mapping_problems(legacy('customer_files_record_count_tblname_refresh="refresh $dbname"'), variables={'MNAASInputPath': '/in'})
    assert [(p.line, p.key) for p in found] == [(4, 'customer_files_record_count_tblname_refresh')]
    assert 'unresolved variable $dbname' in found[0].message


def test_shared_example_without_the_common_variables_names_each_line():
    with pytest.raises(LegacyError) as caught:
        read(str(EXAMPLE), {'dbname': 'mnaas'})
    where = [(p.line, p.key) for p in caught.value.problems]
    assert where == [(9, 'MNAAS_backup_files_process_ProcessStatusFileName'), (11, 'MNAAS_backup_file_process_filename'),
                     (28, 'MNAAS_backup_files_process_file_pattern[traffic]'), (29, 'MNAAS_backup_files_process_file_pattern[activations]'),
                     (30, 'MNAAS_backup_files_process_file_pattern[actives]'), (31, 'MNAAS_backup_files_process_file_pattern[tolling]')]
    assert '%s:9: MNAAS_backup_files_process_ProcessStatusFileName: unresolved variable $MNAASConfPath' % EXAMPLE in caught.value.msg


def test_fixture_is_the_shared_example():
    """The fixture is a copy of ../shared/legacy (read-only in CI); when that is present the two are the same,
    but for the shebang: ansible-test's shebang sanity test allows ``#!/usr/bin/env bash``, not ``#!/bin/bash``."""
    ours = EXAMPLE.read_bytes().split(b'\n', 1)
    assert ours[0] == b'#!/usr/bin/env bash'
    assert hashlib.sha256(ours[1]).hexdigest() == SHARED_BODY_SHA256
    if SHARED_EXAMPLE is not None:
        shared = SHARED_EXAMPLE.read_bytes().split(b'\n', 1)
        assert (shared[0], shared[1]) == (b'#!/bin/bash', ours[1])


# ---------------------------------------------------------------------------------------------
# Mapping to the role variables

MINIMAL = {
    'patterns': 'declare -A MNAAS_backup_files_process_file_pattern=( [traffic]="$MNAASInputPath/*_Traffic_*.csv" )',
    'primary': 'declare -A MNAAS_backup_files_process_backup_dir=( [ACME]=/b1/ACME )',
    'secondary': 'declare -A MNAAS_backup_files_edgenode2_backup_dir=( [ACME]=/b2/ACME )',
}
MINIMAL_VARIABLES = {
    'mnaas_backup_source_dir': '/in',
    'mnaas_backup_domains': {'traffic': '*_Traffic_*.csv'},
    'mnaas_backup_customers': {'ACME': {'backup_dir': '/b1/ACME', 'edge2_backup_dir': '/b2/ACME'}},
}


def legacy(*extra: str, **changes: str) -> str:
    """A small legacy file: the three arrays (replaced or dropped with changes), then the extra lines."""
    parts = dict(MINIMAL, **changes)
    return '\n'.join([v for v in parts.values() if v] + list(extra)) + '\n'


def mapped(text: str, **kwargs) -> _legacy.Migration:
    return migrate(text, 'test.properties', kwargs.pop('variables', {'MNAASInputPath': '/in', 'dbname': 'db'}), **kwargs)


def mapping_problems(text: str, **kwargs) -> list[Problem]:
    with pytest.raises(LegacyError) as caught:
        mapped(text, **kwargs)
    assert caught.value.msg.startswith('%d problem(s) in the legacy file test.properties:\n' % len(caught.value.problems))
    for problem in caught.value.problems:
        assert str(problem) in caught.value.msg
    return caught.value.problems


def test_minimal_file():
    migration = mapped(legacy())
    assert migration.variables == MINIMAL_VARIABLES
    assert set(migration.missing) == set(_legacy.SCALAR_KEYS) | set(_legacy.NOT_MAPPED)


@pytest.mark.parametrize('line, variable, value', [
    ('No_of_files_to_process=" 0500"', 'mnaas_backup_max_files', 500),
    ("customers_files_inter_record_count_tblname='stage_1'", 'mnaas_backup_staging_table', 'stage_1'),
    ('customers_files_records_count_tblname=$dbname.final', 'mnaas_backup_final_table', 'db.final'),
    # $dbname.<table> is kept for the role to read as the final table; $dbname alone is resolved
    ('customer_files_record_count_tblname_refresh="INVALIDATE METADATA ${dbname}.final"', 'mnaas_backup_refresh_statement',
     'INVALIDATE METADATA $dbname.final'),
    ("customer_files_record_count_tblname_refresh=refresh\\ $dbname'.final'", 'mnaas_backup_refresh_statement', 'refresh $dbname.final'),
    ('customer_files_record_count_tblname_refresh="USE $dbname"', 'mnaas_backup_refresh_statement', 'USE db'),
    ('customer_files_record_count_tblname_refresh=', 'mnaas_backup_refresh_statement', ''),
    ('MNAAS_backup_filename_hdfs_customer=/user/MNAAS/counts', 'mnaas_backup_hdfs_count_dir', '/user/MNAAS/counts'),
    ('edge2node=mtthdoped02.example.invalid', 'mnaas_backup_edge2_host', 'mtthdoped02.example.invalid'),
    ('MNAAS_backup_files_process_ProcessStatusFileName="/conf/flag file"', 'mnaas_backup_flag_file', '/conf/flag file'),
    ('MNAAS_backup_file_process_filename=/local/list.csv', 'mnaas_backup_manifest_file', '/local/list.csv'),
])
def test_scalar_mapping(line, variable, value):
    variables = mapped(legacy(line)).variables
    assert variables == dict(MINIMAL_VARIABLES, **{variable: value})


def test_patterns_without_a_directory_are_in_the_landing_directory():
    text = legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( [traffic]="*_Traffic_*.csv" [tolling]=$MNAASInputPath//*_T.csv )')
    assert mapped(text).variables['mnaas_backup_domains'] == {'traffic': '*_Traffic_*.csv', 'tolling': '*_T.csv'}
    assert mapped(text).variables['mnaas_backup_source_dir'] == '/in'


def test_helper_variables_are_fine():
    text = legacy('backup_root=/backup1', primary='declare -A MNAAS_backup_files_process_backup_dir=( [ACME]=$backup_root/ACME )')
    text = 'backup_root=/backup1\n' + text.replace('backup_root=/backup1\n', '')
    migration = mapped(text)
    assert migration.variables['mnaas_backup_customers']['ACME']['backup_dir'] == '/backup1/ACME'
    assert migration.unmapped == [{'key': 'backup_root', 'line': 1, 'value': '/backup1',
                                   'reason': 'a helper variable, used by MNAAS_backup_files_process_backup_dir[ACME] (line 3)'}]


def test_unknown_key_is_an_error_with_a_suggestion():
    found = mapping_problems(legacy('No_of_file_to_process=10'))
    assert [(p.line, p.key) for p in found] == [(4, 'No_of_file_to_process')]
    assert 'unknown key (did you mean No_of_files_to_process?)' in found[0].message


def test_unknown_key_can_be_a_warning():
    migration = mapped(legacy('MNAAS_retention_days=7', 'declare -A extra=([a]=1)'), unknown_keys='warn')
    assert migration.variables == MINIMAL_VARIABLES
    assert migration.warnings == ['test.properties:4: MNAAS_retention_days: unknown key: the new job would not use it',
                                  'test.properties:5: extra: unknown key: the new job would not use it']
    assert [(u['key'], u['value'], u['reason']) for u in migration.unmapped] == [
        ('MNAAS_retention_days', '7', 'unknown key'), ('extra', {'a': '1'}, 'unknown key')]


def test_not_mapped_keys():
    migration = mapped(legacy('MNAAS_Customer_backup_files_process_Scriptname=x.sh', 'MNAAS_backup_files_process_logpath=$NOPE/log_'))
    assert migration.variables == MINIMAL_VARIABLES
    assert [(u['key'], u['line'], u['value']) for u in migration.unmapped] == [
        ('MNAAS_Customer_backup_files_process_Scriptname', 4, 'x.sh'), ('MNAAS_backup_files_process_logpath', 5, None)]


# A value left unknown (a substitution, never run, or an unresolved variable) in a key the new job does not use

LOGPATH = 'MNAAS_backup_files_process_logpath'
NOT_RUN = ' is not run: the file is read, not executed; write the value out or pass it as a common variable'


def ignored(key: str) -> str:
    return ' (ignored: the new job does not use %s)' % key


@pytest.mark.parametrize('value, message', [
    ('/logs/MNAAS_backup_files_process.log_`date +%F`', 'command substitution `date +%F`' + NOT_RUN),
    ('"/logs/log_$(date +%F)"', 'command substitution $(date +%F)' + NOT_RUN),
    ('/logs/log_$((1 + 2))', 'arithmetic expansion $((1 + 2))' + NOT_RUN),
    ('$NOPE/log_', 'unresolved variable $NOPE: it is neither assigned earlier in the file nor passed as a common variable '
                   '(given: MNAASInputPath, dbname)'),
    ('${MNAASLocalLogPath:-/tmp}/log_', '${MNAASLocalLogPath:-/tmp} is not supported: only $name and ${name} are resolved'),
    ('~/log_', 'an unquoted ~ is expanded by bash to a home directory; write the path out or quote it'),
])
def test_log_path_left_unknown_is_a_warning(value, message):
    migration = mapped(legacy('%s=%s' % (LOGPATH, value)))
    assert migration.variables == MINIMAL_VARIABLES
    assert migration.warnings == ['test.properties:4: %s: %s%s' % (LOGPATH, message, ignored(LOGPATH))]
    assert [(u['key'], u['line'], u['value']) for u in migration.unmapped] == [(LOGPATH, 4, None)]


def test_shared_example_with_the_date_in_the_log_path():
    """Real files often end the log path with `date +%F`; without $MNAASLocalLogPath both are warnings."""
    text = EXAMPLE.read_text().replace('MNAAS_backup_files_process.log_\n', 'MNAAS_backup_files_process.log_`date +%F`\n')
    assert text != EXAMPLE.read_text()
    assert migrate(text, 'x.properties', COMMON).variables == EXPECTED
    common = {k: v for k, v in COMMON.items() if k != 'MNAASLocalLogPath'}
    migration = migrate(text, 'x.properties', common)
    assert migration.variables == EXPECTED
    assert [w.split(': ', 2)[:2] + [w.endswith(ignored(LOGPATH))] for w in migration.warnings] == [
        ['x.properties:10', LOGPATH, True], ['x.properties:10', LOGPATH, True]]
    assert 'unresolved variable $MNAASLocalLogPath' in migration.warnings[0] and '`date +%F`' in migration.warnings[1]


def test_unknown_key_left_unknown_is_a_warning_with_unknown_keys_warn():
    migration = mapped(legacy('MNAAS_run_date=`date +%F`', 'declare -A extra=( [a]=$(hostname) [b]=$NOPE )'), unknown_keys='warn')
    assert migration.variables == MINIMAL_VARIABLES
    assert migration.warnings == [
        'test.properties:4: MNAAS_run_date: command substitution `date +%F`' + NOT_RUN + ignored('MNAAS_run_date'),
        'test.properties:4: MNAAS_run_date: unknown key: the new job would not use it',
        'test.properties:5: extra[a]: command substitution $(hostname)' + NOT_RUN + ignored('extra'),
        'test.properties:5: extra[b]: unresolved variable $NOPE: it is neither assigned earlier in the file nor passed as a common variable '
        '(given: MNAASInputPath, dbname)' + ignored('extra'),
        'test.properties:5: extra: unknown key: the new job would not use it']
    assert [(u['key'], u['value']) for u in migration.unmapped] == [('MNAAS_run_date', None), ('extra', {'a': None, 'b': None})]


def test_unknown_key_left_unknown_is_an_error_by_default():
    found = mapping_problems(legacy('MNAAS_run_date=`date +%F`'))
    assert [(p.line, p.key) for p in found] == [(4, 'MNAAS_run_date'), (4, 'MNAAS_run_date')]
    assert [p.message.split(':')[0] for p in found] == ['command substitution `date +%F` is not run', 'unknown key']


@pytest.mark.parametrize('text, line, key, message', [
    (legacy('MNAAS_backup_file_process_filename=/local/list_`date +%F`.csv'), 4, 'MNAAS_backup_file_process_filename',
     'command substitution `date +%F`' + NOT_RUN),
    (legacy('No_of_files_to_process=$(ls | wc -l)'), 4, 'No_of_files_to_process', 'command substitution $(ls | wc -l)' + NOT_RUN),
    (legacy('edge2node=$NOPE'), 4, 'edge2node',
     'unresolved variable $NOPE: it is neither assigned earlier in the file nor passed as a common variable (given: MNAASInputPath, dbname)'),
    (legacy(primary='declare -A MNAAS_backup_files_process_backup_dir=( [ACME]=/b1/`date +%F` )'), 2,
     'MNAAS_backup_files_process_backup_dir[ACME]', 'command substitution `date +%F`' + NOT_RUN),
])
@pytest.mark.parametrize('unknown_keys', ['error', 'warn'])
def test_used_key_left_unknown_still_fails(text, line, key, message, unknown_keys):
    found = mapping_problems(text, unknown_keys=unknown_keys)
    assert found == [Problem('test.properties', line, key, message)]


def test_helper_variable_of_unused_keys_only_is_a_warning():
    text = legacy('today=`date +%F`', '%s=/logs/log_$today' % LOGPATH)
    migration = mapped(text)
    assert migration.variables == MINIMAL_VARIABLES
    assert migration.warnings == ['test.properties:4: today: command substitution `date +%F`' + NOT_RUN + ignored('today')]
    assert [(u['key'], u['value'], u['reason']) for u in migration.unmapped] == [
        ('today', None, 'a helper variable, used by %s (line 5)' % LOGPATH), (LOGPATH, None, _legacy.NOT_MAPPED[LOGPATH])]
    # also used by a mapped key: an error, as before
    found = mapping_problems(text + 'MNAAS_backup_file_process_filename=/local/list_$today.csv\n')
    assert found == [Problem('test.properties', 4, 'today', 'command substitution `date +%F`' + NOT_RUN)]
    # the log path itself used by a mapped key: an error too
    found = mapping_problems(legacy('%s=/logs/log_`date +%%F`' % LOGPATH, 'MNAAS_backup_file_process_filename=$%s.csv' % LOGPATH))
    assert found == [Problem('test.properties', 4, LOGPATH, 'command substitution `date +%F`' + NOT_RUN)]


def test_a_warning_does_not_hide_an_empty_array():
    found = mapping_problems(legacy('%s=/logs/log_`date +%%F`' % LOGPATH, patterns='declare -A MNAAS_backup_files_process_file_pattern=()'))
    assert [(p.line, p.key) for p in found] == [(1, 'MNAAS_backup_files_process_file_pattern')] and 'has no element' in found[0].message


def test_substitutions_of_unused_keys_are_never_run(tmp_path):
    marker = tmp_path / 'ran'
    text = legacy('%s="/logs/log_$(touch %s)"' % (LOGPATH, marker), 'MNAAS_run=`touch %s`' % marker, 'helper=$(touch %s)' % marker,
                  'MNAAS_Customer_backup_files_process_Scriptname=$helper')
    migration = mapped(text, unknown_keys='warn')
    assert [w.split(': ')[1] for w in migration.warnings if 'is not run' in w] == [LOGPATH, 'MNAAS_run', 'helper']
    assert not marker.exists()


@pytest.mark.parametrize('extension, state_dir, lock, warned', [
    ('.sem', None, None, False),
    ('.sem', '/state', '/state/MNAAS_backup_files_process.sem', False),
    ('.lck', '/state', '/state/MNAAS_backup_files_process.lck', False),
    ('', '/state', '/state/MNAAS_backup_files_process', False),
    ('.lck', None, None, True),
])
def test_lock_file(extension, state_dir, lock, warned):
    migration = mapped(legacy('sem_extension=%s' % extension), state_dir=state_dir)
    assert migration.variables.get('mnaas_backup_lock_file') == lock
    assert migration.variables.get('mnaas_backup_state_dir') == state_dir
    assert bool(migration.warnings) == warned
    if warned:
        assert migration.warnings[0].startswith('test.properties:4: sem_extension: no state directory was given')


@pytest.mark.parametrize('text, line, key, fragment', [
    (legacy(secondary='declare -A MNAAS_backup_files_edgenode2_backup_dir=( [GLOBEX]=/b2/GLOBEX\n [ACME]=/b2/ACME )',
            primary='declare -A MNAAS_backup_files_process_backup_dir=( [ACME]=/b1/ACME )'),
     3, 'MNAAS_backup_files_edgenode2_backup_dir[GLOBEX]', 'customer GLOBEX is not in MNAAS_backup_files_process_backup_dir (declared on line 2)'),
    (legacy(primary='declare -A MNAAS_backup_files_process_backup_dir\nMNAAS_backup_files_process_backup_dir[ACME]=/b1/ACME\n'
                    'MNAAS_backup_files_process_backup_dir[HOOLI]=/b1/HOOLI'),
     4, 'MNAAS_backup_files_process_backup_dir[HOOLI]', 'customer HOOLI is not in MNAAS_backup_files_edgenode2_backup_dir'),
    (legacy(secondary=''), 0, 'MNAAS_backup_files_edgenode2_backup_dir', 'is missing'),
    (legacy(patterns=''), 0, 'MNAAS_backup_files_process_file_pattern', 'is missing'),
    (legacy(primary='MNAAS_backup_files_process_backup_dir=/b1'), 2, 'MNAAS_backup_files_process_backup_dir', 'must be an associative array'),
    (legacy('declare -A sem_extension=([a]=1)'), 4, 'sem_extension', 'must be a plain value, not an array'),
    (legacy(primary='declare -A MNAAS_backup_files_process_backup_dir=()', secondary='declare -A MNAAS_backup_files_edgenode2_backup_dir=()'),
     2, 'MNAAS_backup_files_process_backup_dir', 'has no element'),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=()'), 1, 'MNAAS_backup_files_process_file_pattern', 'has no element'),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( [traffic]=/in/*_T.csv\n [tolling]=/other/*_T.csv )'),
     1, 'MNAAS_backup_files_process_file_pattern', 'the patterns are in different directories: /in'),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( [traffic]="/in/*/x/*_T.csv" )'),
     1, 'MNAAS_backup_files_process_file_pattern[traffic]', "the directory '/in/*/x' must be written out"),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( [traffic]=/in/ )'),
     1, 'MNAAS_backup_files_process_file_pattern[traffic]', 'ends with "/"'),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( [traffic]=" " )'),
     1, 'MNAAS_backup_files_process_file_pattern[traffic]', 'is empty'),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( [traffic]=in/*.csv )'),
     1, 'MNAAS_backup_files_process_file_pattern[traffic]', "relative path 'in'"),
    (legacy(patterns='declare -A MNAAS_backup_files_process_file_pattern=( ["a b"]=/in/*.csv )'),
     1, 'MNAAS_backup_files_process_file_pattern[a b]', "got 'a b'"),
    (legacy(primary='declare -A MNAAS_backup_files_process_backup_dir=( [ACME]=b1/ACME )'),
     2, 'MNAAS_backup_files_process_backup_dir[ACME]', "relative path 'b1/ACME'"),
    (legacy(secondary='declare -A MNAAS_backup_files_edgenode2_backup_dir=( [ACME]=/b2/../ACME )'),
     3, 'MNAAS_backup_files_edgenode2_backup_dir[ACME]', 'must not contain ".."'),
    (legacy(primary='declare -A MNAAS_backup_files_process_backup_dir=( [../x]=/b1/x )',
            secondary='declare -A MNAAS_backup_files_edgenode2_backup_dir=( [../x]=/b2/x )'),
     2, 'MNAAS_backup_files_process_backup_dir[../x]', "got '../x'"),
    (legacy(primary='declare -A MNAAS_backup_files_process_backup_dir=( [ACME]=$\'/b1\' )'),
     2, 'MNAAS_backup_files_process_backup_dir[ACME]', "$'...' quoting"),
    (legacy('No_of_files_to_process=0'), 4, 'No_of_files_to_process', 'mnaas_backup_max_files 0 means no cap'),
    (legacy('No_of_files_to_process=many'), 4, 'No_of_files_to_process', "'many' is not a whole number"),
    (legacy('No_of_files_to_process=-5'), 4, 'No_of_files_to_process', 'is not a whole number'),
    (legacy('customers_files_records_count_tblname="final table"'), 4, 'customers_files_records_count_tblname', 'is not a table name'),
    (legacy('customers_files_inter_record_count_tblname=a.b.c'), 4, 'customers_files_inter_record_count_tblname', 'is not a table name'),
    (legacy('edge2node="two hosts"'), 4, 'edge2node', 'is not a host name'),
    (legacy('edge2node='), 4, 'edge2node', 'is not a host name'),
    (legacy('sem_extension=/x'), 4, 'sem_extension', 'is not a file name suffix'),
    (legacy('MNAAS_backup_file_process_filename=list.csv'), 4, 'MNAAS_backup_file_process_filename', 'must be an absolute path'),
    (legacy('MNAAS_backup_filename_hdfs_customer='), 4, 'MNAAS_backup_filename_hdfs_customer', 'must be an absolute path'),
    (legacy('MNAAS_backup_file_process_filename="/x/\x1b[0m"'), 4, 'MNAAS_backup_file_process_filename', 'non-printable character U+001B'),
    (legacy('customer_files_record_count_tblname_refresh="refresh\u200bx"'), 4, 'customer_files_record_count_tblname_refresh', 'U+200B'),
])
def test_mapping_problem(text, line, key, fragment):
    found = mapping_problems(text)
    assert any(p.line == line and p.key == key and fragment in p.message for p in found), found


def test_every_problem_is_reported_at_once():
    text = legacy('No_of_files_to_process=x', 'edge2node=$(hostname)', 'sem_extension=.sem', 'sem_extension=.lock', 'typo_key=1',
                  secondary='declare -A MNAAS_backup_files_edgenode2_backup_dir=( [ACME]=/b2/ACME [HOOLI]=/b2/HOOLI )')
    found = mapping_problems(text)
    assert [(p.line, p.key) for p in found] == [(3, 'MNAAS_backup_files_edgenode2_backup_dir[HOOLI]'), (4, 'No_of_files_to_process'),
                                                (5, 'edge2node'), (7, 'sem_extension'), (8, 'typo_key')]


def test_common_variables_must_be_names_and_strings():
    found = mapping_problems(legacy(), variables={'MNAASInputPath': '/in', 'not a name': 'x', 'dbname': {'a': 1}, 'n': True})
    assert sorted(p.message for p in found) == ["dbname must be a string, got {'a': 1}", 'n must be a string, got True',
                                                "the name 'not a name' is not a bash variable name"]
    assert all(p.line == 0 and p.key == 'common variables' for p in found)
    assert mapped(legacy(), variables={'MNAASInputPath': '/in', 'dbname': 7}).variables == MINIMAL_VARIABLES


def test_bad_arguments():
    with pytest.raises(ConfigError, match='unknown_keys must be one of error, warn'):
        mapped(legacy(), unknown_keys='ignore')
    with pytest.raises(ConfigError, match='state_dir must be an absolute path'):
        mapped(legacy(), state_dir='state')


def test_read_errors(tmp_path):
    with pytest.raises(ConfigError, match='cannot read the legacy file .*missing.properties'):
        read(str(tmp_path / 'missing.properties'))
    latin1 = tmp_path / 'latin1.properties'
    latin1.write_bytes(b'A=1\nB=caf\xe9\n')
    with pytest.raises(LegacyError) as caught:
        read(str(latin1))
    assert str(caught.value.problems[0]) == '%s:2: not UTF-8 text (byte 0xe9)' % latin1


# ---------------------------------------------------------------------------------------------
# Generated files (hypothesis): they round-trip, and fail where they are broken

def expected_variables(settings_: Settings) -> dict:
    common = dict(settings_.common, backup_root=settings_.helper or '')

    def value(pieces: t.Sequence[Piece], keep_dbname: bool = False) -> str:
        # in the refresh statement $dbname.<table> is kept as written (normalised to $dbname)
        return ''.join('$dbname' if keep_dbname and (kind, text) == ('var', 'dbname') and pieces[i + 1][1].startswith('.')
                       else common[text] if kind == 'var' else text for i, (kind, text) in enumerate(pieces))

    source_dir = settings_.common['MNAASInputPath'] if settings_.source_dir is None else settings_.source_dir
    expected: dict[str, t.Any] = {
        'mnaas_backup_source_dir': posixpath.normpath(source_dir) if source_dir != '/' else '/',
        'mnaas_backup_domains': dict(settings_.domains),
        'mnaas_backup_customers': {name: {'backup_dir': value(dirs[0]), 'edge2_backup_dir': value(dirs[1])}
                                   for name, dirs in settings_.customers.items()},
    }
    for key, pieces in settings_.scalars.items():
        target = _legacy.SCALAR_KEYS.get(key, ('', ''))[0]
        if key == 'sem_extension':
            if settings_.state_dir:
                expected['mnaas_backup_lock_file'] = settings_.state_dir + '/MNAAS_backup_files_process' + value(pieces)
        elif key == 'No_of_files_to_process':
            expected[target] = int(value(pieces))
        elif target:
            expected[target] = value(pieces, keep_dbname=key in KEEP_DBNAME_TABLE)
    if settings_.state_dir:
        expected['mnaas_backup_state_dir'] = settings_.state_dir
    return expected


@HYPOTHESIS
@given(settings_strategy(), st.integers(0, 2 ** 32).map(random.Random), st.lists(COMMENTS, min_size=1, max_size=5))
def test_generated_files_round_trip(settings_, rnd, comments):
    text = text_of(write(rnd, comments, settings_))
    migration = migrate(text, 'generated.properties', common_of(settings_), state_dir=settings_.state_dir)
    assert migration.variables == expected_variables(settings_), text
    unmapped = {u['key'] for u in migration.unmapped}
    assert unmapped >= set(settings_.scalars) & set(_legacy.NOT_MAPPED), text
    assert ('backup_root' in unmapped) == (settings_.helper is not None), text
    extension = settings_.scalars.get('sem_extension', (('lit', '.sem'),))[0][1]
    assert bool(migration.warnings) == (extension != '.sem' and not settings_.state_dir), text


DEFECTS = {
    # kind: (chunk text, key, message fragment, must be the last chunk)
    'unterminated_single': ("zz_probe='abc", 'zz_probe', "unterminated ' (single quote)", True),
    'unterminated_double': ('zz_probe="abc', 'zz_probe', 'unterminated " (double quote)', True),
    'unterminated_parenthesis': ('declare -A zz_probe=(\n [a]=1', 'zz_probe', 'unterminated ( of zz_probe=(', True),
    'unknown_variable': ('zz_probe="$NOT_PASSED_1/x"', 'zz_probe', 'unresolved variable $NOT_PASSED_1', False),
    'command_substitution': ('zz_probe=$(rm -rf /nonexistent)', 'zz_probe', 'command substitution $(rm -rf /nonexistent) is not run', False),
    'backticks': ('zz_probe="`rm -rf /nonexistent`"', 'zz_probe', 'command substitution `rm -rf /nonexistent` is not run', False),
    'not_an_assignment': ('rm -rf /nonexistent', '', "not an assignment: 'rm -rf /nonexistent'", False),
}


@HYPOTHESIS
@given(settings_strategy(), st.integers(0, 2 ** 32).map(random.Random), st.lists(COMMENTS, min_size=1, max_size=5),
       st.sampled_from(sorted(DEFECTS) + ['duplicate']), st.integers(0, 1000))
def test_generated_files_with_a_defect_name_its_line(settings_, rnd, comments, defect, where):
    chunks = write(rnd, comments, settings_)
    if defect == 'duplicate':
        candidates = [i for i, c in enumerate(chunks) if c.kind in ('scalar', 'compound', 'element')]
        original = candidates[where % len(candidates)]
        index = original + 1 + where % (len(chunks) - original)
        copy = chunks[original]
        chunks.insert(index, copy)
        key = '%s[%s]' % (copy.key, copy.subscript) if copy.kind == 'element' else copy.key
        fragment = 'twice'
    else:
        text, key, fragment, last = DEFECTS[defect]
        index = len(chunks) if last else where % (len(chunks) + 1)
        chunks.insert(index, Chunk(text, key, 'defect'))
    broken = text_of(chunks)
    with pytest.raises(LegacyError) as caught:
        migrate(broken, 'generated.properties', common_of(settings_), state_dir=settings_.state_dir)
    line = line_of(chunks, index)
    assert any(p.line == line and p.key == key and fragment in p.message for p in caught.value.problems), (line, key, caught.value.msg, broken)
    assert '\ngenerated.properties:%d: %s' % (line, key + ': ' if key else '') in caught.value.msg
