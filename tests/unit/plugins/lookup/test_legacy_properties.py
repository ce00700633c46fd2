# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lookup plugin: options, one result, errors as AnsibleLookupError naming file:line: key, warnings through Display.

The parser and the mapping are tested in tests/unit/plugins/plugin_utils/ (test_legacy_parse.py, test_legacy.py,
including the hypothesis round trips); here the glue: the lookup is built as Ansible's plugin loader builds it
(its documented options registered under its name) and run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible import constants as C
from ansible.errors import AnsibleLookupError, AnsibleOptionsError
from ansible.parsing.dataloader import DataLoader

from ansible_collections.mnaas.backup.plugins.lookup import legacy_properties
from ansible_collections.mnaas.backup.plugins.plugin_utils import _legacy

NAME = 'mnaas.backup.legacy_properties'
FIXTURES = Path(__file__).resolve().parent / 'fixtures'
EXAMPLE = FIXTURES / 'MNAAS_backup_files_process.properties'
# The example with `date +%F` in the log path and $(date +%F) in a key the legacy job does not know (line 48).
DATED = FIXTURES / 'MNAAS_backup_files_process.dated.properties'
# The common variables the example uses, and what it says, written out (shared with test_legacy.py).
_EXPECTED = json.loads((FIXTURES / 'MNAAS_backup_files_process.expected.json').read_text())
COMMON = _EXPECTED['common_variables']
EXPECTED = _EXPECTED['variables']


def make_lookup() -> legacy_properties.LookupModule:
    """The lookup as the plugin loader makes it: its documented options registered, its name set."""
    options = yaml.safe_load(legacy_properties.DOCUMENTATION)['options']
    C.config.initialize_plugin_configuration_definitions('lookup', NAME, options)
    lookup = legacy_properties.LookupModule(loader=DataLoader())
    lookup._load_name = NAME  # pylint: disable=protected-access
    return lookup


def run(*terms, **kwargs):
    return make_lookup().run(list(terms), variables={}, **kwargs)


def test_documentation_is_yaml_with_every_section():
    for section in (legacy_properties.DOCUMENTATION, legacy_properties.EXAMPLES, legacy_properties.RETURN):
        assert yaml.safe_load(section)
    doc = yaml.safe_load(legacy_properties.DOCUMENTATION)
    assert doc['name'] == 'legacy_properties'
    assert set(doc['options']) == {'_terms', 'common_variables', 'state_dir', 'unknown_keys', 'details'}


def test_shared_example_gives_exactly_the_expected_variables():
    assert run(str(EXAMPLE), common_variables=COMMON) == [EXPECTED]


def test_one_dictionary_in_a_list_of_one():
    """Ansible's lookup() turns a one-element list into that element and query() keeps the list: one dict either way."""
    result = run(str(EXAMPLE), common_variables=COMMON)
    assert isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict)


@pytest.mark.parametrize('terms', [[], [str(EXAMPLE), str(EXAMPLE)]])
def test_exactly_one_file(terms):
    with pytest.raises(AnsibleLookupError, match='exactly one legacy file, got %d' % len(terms)):
        run(*terms, common_variables=COMMON)


def test_missing_file():
    with pytest.raises(AnsibleLookupError, match='the legacy file /nonexistent/x.properties was not found'):
        run('/nonexistent/x.properties')


def test_details():
    details = run(str(EXAMPLE), common_variables=COMMON, details=True)[0]
    assert set(details) == {'path', 'variables', 'sources', 'unmapped', 'missing', 'warnings'}
    assert details['path'] == str(EXAMPLE)
    assert details['variables'] == EXPECTED
    assert details['sources']['mnaas_backup_max_files'] == [{'key': 'No_of_files_to_process', 'line': 23}]
    assert [u['key'] for u in details['unmapped']] == ['MNAAS_Customer_backup_files_process_Scriptname',
                                                       'MNAAS_backup_files_process_logpath', 'sem_extension']


def test_state_dir():
    variables = run(str(EXAMPLE), common_variables=COMMON, state_dir='/app/hadoop_users/MNAAS/state')[0]
    assert variables['mnaas_backup_lock_file'] == '/app/hadoop_users/MNAAS/state/MNAAS_backup_files_process.sem'
    assert variables['mnaas_backup_state_dir'] == '/app/hadoop_users/MNAAS/state'


