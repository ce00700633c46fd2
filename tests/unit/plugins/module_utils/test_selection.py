# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _selection
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Entry
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation
from ansible_collections.mnaas.backup.plugins.module_utils._selection import (
    Candidate, compile_rules, describe_batch, discover, select,
)

NOW = 1_800_000_000.0
OLD = NOW - 86400
DOMAINS = {'traffic': '*_Traffic_*.csv', 'tolling': ['*_Tolling_*.csv', '*_Tolling_*.csv.gz']}
CUSTOMERS = {'ACME': {}, 'GLOBEX': {'match': 'GLX_*'}}


def rules(domains=None, customers=None) -> _selection.Rules:
    return compile_rules(DOMAINS if domains is None else domains, CUSTOMERS if customers is None else customers)


def entry(name: str, size: int = 10, mtime: float = OLD, kind: str = 'file') -> Entry:
    return Entry(name, size, mtime, kind)


def pick(entries, done=None, max_files=0, min_age=120, the_rules=None) -> _selection.Selection:
    return select(entries, the_rules or rules(), done or {}, max_files, min_age, NOW)


def write(directory, name: str, data: bytes = b'a\nb\n', mtime: float = OLD) -> str:
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as stream:
        stream.write(data)
    os.utime(path, (mtime, mtime))
    return path


# --- matching --------------------------------------------------------------------------------

@pytest.mark.parametrize('name, customer, domain', [
    ('ACME_Traffic_20261124.csv', 'ACME', 'traffic'),           # default match "<name>_*"
    ('ACME_Tolling_20261124.csv', 'ACME', 'tolling'),
    ('ACME_Tolling_20261124.csv.gz', 'ACME', 'tolling'),        # second glob of a list
    ('GLX_Traffic_20261124.csv', 'GLOBEX', 'traffic'),          # explicit match
])
def test_matching(name, customer, domain):
    selection = pick([entry(name)])
    assert [(c.customer, c.domain, c.name) for c in selection.batch] == [(customer, domain, name)]


def test_default_match_needs_the_underscore():
    selection = pick([entry('ACMEX_Traffic_1.csv')])
    assert selection.batch == []
    assert selection.unassigned == ['ACMEX_Traffic_1.csv']


def test_explicit_match_replaces_default():
    """GLOBEX matches only GLX_*, not GLOBEX_*."""
    selection = pick([entry('GLOBEX_Traffic_1.csv')])
    assert selection.unassigned == ['GLOBEX_Traffic_1.csv']


def test_customer_match_list_of_globs():
    the_rules = rules(customers={'GLOBEX': {'match': ['GLX_*', 'GLOBEX-*']}})
    selection = pick([entry('GLX_Traffic_1.csv'), entry('GLOBEX-X_Traffic_2.csv', mtime=OLD + 1)], the_rules=the_rules)
    assert [c.name for c in selection.batch] == ['GLX_Traffic_1.csv', 'GLOBEX-X_Traffic_2.csv']


def test_matching_is_case_sensitive():
    selection = pick([entry('acme_traffic_1.csv'), entry('ACME_traffic_1.csv')])
    assert selection.batch == []
    assert selection.unmatched == 2


def test_customer_settings_none_means_defaults():
    selection = pick([entry('ACME_Traffic_1.csv')], the_rules=rules(customers={'ACME': None}))
    assert [c.customer for c in selection.batch] == ['ACME']


def test_ambiguous_two_domains():
    the_rules = rules(domains={'traffic': '*_Traffic_*', 'tolling': '*_Tolling_*'})
    name = 'ACME_Traffic_Tolling_1.csv'
    selection = pick([entry(name)], the_rules=the_rules)
    assert selection.batch == []
    assert selection.ambiguous == [{'name': name, 'domains': ['traffic', 'tolling'], 'customers': ['ACME']}]


def test_ambiguous_two_customers():
    the_rules = rules(customers={'ACME': {}, 'ACME_TELEMATICS': {}})
    name = 'ACME_TELEMATICS_Traffic_1.csv'
    selection = pick([entry(name), entry('ACME_Traffic_2.csv')], the_rules=the_rules)
    assert selection.ambiguous == [{'name': name, 'domains': ['traffic'], 'customers': ['ACME', 'ACME_TELEMATICS']}]
    assert [c.name for c in selection.batch] == ['ACME_Traffic_2.csv']


def test_unassigned_and_unmatched():
    selection = pick([entry('HOOLI_Traffic_1.csv'), entry('README.txt'), entry('ACME_Other_1.csv')])
    assert selection.unassigned == ['HOOLI_Traffic_1.csv']
    assert selection.unmatched == 2
    assert selection.unmatched_sample == ['ACME_Other_1.csv', 'README.txt']
    assert selection.batch == []


