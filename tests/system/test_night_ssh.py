# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whole nights of ``playbooks/customer_backup.yml`` on the two real edge nodes (tests/services/edge_nodes):
Ansible reaches both over SSH, and the secondary (edge2) pulls from the primary (edge1) over SFTP with
its own key and known_hosts, node to node, as in production.

Each test has its own directory ``/srv/mnaas/night-<id>`` on both nodes (the same path, different
storage): the landing directory, both nodes' backup directories, the state directory (locks, ledger,
SQLite warehouse), the manifest and the flag. Results are checked ON the nodes over ssh with
``sha256sum``, ``find`` and ``cat``, independent of the collection.

Permission denied: the tests run as root, which ignores mode bits, so a directory is made to deny
root with ``chattr +i`` (immutable: no entry can be created in it, even by root), on the node itself.
The nodes' storage is a directory of the host's ext4 root filesystem, which supports it
(tests/system/test_sftp_location.py relies on it too).
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from support.edges import NODE_VENV_PYTHON, NODES, OLD, TEMP_MARK
from support.playbook import Result


def _stale_lock_rerun() -> list:
    """A killed run leaves its lock (younger than the default stale_after): the rerun takes it over."""
    return ['-e', json.dumps({'mnaas_backup_lock_stale_after': 1})]


# ---------------------------------------------------------------------------------------------

def test_whole_night_over_ssh(ssh_night):
    """Both nodes over SSH: every backup equal to its source on both nodes (sha256sum on each node), the
    secondary's copies pulled across SSH from edge1, the flag SUCCESS; a second run changes nothing;
    ``--check --diff`` shows per node and customer what would be copied or is in conflict, and writes
    nothing on either node; the real run then copies exactly that."""
    night = ssh_night
    night.put_landing()
    first = night.run()
    assert first.changed('edge1') > 0 and first.changed('edge2') > 0, first
    night.assert_backups(result=first)
    assert night.read('edge1', night.flag) == 'SUCCESS\n'
    # The secondary's sources exist only on edge1 (each node has its own /srv/mnaas): the bytes crossed SSH.
    assert night.ssh('edge2', 'test -e %s && echo yes || echo no' % night.landing).strip() == 'no'
    assert night.ssh('edge2', 'test -e %s/backup1 && echo yes || echo no' % night.area).strip() == 'no'
    ledger = night.read('edge1', night.area + '/state/MNAAS_backup_files_process_ledger.csv')
    assert ledger and all(name in ledger for name in night.expected)
    counted = night.ssh('edge1', '/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('
                                 '\'SELECT COUNT(*) FROM customers_files_records_count\').fetchone()[0])" %s/state/MNAAS_backup_warehouse.sqlite'
                        % night.area)
    assert int(counted) == len(night.expected)
    # The modules ran with each node's own Python 3.9 (the virtualenv prepare_nodes.yml made), and the pull used the
    # secondary's key, which the primary accepts for SFTP alone.
    for node in NODES:
        version = night.ssh(node, '%s -c "import sys; print(sys.version_info[:2])"' % NODE_VENV_PYTHON).strip()
        assert version == '(3, 9)', (node, version)
    pull_key = night.ssh('edge2', 'cat /root/.ssh/id_ed25519.pub').split()[1]
    authorised = [line for line in night.ssh('edge1', 'cat /root/.ssh/authorized_keys').splitlines() if pull_key in line]
    assert len(authorised) == 1 and authorised[0].startswith('restrict,command="internal-sftp" '), authorised
    accepted = night.edges.host_fingerprint('edge1')
    assert accepted in night.ssh('edge2', 'ssh-keygen -lf /root/.ssh/known_hosts'), 'edge1 host key not pinned on edge2'

    second = night.run()
    assert second.changed('edge1') == 0 and second.changed('edge2') == 0, second
    night.assert_backups(result=second)

    # Two new files of ACME land, and edge2 already holds a different file under one of their names.
    new = night.add_files('ACME_TELEMATICS', 2, 4096, 'N')
    clash = night.backup_dir('edge2', 'ACME_TELEMATICS') + '/' + new[1]
    night.ssh('edge2', 'echo other > %s && touch -d @%d %s' % (clash, OLD + 5, clash))
    before = {node: night.tree(node) for node in NODES}
    check = night.run(check=True, diff=True, expect_rc=None)
    assert {node: night.tree(node) for node in NODES} == before, 'check mode wrote on a node%s' % check
    out = check.diff_text()
    for node in NODES:
        assert '--- before: %s\n' % night.backup_dir(node, 'ACME_TELEMATICS') in out, check
        assert '--- before: %s\n' % night.backup_dir(node, 'GLOBEX_FLEET') not in out, check  # nothing to do there
    assert '+%s\n' % new[0] in out and '%s  # CONFLICT' % new[1] in out, check
    assert check.changed('edge1') > 0 and check.changed('edge2') > 0, check

    night.ssh('edge2', 'rm %s' % clash)
    third = night.run()
    assert third.changed('edge2') > 0, third
    night.assert_backups(result=third)


