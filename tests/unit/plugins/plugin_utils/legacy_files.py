# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated legacy files for the hypothesis tests of the reader (test_legacy_parse.py) and the mapping
(test_legacy.py): random settings, and a small writer that turns them into a legacy file."""

from __future__ import annotations

import itertools
import typing as t

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ansible_collections.mnaas.backup.plugins.plugin_utils import _legacy

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


def text_of(chunks: list[Chunk]) -> str:
    return '\n'.join(chunk.text for chunk in chunks) + '\n'


def line_of(chunks: list[Chunk], index: int) -> int:
    return 1 + sum(chunk.text.count('\n') + 1 for chunk in chunks[:index])


def common_of(settings_: Settings) -> dict:
    return dict(settings_.common, MNAASLocalLogPath='/logs')


HYPOTHESIS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
