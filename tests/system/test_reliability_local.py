# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults injected into real runs on the demo inventory (issue 6): SIGKILL at several points, a full backup
filesystem, a customer directory that refuses writes, sources that change or vanish during the run, two runs
at the same moment, a stale lock. Each test injects, checks the run's outcome (nothing lost, nothing partial
visible, the flag tells the truth), removes the cause, reruns and checks that the night converged.

docs/reliability.md lists every fault and the test that shows it. The tests run as root, so refusals come
from what root cannot override: a tmpfs that is full, ``chattr +i`` (immutable) directories.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from support.night import STALE, add_big, age_in_flight, age_locks, assert_nothing_partial
from support.playbook import RUN_TIMEOUT, Result, started_task
from support.processes import WAIT, alive, kill_tree, module_pids, process_tree, signal_all, wait_for

COPY_TASK = "Copy them to the customers' primary backup directories"
LEDGER_TASK = 'Record the files as processed'


def temp_with_data(night, host: str, customer: str, name: str, earlier=()) -> bool:
    """Whether a temp file of name, not among the earlier ones, already holds data in host's backup directory of customer."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(night.backup_root(host) / customer):
            if night.temp_mark in entry.name and name in entry.name and entry.path not in earlier and entry.stat().st_size > 0:
                return True
    return False


def of_this_night(night, pid: int) -> bool:
    """Whether pid runs ansible-playbook on this demo root or a module from its Ansible working directory."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            argv = handle.read()
    except OSError:
        return False
    return str(night.root).encode() in argv or str(night.cwd).encode() in argv


def assert_converged(night, result) -> None:
    """Everything selectable backed up on both nodes and recorded, counted exactly once, SUCCESS, no temp, no lock."""
    night.assert_backups(night.expected, result)
    night.assert_counts(night.expected, result)
    night.assert_manifest(night.ledger, night.expected, result)
    assert night.flag.read_bytes() == b'SUCCESS\n', result
    night.assert_unlocked(result)


# ---------------------------------------------------------------------------------------------
# SIGKILL at several points of a night, then one run that converges