def test_limit_each_node_alone_and_converge_after_failure(ssh_night):
    """``--limit edge1`` does only the primary's work; ``--limit edge2`` then only pulls (edge1's tree,
    directory times included, is untouched: it was only read). A permission-denied customer directory on
    each node: the preflight warns, that customer fails there (named with host and path), the others are done. A failed
    night (a backup in conflict on each node) converges with one ``--limit`` rerun per node."""
    night = ssh_night
    night.put_landing()
    primary = night.run('--limit', 'edge1')
    assert set(primary.recap) == {'edge1'}, primary
    night.assert_backups(nodes=('edge1',), result=primary)
    assert night.ssh('edge2', 'test -e %s && echo yes || echo no' % night.area).strip() == 'no', 'edge2 was touched'
    assert night.read('edge1', night.flag) == 'SUCCESS\n'

    edge1_tree = night.tree('edge1')
    secondary = night.run('--limit', 'edge2')
    assert set(secondary.recap) == {'edge2'} and secondary.changed('edge2') > 0, secondary
    night.assert_backups(result=secondary)
    assert night.tree('edge1') == edge1_tree, 'a --limit edge2 run changed something on edge1%s' % secondary
    again = night.run('--limit', 'edge2')
    assert again.changed('edge2') == 0, again

    # Directories that deny writing (root included: chattr +i), GLOBEX's on edge1 and ACME's on edge2: the
    # preflight warns naming each, those customers fail on that node, the others are done; flag FAIL.
    acme = night.add_files('ACME_TELEMATICS', 2, 5000, 'P')
    globex = night.add_files('GLOBEX_FLEET', 2, 5000, 'P')
    denied = {'edge1': night.backup_dir('edge1', 'GLOBEX_FLEET'), 'edge2': night.backup_dir('edge2', 'ACME_TELEMATICS')}
    for node, directory in denied.items():
        night.ssh(node, 'chattr +i %s' % directory)
    try:
        refused = night.run(expect_rc=2)
    finally:
        for node, directory in denied.items():
            night.ssh(node, 'chattr -i %s' % directory)
    for node, directory in denied.items():
        assert "%r is not writable: customer" % directory in refused.warnings(), 'no warning names %s%s' % (directory, refused)
        lines = refused.failures(node)
        assert lines and directory in lines[0] and 'Operation not permitted' in lines[0], 'the failure of %s does not name %s%s' % (
            node, directory, refused)
        assert 'per customer: %s 2.' % directory.rsplit('/', 1)[1] in lines[0], 'no per-customer summary on %s%s' % (node, refused)
    assert night.read('edge1', night.flag) == 'FAIL\n'
    assert set(acme) <= set(night.sha256('edge1', night.backup_dir('edge1', 'ACME_TELEMATICS'))), refused
    assert not set(globex) & set(night.sha256('edge1', night.backup_dir('edge1', 'GLOBEX_FLEET'))), refused
    assert not (set(acme) | set(globex)) & set(night.sha256('edge2', night.backup_dir('edge2', 'ACME_TELEMATICS'))
                                               | night.sha256('edge2', night.backup_dir('edge2', 'GLOBEX_FLEET'))), refused

    # A failed night: a different file already has the name of a new GLOBEX file on edge1 and of a new ACME file on edge2.
    planted = {'edge1': night.backup_dir('edge1', 'GLOBEX_FLEET') + '/' + globex[0], 'edge2': night.backup_dir('edge2', 'ACME_TELEMATICS') + '/' + acme[0]}
    for node, path in planted.items():
        night.ssh(node, 'echo planted > %s' % path)
    failed = night.run(expect_rc=2)
    assert failed.failed('edge1') == 1 and failed.failed('edge2') == 1, failed
    for node, path in planted.items():
        lines = failed.failures(node)
        assert lines and path in lines[0] and 'different content' in lines[0], 'the failure of %s does not name %s%s' % (node, path, failed)
    assert night.read('edge1', night.flag) == 'FAIL\n'
    # What each node could do, it did; edge2 copied only what edge1 backed up (not GLOBEX's file in conflict there).
    assert set(acme) <= set(night.sha256('edge1', night.backup_dir('edge1', 'ACME_TELEMATICS')))
    assert set(night.sha256('edge2', night.backup_dir('edge2', 'GLOBEX_FLEET'))) & set(globex) == {globex[1]}
    assert not night.temps('edge1') and not night.temps('edge2')

    for node, path in planted.items():
        night.ssh(node, 'rm %s' % path)
    edge2_tree = night.tree('edge2')
    rerun1 = night.run('--limit', 'edge1')
    assert set(rerun1.recap) == {'edge1'} and rerun1.changed('edge1') > 0, rerun1
    night.assert_backups(nodes=('edge1',), result=rerun1)
    assert night.tree('edge2') == edge2_tree, 'a --limit edge1 run changed something on edge2%s' % rerun1
    assert night.read('edge1', night.flag) == 'SUCCESS\n'
    edge1_tree = night.tree('edge1')
    rerun2 = night.run('--limit', 'edge2')
    assert rerun2.changed('edge2') > 0, rerun2
    night.assert_backups(result=rerun2)
    assert night.tree('edge1') == edge1_tree, 'a --limit edge2 run changed something on edge1%s' % rerun2
    whole = night.run()
    assert whole.changed('edge1') == 0 and whole.changed('edge2') == 0, whole


