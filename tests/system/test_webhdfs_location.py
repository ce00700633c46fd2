# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The WebHDFS location and the copy engine against a real HDFS (Hadoop 3.4.1 MiniDFSCluster).

The cluster is the one tests/services/hdfs/start.sh runs (NameNode + DataNode in one JVM, WebHDFS on
127.0.0.1:9870). The module fixture starts it when it does not answer and then stops it at the end;
with MNAAS_HDFS_STARTED=1 (the Makefile started it for the whole run) it must already answer and is
left running. A cluster that cannot be started is a failure, never a skip.

Contents are checked with Hadoop's own client, FsShell (``-cat``, ``-checksum``), and with plain HTTP
requests to WebHDFS, independent of the code under test.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
HDFS_SERVICE = REPO_ROOT / 'tests' / 'services' / 'hdfs'
WEBHDFS = 'http://127.0.0.1:9870'
OLD = 1_700_000_000.0


def _collection_module(name: str):
    """A module of this collection, importable from the repository (linked as ansible_collections/mnaas/backup)."""
    try:
        importlib.import_module('ansible_collections.mnaas.backup.plugins')
    except ImportError:
        root = Path(tempfile.mkdtemp(prefix='mnaas-collection-'))
        (root / 'ansible_collections' / 'mnaas').mkdir(parents=True)
        (root / 'ansible_collections' / 'mnaas' / 'backup').symlink_to(REPO_ROOT, target_is_directory=True)
        sys.path.insert(0, str(root))
        importlib.invalidate_caches()
    return importlib.import_module('ansible_collections.mnaas.backup.plugins.module_utils.' + name)


_copy = _collection_module('_copy')
hc = _collection_module('_hdfs_checksum')
webhdfs = _collection_module('_locations.webhdfs')
LocalLocation = _collection_module('_locations.local').LocalLocation


# ---------------------------------------------------------------------------------------------
# The service and independent tools


def answering() -> bool:
    try:
        return requests.get(WEBHDFS + '/webhdfs/v1/?op=LISTSTATUS&user.name=root', timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope='module')