def test_sigkill_series_then_convergence(night, tmp_path):
    """Four runs killed at four points (test_failures.py::test_sigkill_mid_copy kills the whole run mid-copy):
    the whole run during discovery; only the copy module mid-copy; only ansible-playbook mid-copy (the module,
    orphaned, runs on); the whole run between the record counts and the ledger. After each: no partial file under
    a final name, the flag never SUCCESS. The next run takes the stale lock over, cleans the temps, counts each
    file exactly once."""
    age_in_flight(night)
    oldest = time.time() - 10 * 86400
    big = {'ACME_TELEMATICS': 'ACME_TELEMATICS_Traffic_20200101_9001.csv', 'GLOBEX_FLEET': 'GLOBEX_FLEET_Traffic_20200101_9002.csv'}
    for index, (customer, name) in enumerate(sorted(big.items())):
        add_big(night, customer, name, oldest + index)

    earlier = set()

    def big_temp() -> bool:
        """A temp file of a big file, holding data, that the run being watched wrote (not one an earlier run left)."""
        return any(temp_with_data(night, 'edge1', customer, name, earlier) for customer, name in big.items())

    def start(point: str):
        earlier.clear()
        earlier.update(night.temps())
        log = tmp_path / ('%s.log' % point)
        return night.start(*night.extra_vars(**STALE), log=log), log

    # 1. The whole run (controller and modules) killed while discover reads the landing directory.
    proc, log = start('discover')
    wait_for(lambda: module_pids(proc.pid, 'discover'), proc, log, 'discover process')
    kill_tree(proc)
    assert_nothing_partial(night, 'after a kill during discovery')
    assert night.lock('edge1').exists() and not night.flag.exists(), log.read_text()

    # 2. Only the module process killed mid-copy: Ansible sees the module die, the node fails, the flag says FAIL.
    age_locks(night)
    proc, log = start('module')
    wait_for(big_temp, proc, log, 'temp file of a big file holding data')
    signal_all(module_pids(proc.pid, 'backup_copy'), signal.SIGKILL)
    assert proc.wait(timeout=RUN_TIMEOUT) == 2, log.read_text()
    killed = Result.read(proc.args, proc.returncode, log, 0.0)
    output = killed.messages('edge1')
    assert 'edge1 failed; the flag says FAIL' in output and COPY_TASK in output, killed
    assert re.search(r'edge1 failed; the flag says FAIL\. .*the module process ended with exit status (137|-9)\)', output), killed
    assert night.flag.read_bytes() == b'FAIL\n', output
    night.assert_unlocked()
    assert_nothing_partial(night, 'after the copy module was killed')
    assert night.temps(), 'the killed module left no temp file: was it killed mid-copy?\n%s' % output

    # 3. Only ansible-playbook killed mid-copy; the orphaned module finishes its copy on its own.
    age_locks(night)
    proc, log = start('controller')
    wait_for(big_temp, proc, log, 'temp file of a big file holding data')
    tree = process_tree(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    copies = [night.backup('edge1', name) for name in big.values()]
    deadline = time.monotonic() + WAIT
    while not all(p.exists() for p in copies) or (set(night.temps()) - earlier):
        assert time.monotonic() < deadline, 'the orphaned module did not finish its copy within %ss: %s' % (WAIT, night.temps())
        time.sleep(0.1)
    # What is left of the dead controller's tree (an Ansible worker, the module writing its result to nobody)
    # is killed, as an operator would; the copies were committed before.
    left = [pid for pid in tree[1:] if of_this_night(night, pid)]  # not a pid reused by another process meanwhile
    signal_all(left, signal.SIGKILL)
    while any(alive(pid) for pid in left):
        time.sleep(0.05)
    assert_nothing_partial(night, 'after ansible-playbook was killed')
    assert night.lock('edge1').exists(), 'the lock of the killed run is gone'
    assert night.flag.read_bytes() == b'FAIL\n', 'the flag changed though no run finished'

    # 4. The whole run killed after the record counts were loaded, before the ledger is written.
    age_locks(night)
    proc, log = start('ledger')
    wait_for(lambda: started_task(log, LEDGER_TASK), proc, log, 'the ledger task')
    kill_tree(proc)
    assert night.final_rows(), 'the counts were not loaded before the kill:\n%s' % log.read_text()
    assert night.flag.read_bytes() == b'FAIL\n'
    assert_nothing_partial(night, 'after a kill before the ledger')

    # The next run converges: stale lock taken over with a warning, temps removed, every file counted once.
    age_locks(night)
    result = night.run(*night.extra_vars(**STALE))
    assert 'stale lock' in result.warnings() and str(night.lock('edge1')) in result.warnings(), result
    assert_converged(night, result)
    for name in big.values():
        for path in [night.landing / name] + [night.backup(host, name) for host in night.hosts]:
            path.unlink()


# ---------------------------------------------------------------------------------------------
# The primary backup filesystem is full

@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of this size mounted at path for the duration."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size, 'mnaas-reliability', str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.run(['umount', str(path)], check=False).returncode != 0:
            subprocess.run(['umount', '-l', str(path)], check=False)


def test_backup_filesystem_full(night):
    """A 2 MiB filesystem under 4 MiB of files: preflight refuses it naming the path, nothing is written but the flag FAIL
    (a node not ready; bad settings write nothing at all: test_failures.py::test_bad_input); let through, the run fails naming
    the path, flag FAIL, sources intact, the files that fit complete and intact, no temp left; once the filesystem is
    larger the next run converges without rewriting them."""
    age_in_flight(night)
    landing = night.tree_hash(night.landing, dir_mtimes=True)
    mount = night.root / 'edge1' / 'backup1'
    with tmpfs(mount, '2m'):
        refused = night.run(expect_rc=2)
        assert re.search(r'mnaas_backup_customers\.\w+\.backup_dir .*%s.*MiB free' % re.escape(str(mount)), refused.errors()), refused
        assert not night.backed_up('edge1') and not night.backed_up('edge2') and night.flag.read_bytes() == b'FAIL\n', refused
        assert 'Not ready: edge1; the night stops on every node before anything is written (the flag says FAIL' in refused.output, refused
        night.assert_unlocked(refused)

        full = night.run(*night.extra_vars(mnaas_backup_min_free_mb=0), expect_rc=2)
        errors = full.errors()
        assert 'No space left on device' in errors and str(night.backup_root('edge1')) in errors, full
        assert night.flag.read_bytes() == b'FAIL\n', full
        assert night.tree_hash(night.landing, dir_mtimes=True) == landing, 'sources changed'
        fitted = night.backed_up('edge1')
        assert fitted and fitted < night.expected, 'expected some files to fit, not %d of %d' % (len(fitted), len(night.expected))
        assert_nothing_partial(night, 'on a full filesystem')
        assert not night.temps(), 'temp files left on the full filesystem: %s' % night.temps()
        assert night.backed_up('edge2') <= fitted, full
        night.assert_counts({row['file_name'] for row in night.csv_rows(night.ledger)}, full)
        night.assert_unlocked(full)
        earlier = night.snapshot(night.backup_root('edge1'))

        subprocess.run(['mount', '-o', 'remount,size=64m', str(mount)], check=True)
        result = night.run(*night.extra_vars(mnaas_backup_min_free_mb=0))
        assert_converged(night, result)
        now = night.snapshot(night.backup_root('edge1'))
        assert {k: now[k] for k in earlier} == earlier, 'files backed up before the filesystem was full were rewritten'
        assert night.tree_hash(night.landing, dir_mtimes=True) == landing, 'sources changed'


# ---------------------------------------------------------------------------------------------
# One customer's directory refuses writes; sources change or vanish while the copy runs

@contextlib.contextmanager
def immutable(*paths: Path):
    """chattr +i: not even root may create, remove or rename entries in these directories."""
    subprocess.run(['chattr', '+i'] + [str(p) for p in paths], check=True)
    try:
        yield
    finally:
        subprocess.run(['chattr', '-i'] + [str(p) for p in paths], check=False)


def test_refusing_customer_dirs_and_sources_changing_during_the_copy(night, tmp_path):
    """Once the preflight has passed, GLOBEX_FLEET's primary backup directory turns immutable and INITECH_METERS's can
    no longer be created (immutable parent): those customers fail, the others complete on both nodes, the run fails
    naming them, flag FAIL. Meanwhile a source grows while it is copied, one is replaced after the copy listed it, one
    is deleted between discovery and the copy: none is committed, each is named. Writable again, the next run converges.
    (Unwritable before the run starts: test_customer_dir_unwritable_from_the_start.)"""
    age_in_flight(night)
    oldest = time.time() - 10 * 86400
    grow, replace = 'ACME_TELEMATICS_Traffic_20200101_9001.csv', 'ACME_TELEMATICS_Traffic_20200101_9002.csv'
    add_big(night, 'ACME_TELEMATICS', grow, oldest)
    add_big(night, 'ACME_TELEMATICS', replace, oldest + 1)
    gone = night.oldest_first(n for n in night.expected if night.files[n]['customer'] == 'UMBRELLA_IOT')[0]
    primary = night.backup_root('edge1')
    for customer in ('ACME_TELEMATICS', 'GLOBEX_FLEET', 'UMBRELLA_IOT'):
        (primary / customer).mkdir(parents=True)
    log = tmp_path / 'faults.log'
    with contextlib.ExitStack() as stack:
        proc = night.start(log=log)
        try:
            wait_for(lambda: started_task(log, COPY_TASK), proc, log, 'the copy task')
            pids = wait_for(lambda: module_pids(proc.pid, 'backup_copy'), proc, log, 'backup_copy process')
            signal_all(pids, signal.SIGSTOP)
            stack.enter_context(immutable(primary, primary / 'GLOBEX_FLEET'))
            (night.landing / gone).unlink()  # deleted between discovery and the copy
            signal_all(pids, signal.SIGCONT)
            wait_for(lambda: temp_with_data(night, 'edge1', 'ACME_TELEMATICS', grow), proc, log, 'temp file of %s' % grow)
            signal_all(pids, signal.SIGSTOP)
            with open(night.landing / grow, 'ab') as handle:  # grows while it is copied
                handle.write(b'late,record\n')
            fresh = night.landing / ('.new-' + replace)
            fresh.write_bytes(b'msisdn,payload\nreplaced,1\nreplaced,2\n')
            os.replace(fresh, night.landing / replace)  # replaced after the copy listed it
            signal_all(pids, signal.SIGCONT)
        finally:
            if proc.poll() is None:
                signal_all(module_pids(proc.pid, 'backup_copy'), signal.SIGCONT)
        assert proc.wait(timeout=RUN_TIMEOUT) == 2, log.read_text()
    output = log.read_text(errors='replace')
    faulty = {'GLOBEX_FLEET', 'INITECH_METERS'}
    changed = {grow, replace, gone}
    assert 'Operation not permitted' in output, output
    for customer in faulty:
        assert str(primary / customer) in output, '%s is not named%s' % (customer, output)
    for name in changed:
        assert name in output, '%s is not named as not backed up\n%s' % (name, output)
    per_customer = {c: sum(1 for n in night.expected if night.files[n]['customer'] == c) for c in faulty}
    summary = 'per customer: ACME_TELEMATICS 2, GLOBEX_FLEET %d, INITECH_METERS %d, UMBRELLA_IOT 1.' % (
        per_customer['GLOBEX_FLEET'], per_customer['INITECH_METERS'])
    assert summary in output, 'no per-customer summary %r\n%s' % (summary, output)
    assert night.flag.read_bytes() == b'FAIL\n', output
    night.assert_unlocked()
    assert_nothing_partial(night, 'after refusals and changing sources')
    fine = {n for n in night.expected if night.files[n]['customer'] not in faulty} - changed
    for host in night.hosts:
        assert night.backed_up(host) == fine, '%s: missing %s, unexpected %s\n%s' % (
            host, sorted(fine - night.backed_up(host)), sorted(night.backed_up(host) - fine), output)
    assert not night.temps(), night.temps()

    # The cause removed (directories writable again; the changed files settled), the next run converges.
    night.expected.discard(gone)
    for name in (grow, replace):
        data = (night.landing / name).read_bytes()
        night.files[name].update(size=len(data), records=data.count(b'\n') - 1)
        os.utime(night.landing / name, (oldest, oldest))
        night.files[name]['mtime_ns'] = (night.landing / name).stat().st_mtime_ns
    result = night.run()
    assert_converged(night, result)
    for name in (grow, replace):
        for path in [night.landing / name] + [night.backup(host, name) for host in night.hosts]:
            path.unlink()


# ---------------------------------------------------------------------------------------------
# Two runs at the same moment; a stale lock of another run

LOCK_REFUSED = re.compile(r'lock (?P<path>\S+) is held by host (?P<host>\S+), run (?P<run>\S+), started')


def test_two_runs_at_once_then_a_stale_lock(night, tmp_path):
    """Two runs started together: exactly one proceeds and backs everything up (flag SUCCESS); the other is refused
    by the primary's lock, names the holder, and stops on both nodes before it takes the secondary's lock. Then a
    legacy lock older than its age limit is taken over with a warning and the night converges."""
    age_in_flight(night)
    logs = [tmp_path / 'a.log', tmp_path / 'b.log']
    procs = [night.start(log=logs[0]), night.start(log=logs[1])]
    codes = [proc.wait(timeout=RUN_TIMEOUT) for proc in procs]
    outputs = [log.read_text(errors='replace') for log in logs]
    assert sorted(codes) == [0, 2], (codes, outputs)
    winner, loser = outputs[codes.index(0)], outputs[codes.index(2)]
    refused = LOCK_REFUSED.search(loser[loser.find('fatal: [edge1]'):]) if 'fatal: [edge1]' in loser else None
    assert refused and refused.group('path') == str(night.lock('edge1')) and refused.group('host') == 'edge1', loser
    assert 'Take the run lock on the secondary]' not in loser and 'fatal: [edge2]' not in loser, loser
    night.assert_unlocked()
    assert_nothing_partial(night, 'after two runs at once')
    assert night.flag.read_bytes() == b'SUCCESS\n', winner
    night.assert_backups(night.expected)
    night.assert_counts(night.expected)

    # A lock file of the legacy job (a pid, not JSON), 7 hours old: stale under the default 6-hour limit.
    lock = night.lock('edge1')
    lock.write_text('12345\n')
    seven_hours = time.time() - 7 * 3600
    os.utime(lock, (seven_hours, seven_hours))
    result = night.run()
    warnings = result.warnings()
    assert 'stale lock' in warnings and str(lock) in warnings, result
    assert_converged(night, result)


def test_customer_dir_unwritable_from_the_start(night):
    """GLOBEX_FLEET's primary backup directory refuses writes before the run starts (chattr +i): the preflight warns,
    naming it; GLOBEX fails on the primary (so the secondary has none of it to pull), the other customers complete on
    both nodes, the run fails with a per-customer summary, flag FAIL. Writable again, the next run converges."""
    age_in_flight(night)
    primary = night.backup_root('edge1')
    (primary / 'GLOBEX_FLEET').mkdir(parents=True)
    with immutable(primary / 'GLOBEX_FLEET'):
        failed = night.run(expect_rc=2)
    output = failed.output
    assert re.search(r"mnaas_backup_customers\.GLOBEX_FLEET\.backup_dir '%s' is not writable: customer GLOBEX_FLEET will fail tonight"
                     % re.escape(str(primary / 'GLOBEX_FLEET')), failed.warnings()), failed
    globex = {n for n in night.expected if night.files[n]['customer'] == 'GLOBEX_FLEET'}
    assert globex and 'per customer: GLOBEX_FLEET %d.' % len(globex) in output, failed
    assert 'Operation not permitted' in output, failed
    assert night.flag.read_bytes() == b'FAIL\n', failed
    night.assert_unlocked(failed)
    assert_nothing_partial(night, 'with a customer directory refusing writes')
    for host in night.hosts:
        assert night.backed_up(host) == night.expected - globex, '%s: missing %s, unexpected %s%s' % (
            host, sorted(night.expected - globex - night.backed_up(host)), sorted(night.backed_up(host) - (night.expected - globex)), failed)
    assert not night.temps(), night.temps()
    assert_converged(night, night.run())