def test_errors_name_file_line_and_key():
    with pytest.raises(AnsibleLookupError) as caught:
        run(str(EXAMPLE), common_variables={'dbname': 'mnaas'})
    message = str(caught.value)
    assert '6 problem(s) in the legacy file %s' % EXAMPLE in message
    assert '%s:9: MNAAS_backup_files_process_ProcessStatusFileName: unresolved variable $MNAASConfPath' % EXAMPLE in message
    assert '%s:31: MNAAS_backup_files_process_file_pattern[tolling]: unresolved variable $MNAASInputPath' % EXAMPLE in message
    assert isinstance(caught.value.__cause__, _legacy.LegacyError)


def test_malformed_file(tmp_path):
    path = tmp_path / 'broken.properties'
    path.write_text('A=1\nNo_of_files_to_process="500\n')
    with pytest.raises(AnsibleLookupError, match=r'broken\.properties:2: No_of_files_to_process: unterminated " \(double quote\) opened here'):
        run(str(path))


def test_bad_arguments():
    with pytest.raises(AnsibleLookupError, match='state_dir must be an absolute path'):
        run(str(EXAMPLE), common_variables=COMMON, state_dir='state')
    with pytest.raises(AnsibleOptionsError):
        run(str(EXAMPLE), common_variables=COMMON, unknown_keys='ignore')


def test_warnings_go_through_display(tmp_path):
    path = tmp_path / 'legacy.properties'
    path.write_text(EXAMPLE.read_text().replace('sem_extension=.sem', 'sem_extension=.lck\nMNAAS_retention=7'))
    with mock.patch.object(legacy_properties.display, 'warning') as warning, mock.patch.object(legacy_properties.display, 'vvv') as verbose:
        variables = run(str(path), common_variables=COMMON, unknown_keys='warn')[0]
    assert variables == EXPECTED
    assert [c.args[0] for c in warning.call_args_list] == [
        '%s:21: sem_extension: no state directory was given: the lock is the role\'s default '
        '<mnaas_backup_state_dir>/MNAAS_backup_files_process.sem, not MNAAS_backup_files_process.lck; '
        'pass state_dir to get mnaas_backup_lock_file' % path,
        '%s:22: MNAAS_retention: unknown key: the new job would not use it' % path,
    ]
    logged = [c.args[0] for c in verbose.call_args_list]
    assert ('%s:8: MNAAS_Customer_backup_files_process_Scriptname not mapped: the legacy driver script; '
            'playbooks/customer_backup.yml replaces it' % path) in logged


def test_unknown_key_fails_by_default(tmp_path):
    path = tmp_path / 'legacy.properties'
    path.write_text(EXAMPLE.read_text() + 'No_of_file_to_process=10\n')
    with pytest.raises(AnsibleLookupError, match=r'legacy\.properties:46: No_of_file_to_process: unknown key \(did you mean No_of_files_to_process\?\)'):
        run(str(path), common_variables=COMMON)


NOT_RUN = ' is not run: the file is read, not executed; write the value out or pass it as a common variable'


def test_date_in_unused_keys_is_a_warning_through_display():
    """`date +%F` in the log path, and in an unknown key read with unknown_keys='warn', are warnings naming file, line and key."""
    with mock.patch.object(legacy_properties.display, 'warning') as warning:
        variables = run(str(DATED), common_variables=COMMON, unknown_keys='warn')[0]
    assert variables == EXPECTED
    assert [c.args[0] for c in warning.call_args_list] == [
        '%s:10: MNAAS_backup_files_process_logpath: command substitution `date +%%F`%s '
        '(ignored: the new job does not use MNAAS_backup_files_process_logpath)' % (DATED, NOT_RUN),
        '%s:48: MNAAS_backup_report_date: command substitution $(date +%%F)%s '
        '(ignored: the new job does not use MNAAS_backup_report_date)' % (DATED, NOT_RUN),
        '%s:48: MNAAS_backup_report_date: unknown key: the new job would not use it' % DATED,
    ]