def test_unmatched_sample_is_capped_but_all_are_counted():
    entries = [entry('junk_%04d.txt' % i) for i in range(_selection.SAMPLE + 25)]
    selection = pick(entries)
    assert selection.unmatched == _selection.SAMPLE + 25
    assert len(selection.unmatched_sample) == _selection.SAMPLE


def test_hidden_files_are_ignored_entirely():
    selection = pick([entry('.ACME_Traffic_1.csv'), entry('.junk')])
    assert selection == pick([])


def test_non_regular_entries_ignored_on_real_filesystem(tmp_path):
    os.mkdir(tmp_path / 'ACME_Traffic_dir.csv')
    write(tmp_path, 'ACME_Traffic_real.csv')
    os.symlink(str(tmp_path / 'ACME_Traffic_real.csv'), str(tmp_path / 'ACME_Traffic_link.csv'))
    os.mkfifo(str(tmp_path / 'ACME_Traffic_fifo.csv'))
    os.mkdir(tmp_path / 'README.d')
    selection = pick(LocalLocation().listdir(str(tmp_path)).values())
    assert [c.name for c in selection.batch] == ['ACME_Traffic_real.csv']
    assert selection.unmatched == 1
    assert selection.ignored == [
        {'name': 'ACME_Traffic_dir.csv', 'reason': 'a dir, not a regular file'},
        {'name': 'ACME_Traffic_fifo.csv', 'reason': 'a other, not a regular file'},
        {'name': 'ACME_Traffic_link.csv', 'reason': 'a link, not a regular file'},
    ]


def test_name_not_utf8_is_ignored_with_a_printable_name(tmp_path):
    """A name that is not UTF-8 cannot travel in a task result: reported escaped, the other files go on (issue 6)."""
    bad = os.fsdecode(b'ACME_Traffic_bad\xff.csv')
    junk = os.fsdecode(b'junk\xfe.txt')
    selection = pick([entry(bad), entry(junk), entry('ACME_Traffic_good.csv')])
    assert [c.name for c in selection.batch] == ['ACME_Traffic_good.csv']
    assert selection.ignored == [{'name': 'ACME_Traffic_bad\\udcff.csv', 'reason': 'its name is not valid UTF-8; rename it to back it up'}]
    assert selection.unmatched == 1 and selection.unmatched_sample == ['junk\\udcfe.txt']
    for item in selection.ignored + [{'name': n} for n in selection.unmatched_sample]:
        item['name'].encode('utf-8')  # JSON-safe


def test_printable_keeps_valid_unicode():
    assert _selection.printable('ACME_Traffic_unicodé_日本語 \n.csv') == 'ACME_Traffic_unicodé_日本語 \n.csv'


# --- in flight, done, cap --------------------------------------------------------------------

@pytest.mark.parametrize('age, in_flight', [(-119.5, True), (-5, True)])
def test_slightly_future_mtime_is_in_flight(age, in_flight):
    """Less than min_age from now in either direction: maybe a write in progress on a skewed clock."""
    selection = pick([entry('ACME_Traffic_1.csv', mtime=NOW - age)], min_age=120)
    assert bool(selection.in_flight) is in_flight and not selection.future


def test_far_future_mtime_is_selected_and_reported():
    """A day in the future is clock skew: held back it would wait a day (or years), so it is taken and reported (issue 6)."""
    selection = pick([entry('ACME_Traffic_1.csv', mtime=NOW + 86400), entry('ACME_Traffic_2.csv')], min_age=120)
    assert [c.name for c in selection.batch] == ['ACME_Traffic_2.csv', 'ACME_Traffic_1.csv']
    assert selection.future == [{'name': 'ACME_Traffic_1.csv', 'age': -86400.0}]
    assert not selection.in_flight


@pytest.mark.parametrize('age, in_flight', [(0, True), (119.5, True), (120, False), (3600, False)])
def test_in_flight_by_min_age(age, in_flight):
    selection = pick([entry('ACME_Traffic_1.csv', mtime=NOW - age)], min_age=120)
    assert bool(selection.in_flight) is in_flight
    assert bool(selection.batch) is not in_flight
    if in_flight:
        assert selection.in_flight == [{'name': 'ACME_Traffic_1.csv', 'age': age}]


def test_min_age_zero_takes_everything():
    selection = pick([entry('ACME_Traffic_1.csv', mtime=NOW)], min_age=0)
    assert len(selection.batch) == 1


