# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The legacy properties reader: the shared example, the bash it understands, every problem it names,
and generated files (hypothesis) that round-trip, agree with bash itself, and fail where they are broken."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import posixpath
import random
import shutil
import subprocess
import tempfile
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.plugin_utils import _legacy
from ansible_collections.mnaas.backup.plugins.plugin_utils._legacy import LegacyError, Problem, migrate, parse, read

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
# The bash it understands

def values(text: str, **variables: str) -> tuple[dict, dict]:
    """(scalars, arrays) of a file that must have no problem."""
    props = parse(text, 'test.properties', variables)
    assert props.problems == []
    return ({k: v.text for k, v in props.scalars.items()},
            {k: {key: v.text for key, v in a.elements.items()} for k, a in props.arrays.items()})


@pytest.mark.parametrize('text, expected', [
    ('A=plain\n', 'plain'),
    ('A=\n', ''),
    ('A=""\n', ''),
    ("A=''\n", ''),
    ("A='single $V \"q\" \\ `x` $(y) # no comment'\n", 'single $V "q" \\ `x` $(y) # no comment'),
    ('A="double \\" \\$ \\\\ \\` \\x $V ${V}x"\n', 'double " $ \\ ` \\x v vx'),
    ("A=mi'x'\"e\"d\\ \\'\\\"\\$\\\\\n", 'mixed \'"$\\'),
    ('A=a#b  # a comment\n', 'a#b'),
    ('A="# data" # comment "with quotes\n', '# data'),
    ('A=x#\n', 'x#'),
    ('A=one\\\ntwo\n', 'onetwo'),
    ('A="multi\nline"\n', 'multi\nline'),
    ('A="joined \\\nline"\n', 'joined line'),
    ('A=$\n', '$'),
    ('A="cost: 5$"\n', 'cost: 5$'),
    ('A=$V/x\n', 'v/x'),
    ('A=${V}x\n', 'vx'),
    ('A=*.csv\n', '*.csv'),
    ('A={a,b}\n', '{a,b}'),
    ('A="~/x"\n', '~/x'),
    ('A=x~\n', 'x~'),
    ('  A=indented\t\n', 'indented'),
    ('export A=exported\n', 'exported'),
    ('declare A=declared\n', 'declared'),
    ('readonly A=ro\n', 'ro'),
    ('A="tab\there é ☃ 😀"\n', 'tab\there é ☃ 😀'),
])
def test_scalar(text, expected):
    assert values('#!/bin/bash\n# comment\n\n' + text, V='v')[0]['A'] == expected


def test_several_assignments_on_a_line_and_no_final_newline():
    assert values('A=1; B="2" ;C=3;D=$A$B$C') == ({'A': '1', 'B': '2', 'C': '3', 'D': '123'}, {})


def test_the_file_wins_over_the_common_variables_from_where_it_assigns():
    scalars = values('A=$V\nV=file\nB=$V\n', V='caller')[0]
    assert scalars == {'A': 'caller', 'V': 'file', 'B': 'file'}


@pytest.mark.parametrize('text', [
    # declare, then a parenthesised list over several lines, comments anywhere
    'declare -A X\nX=( # after (\n  [a]=1 # trailing\n  # own line\n\n  [b]="two words"\n  ["c d"]=\'3\' [e]=$V/*_T_*.csv\n) # after )\n',
    # declare with the list on one line
    "declare -A X=( [a]=1 [b]='two words' [\"c d\"]=3 [e]=${V}/*_T_*.csv )\n",
    # declare with the list over several lines
    'declare -A X=(\n[a]=1\n[b]=two\\ words\n[c\\ d]="3"\n[e]="$V/*_T_*.csv"\n)\n',
    # declare, then one element a line
    'declare -A X\nX[a]=1\nX[b]="two words" # comment\nX["c d"]=3\nX[e]=$V/*_T_*.csv\n',
    # bash reads an unquoted blank inside [...] as part of the key
    'declare -A X\nX[a]=1; X[b]=two" "words\nX[c d]=3\nX[$W]=$V/*_T_*.csv\n',
    # the list, then more elements
    'declare -A X=([a]=1 [b]="two words")\nX["c d"]=3\nX[e]=$V/*_T_*.csv\n',
    # two arrays declared at once, tabs, a backslash-newline
    'declare -A X Y\nX=(\t[a]=1 \\\n [b]="two words" ["c d"]=3 [e]=$V/*_T_*.csv)\nY=()\n',
])
def test_associative_array(text):
    arrays = values(text, V='/in', W='e')[1]
    assert arrays['X'] == {'a': '1', 'b': 'two words', 'c d': '3', 'e': '/in/*_T_*.csv'}