def test_date_in_an_unknown_key_fails_by_default():
    with mock.patch.object(legacy_properties.display, 'warning') as warning, pytest.raises(AnsibleLookupError) as caught:
        run(str(DATED), common_variables=COMMON)
    message = str(caught.value)
    assert '2 problem(s) in the legacy file %s' % DATED in message
    assert '%s:48: MNAAS_backup_report_date: command substitution $(date +%%F)%s' % (DATED, NOT_RUN) in message
    assert '%s:48: MNAAS_backup_report_date: unknown key' % DATED in message
    warning.assert_not_called()


@pytest.mark.parametrize('unknown_keys', ['error', 'warn'])
def test_date_in_a_used_key_still_fails(tmp_path, unknown_keys):
    path = tmp_path / 'legacy.properties'
    path.write_text(DATED.read_text().replace('No_of_files_to_process=500', 'No_of_files_to_process=`date +%d`'))
    with pytest.raises(AnsibleLookupError) as caught:
        run(str(path), common_variables=COMMON, unknown_keys=unknown_keys)
    assert '%s:23: No_of_files_to_process: command substitution `date +%%d`%s' % (path, NOT_RUN) in str(caught.value)


def test_substitutions_in_unused_keys_are_never_run(tmp_path):
    marker = tmp_path / 'ran'
    path = tmp_path / 'legacy.properties'
    path.write_text(DATED.read_text().replace('date +%F', 'touch %s' % marker))
    with mock.patch.object(legacy_properties.display, 'warning') as warning:
        assert run(str(path), common_variables=COMMON, unknown_keys='warn') == [EXPECTED]
    assert sum('touch %s' % marker in c.args[0] for c in warning.call_args_list) == 2
    assert not marker.exists()


def test_relative_path_is_found_in_the_search_path(tmp_path, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    lookup = make_lookup()
    lookup._loader.set_basedir(str(FIXTURES))  # pylint: disable=protected-access
    assert lookup.run([EXAMPLE.name], variables={}, common_variables=COMMON) == [EXPECTED]


CUSTOMER = st.text('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', min_size=1, max_size=10)
SEGMENT = st.text('abcdefghijklmnopqrstuvwxyz0123456789 _-\'"$#\\`', min_size=1, max_size=8).filter(lambda s: s not in ('.', '..'))


def _quote(rnd: random.Random, text: str) -> str:
    if rnd.random() < 0.5:
        return "'" + text.replace("'", "'\\''") + "'"
    return '"' + ''.join('\\' + c if c in '\\"$`' else c for c in text) + '"'


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(CUSTOMER, st.tuples(SEGMENT, SEGMENT), min_size=1, max_size=5), st.integers(0, 2 ** 32).map(random.Random))
def test_generated_customers_round_trip_through_the_lookup(tmp_path_factory, customers, rnd):
    """Random customers and backup paths (blanks, quotes, $, #, backslashes), written in either array syntax, come back as written."""
    lines = ['declare -A MNAAS_backup_files_process_file_pattern=( [traffic]="$MNAASInputPath/*_Traffic_*.csv" ) # patterns']
    primary = ['  [%s]=%s  # %s' % (name, _quote(rnd, '/backup1/' + paths[0]), rnd.choice(['c', '"', "'", '$(x)'])) for name, paths in customers.items()]
    lines += ['declare -A MNAAS_backup_files_process_backup_dir', '# primary', 'MNAAS_backup_files_process_backup_dir=('] + primary + [')']
    lines += ['declare -A MNAAS_backup_files_edgenode2_backup_dir']
    lines += ['MNAAS_backup_files_edgenode2_backup_dir[%s]=%s' % (name, _quote(rnd, '/backup2/' + paths[1])) for name, paths in customers.items()]
    path = tmp_path_factory.mktemp('legacy') / 'generated.properties'
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    variables = run(str(path), common_variables={'MNAASInputPath': '/in'})[0]
    assert variables['mnaas_backup_customers'] == {
        name: {'backup_dir': '/backup1/' + paths[0], 'edge2_backup_dir': '/backup2/' + paths[1]} for name, paths in customers.items()}