def test_ledger_done_same_size_and_mtime():
    done = {('ACME', 'ACME_Traffic_1.csv'): (10, int(OLD))}
    selection = pick([entry('ACME_Traffic_1.csv', size=10, mtime=OLD + 0.75)], done=done)
    assert selection.done == 1
    assert selection.batch == []


@pytest.mark.parametrize('size, mtime', [(11, OLD), (10, OLD + 1), (9, OLD - 60)])
def test_ledger_changed_file_is_processed_again(size, mtime):
    done = {('ACME', 'ACME_Traffic_1.csv'): (10, int(OLD))}
    selection = pick([entry('ACME_Traffic_1.csv', size=size, mtime=mtime)], done=done)
    assert selection.done == 0
    assert [c.name for c in selection.batch] == ['ACME_Traffic_1.csv']


def test_ledger_is_per_customer():
    """The same file name done for another customer does not count."""
    done = {('GLOBEX', 'ACME_Traffic_1.csv'): (10, int(OLD))}
    selection = pick([entry('ACME_Traffic_1.csv')], done=done)
    assert selection.done == 0
    assert len(selection.batch) == 1


def test_cap_counts_only_pending_oldest_first():
    entries = [entry('ACME_Traffic_%d.csv' % i, mtime=OLD + i) for i in range(6)]
    done = {('ACME', 'ACME_Traffic_0.csv'): (10, int(OLD)), ('ACME', 'ACME_Traffic_1.csv'): (10, int(OLD + 1))}
    first = pick(list(reversed(entries)), done=done, max_files=2)
    assert [c.name for c in first.batch] == ['ACME_Traffic_2.csv', 'ACME_Traffic_3.csv']
    assert first.done == 2
    assert first.deferred == 2
    # A rerun over the same directory and ledger picks the same batch, whatever the listing order.
    assert pick(entries, done=done, max_files=2).batch == first.batch
    # Once the batch is recorded as done, the next run makes progress.
    done.update({('ACME', c.name): (c.size, int(c.mtime)) for c in first.batch})
    second = pick(entries, done=done, max_files=2)
    assert [c.name for c in second.batch] == ['ACME_Traffic_4.csv', 'ACME_Traffic_5.csv']
    assert second.deferred == 0


def test_cap_does_not_count_in_flight_or_reported_files():
    entries = [entry('ACME_Traffic_young.csv', mtime=NOW), entry('HOOLI_Traffic_1.csv'), entry('ACME_Traffic_old.csv')]
    selection = pick(entries, max_files=1)
    assert [c.name for c in selection.batch] == ['ACME_Traffic_old.csv']
    assert selection.deferred == 0


def test_equal_mtimes_are_ordered_by_name():
    entries = [entry('ACME_Traffic_b.csv'), entry('ACME_Traffic_a.csv'), entry('ACME_Traffic_c.csv')]
    assert [c.name for c in pick(entries, max_files=2).batch] == ['ACME_Traffic_a.csv', 'ACME_Traffic_b.csv']


def test_max_files_zero_means_no_cap():
    entries = [entry('ACME_Traffic_%03d.csv' % i, mtime=OLD + i) for i in range(700)]
    selection = pick(entries, max_files=0)
    assert len(selection.batch) == 700
    assert selection.deferred == 0


# --- configuration errors ----------------------------------------------------------------------

@pytest.mark.parametrize('domains, customers, words', [
    ({'traffic': []}, {'ACME': {}}, ['domains.traffic', '[]']),
    ({'traffic': ''}, {'ACME': {}}, ['domains.traffic', "''"]),
    ({'traffic': ['*.csv', ' ']}, {'ACME': {}}, ['domains.traffic', "' '"]),
    ({'traffic': 'in/*.csv'}, {'ACME': {}}, ['domains.traffic', "'in/*.csv'"]),
    ({'traffic': ['*.csv', 'a/*.csv']}, {'ACME': {}}, ['domains.traffic', "'a/*.csv'"]),
    ({'traffic': 5}, {'ACME': {}}, ['domains.traffic', '5']),
    ({'tra/ffic': '*'}, {'ACME': {}}, ['key of domains', "'tra/ffic'"]),
    ({}, {'ACME': {}}, ['domains', '{}']),
    ({'traffic': '*'}, {}, ['customers', '{}']),
    ({'traffic': '*'}, ['ACME'], ['customers', "['ACME']"]),
    ({'traffic': '*'}, {'AC/ME': {}}, ['key of customers', "'AC/ME'"]),
    ({'traffic': '*'}, {'..': {}}, ['key of customers', "'..'"]),
    ({'traffic': '*'}, {'AC..ME': {}}, ['key of customers', "'AC..ME'"]),
    ({'traffic': '*'}, {'AC ME': {}}, ['key of customers', "'AC ME'"]),
    ({'traffic': '*'}, {'': {}}, ['key of customers', "''"]),
    ({'traffic': '*'}, {'ACME': 'ACME_*'}, ['customers.ACME', "'ACME_*'"]),
    ({'traffic': '*'}, {'ACME': ['ACME_*']}, ['customers.ACME', "['ACME_*']"]),
    ({'traffic': '*'}, {'ACME': {'match': 'x/ACME_*'}}, ['customers.ACME.match', "'x/ACME_*'"]),
    ({'traffic': '*'}, {'ACME': {'match': ['ACME_*', '']}}, ['customers.ACME.match', "''"]),
])
def test_bad_config_names_key_and_value(domains, customers, words):
    with pytest.raises(ConfigError) as caught:
        compile_rules(domains, customers)
    for word in words:
        assert word in caught.value.msg