def test_array_values_are_not_expanded_like_commands():
    """Inside ( ... ) bash does no ~, brace or glob expansion; an element may be empty."""
    arrays = values('declare -A X=( [t]=~/x [b]={a,b} [g]=*.csv [e]= )\n')[1]
    assert arrays['X'] == {'t': '~/x', 'b': '{a,b}', 'g': '*.csv', 'e': ''}


# ---------------------------------------------------------------------------------------------
# Every problem names the file, the line and the key

def problems(text: str, **variables: str) -> list[Problem]:
    return parse(text, 'test.properties', variables).problems


@pytest.mark.parametrize('text, line, key, fragment', [
    # unterminated quotes, parentheses and expansions: named where they open
    ("A=1\nB='abc\nC=2\n", 2, 'B', "unterminated ' (single quote)"),
    ('A=1\n\nB="abc\nC=2\n', 3, 'B', 'unterminated " (double quote)'),
    ('declare -A X\nX=(\n [a]=1\n', 2, 'X', 'unterminated ( of X=('),
    ('declare -A X=( [a]=1\nB=2\ndeclare -A Y\n', 1, 'X', 'unterminated ( of X=('),
    ('declare -A X=( [a]="1 )\n', 1, 'X[a]', 'unterminated " (double quote)'),
    ('A=${B\n', 1, 'A', 'unterminated ${'),
    ('A=`date\n', 1, 'A', 'unterminated ` (backtick)'),
    ('A=$(date\n', 1, 'A', 'unterminated $('),
    # duplicates
    ('A=1\nB=2\nA=3\n', 3, 'A', 'A is assigned twice (lines 1 and 3)'),
    ('declare -A X=([a]=1\n [a]=2)\n', 2, 'X[a]', 'key a twice in X (lines 1 and 2)'),
    ('declare -A X\nX[a]=1\nX[b]=2\nX[a]=3\n', 4, 'X[a]', 'key a twice in X (lines 2 and 4)'),
    ('declare -A X=([a]=1)\nX[a]=2\n', 2, 'X[a]', 'key a twice'),
    ('declare -A X\nX=([a]=1)\nX=([b]=1)\n', 3, 'X', 'X is assigned twice (lines 2 and 3)'),
    ('declare -A X\nX[a]=1\nX=([b]=1)\n', 3, 'X', 'X is assigned twice (lines 2 and 3)'),
    ('declare -A X\ndeclare -A X\n', 2, 'X', 'declare -A X twice (lines 1 and 2)'),
    ('declare -A X\nX=1\n', 2, 'X', 'X is an array (declare -A on line 1)'),
    ('X=1\ndeclare -A X\n', 2, 'X', 'declared an array here but was assigned a value on line 1'),
    ('X=1\nX[a]=2\n', 2, 'X[a]', 'X was assigned a value on line 1; it is not an array'),
    # variables
    ('A=$NOPE/x\n', 1, 'A', 'unresolved variable $NOPE'),
    ('A=1\nB="${NOPE}"\n', 2, 'B', 'unresolved variable $NOPE'),
    ('A=$B\nB=1\n', 1, 'A', 'unresolved variable $B'),
    ('declare -A X=(\n [a]=1\n [b]=$NOPE\n)\n', 3, 'X[b]', 'unresolved variable $NOPE'),
    ('declare -A X\nX[$NOPE]=1\n', 2, 'X', 'unresolved variable $NOPE'),
    ('declare -A X=([a]=1)\nA=$X\n', 2, 'A', '$X is the array declared on line 1'),
    ('A=${B:-x}\n', 1, 'A', '${B:-x} is not supported'),
    ('A=${#B}\n', 1, 'A', '${#B} is not supported'),
    ('A=$1\n', 1, 'A', '$1 (a special parameter) is not supported'),
    ('A="$$"\n', 1, 'A', '$$ (a special parameter)'),
    ("A=$'x'\n", 1, 'A', "$'...' quoting is not supported"),
    ('A=~/x\n', 1, 'A', 'an unquoted ~ is expanded'),
    ('A=/a:~/b\n', 1, 'A', 'an unquoted ~ is expanded'),
    ('declare -A X\nX[a]=~/x\n', 2, 'X[a]', 'an unquoted ~ is expanded'),
    # never run
    ('A=1\nB=$(hostname)\n', 2, 'B', 'command substitution $(hostname) is not run'),
    ('B="/x/$(cat /etc/passwd)/y"\n', 1, 'B', 'command substitution $(cat /etc/passwd) is not run'),
    ('B=`hostname`\n', 1, 'B', 'command substitution `hostname` is not run'),
    ('B="a`id`b"\n', 1, 'B', 'command substitution `id` is not run'),
    ('B=$((1 + 2))\n', 1, 'B', 'arithmetic expansion $((1 + 2)) is not run'),
    ('declare -A X=( [$(id)]=1 )\n', 1, 'X', 'command substitution $(id) is not run'),
    ('declare -A X=(\n [a]=$(id)\n)\n', 2, 'X[a]', 'command substitution $(id) is not run'),
    # not assignments
    ('A=1\necho hello\n', 2, '', "not an assignment: 'echo hello'"),
    ('source /etc/mnaas/common.properties\n', 1, '', 'sources another file'),
    ('. /etc/mnaas/common.properties\n', 1, '', 'sources another file'),
    ('if true; then A=1; fi\n', 1, '', 'not an assignment'),
    ('A=a b\n', 1, 'A', 'an unquoted blank ends a value and bash would run \'b\''),
    ('A=1 && B=2\n', 1, 'A', "unexpected '&& B=2' after the value"),
    ('A=x|y\n', 1, 'A', "unexpected '|'"),
    ('A=(x)\n', 1, 'A', 'A=( ... ) needs declare -A A before it'),
    ('A+=x\n', 1, 'A', 'appending (A+=) is not supported'),
    ('declare -A X\nX[a]+=x\n', 2, 'X', 'appending (X[...]+=) is not supported'),
    ('X[a]=1\n', 1, 'X[a]', 'X[key]=value needs declare -A X before it'),
    ('X=( [a]=1 )\n', 1, 'X', 'X=( ... ) needs declare -A X before it'),
    ('export X=( [a]=1 )\n', 1, 'X', 'X=( ... ) needs declare -A'),
    ('declare -a X\n', 1, '', 'declare -a (an indexed array) is not supported'),
    ('declare -Ai X\n', 1, '', 'declare -i is not supported'),
    ('export -n X\n', 1, '', 'export -n is not supported'),
    ('declare -A\n', 1, '', 'declare without a name'),
    ('declare -A X=value\n', 1, 'X', 'declare -A X=value: bash would set the element [0]'),
    ('declare -A X=( a b )\n', 1, 'X', "an element without [key]=, got 'a'"),
    ('declare -A X=(\n [a]=1\n oops\n)\n', 3, 'X', "an element without [key]=, got 'oops'"),
    ('declare -A X=( [a]1 )\n', 1, 'X', 'expected [key]=value'),
    ('declare -A X=( [a]=1; )\n', 1, 'X', "an element without [key]=, got ';'"),
    ('declare -A X=( []=1 )\n', 1, 'X[]', 'empty key []'),
    ('A=1\r\nB=2\r\n', 1, '', 'CR characters (DOS line ends?)'),
])
def test_problem(text, line, key, fragment):
    found = problems(text)
    assert any(p.line == line and p.key == key and fragment in p.message for p in found), found


