# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``playbooks/prepare_nodes.yml`` on two bare edge nodes: separate Debian 11 systems (tests/services/edge_nodes,
a pair of their own, started bare here and purged afterwards) with Python 3.9 and none of the collection's
libraries, reached over SSH with host keys verified.

Check mode writes nothing; the first run makes them ready (directories, a virtualenv each holding exactly the
libraries of its steps, installed offline from the wheelhouse; the secondary's key authorised on the primary for
SFTP alone; the primary's host key pinned from its own file); the second run changes nothing. Checked on the
nodes themselves over ssh, and on the host through each node's writable layer.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from support import edges as edge_nodes
from support.playbook import run_playbook

BASE = Path('/tmp/mnaas-edges-bare')
PORT = 2224
NODES = ('edge1', 'edge2')
AREA = '/srv/mnaas/prepared'
# What Ansible itself leaves on a node (its remote temporary directory), and the mount point of the test harness.
ANSIBLE_OWN = ('root/.ansible', 'tmp/')


def _service(*args: str) -> None:
    env = dict(os.environ, MNAAS_EDGES_BASE=str(BASE), MNAAS_EDGES_PORT=str(PORT))
    proc = subprocess.run([str(edge_nodes.EDGES / args[0])] + list(args[1:]), env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, '%s failed:\n%s\n%s' % (' '.join(args), proc.stdout, proc.stderr)


@pytest.fixture(scope='module')
def bare_nodes():
    """Two bare nodes of their own (another base and port than the shared pair), purged before and after."""
    _service('stop.sh', '--purge')
    _service('start.sh')
    yield edge_nodes.Edges(edge_nodes.read_env(BASE / 'env'), BASE)
    _service('stop.sh', '--purge')


def _writable(node: str) -> str:
    """SHA-256 over everything the node can write (its overlay layer, home, storage): path, mode, owner, content;
    Ansible's own remote temporary files left out."""
    digest = hashlib.sha256()
    for top in ('upper', 'home', 'storage'):
        root = BASE / node / top
        for path in sorted(root.rglob('*')):
            rel = path.relative_to(root).as_posix()
            if top in ('upper', 'home') and any(rel == own.rstrip('/') or rel.startswith(own.rstrip('/') + '/') for own in ANSIBLE_OWN):
                continue
            info = path.lstat()
            digest.update(('%s/%s %o %d %d\n' % (top, rel, info.st_mode, info.st_uid, info.st_gid)).encode('utf-8', 'surrogateescape'))
            if path.is_file() and not path.is_symlink():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def test_prepare_bare_nodes(bare_nodes, ansible_env, ansible_workdir, wheelhouse, tmp_path):
    nodes = bare_nodes
    for node in NODES:
        python = nodes.ssh(node, '/usr/bin/python3 -c "import sys; print(sys.version_info[:2])"').strip()
        assert python == '(3, 9)', python
        missing = nodes.ssh(node, '/usr/bin/python3 -c "import paramiko" 2>&1 || true')
        assert 'No module named' in missing, 'a bare node imports paramiko: %s' % missing
    group_vars = {
        'mnaas_backup_source_dir': AREA + '/MNAAS_Input',
        'mnaas_backup_customers': {c: {'backup_dir': '%s/backup1/%s' % (AREA, c), 'edge2_backup_dir': '%s/backup2/%s' % (AREA, c)}
                                   for c in ('ACME_TELEMATICS', 'GLOBEX_FLEET')},
        'mnaas_backup_state_dir': AREA + '/state',
        'mnaas_backup_manifest_file': AREA + '/manifests/MNAAS_backup_files_process_list.csv',
        'mnaas_backup_flag_file': AREA + '/flags/MNAAS_backup_files_process_ProcessStatusFile',
        'mnaas_backup_primary_location': {'port': PORT},
        'mnaas_backup_wheelhouse': str(wheelhouse),
        'mnaas_backup_dir_mode': '0750',
    }
    inventory = edge_nodes.node_inventory(BASE, tmp_path / 'inventory', group_vars)

    def prepare(*extra, name):
        return run_playbook(edge_nodes.PREPARE_PLAYBOOK, inventory, ansible_env, ansible_workdir, *extra, log=tmp_path / (name + '.log'))

    # Check mode on bare nodes: every change announced, nothing written.
    before = {node: _writable(node) for node in NODES}
    check = prepare('--check', '--diff', name='check')
    assert check.rc == 0, check
    assert check.changed('edge1') > 0 and check.changed('edge2') > 0, check
    assert '+paramiko' in check.diff_text(), check
    assert {node: _writable(node) for node in NODES} == before, 'check mode wrote on a node%s' % check
    assert nodes.ssh('edge1', 'test -e /opt/mnaas-backup && echo yes || echo no').strip() == 'no', check

    first = prepare(name='first')
    assert first.rc == 0 and first.changed('edge1') > 0 and first.changed('edge2') > 0, first
    assert 'Set ansible_python_interpreter: %s for edge2' % edge_nodes.NODE_VENV_PYTHON in first.messages('edge2'), first

    # The directories, with their modes; each node has exactly the libraries of its steps.
    for node, dirs in (('edge1', ['backup1/ACME_TELEMATICS', 'backup1/GLOBEX_FLEET', 'state', 'manifests', 'flags']),
                       ('edge2', ['backup2/ACME_TELEMATICS', 'backup2/GLOBEX_FLEET', 'state'])):
        modes = nodes.ssh(node, 'cd %s && stat -c "%%n %%a %%U" %s' % (AREA, ' '.join(dirs))).split('\n')
        assert [line for line in modes if line] == ['%s 750 root' % d for d in dirs], (node, modes)
    listing = "import json; from importlib import metadata; print(json.dumps(sorted(d.metadata['Name'].lower() for d in metadata.distributions())))"
    edge1_libs = nodes.ssh('edge1', '%s -c "%s"' % (edge_nodes.NODE_VENV_PYTHON, listing))
    edge2_libs = nodes.ssh('edge2', '%s -c "%s"' % (edge_nodes.NODE_VENV_PYTHON, listing))
    assert edge1_libs.strip() == '[]', 'the primary (SQLite, local flag) needs no library: %s' % edge1_libs
    assert '"paramiko"' in edge2_libs and 'pyhive' not in edge2_libs and '"hdfs"' not in edge2_libs and '"pip"' not in edge2_libs, edge2_libs
    version = nodes.ssh('edge2', '%s -c "import sys, paramiko; print(sys.version_info[:2], paramiko.__version__)"' % edge_nodes.NODE_VENV_PYTHON)
    assert version.startswith('(3, 9)'), version

    # Node-to-node trust: the primary accepts the secondary's key for SFTP alone; the primary's host key is pinned from its own file.
    authorized = nodes.ssh('edge1', 'cat /root/.ssh/authorized_keys')
    pull_keys = [line for line in authorized.splitlines() if 'mnaas.backup pull by edge2' in line]
    assert len(pull_keys) == 1 and pull_keys[0].startswith('restrict,command="internal-sftp" ssh-ed25519 '), authorized
    assert pull_keys[0].split()[2] == nodes.ssh('edge2', 'cat /root/.ssh/id_ed25519.pub').split()[1]
    host_key = (BASE / 'edge1' / 'ssh_host_ed25519_key.pub').read_text(encoding='utf-8').split()[1]
    known = nodes.ssh('edge2', 'cat /root/.ssh/known_hosts')
    assert known.split() == ['[%s]:%d' % (nodes.hosts['edge1'], PORT), 'ssh-ed25519', host_key], known
    refused = nodes.ssh('edge2', 'ssh -p %d -o BatchMode=yes %s id 2>&1; echo "rc=$?"' % (PORT, nodes.hosts['edge1']), check=False)
    assert 'This service allows sftp connections only.' in refused and 'rc=1' in refused, refused
    listed = nodes.ssh('edge2', 'echo "ls -1 %s" | sftp -q -b - -P %d %s' % (AREA, PORT, nodes.hosts['edge1']))
    assert 'backup1' in listed and 'state' in listed, listed

    # Idempotent, in check mode and for real.
    again_check = prepare('--check', '--diff', name='again-check')
    assert again_check.rc == 0 and again_check.changed('edge1') == 0 and again_check.changed('edge2') == 0, again_check
    again = prepare(name='again')
    assert again.rc == 0 and again.changed('edge1') == 0 and again.changed('edge2') == 0, again
    assert len([line for line in nodes.ssh('edge1', 'cat /root/.ssh/authorized_keys').splitlines() if 'mnaas.backup pull' in line]) == 1

    # A missing wheelhouse is named before anything is done.
    missing = prepare('-e', 'mnaas_backup_wheelhouse=%s' % (tmp_path / 'no-such-wheelhouse'), name='missing')
    assert missing.rc == 2 and 'mnaas_backup_wheelhouse' in missing.output and 'no-such-wheelhouse' in missing.output, missing