@pytest.mark.parametrize('domains, customers, key', [
    ({'traffic': '*'}, {'ACME\n': {}}, 'key of customers'),
    ({'traffic\n': '*'}, {'ACME': {}}, 'key of domains'),
], ids=['customer', 'domain'])
def test_trailing_newline_in_names_is_rejected(domains, customers, key):
    """``$`` in a regular expression also matches before a final newline: a name must match entirely."""
    with pytest.raises(ConfigError, match=key):
        compile_rules(domains, customers)


@pytest.mark.parametrize('match', [[], ''])
def test_explicitly_empty_customer_match_is_an_error(match):
    """An empty ``match`` must not silently become the default ``<name>_*``."""
    with pytest.raises(ConfigError, match='customers.ACME.match'):
        compile_rules({'traffic': '*'}, {'ACME': {'match': match}})


@pytest.mark.parametrize('name', ['ACME', 'acme-2', 'A.B', '_x', '9LIVES'])
def test_good_customer_names(name):
    assert list(compile_rules({'traffic': '*'}, {name: {}}).customers) == [name]


# --- reading the batch -------------------------------------------------------------------------

def candidate(directory, name: str, data: bytes = b'a\nb\n', customer: str = 'ACME', domain: str = 'traffic') -> Candidate:
    path = write(directory, name, data)
    st = os.stat(path)
    return Candidate(customer, domain, name, st.st_size, st.st_mtime_ns / 1e9)


def test_describe_batch_reads_hash_and_records(tmp_path):
    data = b'header\n1\n2\n3'
    files, errors = describe_batch(str(tmp_path), [candidate(tmp_path, 'ACME_Traffic_1.csv', data)], LocalLocation(), 1, 2)
    assert errors == []
    assert len(files) == 1
    assert files[0]['records'] == 3
    assert files[0]['sha256'] == hashlib.sha256(data).hexdigest()
    assert files[0]['path'] == str(tmp_path / 'ACME_Traffic_1.csv')
    assert files[0]['size'] == len(data)


def test_describe_batch_errors_do_not_stop_the_others(tmp_path):
    good = [candidate(tmp_path, 'ACME_Traffic_%d.csv' % i, b'x\n' * (i + 1)) for i in range(4)]
    truncated = candidate(tmp_path, 'ACME_Tolling_1.csv.gz', gzip.compress(b'a\n' * 1000)[:-6], domain='tolling')
    batch = good[:2] + [truncated] + good[2:]
    files, errors = describe_batch(str(tmp_path), batch, LocalLocation(), 0, 3)
    assert [f['name'] for f in files] == [c.name for c in good]
    assert [f['records'] for f in files] == [1, 2, 3, 4]
    assert len(errors) == 1
    assert errors[0]['name'] == 'ACME_Tolling_1.csv.gz'
    assert errors[0]['customer'] == 'ACME'
    assert 'truncated' in errors[0]['msg']


def test_describe_batch_file_that_is_not_gzip_is_a_per_file_error(tmp_path):
    """A ``.gz`` name holding plain text (or corrupt data) fails that file only."""
    good = candidate(tmp_path, 'ACME_Traffic_1.csv', b'a\n')
    bad = candidate(tmp_path, 'ACME_Tolling_1.csv.gz', b'not gzip at all\n', domain='tolling')
    files, errors = describe_batch(str(tmp_path), [bad, good], LocalLocation(), 0, 2)
    assert [f['name'] for f in files] == ['ACME_Traffic_1.csv']
    assert [e['name'] for e in errors] == ['ACME_Tolling_1.csv.gz']