def test_unterminated_parenthesis_is_the_only_problem():
    """The lines after an unterminated ( are read as its elements; only the ( is reported."""
    assert [(p.line, p.key) for p in problems('A=1\ndeclare -A X=(\n [a]=1\nB=2\necho x\n')] == [(2, 'X')]


def test_command_substitution_is_never_run(tmp_path):
    marker = tmp_path / 'ran'
    text = 'A=$(touch %s)\nB=`touch %s`\nC="$(touch %s)"\ndeclare -A X=([k]=$(touch %s))\n' % ((marker,) * 4)
    found = problems(text)
    assert [p.line for p in found] == [1, 2, 3, 4] and all('is not run' in p.message for p in found)
    assert not marker.exists()


def test_problems_go_on_after_a_malformed_line():
    found = problems('echo hi\nA=$NOPE\nB=1\nB=2\ndeclare -A X=(\n [a]=$(id)\n [b]=1\n [b]=2\n)\n')
    assert [(p.line, p.key) for p in found] == [(1, ''), (2, 'A'), (4, 'B'), (6, 'X[a]'), (8, 'X[b]')]


def test_problem_text_names_file_line_and_key():
    assert str(Problem('/etc/x.properties', 7, 'No_of_files_to_process', 'bad')) == '/etc/x.properties:7: No_of_files_to_process: bad'
    assert str(Problem('/etc/x.properties', 0, 'K', 'bad')) == '/etc/x.properties: K: bad'
    assert str(Problem('/etc/x.properties', 3, '', 'bad')) == '/etc/x.properties:3: bad'


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
# Generated files (hypothesis): a small writer turns random settings into a legacy file

NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_'
LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
NAMES = st.builds(str.__add__, st.sampled_from(NAME_CHARS), st.text(NAME_CHARS + '.-', max_size=11)).filter(lambda s: '..' not in s)
# Path segments with what shells make hard: blanks, quotes, $, #, backslashes, backticks, parentheses, ...
HARD = ' \t\'"$#\\`(){}[];&|<>!~*?=:,%@^é☃😀'
SEGMENT_CHARS = NAME_CHARS + '.-+' + HARD
SEGMENTS = st.text(SEGMENT_CHARS, min_size=1, max_size=8).filter(lambda s: s not in ('.', '..'))
DIR_SEGMENTS = st.text(SEGMENT_CHARS.replace('*', '').replace('?', '').replace('[', ''), min_size=1, max_size=8).filter(
    lambda s: s not in ('.', '..'))
PATHS = st.lists(SEGMENTS, min_size=1, max_size=4).map(lambda parts: '/' + '/'.join(parts))
DIRS = st.lists(DIR_SEGMENTS, min_size=0, max_size=3).map(lambda parts: '/' + '/'.join(parts))
GLOBS = st.text(NAME_CHARS + '.-*?[]' + HARD, min_size=1, max_size=12).filter(lambda s: s.strip() != '')
IDENTIFIERS = st.builds(str.__add__, st.sampled_from(LETTERS + '_'), st.text(NAME_CHARS, max_size=15))
HOSTS = st.builds(str.__add__, st.sampled_from('abcdefghijklmnopqrstuvwxyz0123456789'), st.text('abcdefghijklmnopqrstuvwxyz0123456789.-', max_size=15))
TEXT = st.text(NAME_CHARS + '.-+ \n\t' + HARD, max_size=30)
COMMENTS = st.text(NAME_CHARS + ' .-+' + HARD, max_size=20)
SAFE = frozenset(NAME_CHARS + '/.-+,:@%=^')

