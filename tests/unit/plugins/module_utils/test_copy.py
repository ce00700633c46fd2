# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import hashlib
import os
import typing as t

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _copy
from ansible_collections.mnaas.backup.plugins.module_utils._copy import FileSpec, Options, Transfer
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import LocationError, is_temp_name
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation
from ansible_collections.mnaas.backup.plugins.module_utils._locations.sftp import SftpError

OLD = 1_700_000_000.0
LOC = LocalLocation()


def write(directory, name: str, data: bytes, mtime: float = OLD) -> str:
    os.makedirs(str(directory), exist_ok=True)
    path = os.path.join(str(directory), name)
    with open(path, 'wb') as stream:
        stream.write(data)
    os.utime(path, (mtime, mtime))
    return path


def read(path) -> bytes:
    with open(str(path), 'rb') as stream:
        return stream.read()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def transfer(src, dest, *files, sync: bool = False) -> Transfer:
    specs = tuple(f if isinstance(f, FileSpec) else FileSpec(f) for f in files)
    return Transfer(str(src), str(dest), specs, sync)


def decisions(the_plan: _copy.Plan) -> dict[str, tuple[str, str]]:
    return {a.name: (a.action, a.reason) for a in the_plan.actions}


def plan_one(tmp_path, src_data, dest_data=None, dest_mtime=OLD, spec=None, opts=Options(), check_mode=False):
    """Plan one file ``f.csv`` from ``tmp_path/src`` to ``tmp_path/dest``; ``None`` data means absent."""
    os.makedirs(str(tmp_path / 'src'), exist_ok=True)
    os.makedirs(str(tmp_path / 'dest'), exist_ok=True)
    if src_data is not None:
        write(tmp_path / 'src', 'f.csv', src_data)
    if dest_data is not None:
        write(tmp_path / 'dest', 'f.csv', dest_data, dest_mtime)
    the_plan = _copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', spec or 'f.csv')], LOC, LOC, opts, check_mode)
    assert len(the_plan.actions) == 1
    return the_plan.actions[0]


def listing(directory) -> list[str]:
    return sorted(os.listdir(str(directory)))


# --- plan ----------------------------------------------------------------------------------------

def test_plan_copy_when_missing(tmp_path):
    action = plan_one(tmp_path, b'abc')
    assert (action.action, action.reason) == (_copy.COPY, 'missing at destination')
    assert action.src_path == str(tmp_path / 'src' / 'f.csv')
    assert action.dest_path == str(tmp_path / 'dest' / 'f.csv')


def test_plan_copy_when_dest_dir_missing(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'abc')
    the_plan = _copy.plan([transfer(tmp_path / 'src', tmp_path / 'nope' / 'dest', 'f.csv')], LOC, LOC, Options())
    assert decisions(the_plan) == {'f.csv': (_copy.COPY, 'missing at destination')}


def test_plan_skip_same_size_and_mtime(tmp_path):
    # Different bytes, same size and mtime: size_mtime trusts the stat and does not read.
    action = plan_one(tmp_path, b'abc', b'xyz', dest_mtime=OLD + 0.5)
    assert (action.action, action.reason) == (_copy.SKIP, 'same size and mtime')


def test_plan_same_size_other_mtime_same_content_is_skip(tmp_path):
    action = plan_one(tmp_path, b'abc', b'abc', dest_mtime=OLD + 3600)
    assert (action.action, action.reason) == (_copy.SKIP, 'same content, different mtime')


@pytest.mark.parametrize('dest_data', [b'xyz', b'abcd', b''])
def test_plan_different_content_is_conflict(tmp_path, dest_data):
    action = plan_one(tmp_path, b'abc', dest_data, dest_mtime=OLD + 3600)
    assert action.action == _copy.CONFLICT
    assert 'different content' in action.reason


@pytest.mark.parametrize('on_conflict, expected', [('fail', _copy.CONFLICT), ('skip', _copy.CONFLICT), ('overwrite', _copy.OVERWRITE)])
def test_plan_on_conflict(tmp_path, on_conflict, expected):
    action = plan_one(tmp_path, b'abc', b'xyz', dest_mtime=OLD + 60, opts=Options(on_conflict=on_conflict))
    assert action.action == expected


def test_plan_overwrite_never_applies_to_identical_content(tmp_path):
    action = plan_one(tmp_path, b'abc', b'abc', dest_mtime=OLD + 60, opts=Options(on_conflict='overwrite'))
    assert action.action == _copy.SKIP


def test_plan_checksum_detects_same_stat_different_content(tmp_path):
    action = plan_one(tmp_path, b'abc', b'xyz', opts=Options(compare='checksum'))
    assert action.action == _copy.CONFLICT


def test_plan_checksum_same_content_is_skip(tmp_path):
    action = plan_one(tmp_path, b'abc', b'abc', opts=Options(compare='checksum'))
    assert (action.action, action.reason) == (_copy.SKIP, 'same content')


