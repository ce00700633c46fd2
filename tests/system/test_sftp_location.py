# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SFTP location against the two real edge nodes (tests/services/edge_nodes): separate Debian 11
systems (their own sshd and Python 3.9), host keys verified, key-based logins.

Copies go through the copy engine (``_copy.plan`` + ``execute``) as ``backup_copy`` runs it: from this
host (node1 -> node2, both over SFTP) and, in the production shape, ON node2 with the Python of the
virtualenv playbooks/prepare_nodes.yml made there and the SFTP-only key it authorised on node1, pulling
from node1 into node2's local storage. Results are checked on the nodes
themselves with ``sha256sum`` and ``stat`` over ssh, independent of the collection.

The nodes are started by tests/services/edge_nodes/start.sh unless they are up (or
MNAAS_EDGES_STARTED=1 says so); only nodes started here are stopped here. These tests never skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from support.edges import BASE, EDGES, NODE_COLLECTIONS, NODE_VENV_PYTHON, Edges, prepare_shared_nodes, read_env, running
from support.playbook import REPO_ROOT

NODE_PYTHON = NODE_VENV_PYTHON   # made by playbooks/prepare_nodes.yml
TEMP_MARK = '.mnaas-tmp.'
OLD = 1_700_000_000


def _collections_root(tmp: Path) -> Path:
    """A collections root whose ansible_collections/mnaas/backup is this repository, importable from here and from the nodes."""
    root = tmp / 'collections'
    (root / 'ansible_collections' / 'mnaas').mkdir(parents=True)
    (root / 'ansible_collections' / 'mnaas' / 'backup').symlink_to(REPO_ROOT, target_is_directory=True)
    return root


@pytest.fixture(scope='module')
def edges(tmp_path_factory, ansible_env, ansible_workdir, wheelhouse):
    """The two nodes, started here unless they are up, made ready by playbooks/prepare_nodes.yml; the collection
    importable from here and from the nodes."""
    collections = _collections_root(tmp_path_factory.mktemp('sftp'))
    sys.path.insert(0, str(collections))
    started = False
    if os.environ.get('MNAAS_EDGES_STARTED') != '1' and not (running('edge1') and running('edge2')):
        proc = subprocess.run([str(EDGES / 'start.sh')], capture_output=True, text=True, timeout=180,
                              env=dict(os.environ, MNAAS_EDGES_BASE=str(BASE)), check=False)
        assert proc.returncode == 0, 'start.sh failed:\n%s\n%s' % (proc.stdout, proc.stderr)
        started = True
    nodes = Edges(read_env(BASE / 'env'), collections)
    prepare_shared_nodes(BASE, nodes.port, ansible_env, ansible_workdir, wheelhouse, tmp_path_factory.mktemp('prepare'))
    for node in ('edge1', 'edge2'):
        nodes.push_collection(node)
    yield nodes
    sys.path.remove(str(collections))
    if started:
        subprocess.run([str(EDGES / 'stop.sh')], check=True, capture_output=True, timeout=120, env=dict(os.environ, MNAAS_EDGES_BASE=str(BASE)))


@pytest.fixture(params=[True, False], ids=['fast-path', 'paramiko-path'])
def fast_path(request) -> bool:
    """The locations' ``fast_path`` (the ``sftp_fast_path`` option): the tests that move data run with paramiko's
    internals replaced (_sftp/fastpath.py) and with paramiko's own code."""
    return request.param


@pytest.fixture
def area(edges):
    """A fresh directory under /srv/mnaas on both nodes (the same path, different storage), removed afterwards."""
    path = '/srv/mnaas/itest-%s' % uuid.uuid4().hex[:10]
    yield path
    for node in ('edge1', 'edge2'):
        edges.ssh(node, 'chattr -R -i %s 2>/dev/null; rm -rf %s' % (path, path), check=False)


def _copy_mod():
    from ansible_collections.mnaas.backup.plugins.module_utils import _copy  # pylint: disable=import-outside-toplevel
    return _copy