Piece = t.Tuple[str, str]  # ('lit', text) or ('var', name)

# The scalar keys a generated file may set, each with its value as pieces.
OPTIONAL_SCALARS = {
    'No_of_files_to_process': st.integers(1, 10 ** 6).map(lambda n: (('lit', str(n)),)),
    'MNAAS_backup_files_process_ProcessStatusFileName': PATHS.map(lambda p: (('lit', p),)),
    'MNAAS_backup_file_process_filename': PATHS.map(lambda p: (('var', 'MNAASInputPath'), ('lit', p))),
    'MNAAS_backup_filename_hdfs_customer': PATHS.map(lambda p: (('lit', p),)),
    'customers_files_inter_record_count_tblname': IDENTIFIERS.map(lambda p: (('lit', p),)),
    'customers_files_records_count_tblname': IDENTIFIERS.map(lambda p: (('var', 'dbname'), ('lit', '.' + p))),
    'customer_files_record_count_tblname_refresh': st.one_of(
        TEXT.map(lambda p: (('lit', p),)), IDENTIFIERS.map(lambda p: (('lit', 'refresh '), ('var', 'dbname'), ('lit', '.' + p)))),
    'sem_extension': st.sampled_from(['.sem', '.lock', '']).map(lambda p: (('lit', p),)),
    'edge2node': HOSTS.map(lambda p: (('lit', p),)),
    'MNAAS_Customer_backup_files_process_Scriptname': TEXT.map(lambda p: (('lit', p),)),
    'MNAAS_backup_files_process_logpath': PATHS.map(lambda p: (('var', 'MNAASLocalLogPath'), ('lit', p))),
}


class Settings(t.NamedTuple):
    common: dict
    helper: t.Optional[str]
    source_dir: t.Optional[str]  # None: the patterns use $MNAASInputPath
    domains: dict
    customers: dict  # name -> (backup_dir pieces, edge2 pieces)
    scalars: dict  # legacy key -> pieces
    state_dir: t.Optional[str]


@st.composite
def settings_strategy(draw) -> Settings:
    common = {'MNAASInputPath': draw(DIRS), 'dbname': draw(IDENTIFIERS)}
    helper = draw(st.one_of(st.none(), PATHS))
    if helper is not None:
        common['MNAASBackupRoot'] = helper  # referenced in the file through a helper variable
    source_dir = draw(st.one_of(st.none(), DIRS))
    domains = draw(st.dictionaries(NAMES, GLOBS, min_size=1, max_size=4))
    customers = {}
    for index, name in enumerate(draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))):
        dirs = []
        for root in ('/backup1', '/backup2'):
            # a helper variable is used at least once (else it would be an unknown key)
            if helper is not None and (index == 0 or draw(st.booleans())):
                dirs.append((('var', 'backup_root'), ('lit', root + draw(st.sampled_from(['', '/x y', '/' + name])))))
            else:
                dirs.append((('lit', draw(PATHS)),))
        customers[name] = tuple(dirs)
    scalars: dict[str, tuple[Piece, ...]] = {}
    for key, strategy in OPTIONAL_SCALARS.items():
        if draw(st.booleans()):
            scalars[key] = draw(strategy)
    state_dir = draw(st.one_of(st.none(), st.just('/state dir')))
    return Settings(common, helper, source_dir, domains, customers, scalars, state_dir)


def quote(rnd, text: str, style: str = '') -> str:
    """text as one bash word: unquoted with backslashes, in single or in double quotes, or a mix of those."""
    style = style or rnd.choice(['plain', 'single', 'double', 'mixed'])
    if style == 'mixed' and len(text) > 1:
        cut = rnd.randrange(1, len(text))
        return quote(rnd, text[:cut]) + quote(rnd, text[cut:])
    if style == 'single' or (style == 'plain' and '\n' in text):
        return "'" + text.replace("'", "'\\''") + "'"
    if style in ('double', 'mixed'):
        return '"' + ''.join('\\' + c if c in '\\"$`' else c for c in text) + '"'
    return ''.join(c if c in SAFE else '\\' + c for c in text)