def hdfs_url():
    """WebHDFS of the test cluster: started here unless it answers; stopped here only if started here."""
    if os.environ.get('MNAAS_HDFS_STARTED') == '1':
        if not answering():
            pytest.fail('MNAAS_HDFS_STARTED=1 but WebHDFS does not answer on %s (tests/services/hdfs/start.sh)' % WEBHDFS)
        yield WEBHDFS
        return
    started = False
    if not answering():
        result = subprocess.run([str(HDFS_SERVICE / 'start.sh')], capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            pytest.fail('tests/services/hdfs/start.sh failed (exit %d):\n%s%s' % (result.returncode, result.stdout, result.stderr))
        started = True
    try:
        yield WEBHDFS
    finally:
        if started:
            subprocess.run([str(HDFS_SERVICE / 'stop.sh')], capture_output=True, timeout=120, check=False)


def fsshell(*args: str, user: str | None = None) -> bytes:
    """Hadoop's FsShell (``hdfs dfs``); its standard output, failing the test with its errors."""
    env = dict(os.environ)
    if user:
        env['HADOOP_USER_NAME'] = user
    result = subprocess.run([str(HDFS_SERVICE / 'fsshell.sh'), *args], capture_output=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, 'fsshell.sh %s failed:\n%s' % (' '.join(args), result.stderr.decode(errors='replace'))
    return result.stdout


def liststatus(path: str) -> dict[str, dict]:
    """A plain WebHDFS LISTSTATUS, without the code under test."""
    answer = requests.get(WEBHDFS + '/webhdfs/v1' + path, params={'op': 'LISTSTATUS', 'user.name': 'root'}, timeout=30)
    answer.raise_for_status()
    return {s['pathSuffix']: s for s in answer.json()['FileStatuses']['FileStatus']}


class Recorder:
    """Wraps a location's session: every WebHDFS request it makes, as (op, path)."""

    def __init__(self, location) -> None:
        self.calls: list[tuple[str, str]] = []
        self.hosts: list[str] = []
        inner = location.session.request

        def request(method, url, *args, **kwargs):
            params = kwargs.get('params') or {}
            self.calls.append((params.get('op', method), url.split('/webhdfs/v1', 1)[-1]))
            self.hosts.append(url.split('/webhdfs/v1', 1)[0])
            return inner(method, url, *args, **kwargs)

        location.session.request = request

    def ops(self) -> list[str]:
        return [op for op, _path in self.calls]


@pytest.fixture
def base(hdfs_url) -> str:
    """A fresh HDFS directory of this test (the cluster may be shared by the whole run)."""
    path = '/it-webhdfs/%s' % uuid.uuid4().hex[:10]
    requests.put(hdfs_url + '/webhdfs/v1' + path, params={'op': 'MKDIRS', 'user.name': 'root'}, timeout=30).raise_for_status()
    return path


def location(**options):
    return webhdfs.from_options(dict({'urls': [WEBHDFS], 'hdfs_user': 'root'}, **options), 'dest')


def landing(tmp_path: Path, files: dict[str, bytes], mtime: float = OLD) -> str:
    src = tmp_path / 'landing'
    src.mkdir(exist_ok=True)
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.utime(src / name, (mtime, mtime))
    return str(src)


def copy(src: str, dest: str, loc, **opts):
    options = _copy.Options(**opts)
    the_plan = _copy.plan([_copy.Transfer(src, dest, sync=True)], LocalLocation(), loc, options)
    return the_plan, _copy.execute(the_plan, LocalLocation(), loc, options)


# ---------------------------------------------------------------------------------------------
# Tests


FILES = {
    'ACME_Traffic_20261124_0001.csv': b'msisdn,bytes\n' + b''.join(b'3361234%04d,%d\n' % (i, i * 7) for i in range(2000)),
    'ACME_Activations_20261124_0001.csv': os.urandom(3000),
    'ACME_Empty_20261124.csv': b'',
}


def test_upload_content_checksum_and_mtime(tmp_path, base):
    src = landing(tmp_path, FILES)
    for index, name in enumerate(sorted(FILES)):
        os.utime(os.path.join(src, name), (OLD + index + 0.75, OLD + index + 0.75))
    loc = location()
    dest = base + '/ACME'
    the_plan, outcomes = copy(src, dest, loc, workers=3)
    assert [a.action for a in the_plan.actions] == [_copy.COPY] * 3
    assert {o.status for o in outcomes} == {'copied'}

    names = sorted(FILES)
    # Content, read back by Hadoop's own client.
    assert fsshell('-cat', *['%s/%s' % (dest, n) for n in names]) == b''.join(FILES[n] for n in names)
    # HDFS's checksum (computed by the DataNode) equals the one computed here from the local bytes.
    lines = fsshell('-checksum', *['%s/%s' % (dest, n) for n in names]).decode().splitlines()
    for name, line in zip(names, lines):
        assert line.startswith('%s/%s\t' % (dest, name))
        with open(os.path.join(src, name), 'rb') as stream:
            assert hc.parse_fsshell(line) == hc.compute(stream), name
    # Modification times preserved (to the millisecond HDFS keeps), no temporary file left.
    listing = liststatus(dest)
    assert set(listing) == set(FILES)
    for index, name in enumerate(names):
        assert listing[name]['modificationTime'] == int((OLD + index + 0.75) * 1000)
        assert listing[name]['length'] == len(FILES[name])


def test_second_run_is_one_liststatus_per_directory(tmp_path, base):
    src = landing(tmp_path, FILES)
    loc = location()
    transfers = [_copy.Transfer(src, base + '/one', sync=True), _copy.Transfer(src, base + '/two', sync=True)]
    opts = _copy.Options()
    _copy.execute(_copy.plan(transfers, LocalLocation(), loc, opts), LocalLocation(), loc, opts)
    recorder = Recorder(loc)
    again = _copy.plan(transfers, LocalLocation(), loc, opts)
    assert {a.action for a in again.actions} == {_copy.SKIP} and len(again.actions) == 6
    assert recorder.calls == [('LISTSTATUS', base + '/one'), ('LISTSTATUS', base + '/two')]
    outcomes = _copy.execute(again, LocalLocation(), loc, opts)
    assert {o.status for o in outcomes} == {'skipped'}
    assert recorder.ops() == ['LISTSTATUS', 'LISTSTATUS']


def test_compare_checksum_detects_a_change_without_download(tmp_path, base):
    src = landing(tmp_path, FILES)
    loc = location()
    copy(src, base, loc)
    # Same size and mtime, other bytes: only a content comparison sees it.
    changed = 'ACME_Activations_20261124_0001.csv'
    data = bytearray(FILES[changed])
    data[1234] ^= 0xFF
    Path(src, changed).write_bytes(bytes(data))
    os.utime(os.path.join(src, changed), (OLD, OLD))
    transfers = [_copy.Transfer(src, base, sync=True)]
    assert {a.action for a in _copy.plan(transfers, LocalLocation(), loc, _copy.Options()).actions} == {_copy.SKIP}
    recorder = Recorder(loc)
    decided = {a.name: a.action for a in _copy.plan(transfers, LocalLocation(), loc, _copy.Options(compare='checksum')).actions}
    assert decided == {changed: _copy.CONFLICT, 'ACME_Traffic_20261124_0001.csv': _copy.SKIP, 'ACME_Empty_20261124.csv': _copy.SKIP}
    assert 'OPEN' not in recorder.ops()
    assert recorder.ops().count('GETFILECHECKSUM') == 3


def test_multi_block_checksum_equals_the_local_computation(tmp_path, base):
    # 3.5 MiB in blocks of 1 MiB: four block MD5s, zero-padded to 64 bytes before the file MD5.
    data = os.urandom(3 * 1024 * 1024 + 512 * 1024 + 17)
    local = tmp_path / 'big.bin'
    local.write_bytes(data)
    fsshell('-D', 'dfs.blocksize=1048576', '-put', str(local), base + '/big.bin')
    line = fsshell('-checksum', base + '/big.bin').decode().strip()
    assert hc.parse_fsshell(line) == hc.compute(io.BytesIO(data), 1024 * 1024)
    remote = location().checksum(base + '/big.bin')
    assert remote.algorithm == 'MD5-of-2048MD5-of-512CRC32C'
    assert remote.compute_like(io.BytesIO(data)) == remote
    assert remote.compute_like(io.BytesIO(data[:-1] + b'\0')) != remote


def test_conflict_is_not_overwritten(tmp_path, base):
    src = landing(tmp_path, {'a.csv': b'ours, from the landing directory\n'})
    theirs = b'theirs, already in HDFS\n'
    answer = requests.put(WEBHDFS + '/webhdfs/v1' + base + '/a.csv', params={'op': 'CREATE', 'user.name': 'root'},
                          allow_redirects=False, timeout=30)
    requests.put(answer.headers['Location'], data=theirs, timeout=30).raise_for_status()
    loc = location()
    the_plan, outcomes = copy(src, base, loc)
    assert [(a.action, o.status) for a, o in zip(the_plan.actions, outcomes)] == [(_copy.CONFLICT, 'conflict')]
    # RENAME onto an existing file answers false: commit refuses, nothing is replaced.
    with loc.open_write(base + '/.a.csv.mnaas-tmp.x') as writer:
        writer.write(b'ours')
    with pytest.raises(FileExistsError):
        loc.commit(base + '/.a.csv.mnaas-tmp.x', base + '/a.csv', OLD)
    assert fsshell('-cat', base + '/a.csv') == theirs
    # Leftover temporary files are removed by the next run.
    again = _copy.plan([_copy.Transfer(src, base, sync=True)], LocalLocation(), loc, _copy.Options())
    assert again.temps == [base + '/.a.csv.mnaas-tmp.x']
    _copy.execute(again, LocalLocation(), loc, _copy.Options())
    assert set(liststatus(base)) == {'a.csv'}


def test_replace_overwrites_atomically(tmp_path, base):
    src = landing(tmp_path, {'a.csv': b'new content\n'})
    loc = location()
    with loc.open_write(base + '/a.csv') as writer:
        writer.write(b'old content, longer\n')
    _plan, outcomes = copy(src, base, loc, on_conflict='overwrite')
    assert [o.status for o in outcomes] == ['copied']
    assert fsshell('-cat', base + '/a.csv') == b'new content\n'
    assert liststatus(base)['a.csv']['modificationTime'] == int(OLD * 1000)


def test_permission_denied_names_the_path_and_the_user(tmp_path, base):
    src = landing(tmp_path, {'a.csv': b'1\n', 'b.csv': b'2\n'})
    alice = location(hdfs_user='alice')
    _plan, outcomes = copy(src, base, alice)                 # base: root's, 0755
    assert {o.status for o in outcomes} == {'failed'}
    for outcome in outcomes:
        assert 'HdfsPermissionError' in outcome.reason
        assert 'as HDFS user alice' in outcome.reason
        assert 'Permission denied: user=alice, access=WRITE, inode="%s":root:supergroup:drwxr-xr-x' % base in outcome.reason
        assert '\tat ' not in outcome.reason
    with pytest.raises(PermissionError) as info:
        alice.makedirs(base + '/sub')
    assert str(info.value).startswith('MKDIRS webhdfs://127.0.0.1:9870%s/sub as HDFS user alice: Permission denied: user=alice' % base)
    assert liststatus(base) == {}


def test_a_dead_first_namenode_fails_over(tmp_path, base):
    src = landing(tmp_path, {'a.csv': b'a\n'})
    loc = location(urls=['http://127.0.0.1:1', WEBHDFS])
    recorder = Recorder(loc)
    _plan, outcomes = copy(src, base, loc)
    assert [o.status for o in outcomes] == ['copied']
    namenodes = [host for host in recorder.hosts if host in ('http://127.0.0.1:1', WEBHDFS)]
    # LISTSTATUS tried the dead one first; the one that answered is used from then on.
    assert namenodes[:2] == ['http://127.0.0.1:1', WEBHDFS]
    assert set(namenodes[2:]) == {WEBHDFS} and len(namenodes) >= 6       # MKDIRS, CREATE, SETTIMES, RENAME
    assert fsshell('-cat', base + '/a.csv') == b'a\n'


def test_all_namenodes_dead_names_the_urls():
    loc = location(urls=['http://127.0.0.1:1', 'http://127.0.0.1:2'], retries=2)
    loc.backoff = 0.01
    with pytest.raises(webhdfs.HdfsUnavailableError) as info:
        loc.listdir('/')
    assert 'no NameNode could serve it after 3 attempt(s); tried http://127.0.0.1:1 (connection refused), ' \
           'http://127.0.0.1:2 (connection refused)' in str(info.value)