class Counting:
    """Wraps a location's ``call`` to record every request it makes (what, path)."""

    def __init__(self, loc) -> None:
        self.calls: list = []
        original = loc.call

        def call(what, path, func, retry=True):
            self.calls.append((what, path))
            return original(what, path, func, retry)

        loc.call = call


# ---------------------------------------------------------------------------------------------

def test_copy_between_nodes_verified_on_the_nodes(edges, area, fast_path):
    """node1 -> node2 over SFTP from here: contents equal by sha256sum on each node, mtimes kept to the
    second, a second plan skips everything with one listing per directory and nothing else."""
    _copy = _copy_mod()
    files = {'ACME_%03d.csv' % i: (i * 9973 % 300_000, OLD + i * 61) for i in range(40)}
    files['BIG.csv'] = (12_000_000, OLD + 7)
    files['EMPTY.csv'] = (0, OLD + 8)
    edges.make_files('edge1', area + '/in', files)
    src, dest = edges.location('edge1', fast_path=fast_path), edges.location('edge2', fast_path=fast_path)
    transfers = [_copy.Transfer(area + '/in', area + '/backup/ACME', sync=True)]
    opts = _copy.Options(workers=4)
    plan = _copy.plan(transfers, src, dest, opts)
    assert [a.action for a in plan.actions] == [_copy.COPY] * len(files)
    outcomes = _copy.execute(plan, src, dest, opts)
    assert _copy.summarize(outcomes)['copied'] == len(files), [o.as_dict() for o in outcomes if o.status != 'copied']

    sources = edges.sha256('edge1', area + '/in')
    backups = edges.sha256('edge2', area + '/backup/ACME')
    assert backups == sources and len(sources) == len(files)
    assert {o.action.name: o.sha256 for o in outcomes} == sources
    assert edges.mtimes('edge2', area + '/backup/ACME') == {name: mtime for name, (size, mtime) in files.items()}
    assert not edges.ssh('edge2', 'find %s -name "*%s*"' % (area, TEMP_MARK)).strip()

    counting = [Counting(loc) for loc in (src, dest)]
    again = _copy.plan(transfers, src, dest, opts)
    assert {a.action for a in again.actions} == {_copy.SKIP}
    assert counting[0].calls == [('list', area + '/in')]
    assert counting[1].calls == [('list', area + '/backup/ACME')]
    assert _copy.execute(again, src, dest, opts) and edges.sha256('edge2', area + '/backup/ACME') == sources
    src.close()
    dest.close()