def test_secondary_killed_mid_transfer(ssh_night):
    """edge2 (its sshd and every process of it, the pulling module included) is killed while big files
    are crossing: the run fails naming edge2, the flag says FAIL, no partial file is under a final name
    on edge2; once edge2 is back, the next run cleans up and completes."""
    night = ssh_night
    night.put_landing(files_per_domain=2)
    big = night.add_files('GLOBEX_FLEET', 3, 120_000_000, 'B')
    log = night.tmp / 'killed.log'
    proc = night.start(log=log)
    killed = False
    try:
        deadline = time.monotonic() + 300
        pattern = '%s/backup2 -name "*%s*" -size +8M' % (night.area, TEMP_MARK)
        while time.monotonic() < deadline and proc.poll() is None:
            if night.ssh('edge2', 'find %s 2>/dev/null | head -1' % pattern, check=False).strip():
                night.edges.kill('edge2')
                killed = True
                break
            time.sleep(0.1)
        assert killed, 'the run ended (rc %s) before a big file was seen crossing to edge2:\n%s' % (proc.poll(), log.read_text())
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        night.edges.start()
    killed_run = Result.read(proc.args, proc.returncode, log, 0.0)
    output = killed_run.output
    assert proc.returncode != 0, output
    assert killed_run.failures('edge2'), killed_run  # failed or unreachable
    assert night.read('edge1', night.flag) == 'FAIL\n', output
    sources = night.sha256('edge1', night.landing)
    finals = night.sha256('edge2', night.backup_dir('edge2', 'GLOBEX_FLEET'))
    assert all(finals[name] == sources[name] for name in finals), 'a partial file is under a final name on edge2'
    assert set(big) - set(finals), 'every big file was complete before the kill: it did not land mid-transfer'
    # Each node has its own lock: edge1 gave its back; the killed run's lock stays on edge2.
    lock = night.area + '/state/MNAAS_backup_files_process.sem'
    assert night.read('edge1', lock) is None and night.read('edge2', lock) is not None, output

    rerun = night.run(*_stale_lock_rerun())
    assert rerun.changed('edge2') > 0, rerun
    night.assert_backups(result=rerun)
    assert night.read('edge1', night.flag) == 'SUCCESS\n'