def render(rnd, pieces: t.Sequence[Piece]) -> str:
    """A value made of literal text and $variables, each piece quoted its own way."""
    out = [quote(rnd, text) if text else rnd.choice(['', "''", '""']) if kind == 'lit' else '' for kind, text in pieces]
    for index in range(len(pieces) - 1, -1, -1):
        kind, name = pieces[index]
        if kind == 'var':
            following = ''.join(out[index + 1:])[:1]
            # $name runs on into a following name character: then it needs the braces
            reference = '${%s}' % name if following in NAME_CHARS and following or rnd.random() < 0.5 else '$' + name
            out[index] = '"%s"' % reference if rnd.random() < 0.5 else reference
    return ''.join(out) or rnd.choice(['', "''", '""'])


def key_word(rnd, name: str) -> str:
    return rnd.choice([name, '"%s"' % name, "'%s'" % name]) if all(c in SAFE for c in name) else quote(rnd, name, 'single')


def comment(rnd, text: str) -> str:
    return ' # ' + text if rnd.random() < 0.4 else ''


class Chunk(t.NamedTuple):
    text: str  # one or more whole lines, without the final newline
    key: str  # the key the chunk assigns ('' for a comment or blank line)
    kind: str  # scalar, declare, compound, element, other
    subscript: str = ''  # the element's key, for an element


def write_array(rnd, comments: t.Iterator[str], name: str, elements: list[tuple[str, str]]) -> list[Chunk]:
    """An associative array in one of the bash forms the legacy files use."""
    form = rnd.choice(['split', 'declare_multi', 'one_line', 'split_one_line', 'elements'])
    items = ['[%s]=%s' % (key_word(rnd, k), v) for k, v in elements]

    def multi_line(head: str) -> str:
        lines = [head + '(' + comment(rnd, next(comments))]
        for item in items:
            if rnd.random() < 0.3:
                lines.append('  #' + next(comments))
            lines.append(rnd.choice(['  ', '\t', '']) + item + comment(rnd, next(comments)))
        lines.append(')' + comment(rnd, next(comments)))
        return '\n'.join(lines)

    declare = Chunk('declare -A ' + name + comment(rnd, next(comments)), name, 'declare')
    if form == 'split':
        return [declare, Chunk(multi_line(name + '='), name, 'compound')]
    if form == 'declare_multi':
        return [Chunk(multi_line('declare -A %s=' % name), name, 'compound')]
    if form == 'one_line':
        return [Chunk('declare -A %s=( %s )' % (name, ' '.join(items)) + comment(rnd, next(comments)), name, 'compound')]
    if form == 'split_one_line':
        return [declare, Chunk('%s=(%s)' % (name, ' '.join(items)) + comment(rnd, next(comments)), name, 'compound')]
    return [declare] + [Chunk('%s%s' % (name, item) + comment(rnd, next(comments)), name, 'element', key)
                        for item, (key, _value) in zip(items, elements)]