@pytest.mark.parametrize('change', ['grown', 'shrunk', 'touched', 'removed'])
def test_describe_batch_file_changed_since_listing(tmp_path, change):
    listed = candidate(tmp_path, 'ACME_Traffic_1.csv', b'a\nb\n')
    other = candidate(tmp_path, 'ACME_Traffic_2.csv', b'c\n')
    path = str(tmp_path / listed.name)
    if change == 'grown':
        write(tmp_path, listed.name, b'a\nb\nc\n', mtime=listed.mtime)
    elif change == 'shrunk':
        write(tmp_path, listed.name, b'a\n', mtime=listed.mtime)
    elif change == 'touched':
        os.utime(path, (listed.mtime + 5, listed.mtime + 5))
    else:
        os.unlink(path)
    files, errors = describe_batch(str(tmp_path), [listed, other], LocalLocation(), 0, 2)
    assert [f['name'] for f in files] == ['ACME_Traffic_2.csv']
    assert [e['name'] for e in errors] == ['ACME_Traffic_1.csv']
    if change != 'removed':
        assert 'changed while it was read' in errors[0]['msg']
    else:
        assert 'FileNotFoundError' in errors[0]['msg']


def test_describe_batch_refuses_a_symlink_swapped_in(tmp_path):
    listed = candidate(tmp_path, 'ACME_Traffic_1.csv', b'a\n')
    write(tmp_path, 'elsewhere', b'a\n', mtime=listed.mtime)
    os.unlink(str(tmp_path / listed.name))
    os.symlink(str(tmp_path / 'elsewhere'), str(tmp_path / listed.name))
    files, errors = describe_batch(str(tmp_path), [listed], LocalLocation(), 0, 1)
    assert files == []
    assert len(errors) == 1


# --- discover ----------------------------------------------------------------------------------

def test_discover_missing_source_dir(tmp_path):
    with pytest.raises(ConfigError, match='does not exist') as caught:
        discover(LocalLocation(), str(tmp_path / 'absent'), rules(), {}, 0, 0, NOW)
    assert str(tmp_path / 'absent') in caught.value.msg


def test_discover_relative_source_dir():
    with pytest.raises(ConfigError, match="source_dir.*'landing'"):
        discover(LocalLocation(), 'landing', rules(), {}, 0, 0, NOW)


def test_discover_end_to_end(tmp_path):
    write(tmp_path, 'ACME_Traffic_1.csv', b'h\n1\n2\n', mtime=OLD)
    write(tmp_path, 'ACME_Tolling_1.csv.gz', gzip.compress(b'h\n1\n'), mtime=OLD + 1)
    write(tmp_path, 'ACME_Traffic_2.csv', b'h\n1\n', mtime=OLD + 2)
    write(tmp_path, 'ACME_Traffic_young.csv', b'h\n', mtime=NOW - 5)
    write(tmp_path, 'HOOLI_Traffic_1.csv')
    write(tmp_path, 'notes.txt')
    write(tmp_path, '.hidden')
    done = {('ACME', 'ACME_Traffic_2.csv'): (4, int(OLD + 2))}
    result = discover(LocalLocation(), str(tmp_path) + '/', rules(), done, 500, 120, NOW, header_lines=1)
    assert [(f['name'], f['records']) for f in result['files']] == [('ACME_Traffic_1.csv', 2), ('ACME_Tolling_1.csv.gz', 1)]
    assert result['customers'] == {'ACME': {'traffic': 1, 'tolling': 1}, 'GLOBEX': {}}
    assert result['summary'] == {'selected': 2, 'failed': 0, 'done': 1, 'deferred': 0, 'in_flight': 1, 'ambiguous': 0,
                                 'unassigned': 1, 'unmatched': 1, 'ignored': 0, 'future': 0}
    assert result['unassigned'] == ['HOOLI_Traffic_1.csv']
    assert result['unmatched_sample'] == ['notes.txt']
    assert [x['name'] for x in result['in_flight']] == ['ACME_Traffic_young.csv']
    assert result['errors'] == []
    assert all(f['path'] == os.path.join(str(tmp_path), f['name']) for f in result['files'])


def test_discover_per_file_error_counts_as_failed(tmp_path):
    write(tmp_path, 'ACME_Traffic_1.csv', b'1\n')
    write(tmp_path, 'ACME_Tolling_1.csv.gz', gzip.compress(b'1\n2\n')[:-2], mtime=OLD + 1)
    result = discover(LocalLocation(), str(tmp_path), rules(), {}, 500, 120, NOW)
    assert result['summary']['selected'] == 1
    assert result['summary']['failed'] == 1
    assert result['customers'] == {'ACME': {'traffic': 1}, 'GLOBEX': {}}