def test_bad_connections_named_and_nothing_written(ssh_night):
    """A changed host key of the primary (node to node, and Ansible's own), a missing key file and an
    unreachable primary stop the run before anything but the flag FAIL is written, each error naming host and path;
    an unreachable secondary fails only itself, named, and the flag says FAIL."""
    night = ssh_night
    night.put_landing(files_per_domain=1)
    edges = night.edges
    primary = 'root@%s:%d' % (edges.hosts['edge1'], edges.port)
    lines = Path(edges.known_hosts).read_text(encoding='utf-8').splitlines()
    edge1_line = [line for line in lines if line.startswith('[%s]:' % edges.hosts['edge1'])][0]
    edge2_line = [line for line in lines if line.startswith('[%s]:' % edges.hosts['edge2'])][0]
    changed_known_hosts = night.area + '/known_hosts_changed'      # on edge2: edge1's name with edge2's key
    night.ssh('edge2', 'mkdir -p %s && echo %s > %s' % (night.area, shlex.quote(edge1_line.split(' ', 1)[0] + ' ' + edge2_line.split(' ', 1)[1]),
                                                        changed_known_hosts))
    before = {node: night.tree(node) for node in NODES}
    cases = {
        'changed host key': ({'port': edges.port, 'known_hosts': changed_known_hosts},
                             'HOST KEY CHANGED for sftp host %s' % primary),
        'missing key file': ({'port': edges.port, 'private_key': '/root/.ssh/no_such_key'},
                             'private key file /root/.ssh/no_such_key for sftp host %s does not exist' % primary),
        'unreachable primary': ({'host': '127.0.0.13', 'port': edges.port, 'retries': 1},
                                'cannot connect to sftp host root@127.0.0.13:%d' % edges.port),
    }
    flag_name = night.flag.rsplit('/', 1)[1]
    for label, (location, message) in cases.items():
        result = night.run('-e', json.dumps({'mnaas_backup_primary_location': location}), expect_rc=2)
        fatal = result.failures('edge2')
        assert fatal and message in fatal[0] and 'mnaas_backup_primary_location' in fatal[0], '%s: %s' % (label, result)
        # The settings are sound, a node is not ready: the one thing written is the flag FAIL, for downstream jobs
        # (the first case writes it, with the area's mtime; the others find it so and leave it).
        assert night.read('edge1', night.flag) == 'FAIL\n', '%s: no FAIL flag%s' % (label, result)
        after = {node: night.tree(node) for node in NODES}
        written = set(after['edge1'].splitlines()) ^ set(before['edge1'].splitlines())
        assert after['edge2'] == before['edge2'] and all(flag_name in line or line.startswith('. d ') for line in written), (
            '%s: something else was written: %s%s' % (label, sorted(written), result))
        before = after

    # Ansible's own connection to edge2 with a changed host key, then with edge2 unreachable: edge1 runs alone.
    wrong = night.tmp / 'controller_known_hosts'
    wrong.write_text(edge1_line + '\n' + edge2_line.split(' ', 1)[0] + ' ' + edge1_line.split(' ', 1)[1] + '\n', encoding='utf-8')
    # No ControlPersist here: a master connection left by an earlier run would skip the host key check.
    changed_key = night.write_inventory(ansible_ssh_args='-C -o ControlMaster=no', ansible_ssh_common_args=(
        '-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes' % wrong))
    refused = night.run(expect_rc=4, inventory=changed_key)
    assert refused.recap['edge2']['unreachable'] == 1 and 'Host key verification failed' in refused.output, refused
    assert night.read('edge1', night.flag) == 'FAIL\n', refused
    unreachable = night.write_inventory(ansible_host='127.0.0.13')
    gone = night.run(expect_rc=4, inventory=unreachable)
    lines = gone.failures('edge2', 'unreachable')
    assert lines and '127.0.0.13' in gone.output, gone
    assert night.read('edge1', night.flag) == 'FAIL\n', gone
    night.assert_backups(nodes=('edge1',), result=gone)