def test_secondary_pulls_from_primary_on_the_node(edges, area, fast_path):
    """The production shape: on node2, the Python 3.9 of its virtualenv (prepare_nodes.yml) runs the engine with
    src=SFTP(node1, the node's own key and known_hosts) and dest=local storage; twice (second: all skipped).
    The key serves SFTP alone (restrict, internal-sftp): no command runs, so small files come ahead as SFTP
    requests instead of streamed tar archives."""
    files = {'GLOBEX_%03d.csv' % i: (20_480 + i, OLD + i) for i in range(300)}
    files['GLOBEX_big.csv'] = (30_000_000, OLD + 999)
    edges.make_files('edge1', area + '/landing', files)
    script = '''
import json, sys
sys.path.insert(0, %(collections)r)
from ansible_collections.mnaas.backup.plugins.module_utils import _copy
from ansible_collections.mnaas.backup.plugins.module_utils._locations.sftp import SftpLocation
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation
import paramiko
src = SftpLocation(%(host)r, %(port)d, 'root', '/root/.ssh/id_ed25519', known_hosts='/root/.ssh/known_hosts', fast_path=%(fast_path)r)
dest = LocalLocation()
opts = _copy.Options(workers=4)
transfers = [_copy.Transfer(%(src)r, %(dest)r, sync=True)]
plan = _copy.plan(transfers, src, dest, opts)
if hasattr(src, 'prefetch'):
    src.prefetch([a.src_path for a in plan.actions if a.action == _copy.COPY])
outcomes = _copy.execute(plan, src, dest, opts)
ahead = getattr(src, '_prefetch', None)
print(json.dumps({'python': list(sys.version_info[:2]), 'paramiko': paramiko.__version__, 'summary': _copy.summarize(outcomes), 'streamed': src.can_tar(),
                  'fast_path': src.fast_path, 'warnings': src.warnings,
                  'fetched_ahead': ahead.taken if ahead is not None else 0,
                  'failed': [o.reason for o in outcomes if o.status == 'failed']}))
''' % {'collections': NODE_COLLECTIONS, 'host': edges.hosts['edge1'], 'port': edges.port,
       'src': area + '/landing', 'dest': area + '/backup2', 'fast_path': fast_path}
    import json  # pylint: disable=import-outside-toplevel
    first = json.loads(edges.ssh('edge2', NODE_PYTHON + ' -', stdin=script.encode()))
    assert first['summary']['copied'] == len(files), first
    assert first['python'] == [3, 9], first
    assert first['fast_path'] is fast_path and first['warnings'] == [], first   # the nodes' paramiko is one the tests cover
    assert not first['streamed'] and first['fetched_ahead'] == len(files) - 1, first  # all but the big one, over SFTP
    refused = edges.ssh('edge2', 'ssh -p %d -o BatchMode=yes %s true 2>&1; echo "rc=$?"' % (edges.port, edges.hosts['edge1']), check=False)
    assert 'sftp connections only' in refused and 'rc=1' in refused, refused
    assert edges.sha256('edge2', area + '/backup2') == edges.sha256('edge1', area + '/landing')
    assert edges.mtimes('edge2', area + '/backup2') == {name: mtime for name, (size, mtime) in files.items()}
    # The landing path does not exist on node2 (its own /srv/mnaas): the data really crossed SSH.
    assert edges.ssh('edge2', 'test -e %s/landing && echo yes || echo no' % area).strip() == 'no'
    second = json.loads(edges.ssh('edge2', NODE_PYTHON + ' -', stdin=script.encode()))
    assert second['summary'] == {'copied': 0, 'would_copy': 0, 'skipped': len(files), 'conflict': 0, 'failed': 0}, second


def test_host_keys_are_verified(edges, tmp_path):
    """A changed key is refused even with accept_new; an unknown one is refused by default, and accepted
    with accept_new (a warning, and the key recorded in known_hosts)."""
    from ansible_collections.mnaas.backup.plugins.module_utils._locations.sftp import SftpError  # pylint: disable=import-outside-toplevel
    lines = Path(edges.known_hosts).read_text(encoding='utf-8').splitlines()
    node1 = [line for line in lines if line.startswith('[%s]:' % edges.hosts['edge1'])][0]
    node2 = [line for line in lines if line.startswith('[%s]:' % edges.hosts['edge2'])][0]
    wrong = tmp_path / 'known_hosts_wrong'
    wrong.write_text(node1.split(' ', 1)[0] + ' ' + node2.split(' ', 1)[1] + '\n', encoding='utf-8')
    for policy in ('reject', 'accept_new'):
        with pytest.raises(SftpError) as caught:
            edges.location('edge1', known_hosts=str(wrong), host_key_policy=policy).listdir('/srv/mnaas')
        message = str(caught.value)
        assert 'HOST KEY CHANGED' in message and 'root@%s:%d' % (edges.hosts['edge1'], edges.port) in message
        assert edges.host_fingerprint('edge1') in message and edges.host_fingerprint('edge2') in message

    unknown = tmp_path / 'known_hosts_other'
    unknown.write_text(node2 + '\n', encoding='utf-8')
    with pytest.raises(SftpError) as caught:
        edges.location('edge1', known_hosts=str(unknown)).listdir('/srv/mnaas')
    assert 'is unknown' in str(caught.value) and edges.host_fingerprint('edge1') in str(caught.value)
    assert unknown.read_text(encoding='utf-8') == node2 + '\n'

    warnings = []
    loc = edges.location('edge1', known_hosts=str(unknown), host_key_policy='accept_new', warn=warnings.append)
    assert loc.listdir('/srv/mnaas') is not None
    assert len(warnings) == 1 and edges.host_fingerprint('edge1') in warnings[0]
    assert unknown.read_text(encoding='utf-8') == node2 + '\n' + node1 + '\n'
    loc.close()


