# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults injected into real nights over SSH (issue 6), on the two edge nodes of tests/services/edge_nodes:
the secondary (edge2) pulls what the primary (edge1) backed up, over SFTP, node to node.

- SIGKILL of the pulling module on edge2 (found in edge2's mount namespace by ``AnsiballZ_backup_copy.py``
  and this session's Ansible working directory in its command line) while a large file's temp holds data,
  then of the controller's whole ``ansible-playbook`` tree between two files of the pull
  (test_night_ssh.py::test_secondary_killed_mid_transfer kills edge2's whole node instead);
- the secondary's sshd reloaded (SIGHUP: it re-executes itself) and the primary's listening sshd (the SFTP
  source) stopped and started again, mid-transfer, as an operator would (tests/services/edge_nodes/restart.sh);
  then the primary's whole sshd, sessions included, stopped mid-transfer until the run has ended;
- edge2's clock hours ahead of edge1's, then hours behind (libfaketime, only in the sessions of the nodes'
  skewed-clock key, which the runs of that test use to reach edge2).

After each fault: the run's outcome is truthful (a failure names the host and what failed; the flag says FAIL
when the primary can be reached to write it, and a run never writes SUCCESS unless every file is on both nodes),
nothing partial is under a final name on either node (sha256sum on the node against the source on edge1), the
sources are untouched. Then the cause is removed and the next run converges: every file on both nodes equal to its
source with its mtime, listed once in the ledger, counted once in the warehouse, no temp, no lock, flag SUCCESS.

Points in a run are found by watching a node's storage through ``/proc/<pid>/root`` of a process of that node
(its own mount namespace), which costs no ssh login per poll; every check of a result is made on the node, over ssh.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from support.edges import BASE, CUSTOMERS, EDGES, NODES, TEMP_MARK
from support.playbook import RUN_TIMEOUT, Result, find_tool, run
from support.processes import alive, kill_tree, signal_all, wait_for

BIG = 32 * 1024 * 1024
WAIT = 240
STALE = ['-e', json.dumps({'mnaas_backup_lock_stale_after': 1})]
PULL_TASK = 'Pull what the primary backed up and recorded into the secondary backup directories'
LOCK = '/state/MNAAS_backup_files_process.sem'
LEDGER = '/state/MNAAS_backup_files_process_ledger.csv'
WAREHOUSE = '/state/MNAAS_backup_warehouse.sqlite'


# ---------------------------------------------------------------------------------------------
# The nodes' processes and storage, seen from this host

def node_processes(node: str) -> dict:
    """{pid: argv} of every process in the node's mount namespace."""
    namespace = (BASE / node / 'mntns').read_text(encoding='utf-8').strip()
    found = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if os.readlink('/proc/%s/ns/mnt' % entry) != namespace:
                    continue
                with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                    found[int(entry)] = handle.read().split(b'\0')
            except OSError:
                continue
    return found


def node_modules(night, node: str, module: str) -> list:
    """The Python processes on the node running this session's module (its AnsiballZ file lies in our Ansible working dir)."""
    wanted = ('AnsiballZ_%s.py' % module).encode()
    return [pid for pid, argv in node_processes(node).items()
            if b'python' in os.path.basename(argv[0]) and any(arg.endswith(wanted) and str(night.cwd).encode() in arg for arg in argv)]


def listener(node: str) -> int:
    return int((BASE / node / 'sshd.pid').read_text(encoding='utf-8'))


def on_node(node: str, path: str) -> Path:
    """path as the node sees it (its own /srv/mnaas), through /proc/<pid>/root of its listening sshd."""
    return Path('/proc/%d/root' % listener(node)) / path.lstrip('/')


def entries(night, node: str) -> dict:
    """{name: size} of every file in the node's backup directories of this night, temps included."""
    found = {}
    for customer in CUSTOMERS:
        try:
            with os.scandir(on_node(node, night.backup_dir(node, customer))) as listing:
                for entry in listing:
                    found[entry.name] = entry.stat().st_size
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def temp_with_data(night, node: str, names) -> bool:
    """Whether a temp file of one of these names already holds data in the node's backup directories."""
    return any(TEMP_MARK in entry and size > 0 and any(name in entry for name in names) for entry, size in entries(night, node).items())


def staged(night, node: str, earlier=()) -> dict:
    """{name: size of its temp} of the files with a temp (not among the earlier ones) in the node's backup directories."""
    return {entry[1:entry.index(TEMP_MARK)]: size for entry, size in entries(night, node).items() if TEMP_MARK in entry and entry not in earlier}


def between_files(night, node: str, sizes: dict, earlier) -> bool:
    """Whether one file of the pull is complete in its (new) temp while another has not been completely read yet."""
    temps = staged(night, node, earlier)
    complete = {name for name, size in temps.items() if sizes.get(name) == size}
    return bool(complete) and any(temps.get(name, -1) < size for name, size in sizes.items())


def sizes_of(night, node: str, directory: str) -> dict:
    out = night.ssh(node, 'find %s -maxdepth 1 -type f -printf "%%s %%P\\n"' % shlex.quote(directory))
    return {line.split(' ', 1)[1]: int(line.split(' ', 1)[0]) for line in out.splitlines()}


def wait_gone(pids, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, '%s still running after %ss' % (what, WAIT)
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# Checks, made on the nodes over ssh

def assert_nothing_partial(night, context: str) -> None:
    """Every file under a final name in either node's backup directories equals its source on edge1."""
    sources = night.sha256('edge1', night.landing)
    for node in NODES:
        for customer in CUSTOMERS:
            for name, digest in night.sha256(node, night.backup_dir(node, customer)).items():
                assert digest == sources.get(name), '%s: %s/%s is partial or wrong %s' % (node, night.backup_dir(node, customer), name, context)


def ledger_rows(night) -> list:
    return list(csv.DictReader(io.StringIO(night.read('edge1', night.area + LEDGER) or '')))


def counted(night) -> list:
    """(customer, file_name, records) of every row of the warehouse's final table on edge1."""
    script = ('import json, sqlite3, sys; print(json.dumps(sqlite3.connect(sys.argv[1]).execute('
              '"SELECT customer, file_name, records FROM customers_files_records_count").fetchall()))')
    return [tuple(row) for row in json.loads(night.ssh('edge1', '/usr/bin/python3 -c %s %s' % (shlex.quote(script), night.area + WAREHOUSE)))]


def mtimes(night, node: str, directory: str) -> dict:
    if night.ssh(node, 'test -d %s && echo yes || echo no' % shlex.quote(directory)).strip() != 'yes':
        return {}
    return night.edges.mtimes(node, directory)


def assert_converged(night, result) -> None:
    """Every expected file on both nodes equal to its source (sha256sum on the node) with the source's mtime, no temp;
    listed once in the ledger and counted once in the warehouse; the flag SUCCESS; no lock left on either node."""
    night.assert_backups(result=result)
    sources = mtimes(night, 'edge1', night.landing)
    for node in NODES:
        for customer in CUSTOMERS:
            got = mtimes(night, node, night.backup_dir(node, customer))
            assert got == {name: sources[name] for name in got}, '%s %s: mtimes not kept%s' % (node, customer, result)
    listed = [row['file_name'] for row in ledger_rows(night)]
    assert sorted(listed) == sorted(night.expected), 'ledger: twice %s, missing %s, unexpected %s%s' % (
        sorted({n for n in listed if listed.count(n) > 1}), sorted(set(night.expected) - set(listed)),
        sorted(set(listed) - set(night.expected)), result)
    records = {row['file_name']: int(row['records']) for row in ledger_rows(night)}
    rows = counted(night)
    assert sorted((customer, name) for customer, name, _count in rows) == sorted((c, n) for n, c in night.expected.items()), \
        'warehouse rows %s%s' % (rows, result)
    assert all(records[name] == count for _customer, name, count in rows), 'warehouse counts differ from the ledger%s' % result
    assert night.read('edge1', night.flag) == 'SUCCESS\n', result
    for node in NODES:
        assert night.read(node, night.area + LOCK) is None, '%s still locked%s' % (node, result)


def fatal(result, node: str) -> str:
    """The failed and unreachable results of node, one a line (read from the run's JSON events)."""
    return '\n'.join(line for line in result.errors().splitlines() if line.startswith('fatal: [%s]' % node))


# ---------------------------------------------------------------------------------------------
# SIGKILL during the secondary's pull

def test_sigkill_during_the_secondary_pull_then_convergence(ssh_night, tmp_path):
    """(a) The pulling module on edge2 is SIGKILLed while a large file's temp holds data: Ansible reports the
    module's death on edge2, edge2's rescue gives its lock back, the flag says FAIL, the temp stays hidden, nothing
    partial under a final name. (b) The controller's whole tree is SIGKILLed between two files of the next pull:
    nothing partial; the locks of both nodes and the FAIL flag stay. The next run takes the locks over and converges."""
    night = ssh_night
    night.put_landing(files_per_domain=1)
    big = night.add_files('GLOBEX_FLEET', 2, BIG, 'K')
    night.add_files('ACME_TELEMATICS', 8, 3_000_000, 'M')
    sources = night.sha256('edge1', night.landing)

    # (a) The module process on edge2.
    log = tmp_path / 'module.log'
    proc = night.start(log=log)
    wait_for(lambda: temp_with_data(night, 'edge2', big), proc, log, 'a temp of a big file holding data on edge2', WAIT)
    pids = node_modules(night, 'edge2', 'backup_copy')
    assert pids, 'no backup_copy process on edge2 while its temp grows:\n%s' % log.read_text()
    signal_all(pids, signal.SIGKILL)
    assert proc.wait(timeout=RUN_TIMEOUT) == 2, log.read_text()
    killed = Result.read(proc.args, proc.returncode, log, 0.0)
    output = killed.output
    error = fatal(killed, 'edge2')
    # The module's death (SIGKILL: exit status 128 + 9) on edge2, then the run's summary naming the task.
    assert '"rc": 137' in error and 'edge2 failed; the flag says FAIL. %s: ' % PULL_TASK in error, output
    assert not fatal(killed, 'edge1'), output
    assert night.read('edge1', night.flag) == 'FAIL\n', output
    assert_nothing_partial(night, 'after the pulling module was killed')
    assert night.temps('edge2'), 'the killed module left no temp on edge2: was it killed mid-transfer?\n%s' % output
    for node in NODES:
        assert night.read(node, night.area + LOCK) is None, '%s: lock not given back\n%s' % (node, output)
    assert night.sha256('edge1', night.landing) == sources

    # (b) The controller's whole tree, between two files of the pull: one file complete in its temp on edge2 while
    # another is still to be read (the copy commits its files together once a batch is staged). New files landed
    # meanwhile, so that the pull has many files to read one after the other.
    night.add_files('ACME_TELEMATICS', 20, 1_500_000, 'N')
    sources = night.sha256('edge1', night.landing)
    missing = set(night.expected) - set(night.sha256('edge2', night.backup_dir('edge2', 'ACME_TELEMATICS'))) \
        - set(night.sha256('edge2', night.backup_dir('edge2', 'GLOBEX_FLEET')))
    sizes = {name: size for name, size in sizes_of(night, 'edge1', night.landing).items() if name in missing}
    earlier = set(entries(night, 'edge2'))  # the temps (a) left
    log = tmp_path / 'controller.log'
    proc = night.start(log=log)
    wait_for(lambda: between_files(night, 'edge2', sizes, earlier), proc, log, 'a file staged on edge2 with others to come', WAIT)
    orphans = node_modules(night, 'edge2', 'backup_copy')
    assert orphans, 'no backup_copy process on edge2 during its pull:\n%s' % log.read_text()
    kill_tree(proc)
    # The module on edge2 runs on a terminal (Ansible's ssh -tt): the controller's death closes the session,
    # the terminal hangs up and the kernel sends the module SIGHUP. Wait for it to be gone before looking.
    wait_gone(orphans, 'the orphaned backup_copy on edge2')
    output = log.read_text(errors='replace')
    assert staged(night, 'edge2', earlier), 'the killed pull left no temp on edge2\n%s' % output
    assert_nothing_partial(night, 'after the controller was killed')
    for node in NODES:
        assert night.read(node, night.area + LOCK) is not None, '%s: the killed run left no lock\n%s' % (node, output)
    assert night.read('edge1', night.flag) == 'FAIL\n', 'the flag changed though no run finished\n%s' % output
    assert night.sha256('edge1', night.landing) == sources

    time.sleep(1.2)  # the locks older than stale_after=1
    rerun = night.run(*STALE)
    for node in NODES:
        assert 'taking over the stale lock %s held by host %s' % (night.area + LOCK, node) in rerun.warnings(), rerun
    assert_converged(night, rerun)


# ---------------------------------------------------------------------------------------------
# sshd restarted mid-transfer, as an operator would

def restart(node: str, *options) -> None:
    """tests/services/edge_nodes/restart.sh: reload (SIGHUP) or stop and start the node's listening sshd only."""
    proc = subprocess.run([str(EDGES / 'restart.sh')] + list(options) + [node], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MNAAS_EDGES_BASE=str(BASE)), check=False)
    assert proc.returncode == 0, 'restart.sh %s %s failed:\n%s%s' % (' '.join(options), node, proc.stdout, proc.stderr)


def assert_truthful(night, proc, log: Path, node: str, context: str) -> bool:
    """The run's outcome after a fault on node: a success only with every file on both nodes (then the night has
    converged), otherwise a failure naming node and what failed, the flag FAIL, nothing partial. True if it succeeded."""
    rc = proc.wait(timeout=RUN_TIMEOUT)
    result = Result.read(proc.args, rc, log, 0.0)
    if rc == 0:
        assert_converged(night, result)
        return True
    assert rc == 2, 'exit %s %s%s' % (rc, context, result)
    error = fatal(result, node)
    assert '%s failed; the flag says FAIL' % node in error or 'UNREACHABLE' in error, 'the failure does not name %s %s%s' % (node, context, result)
    assert night.read('edge1', night.flag) == 'FAIL\n', result
    assert_nothing_partial(night, context)
    return False


def test_sshd_restarted_mid_transfer_then_convergence(ssh_night, tmp_path):
    """1. The secondary's sshd reloaded (SIGHUP: the listener re-executes itself, same pid) while a large file crosses
    to edge2; 2. the primary's listening sshd (the SFTP source) stopped and started again while the next large files
    cross (a new listener; sessions are processes of their own and stay, as with `systemctl restart ssh`). Each run's
    outcome is truthful (in practice both runs go on undisturbed and succeed). 3. The primary's whole sshd stopped,
    its sessions with it, while large files cross, and down until the run ends: the pull fails naming the source and
    each file, edge1 is unreachable for the rest of the run (its lock stays, the flag there cannot be written). Started
    again, the next run takes edge1's lock over and converges."""
    night = ssh_night
    night.put_landing(files_per_domain=1)
    outcomes = {}

    # 1. edge2's listener reloaded mid-transfer.
    big = night.add_files('GLOBEX_FLEET', 2, BIG, 'R')
    sources = night.sha256('edge1', night.landing)
    log = tmp_path / 'reload-edge2.log'
    hups = (BASE / 'edge2' / 'sshd.log').read_text(errors='replace').count('Received SIGHUP')
    pid = listener('edge2')
    proc = night.start(log=log)
    wait_for(lambda: temp_with_data(night, 'edge2', big), proc, log, 'a temp of a big file holding data on edge2', WAIT)
    assert node_modules(night, 'edge2', 'backup_copy'), 'no backup_copy on edge2 while its temp grows'
    restart('edge2', '--reload')
    assert listener('edge2') == pid, 'the reload replaced the listener'
    assert (BASE / 'edge2' / 'sshd.log').read_text(errors='replace').count('Received SIGHUP') == hups + 1
    outcomes['edge2 reloaded'] = assert_truthful(night, proc, log, 'edge2', 'after edge2 sshd was reloaded')
    assert night.sha256('edge1', night.landing) == sources

    # 2. edge1's listener (the SFTP source) stopped, down for a second, started again, mid-transfer.
    big = night.add_files('GLOBEX_FLEET', 2, BIG, 'S')
    sources = night.sha256('edge1', night.landing)
    earlier = set(entries(night, 'edge2'))
    log = tmp_path / 'restart-edge1.log'
    pid = listener('edge1')
    proc = night.start(log=log)
    wait_for(lambda: any(n in big for n, size in staged(night, 'edge2', earlier).items() if size > 0),
             proc, log, 'a temp of a big file holding data on edge2', WAIT)
    assert node_modules(night, 'edge2', 'backup_copy'), 'no backup_copy on edge2 while its temp grows'
    restart('edge1', '--down', '1')
    assert listener('edge1') != pid, 'edge1 has the same listener after the restart'
    outcomes['edge1 restarted'] = assert_truthful(night, proc, log, 'edge2', 'after edge1 sshd was restarted')
    assert night.sha256('edge1', night.landing) == sources

    # 3. edge1's whole sshd stopped mid-transfer, its sessions with it (the SFTP connection edge2 reads through and
    # Ansible's own among them), and down until the run has ended; then started again.
    big = night.add_files('GLOBEX_FLEET', 2, BIG, 'T')
    sources = night.sha256('edge1', night.landing)
    flag = night.read('edge1', night.flag)
    earlier = set(entries(night, 'edge2'))
    log = tmp_path / 'stop-edge1.log'
    proc = night.start(log=log)
    wait_for(lambda: any(n in big for n, size in staged(night, 'edge2', earlier).items() if size > 0),
             proc, log, 'a temp of a big file holding data on edge2', WAIT)
    # The pull's key is for SFTP alone (prepare_nodes.yml): its sessions are served by sshd itself ("sshd: root@internal-sftp").
    assert any(b'internal-sftp' in b' '.join(argv) for argv in node_processes('edge1').values()), 'no SFTP session on edge1 to cut'
    try:
        subprocess.run([str(EDGES / 'stop.sh'), 'edge1'], check=True, capture_output=True, timeout=120,
                       env=dict(os.environ, MNAAS_EDGES_BASE=str(BASE)))
        rc = proc.wait(timeout=RUN_TIMEOUT)
    finally:
        night.edges.start()
    cut = Result.read(proc.args, rc, log, 0.0)
    output = cut.output
    assert rc == 4, output  # a host unreachable
    source = 'sftp host root@%s:%d' % (night.edges.hosts['edge1'], night.edges.port)
    error = fatal(cut, 'edge2')
    # The file in flight is read again once on a new connection (F28), which edge1 refuses: every file not copied names
    # edge1 and the reconnection that failed (before that fix: "connection to ... lost while trying to read").
    assert 'edge2 failed; the flag says FAIL' in error and 'cannot connect to %s: [Errno 111] Connection refused (gave up after' % source in error, output
    assert all(name in error for name in set(big) - set(night.sha256('edge2', night.backup_dir('edge2', 'GLOBEX_FLEET')))), output
    unreachable = fatal(cut, 'edge1')
    assert 'UNREACHABLE' in unreachable and 'port %d: Connection refused' % night.edges.port in unreachable, output
    # The flag lives on edge1, unreachable at the end of the run: it could not be written and is as it was.
    assert night.read('edge1', night.flag) == flag, output
    assert night.read('edge1', night.area + LOCK) is not None and night.read('edge2', night.area + LOCK) is None, output
    assert_nothing_partial(night, 'after edge1 sshd was stopped')
    assert night.sha256('edge1', night.landing) == sources

    time.sleep(1.2)  # edge1's lock older than stale_after=1
    rerun = night.run(*STALE)
    assert 'taking over the stale lock %s held by host edge1' % (night.area + LOCK) in rerun.warnings(), rerun
    assert_converged(night, rerun)

    if not all(outcomes.values()):
        converging = night.run()
        assert_converged(night, converging)


# ---------------------------------------------------------------------------------------------
# The destination's clock hours away from the source's

def node_clock(night, inventory: Path) -> int:
    """The epoch the module Python on edge2 sees, through Ansible's own connection of this inventory (setup's date facts)."""
    facts = run([find_tool('ansible'), '-i', inventory, 'edge2', '-m', 'ansible.builtin.setup', '-a', 'filter=ansible_date_time'],
                night.env, night.cwd, expect_rc=0)
    return int(facts.results('edge2')[0]['result']['ansible_facts']['ansible_date_time']['epoch'])


def test_destination_clock_ahead_then_behind(ssh_night, tmp_path):
    """edge2's processes see a clock 5 hours ahead of edge1's, then 5 hours behind (libfaketime in the sessions of the
    nodes' skewed-clock key, which Ansible uses for edge2 here; the node-to-node SFTP reads edge1 with its real clock).
    Files landed 2 hours ago are then 7 hours old, or 3 hours in the future, for edge2. Each time: every file backed up
    once on both nodes with its source's mtime, none held back as in flight, the rerun changes nothing, the flag SUCCESS."""
    night = ssh_night
    key = night.edges.env['MNAAS_EDGES_SKEWED_CLOCK_KEY']
    as_skewed = copy.copy(night.edges)  # the same ssh helper, logging in with the skewed-clock key
    as_skewed.key = key
    control = Path(tempfile.mkdtemp(prefix='mnaas-cp-', dir='/tmp'))  # short: a socket path has at most 107 bytes
    # Our own master connections: one made with the operator key (no skew) must not be reused for edge2.
    skewed = night.write_inventory(ansible_ssh_private_key_file=key,
                                   ansible_ssh_args='-C -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=%s/%%C' % control)
    offset_file = BASE / 'edge2' / 'clock_offset'
    night.put_landing(files_per_domain=1)
    try:
        for offset, tag in ((5 * 3600, 'A'), (-5 * 3600, 'B')):
            offset_file.write_text('%+dh\n' % (offset // 3600), encoding='utf-8')
            # Verify the skew is real: ssh date on edge2 with that key, and the module Python of Ansible's runs.
            seen = int(as_skewed.ssh('edge2', 'date +%s'))
            assert abs(seen - time.time() - offset) < 600, 'date on edge2 says %d, %+d s from here, wanted %+d' % (seen, seen - time.time(), offset)
            assert abs(int(night.ssh('edge2', 'date +%s')) - time.time()) < 600, 'the operator key sees the skew too'
            assert abs(node_clock(night, skewed) - time.time() - offset) < 600
            # Files that landed 2 hours ago: old enough for edge1 (min_age 1 hour), 7 hours old or 3 hours ahead for edge2.
            recent = {'%s_Traffic_20261126_%s%02d.csv' % (customer, tag, i): (200_000 + i, int(time.time()) - 7200 + i)
                      for customer in CUSTOMERS for i in range(3)}
            night.edges.make_files('edge1', night.landing, recent)
            night.expected.update({name: name.split('_Traffic_')[0] for name in recent})
            first = night.run(inventory=skewed)
            assert first.changed('edge2') > 0, first
            assert_converged(night, first)
            again = night.run(inventory=skewed)
            assert again.changed('edge1') == 0 and again.changed('edge2') == 0, again
            assert night.read('edge1', night.flag) == 'SUCCESS\n', again
    finally:
        offset_file.unlink(missing_ok=True)
        for socket in control.iterdir():  # the master connections of those runs
            subprocess.run(['ssh', '-o', 'ControlPath=%s' % socket, '-O', 'exit', 'edge2'], capture_output=True, timeout=30, check=False)
        shutil.rmtree(control, ignore_errors=True)