def _without_flag(tree: str) -> list:
    """A node's tree but the flag file and the area directory itself (whose mtime the flag's creation touches)."""
    return [line for line in tree.splitlines() if 'ProcessStatusFile' not in line and not line.startswith('. d')]


def test_missing_libraries_stop_the_night_before_any_write(ssh_night):
    """Nodes whose Python lacks what their steps import, each an empty virtualenv: the primary configured with the hive
    engine (no PyHive), the secondary pulling over SFTP (no paramiko). Each node's preflight names each missing
    library and how to install it; the night stops on both before anything is written but the FAIL flag. Then a
    secondary whose interpreter does not exist at all (its preflight cannot run) stops the night the same way."""
    night = ssh_night
    night.put_landing(files_per_domain=2)
    bare = '/opt/mnaas-bare-venv'
    for node in NODES:
        night.ssh(node, 'rm -rf %s && /usr/bin/python3 -m venv --without-pip %s' % (bare, bare))
    trees = {node: _without_flag(night.tree(node)) for node in NODES}
    hive = {'ansible_python_interpreter': bare + '/bin/python', 'mnaas_backup_warehouse_engine': 'hive',
            'mnaas_backup_warehouse_host': '127.0.0.1', 'mnaas_backup_warehouse_port': 10000}
    result = night.run('-e', json.dumps(hive), expect_rc=2)
    fatal = {node: result.failures(node) for node in NODES}
    edge1, edge2 = ' '.join(fatal['edge1']), ' '.join(fatal['edge2'])
    for library in ('PyHive', 'thrift', 'thrift-sasl', 'pure-sasl'):
        assert library in edge1, 'edge1 does not name %s%s' % (library, result)
    assert 'paramiko' in edge2 and 'PyHive' not in edge2, result
    assert 'paramiko' not in edge1, result
    assert 'prepare_nodes' in edge1 and 'prepare_nodes' in edge2, result
    assert 'Not ready: edge1, edge2' in edge1, result
    assert night.read('edge1', night.flag) == 'FAIL\n', result
    for node in NODES:
        assert _without_flag(night.tree(node)) == trees[node], '%s: something was written%s' % (node, result)
        assert night.ssh(node, 'ls %s/lib/python3.9/site-packages' % bare).split() == [], 'the preflight installed something'

    # A secondary whose interpreter is missing: its preflight never ran, so it is not ready either.
    night.ssh('edge1', 'rm -f %s' % shlex.quote(night.flag))
    trees = {node: _without_flag(night.tree(node)) for node in NODES}
    broken = night.write_inventory(ansible_python_interpreter='/nonexistent/bin/python')
    result = night.run(inventory=broken, expect_rc=2)
    assert 'Not ready: edge2' in result.errors() and '/nonexistent/bin/python' in result.errors(), result
    assert night.read('edge1', night.flag) == 'FAIL\n', result
    for node in NODES:
        assert _without_flag(night.tree(node)) == trees[node], '%s: something was written%s' % (node, result)