def test_clear_errors_naming_host_and_path(edges, area, tmp_path):
    """A missing key file, an unreachable node and a permission-denied directory."""
    from ansible_collections.mnaas.backup.plugins.module_utils._locations.sftp import SftpError  # pylint: disable=import-outside-toplevel
    _copy = _copy_mod()
    with pytest.raises(SftpError) as caught:
        edges.location('edge1', private_key=str(tmp_path / 'no_key')).listdir('/srv/mnaas')
    assert 'private key file %s for sftp host root@%s:%d does not exist' % (tmp_path / 'no_key', edges.hosts['edge1'], edges.port) == str(caught.value)

    unreachable = edges.location('edge1', retries=1)
    unreachable.host = '127.0.0.13'
    unreachable.backoff = 0.01
    with pytest.raises(SftpError) as caught:
        unreachable.listdir('/srv/mnaas')
    assert 'cannot connect to sftp host root@127.0.0.13:%d' % edges.port in str(caught.value)
    assert 'refused' in str(caught.value) and 'gave up after 2 attempt(s)' in str(caught.value)

    edges.make_files('edge1', area + '/in', {'a.csv': (1000, OLD), 'b.csv': (2000, OLD)})
    edges.ssh('edge2', 'mkdir -p %s/locked && chattr +i %s/locked' % (area, area))
    src, dest = edges.location('edge1'), edges.location('edge2')
    opts = _copy.Options(workers=2)
    outcomes = _copy.execute(_copy.plan([_copy.Transfer(area + '/in', area + '/locked', sync=True)], src, dest, opts), src, dest, opts)
    assert [o.status for o in outcomes] == ['failed', 'failed']
    for outcome in outcomes:
        assert 'sftp://root@%s:%d%s/locked/.%s' % (edges.hosts['edge2'], edges.port, area, outcome.action.name) in outcome.reason
        assert 'permission denied' in outcome.reason
    assert src.listdir(area + '/nothing-here') is None and src.stat(area + '/nothing-here') is None
    src.close()
    dest.close()