def test_plan_checksum_uses_spec_sha256_instead_of_reading_source(tmp_path):
    """A discovered sha256 is trusted for the source side; a wrong one makes a conflict."""
    write(tmp_path / 'src', 'f.csv', b'abc')
    st = os.stat(str(tmp_path / 'src' / 'f.csv'))
    spec = FileSpec('f.csv', st.st_size, st.st_mtime, sha(b'zzz'))
    action = plan_one(tmp_path, b'abc', b'abc', spec=spec, opts=Options(compare='checksum'))
    assert action.action == _copy.CONFLICT


def test_plan_dest_is_a_directory(tmp_path):
    os.makedirs(str(tmp_path / 'dest' / 'f.csv'))
    action = plan_one(tmp_path, b'abc', opts=Options(on_conflict='overwrite'))
    assert (action.action, action.reason) == (_copy.CONFLICT, 'destination is a dir')


def test_plan_dest_is_a_symlink(tmp_path):
    write(tmp_path / 'dest', 'target', b'abc')
    os.symlink(str(tmp_path / 'dest' / 'target'), str(tmp_path / 'dest' / 'f.csv'))
    action = plan_one(tmp_path, b'abc')
    assert (action.action, action.reason) == (_copy.CONFLICT, 'destination is a link')


def test_plan_source_missing(tmp_path):
    action = plan_one(tmp_path, None)
    assert (action.action, action.reason) == (_copy.ERROR, 'source is missing')


def test_plan_source_dir_missing(tmp_path):
    the_plan = _copy.plan([transfer(tmp_path / 'absent', tmp_path / 'dest', 'f.csv')], LOC, LOC, Options())
    assert decisions(the_plan) == {'f.csv': (_copy.ERROR, 'source is missing')}


@pytest.mark.parametrize('kind', ['dir', 'link', 'other'])
def test_plan_source_not_regular(tmp_path, kind):
    os.makedirs(str(tmp_path / 'src'))
    path = str(tmp_path / 'src' / 'f.csv')
    if kind == 'dir':
        os.mkdir(path)
    elif kind == 'link':
        write(tmp_path / 'src', 'real', b'abc')
        os.symlink(str(tmp_path / 'src' / 'real'), path)
    else:
        os.mkfifo(path)
    action = plan_one(tmp_path, None)
    assert (action.action, action.reason) == (_copy.ERROR, 'source is a %s, not a regular file' % kind)


@pytest.mark.parametrize('size_delta, mtime_delta', [(1, 0), (-1, 0), (0, 1), (0, -3600)])
def test_plan_spec_mismatch_is_error(tmp_path, size_delta, mtime_delta):
    spec = FileSpec('f.csv', 3 + size_delta, OLD + mtime_delta)
    action = plan_one(tmp_path, b'abc', spec=spec)
    assert action.action == _copy.ERROR
    assert 'size or mtime' in action.reason


def test_plan_spec_match_to_the_second_is_copy(tmp_path):
    action = plan_one(tmp_path, b'abc', spec=FileSpec('f.csv', 3, OLD + 0.9))
    assert action.action == _copy.COPY


def test_plan_check_mode_spec_of_missing_source_is_copy(tmp_path):
    spec = FileSpec('f.csv', 3, OLD, sha(b'abc'))
    action = plan_one(tmp_path, None, spec=spec, check_mode=True)
    assert action.action == _copy.COPY
    assert action.src.size == 3
    # Not in check mode the same input is an error: a real run never copies a file it cannot see.
    assert plan_one(tmp_path, None, spec=spec).action == _copy.ERROR


def test_plan_check_mode_missing_source_without_spec_stat_is_error(tmp_path):
    action = plan_one(tmp_path, None, spec=FileSpec('f.csv'), check_mode=True)
    assert action.action == _copy.ERROR


@pytest.mark.parametrize('dest_data, dest_mtime, expected', [
    (b'abc', OLD, _copy.SKIP),
    (b'abc', OLD + 60, _copy.SKIP),
    (b'xyz', OLD + 60, _copy.CONFLICT),
])
def test_plan_check_mode_missing_source_existing_dest(tmp_path, dest_data, dest_mtime, expected):
    spec = FileSpec('f.csv', 3, OLD, sha(b'abc'))
    assert plan_one(tmp_path, None, dest_data, dest_mtime, spec=spec, check_mode=True).action == expected


def test_plan_check_mode_missing_source_existing_dest_without_sha256(tmp_path):
    """The source is not there to be read: planning must not fail, and must not plan a copy over the file."""
    spec = FileSpec('f.csv', 3, OLD)
    action = plan_one(tmp_path, None, b'xyz', OLD + 60, spec=spec, check_mode=True)
    assert action.action != _copy.COPY


