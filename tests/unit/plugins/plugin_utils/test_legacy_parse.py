# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The legacy properties parser: the bash it understands, every problem it names, and generated files
(hypothesis) that it reads as bash itself does."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import typing as t

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.mnaas.backup.plugins.plugin_utils._legacy_parse import KEEP_DBNAME_TABLE, Problem, parse
from ansible_collections.mnaas.backup.tests.unit.plugins.plugin_utils.legacy_files import COMMENTS, HYPOTHESIS, common_of, settings_strategy, text_of, write


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
# Generated files (hypothesis), read as bash reads them

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
    ours = {('S', name, '', value.text.replace('$dbname.', dbname) if name in KEEP_DBNAME_TABLE else value.text)
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