def write(rnd, comments: list, settings_: Settings) -> list[Chunk]:
    """The legacy file of the settings as chunks of whole lines, statements in a random order, comments anywhere."""
    comments = itertools.cycle(comments or [''])
    statements: list[list[Chunk]] = []
    for key, pieces in settings_.scalars.items():
        statements.append([Chunk('%s%s=%s' % (rnd.choice(['', 'export ', 'declare ']), key, render(rnd, pieces)) + comment(rnd, next(comments)),
                                 key, 'scalar')])
    prefix: tuple[Piece, ...] = (('var', 'MNAASInputPath'),) if settings_.source_dir is None else (('lit', settings_.source_dir),)
    statements.append(write_array(rnd, comments, _legacy.PATTERNS, [
        (domain, render(rnd, prefix + (('lit', '/' + glob),))) for domain, glob in settings_.domains.items()]))
    for index, array in enumerate((_legacy.BACKUP_DIRS, _legacy.EDGE2_DIRS)):
        elements = [(name, render(rnd, dirs[index])) for name, dirs in settings_.customers.items()]
        rnd.shuffle(elements)
        statements.append(write_array(rnd, comments, array, elements))
    rnd.shuffle(statements)
    if settings_.helper is not None:
        statements.insert(0, [Chunk('backup_root=' + render(rnd, (('var', 'MNAASBackupRoot'),)), 'backup_root', 'scalar')])
    chunks = [Chunk('#!/bin/bash', '', 'other')]
    for statement in statements:
        for chunk in statement:
            if rnd.random() < 0.3:
                chunks.append(Chunk(rnd.choice(['', '#' + next(comments), '   # ' + next(comments)]), '', 'other'))
            chunks.append(chunk)
    return chunks


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
            expected[target] = value(pieces, keep_dbname=key in _legacy.KEEP_DBNAME_TABLE)
    if settings_.state_dir:
        expected['mnaas_backup_state_dir'] = settings_.state_dir
    return expected


def text_of(chunks: list[Chunk]) -> str:
    return '\n'.join(chunk.text for chunk in chunks) + '\n'


def line_of(chunks: list[Chunk], index: int) -> int:
    return 1 + sum(chunk.text.count('\n') + 1 for chunk in chunks[:index])


def common_of(settings_: Settings) -> dict:
    return dict(settings_.common, MNAASLocalLogPath='/logs')


HYPOTHESIS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


BASH = shutil.which('bash')
BASH_DUMP = r'''
source "$1" || exit 99
shift
for name in "$@"; do
  if [[ "$(declare -p "$name" 2>/dev/null)" == "declare -A"* ]]; then
    declare -n array="$name"
    for key in "${!array[@]}"; do printf 'A\0%s\0%s\0%s\0' "$name" "$key" "${array[$key]}"; done
    unset -n array
  else
    printf 'S\0%s\0%s\0' "$name" "${!name}"
  fi
done
'''


@HYPOTHESIS
@given(settings_strategy(), st.integers(0, 2 ** 32).map(random.Random), st.lists(COMMENTS, min_size=1, max_size=5))
def test_generated_files_read_as_bash_reads_them(settings_, rnd, comments):
    """The reader agrees with bash itself on every generated file (bash runs only these test files)."""
    text = text_of(write(rnd, comments, settings_))
    props = parse(text, 'generated.properties', common_of(settings_))
    assert props.problems == [], text
    # bash resolves the $dbname.<table> that the reader keeps for the role
    dbname = settings_.common['dbname'] + '.'
    ours = {('S', name, '', value.text.replace('$dbname.', dbname) if name in _legacy.KEEP_DBNAME_TABLE else value.text)
            for name, value in props.scalars.items()}
    ours |= {('A', name, key, value.text) for name, array in props.arrays.items() for key, value in array.elements.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'generated.properties')
        with open(path, 'w', encoding='utf-8') as stream:
            stream.write(text)
        env = {'PATH': os.environ.get('PATH', os.defpath), 'LC_ALL': 'C.UTF-8', 'HOME': tmp}
        env.update(common_of(settings_))
        proc = subprocess.run([t.cast(str, BASH), '--norc', '--noprofile', '-c', BASH_DUMP, 'bash', path] + sorted(set(props.scalars) | set(props.arrays)),
                              capture_output=True, env=env, cwd=tmp, timeout=30, check=False)
    assert proc.returncode == 0 and proc.stderr == b'', (proc.returncode, proc.stderr, text)
    fields = proc.stdout.decode('utf-8').split('\0')[:-1]
    theirs = set()
    while fields:
        if fields[0] == 'S':
            theirs.add(('S', fields[1], '', fields[2]))
            del fields[:3]
        else:
            theirs.add(('A', fields[1], fields[2], fields[3]))
            del fields[:4]
    assert ours == theirs, text


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