def test_plan_sync_adds_regular_visible_files(tmp_path):
    for name in ('a.csv', 'b.csv', '.hidden', '.c.csv.mnaas-tmp.123'):
        write(tmp_path / 'src', name, b'x')
    os.mkdir(str(tmp_path / 'src' / 'subdir'))
    os.symlink(str(tmp_path / 'src' / 'a.csv'), str(tmp_path / 'src' / 'link.csv'))
    write(tmp_path / 'dest', 'b.csv', b'x')
    the_plan = _copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', sync=True)], LOC, LOC, Options())
    assert decisions(the_plan) == {'a.csv': (_copy.COPY, 'missing at destination'), 'b.csv': (_copy.SKIP, 'same size and mtime')}


def test_plan_sync_keeps_listed_specs(tmp_path):
    write(tmp_path / 'src', 'a.csv', b'x')
    the_plan = _copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', FileSpec('a.csv', 5, OLD), sync=True)], LOC, LOC, Options())
    assert decisions(the_plan)['a.csv'][0] == _copy.ERROR


def test_plan_collects_leftover_temps(tmp_path):
    write(tmp_path / 'src', 'a.csv', b'x')
    write(tmp_path / 'dest', '.a.csv.mnaas-tmp.0123456789ab', b'partial')
    write(tmp_path / 'dest', '.keep', b'')
    the_plan = _copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', 'a.csv')], LOC, LOC, Options())
    assert the_plan.temps == [str(tmp_path / 'dest' / '.a.csv.mnaas-tmp.0123456789ab')]


def test_plan_lists_each_directory_once(tmp_path):
    class Counting(LocalLocation):
        def __init__(self):
            self.calls = []

        def listdir(self, path):
            self.calls.append(('listdir', path))
            return super().listdir(path)

        def stat(self, path):
            self.calls.append(('stat', path))
            return super().stat(path)

    for i in range(20):
        write(tmp_path / 'src', 'f%02d.csv' % i, b'x')
        write(tmp_path / 'dest', 'f%02d.csv' % i, b'x')
    loc = Counting()
    the_plan = _copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', *['f%02d.csv' % i for i in range(20)])], loc, loc, Options())
    assert all(a.action == _copy.SKIP for a in the_plan.actions)
    assert sorted(loc.calls) == [('listdir', str(tmp_path / 'dest')), ('listdir', str(tmp_path / 'src'))]

    # Customers sharing one landing directory: it is listed once, each destination once.
    loc.calls.clear()
    transfers = [transfer(tmp_path / 'src', tmp_path / ('dest%d' % k), *['f%02d.csv' % i for i in range(k, 20, 4)]) for k in range(4)]
    the_plan = _copy.plan(transfers, loc, loc, Options())
    assert sorted(a.name for a in the_plan.actions if a.action == _copy.COPY) == ['f%02d.csv' % i for i in range(20)]
    assert sorted(loc.calls) == sorted([('listdir', str(tmp_path / 'src'))] + [('listdir', str(tmp_path / ('dest%d' % k))) for k in range(4)])


# --- execute -------------------------------------------------------------------------------------

def run(transfers, src_loc=LOC, dest_loc=LOC, opts=Options()) -> list[_copy.Outcome]:
    return _copy.execute(_copy.plan(transfers, src_loc, dest_loc, opts), src_loc, dest_loc, opts)


def statuses(outcomes) -> dict[str, tuple[str, str]]:
    return {o.action.name: (o.status, o.reason) for o in outcomes}


@pytest.mark.parametrize('workers', [1, 4])
def test_execute_copies_bytes_and_mtime(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(_copy, 'CHUNK', 1000)
    files = {'f%d.csv' % i: os.urandom(1000 * i + 7) for i in range(5)}
    for i, (name, data) in enumerate(sorted(files.items())):
        write(tmp_path / 'src', name, data, OLD + i)
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest' / 'new', *files)], opts=Options(workers=workers))
    assert {o.action.name: o.status for o in outcomes} == {name: 'copied' for name in files}
    for name, data in files.items():
        dest = tmp_path / 'dest' / 'new' / name
        assert sha(read(dest)) == sha(data)
        assert int(os.stat(str(dest)).st_mtime) == int(os.stat(str(tmp_path / 'src' / name)).st_mtime)
    assert {o.action.name: o.sha256 for o in outcomes} == {name: sha(data) for name, data in files.items()}
    # Sources are never touched.
    assert {name: read(tmp_path / 'src' / name) for name in files} == files


@pytest.mark.parametrize('mtime_ns', [
    1_700_000_000_000_000_000,
    1_700_000_000_123_456_789,
    1_700_000_000_500_000_000,
    1_700_000_000_999_999_999,
])
def test_execute_preserves_mtime(tmp_path, mtime_ns):
    path = write(tmp_path / 'src', 'f.csv', b'abc')
    os.utime(path, ns=(mtime_ns, mtime_ns))
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')])
    assert outcomes[0].status == 'copied'
    got = os.stat(str(tmp_path / 'dest' / 'f.csv')).st_mtime_ns
    assert got // 10 ** 9 == mtime_ns // 10 ** 9           # the same second, as stat and ls show it
    assert abs(got - mtime_ns) < 1000                      # and the sub-second part on a local file system


def test_execute_leaves_no_temp_files(tmp_path):
    for i in range(6):
        write(tmp_path / 'src', 'f%d.csv' % i, b'x' * i)
    run([transfer(tmp_path / 'src', tmp_path / 'dest', *['f%d.csv' % i for i in range(6)])])
    assert listing(tmp_path / 'dest') == ['f%d.csv' % i for i in range(6)]
    assert not [n for n in listing(tmp_path / 'src') if n.startswith('.')]


def test_execute_removes_leftover_temps(tmp_path):
    write(tmp_path / 'src', 'a.csv', b'x')
    write(tmp_path / 'dest', 'a.csv', b'x')
    write(tmp_path / 'dest', '.a.csv.mnaas-tmp.0123456789ab', b'partial')
    write(tmp_path / 'dest', '.b.csv.mnaas-tmp.ba9876543210', b'partial')
    write(tmp_path / 'dest', '.keep', b'')
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'a.csv')])
    assert statuses(outcomes) == {'a.csv': ('skipped', 'same size and mtime')}
    assert listing(tmp_path / 'dest') == ['.keep', 'a.csv']