def test_node_killed_mid_transfer(edges, area, fast_path):
    """node2 dies (every process of it) while big files are written to it: the copy fails clearly, no
    partial file is under a final name; once node2 is back the next run cleans up and completes."""
    _copy = _copy_mod()
    files = {'BIG_%d.csv' % i: (120_000_000, OLD + i) for i in range(3)}
    files.update({'small_%02d.csv' % i: (50_000, OLD + 100 + i) for i in range(10)})
    edges.make_files('edge1', area + '/in', files)
    src, dest = edges.location('edge1', retries=1, fast_path=fast_path), edges.location('edge2', retries=1, fast_path=fast_path)
    dest.backoff = 0.05
    transfers = [_copy.Transfer(area + '/in', area + '/out', sync=True)]
    opts = _copy.Options(workers=3)
    plan = _copy.plan(transfers, src, dest, opts)
    result: dict = {}

    def run() -> None:
        try:
            result['outcomes'] = _copy.execute(plan, src, dest, opts)
        except OSError as exc:  # the batch flush, outside the per-file handling, fails the run as a whole
            result['error'] = exc

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.is_alive():
            sizes = edges.ssh('edge2', 'find %s/out -name "*%s*" -size +8M 2>/dev/null | head -1' % (area, TEMP_MARK), check=False)
            if sizes.strip():
                break
            time.sleep(0.1)
        assert worker.is_alive(), 'the copy ended before a big temp file was seen: %s' % result
        edges.kill('edge2')
        worker.join(180)
        assert not worker.is_alive(), 'the copy did not end after node2 died'
    finally:
        edges.start()
    where = 'sftp host root@%s:%d' % (edges.hosts['edge2'], edges.port)
    if 'error' in result:
        assert where in str(result['error']), result['error']
        outcomes = []
    else:
        outcomes = result['outcomes']
        failed = [o for o in outcomes if o.status == 'failed']
        assert failed, 'killing node2 mid-transfer failed nothing: %s' % [o.as_dict() for o in outcomes]
        for outcome in failed:
            assert where in outcome.reason, outcome.reason
    finals = edges.sha256('edge2', area + '/out')
    sources = edges.sha256('edge1', area + '/in')
    assert all(finals[name] == sources[name] for name in finals), 'a partial file is under a final name'
    assert {o.action.name for o in outcomes if o.status == 'copied'} <= set(finals)

    src2, dest2 = edges.location('edge1', fast_path=fast_path), edges.location('edge2', fast_path=fast_path)
    plan = _copy.plan(transfers, src2, dest2, opts)
    assert plan.temps, 'the interrupted copies left their temp files, to be removed now'
    outcomes = _copy.execute(plan, src2, dest2, opts)
    assert _copy.summarize(outcomes)['failed'] == 0, [o.as_dict() for o in outcomes if o.status == 'failed']
    assert edges.sha256('edge2', area + '/out') == sources
    assert not edges.ssh('edge2', 'find %s -name "*%s*"' % (area, TEMP_MARK)).strip()
    for loc in (src, dest, src2, dest2):
        loc.close()


@pytest.mark.parametrize('stream', [True, False], ids=['tar-stream', 'sftp-pipelined'])
def test_announced_reads(edges, area, stream, fast_path):
    """Files announced with ``prefetch`` (as the engine does) come fetched ahead, as streamed tar archives
    or pipelined SFTP requests; a file removed or rewritten after the listing is not copied from stale
    data: the removed one fails naming its path, the rewritten one is refused as changed."""
    _copy = _copy_mod()
    files = {'INITECH_%03d.csv' % i: (5_000 + i * 37, OLD + i) for i in range(120)}
    files['-dash name.csv'] = (1234, OLD)
    edges.make_files('edge1', area + '/in', files)
    src = edges.location('edge1', stream_small_files=stream, fast_path=fast_path)
    dest = edges.location('edge2', fast_path=fast_path)
    transfers = [_copy.Transfer(area + '/in', area + '/out', sync=True)]
    opts = _copy.Options(workers=4)
    plan = _copy.plan(transfers, src, dest, opts)
    edges.ssh('edge1', 'cd %s/in && rm INITECH_005.csv && head -c 999 /dev/urandom > INITECH_007.csv && touch -d @%d INITECH_007.csv'
              % (area, OLD + 7))
    src.prefetch([a.src_path for a in plan.actions if a.action == _copy.COPY])
    assert src.can_tar() is stream
    outcomes = {o.action.name: o for o in _copy.execute(plan, src, dest, opts)}
    assert outcomes['INITECH_005.csv'].status == 'failed'
    assert 'sftp://root@%s:%d%s/in/INITECH_005.csv' % (edges.hosts['edge1'], edges.port, area) in outcomes['INITECH_005.csv'].reason
    assert 'no such file' in outcomes['INITECH_005.csv'].reason
    assert outcomes['INITECH_007.csv'].status == 'failed' and 'changed' in outcomes['INITECH_007.csv'].reason
    copied = {name for name, o in outcomes.items() if o.status == 'copied'}
    assert copied == set(files) - {'INITECH_005.csv', 'INITECH_007.csv'}
    assert src._prefetch.taken == len(copied)  # pylint: disable=protected-access
    sources = edges.sha256('edge1', area + '/in')
    assert edges.sha256('edge2', area + '/out') == {name: sources[name] for name in copied}
    src.close()
    dest.close()