def test_execute_second_run_skips_everything(tmp_path):
    for i in range(3):
        write(tmp_path / 'src', 'f%d.csv' % i, b'data%d' % i)
    transfers = [transfer(tmp_path / 'src', tmp_path / 'dest', *['f%d.csv' % i for i in range(3)])]
    assert _copy.summarize(run(transfers))['copied'] == 3
    second = _copy.plan(transfers, LOC, LOC, Options())
    assert [a.action for a in second.actions] == [_copy.SKIP] * 3
    assert second.temps == []
    assert _copy.summarize(_copy.execute(second, LOC, LOC, Options()))['skipped'] == 3


def test_execute_overwrite_replaces(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'new content')
    write(tmp_path / 'dest', 'f.csv', b'old', OLD + 60)
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')], opts=Options(on_conflict='overwrite'))
    assert outcomes[0].status == 'copied'
    assert read(tmp_path / 'dest' / 'f.csv') == b'new content'
    assert int(os.stat(str(tmp_path / 'dest' / 'f.csv')).st_mtime) == int(OLD)
    assert listing(tmp_path / 'dest') == ['f.csv']


def test_execute_conflict_leaves_destination(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'new content')
    write(tmp_path / 'dest', 'f.csv', b'old', OLD + 60)
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')])
    assert outcomes[0].status == 'conflict'
    assert read(tmp_path / 'dest' / 'f.csv') == b'old'


def test_execute_reports_plan_errors_as_failed(tmp_path):
    write(tmp_path / 'src', 'ok.csv', b'x')
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'ok.csv', 'missing.csv')])
    assert statuses(outcomes) == {'ok.csv': ('copied', 'missing at destination'), 'missing.csv': ('failed', 'source is missing')}


class _ModifyAtEnd:
    """A read stream that changes its file once the copy has read all of it: the source is written to meanwhile."""

    def __init__(self, stream, change):
        self.stream = stream
        self.change = change

    def read(self, size=-1):
        chunk = self.stream.read(size)
        if not chunk and self.change:
            self.change()
            self.change = None
        return chunk

    def fileno(self):
        return self.stream.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stream.close()


class ChangingSource(LocalLocation):
    """Source location where ``victim`` changes during its copy (``how``: append, touch or stat_size)."""

    def __init__(self, victim: str, how: str) -> None:
        self.victim = victim
        self.how = how

    def open_read(self, path):
        stream = super().open_read(path)
        if os.path.basename(path) != self.victim or self.how == 'stat_size':
            return stream

        def change():
            if self.how == 'append':
                st = os.stat(path)
                with open(path, 'ab') as appender:
                    appender.write(b'late row\n')
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))    # even with the mtime put back
            else:
                os.utime(path, (OLD + 7200, OLD + 7200))
        return _ModifyAtEnd(stream, change)

    def stat_read(self, reader, path):
        entry = super().stat_read(reader, path)
        if entry is not None and self.how == 'stat_size' and os.path.basename(path) == self.victim:
            return entry._replace(size=entry.size + 1)
        return entry


@pytest.mark.parametrize('how', ['append', 'touch', 'stat_size'])
def test_execute_source_changed_during_copy_is_not_committed(tmp_path, how):
    write(tmp_path / 'src', 'victim.csv', b'a\nb\n')
    write(tmp_path / 'src', 'other.csv', b'c\n')
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'victim.csv', 'other.csv')], src_loc=ChangingSource('victim.csv', how))
    result = statuses(outcomes)
    assert result['other.csv'][0] == 'copied'
    assert result['victim.csv'][0] == 'failed'
    assert 'changed while it was copied' in result['victim.csv'][1]
    assert listing(tmp_path / 'dest') == ['other.csv']


class SwappedWhileRead(LocalLocation):
    """Source location whose file is renamed over, once opened, by another of the same size and mtime."""

    def open_read(self, path):
        stream = super().open_read(path)
        twin = path + '.twin'
        with open(twin, 'wb') as handle:
            handle.write(b'x' * os.path.getsize(path))
        st = os.stat(path)
        os.utime(twin, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.rename(twin, path)
        return stream


def test_execute_source_renamed_over_while_read_is_not_committed(tmp_path):
    """The open file still gives the content discovery hashed; the name now holds another file: not committed."""
    write(tmp_path / 'src', 'f.csv', b'a\nb\n')
    spec = FileSpec('f.csv', 4, OLD, sha(b'a\nb\n'))
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', spec)], src_loc=SwappedWhileRead())
    assert (outcomes[0].status, outcomes[0].reason) == ('failed', 'source changed while it was copied; not committed, retried next run')
    assert listing(tmp_path / 'dest') == []


def lost(msg: str) -> LocationError:
    return LocationError(msg, retryable=True)


def sftp_lost(msg: str) -> SftpError:
    return SftpError(msg, retryable=True)


class DroppingSource(LocalLocation):
    """Source location whose connection drops (``error`` raised) in the middle of the first ``drops`` reads of ``victim``."""

    def __init__(self, victim: str, drops: int, error: t.Callable[[str], OSError] = lost) -> None:
        self.victim = victim
        self.drops = drops
        self.error = error
        self.opened = 0

    def open_read(self, path):
        stream = super().open_read(path)
        if os.path.basename(path) != self.victim:
            return stream
        self.opened += 1
        if self.opened > self.drops:
            return stream

        error = self.error

        class Dropping(_ModifyAtEnd):
            def read(self, size=-1):
                self.stream.read(1)
                raise error('connection to sftp host x lost while trying to read %s' % path)
        return Dropping(stream, None)


@pytest.mark.parametrize('error', [lost, sftp_lost], ids=['location', 'sftp'])
@pytest.mark.parametrize('drops, status', [(1, 'copied'), (2, 'failed')])
def test_execute_reads_a_file_again_once_after_a_lost_connection(tmp_path, drops, status, error):
    """A connection lost mid-file (a retryable error): the file is read again from the start once (the location
    reconnects); lost twice, it fails naming the cause, and no temp is left either way."""
    write(tmp_path / 'src', 'victim.csv', b'a\nb\n')
    write(tmp_path / 'src', 'other.csv', b'c\n')
    source = DroppingSource('victim.csv', drops, error)
    result = statuses(run([transfer(tmp_path / 'src', tmp_path / 'dest', 'victim.csv', 'other.csv')], src_loc=source))
    assert result['other.csv'][0] == 'copied' and result['victim.csv'][0] == status
    assert source.opened == 2
    if status == 'failed':
        assert 'lost while trying to read' in result['victim.csv'][1]
    assert listing(tmp_path / 'dest') == sorted(['other.csv'] + (['victim.csv'] if status == 'copied' else []))


@pytest.mark.parametrize('error', [LocationError, OSError, ConnectionResetError], ids=['not-retryable', 'oserror', 'builtin'])
def test_execute_does_not_read_a_file_again_after_an_error_that_is_not_retryable(tmp_path, error):
    write(tmp_path / 'src', 'victim.csv', b'a\nb\n')
    source = DroppingSource('victim.csv', 1, error)
    result = statuses(run([transfer(tmp_path / 'src', tmp_path / 'dest', 'victim.csv')], src_loc=source))
    assert result['victim.csv'] == ('failed', '%s: connection to sftp host x lost while trying to read %s'
                                    % (error.__name__, tmp_path / 'src' / 'victim.csv'))
    assert source.opened == 1
    assert listing(tmp_path / 'dest') == []


def test_execute_sha256_mismatch_is_not_committed(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'abc')
    spec = FileSpec('f.csv', 3, OLD, sha(b'abd'))
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', spec)])
    assert outcomes[0].status == 'failed'
    assert 'SHA-256' in outcomes[0].reason
    assert listing(tmp_path / 'dest') == []


def test_execute_sha256_match_is_committed(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'abc')
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', FileSpec('f.csv', 3, OLD, sha(b'abc')))])
    assert (outcomes[0].status, outcomes[0].sha256) == ('copied', sha(b'abc'))


def test_execute_destination_appearing_after_plan_is_conflict(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'from source')
    write(tmp_path / 'src', 'g.csv', b'other')
    transfers = [transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv', 'g.csv')]
    the_plan = _copy.plan(transfers, LOC, LOC, Options())
    assert [a.action for a in the_plan.actions] == [_copy.COPY, _copy.COPY]
    write(tmp_path / 'dest', 'f.csv', b'someone else', OLD + 5)
    outcomes = _copy.execute(the_plan, LOC, LOC, Options())
    assert statuses(outcomes)['f.csv'] == ('conflict', 'destination appeared during the copy; left as it is')
    assert statuses(outcomes)['g.csv'][0] == 'copied'
    assert read(tmp_path / 'dest' / 'f.csv') == b'someone else'
    assert int(os.stat(str(tmp_path / 'dest' / 'f.csv')).st_mtime) == int(OLD + 5)
    assert listing(tmp_path / 'dest') == ['f.csv', 'g.csv']


class FailingWrites(LocalLocation):
    """Destination that cannot write (``open_write``) or commit (``commit``) the file ``victim``."""

    def __init__(self, victim: str, where: str) -> None:
        self.victim = victim
        self.where = where

    def _hit(self, path: str) -> bool:
        return os.path.basename(path).startswith('.%s.' % self.victim) or os.path.basename(path) == self.victim

    def open_write(self, path):
        if self.where == 'open_write' and self._hit(path):
            raise OSError(errno.ENOSPC, 'No space left on device', path)
        return super().open_write(path)

    def commit(self, temp_path, final_path, mtime):
        if self.where == 'commit' and self._hit(final_path):
            raise PermissionError(errno.EACCES, 'Permission denied', final_path)
        return super().commit(temp_path, final_path, mtime)


@pytest.mark.parametrize('where', ['open_write', 'commit'])
def test_execute_one_failure_does_not_stop_the_others(tmp_path, where):
    names = ['f%d.csv' % i for i in range(5)]
    for name in names:
        write(tmp_path / 'src', name, name.encode())
    dest_loc = FailingWrites('f2.csv', where)
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', *names)], dest_loc=dest_loc, opts=Options(workers=2))
    result = statuses(outcomes)
    assert result.pop('f2.csv')[0] == 'failed'
    assert {name: status for name, (status, _reason) in result.items()} == {n: 'copied' for n in names if n != 'f2.csv'}
    assert listing(tmp_path / 'dest') == [n for n in names if n != 'f2.csv']
    assert all(read(tmp_path / 'dest' / n) == n.encode() for n in names if n != 'f2.csv')


def test_execute_failure_message_names_the_error(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'x')
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')], dest_loc=FailingWrites('f.csv', 'open_write'))
    assert 'No space left on device' in outcomes[0].reason


def test_execute_outcomes_sorted_by_dest_then_name(tmp_path):
    for name in ('b.csv', 'a.csv'):
        write(tmp_path / 'src', name, b'x')
    outcomes = run([transfer(tmp_path / 'src', tmp_path / 'z', 'b.csv', 'a.csv'), transfer(tmp_path / 'src', tmp_path / 'y', 'b.csv')])
    assert [(o.action.transfer.dest, o.action.name) for o in outcomes] == [
        (str(tmp_path / 'y'), 'b.csv'), (str(tmp_path / 'z'), 'a.csv'), (str(tmp_path / 'z'), 'b.csv')]


# --- reporting -----------------------------------------------------------------------------------

def mixed_plan(tmp_path, on_conflict='fail') -> _copy.Plan:
    src, dest, quiet = tmp_path / 'src', tmp_path / 'dest', tmp_path / 'quiet'
    write(src, 'copy.csv', b'new')
    write(src, 'same.csv', b'same')
    write(dest, 'same.csv', b'same')
    write(src, 'clash.csv', b'mine')
    write(dest, 'clash.csv', b'theirs!', OLD + 60)
    write(dest, '.copy.csv.mnaas-tmp.0123456789ab', b'half')
    write(quiet, 'same.csv', b'same')
    return _copy.plan([transfer(src, dest, 'copy.csv', 'same.csv', 'clash.csv', 'missing.csv'), transfer(src, quiet, 'same.csv')],
                      LOC, LOC, Options(on_conflict=on_conflict))


def test_planned_outcomes_and_summarize(tmp_path):
    outcomes = _copy.planned_outcomes(mixed_plan(tmp_path))
    assert statuses(outcomes) == {
        'copy.csv': ('would_copy', 'missing at destination'),
        'same.csv': ('skipped', 'same size and mtime'),
        'clash.csv': ('conflict', 'destination exists with different content; left as it is'),
        'missing.csv': ('failed', 'source is missing'),
    }
    assert _copy.summarize(outcomes) == {'copied': 0, 'would_copy': 1, 'skipped': 2, 'conflict': 1, 'failed': 1}
    # Planning wrote nothing.
    assert listing(tmp_path / 'dest') == ['.copy.csv.mnaas-tmp.0123456789ab', 'clash.csv', 'same.csv']


def test_planned_outcomes_overwrite_is_would_copy(tmp_path):
    outcomes = _copy.planned_outcomes(mixed_plan(tmp_path, 'overwrite'))
    assert statuses(outcomes)['clash.csv'][0] == 'would_copy'


def test_summarize_after_execute(tmp_path):
    the_plan = mixed_plan(tmp_path)
    summary = _copy.summarize(_copy.execute(the_plan, LOC, LOC, Options()))
    assert summary == {'copied': 1, 'would_copy': 0, 'skipped': 2, 'conflict': 1, 'failed': 1}
    assert not [n for n in listing(tmp_path / 'dest') if is_temp_name(n)]


def test_outcome_as_dict(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'abc')
    outcome = run([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')._replace(customer='ACME')])[0]
    assert outcome.as_dict() == {
        'name': 'f.csv', 'customer': 'ACME', 'src': str(tmp_path / 'src' / 'f.csv'), 'dest': str(tmp_path / 'dest' / 'f.csv'),
        'status': 'copied', 'reason': 'missing at destination', 'size': 3, 'mtime': OLD, 'sha256': sha(b'abc'),
    }


def test_diff(tmp_path):
    diffs = _copy.diff(mixed_plan(tmp_path))
    dest = str(tmp_path / 'dest')
    assert diffs == [{
        'before_header': dest, 'after_header': dest,
        'before': '.copy.csv.mnaas-tmp.0123456789ab\nclash.csv\nsame.csv\n',
        'after': 'clash.csv  # CONFLICT: destination exists with different content; left as it is\ncopy.csv\nsame.csv\n',
    }]


def test_diff_overwrite(tmp_path):
    diffs = _copy.diff(mixed_plan(tmp_path, 'overwrite'))
    assert diffs[0]['before'] == '.copy.csv.mnaas-tmp.0123456789ab\nclash.csv  # differs from source\nsame.csv\n'
    assert diffs[0]['after'] == 'clash.csv\ncopy.csv\nsame.csv\n'


def test_diff_empty_when_nothing_changes(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'x')
    write(tmp_path / 'dest', 'f.csv', b'x')
    assert _copy.diff(_copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')], LOC, LOC, Options())) == []


def test_diff_shows_temps_only_change(tmp_path):
    write(tmp_path / 'src', 'f.csv', b'x')
    write(tmp_path / 'dest', 'f.csv', b'x')
    write(tmp_path / 'dest', '.f.csv.mnaas-tmp.0123456789ab', b'')
    diffs = _copy.diff(_copy.plan([transfer(tmp_path / 'src', tmp_path / 'dest', 'f.csv')], LOC, LOC, Options()))
    assert [(d['before'], d['after']) for d in diffs] == [('.f.csv.mnaas-tmp.0123456789ab\nf.csv\n', 'f.csv\n')]


# --- parse_transfers -----------------------------------------------------------------------------

def test_parse_transfers():
    parsed = _copy.parse_transfers([
        {'src': '/in/', 'dest': '/out/a', 'files': ['x.csv', {'name': 'y.csv', 'size': 3, 'mtime': OLD, 'sha256': 'ab', 'customer': 'A'}],
         'customer': 'A'},
        {'src': '/in', 'dest': '/out/b', 'sync': True},
    ])
    assert parsed == [
        Transfer('/in', '/out/a', (FileSpec('x.csv'), FileSpec('y.csv', 3, OLD, 'ab')), False, 'A'),
        Transfer('/in', '/out/b', (), True, ''),
    ]


def test_add_ledger():
    rows = [
        {'customer': 'A', 'file_name': 'x.csv', 'file_size': '5', 'file_mtime': '2025-11-24T22:00:00Z', 'sha256': 'aa'},
        {'customer': 'A', 'file_name': 'z.csv', 'file_size': '7', 'file_mtime': '2025-11-24T22:00:01Z', 'sha256': 'bb'},
        {'customer': 'B', 'file_name': 'b.csv', 'file_size': '1', 'file_mtime': '2025-11-24T22:00:02Z', 'sha256': 'cc'},
    ]
    given = [Transfer('/a1', '/a2', (FileSpec('x.csv', 9, OLD, 'given'),), True, 'A'), Transfer('/c1', '/c2', (), True, 'C')]
    result = _copy.add_ledger(given, rows)
    assert result == [
        Transfer('/a1', '/a2', (FileSpec('x.csv', 9, OLD, 'given'), FileSpec('z.csv', 7, 1_764_021_601.0, 'bb')), True, 'A'),
        Transfer('/c1', '/c2', (), True, 'C'),
    ]


def test_ledger_specs_refuse_a_source_that_differs(tmp_path):
    """A file the ledger recorded with another size is not copied to the secondary."""
    write(tmp_path / 'src', 'x.csv', b'abc', 1_764_021_600.0)
    write(tmp_path / 'src', 'y.csv', b'abcd', 1_764_021_600.0)
    rows = [{'customer': 'A', 'file_name': name, 'file_size': '3', 'file_mtime': '2025-11-24T22:00:00Z', 'sha256': sha(b'abc')}
            for name in ('x.csv', 'y.csv')]
    transfers = _copy.add_ledger([Transfer(str(tmp_path / 'src'), str(tmp_path / 'dest'), (), False, 'A')], rows)
    assert {name: kind for name, (kind, _reason) in decisions(_copy.plan(transfers, LOC, LOC, Options())).items()} == {
        'x.csv': _copy.COPY, 'y.csv': _copy.ERROR}


class _Sum(t.NamedTuple):
    """A checksum a location computes itself (HDFS's MD5-of-CRC in real life; here the byte length and SHA-1)."""

    algorithm: str
    value: str

    def compute_like(self, stream) -> _Sum:
        return _Sum(self.algorithm, hashlib.sha1(stream.read()).hexdigest())


class SumLocation(LocalLocation):
    """A location that computes checksums on its side and counts its downloads."""

    def __init__(self) -> None:
        self.reads = 0

    def checksum(self, path):
        with open(path, 'rb') as stream:
            return _Sum('sha1', hashlib.sha1(stream.read()).hexdigest())

    def open_read(self, path):
        self.reads += 1
        return super().open_read(path)


@pytest.mark.parametrize('dest_data, same', [(b'abc', True), (b'xyz', False)])
def test_same_content_uses_the_location_checksum(tmp_path, dest_data, same):
    src = write(tmp_path, 'src.csv', b'abc')
    dest = write(tmp_path, 'dest.csv', dest_data)
    remote = SumLocation()
    assert _copy.same_content(LOC, src, remote, dest) is same
    assert remote.reads == 0
    assert _copy.same_content(remote, src, LOC, dest) is same
    assert remote.reads == 0
    both = SumLocation()
    assert _copy.same_content(both, src, both, dest) is same
    assert both.reads == 0


@pytest.mark.parametrize('dest_data, same', [(b'abc', True), (b'xyz', False)])
def test_same_content_local(tmp_path, dest_data, same):
    src = write(tmp_path, 'src.csv', b'abc')
    dest = write(tmp_path, 'dest.csv', dest_data)
    assert _copy.same_content(LOC, src, LOC, dest) is same
    assert _copy.same_content(LOC, src, LOC, dest, sha(b'abc')) is same
    assert _copy.same_content(LOC, src, LOC, dest, sha(dest_data)) is True


@pytest.mark.parametrize('raw, words', [
    ([{'src': 'in', 'dest': '/out'}], ['transfers[0].src', "'in'"]),
    ([{'src': '/in', 'dest': 'out/a'}], ['transfers[0].dest', "'out/a'"]),
    ([{'src': '/in', 'dest': ''}], ['transfers[0].dest', "''"]),
    ([{'dest': '/out'}], ['transfers[0].src', 'None']),
    ([{'src': '/in/../etc', 'dest': '/out'}], ['transfers[0].src', "'/in/../etc'"]),
    ([{'src': '/in', 'dest': '/out'}, {'src': '/in2', 'dest': '/out/'}], ['transfers[1].dest', "'/out'", 'transfers[0]']),
    ([{'src': '/in', 'dest': '/out', 'files': ['a/b.csv']}], ['transfers[0].files[0].name', "'a/b.csv'"]),
    ([{'src': '/in', 'dest': '/out', 'files': ['ok', {'name': '../x'}]}], ['transfers[0].files[1].name', "'../x'"]),
    ([{'src': '/in', 'dest': '/out', 'files': ['..']}], ['transfers[0].files[0].name', "'..'"]),
    ([{'src': '/in', 'dest': '/out', 'files': ['']}], ['transfers[0].files[0].name', "''"]),
    ([{'src': '/in', 'dest': '/out', 'files': [{'size': 3}]}], ['transfers[0].files[0].name', 'None']),
    ([{'src': '/in', 'dest': '/out', 'files': [7]}], ['transfers[0].files[0]', '7']),
])
def test_parse_transfers_errors(raw, words):
    with pytest.raises(ConfigError) as caught:
        _copy.parse_transfers(raw)
    for word in words:
        assert word in caught.value.msg


def test_slices_small_files_serial_between_local_filesystems():
    """Between local filesystems small files go in one pool task, large ones one each; otherwise a few per worker."""
    sizes = [10, 2 << 20, 20, 30, 5 << 20]
    parts = _copy._slices(sizes, lambda size: size, True, 4)  # pylint: disable=protected-access
    assert parts == [[10, 20, 30], [2 << 20], [5 << 20]]
    assert _copy._slices([], lambda size: size, True, 4) == []  # pylint: disable=protected-access
    parts = _copy._slices(list(range(100)), lambda size: size, False, 4)  # pylint: disable=protected-access
    assert [len(part) for part in parts] == [7] * 14 + [2]
    assert [item for part in parts for item in part] == list(range(100))


def test_local_location_copies_small_files_serially():
    """The local location says small files gain nothing from threads; remote ones wait on the network."""
    assert LocalLocation.small_files_in_parallel is False
    assert _copy.Location.small_files_in_parallel is True
