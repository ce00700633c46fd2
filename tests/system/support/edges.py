# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two edge nodes of tests/services/edge_nodes: commands on them, their inventory, nights over SSH."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import yaml

from support import playbook
from support.night import load_make_landing
from support.playbook import REPO_ROOT, Result

EDGES = REPO_ROOT / 'tests' / 'services' / 'edge_nodes'
BASE = Path(os.environ.get('MNAAS_EDGES_BASE', '/tmp/mnaas-edges'))
NODE_COLLECTIONS = '/root/mnaas-test-collections'   # the collection's plugins, sent to the nodes
PREPARE_PLAYBOOK = REPO_ROOT / 'playbooks' / 'prepare_nodes.yml'
PLAYBOOK = REPO_ROOT / 'playbooks' / 'customer_backup.yml'
NODE_VENV = '/opt/mnaas-backup/venv'
NODE_VENV_PYTHON = NODE_VENV + '/bin/python'
CUSTOMERS = ('ACME_TELEMATICS', 'GLOBEX_FLEET')
TEMP_MARK = '.mnaas-tmp.'
OLD = 1_700_000_000
NODES = ('edge1', 'edge2')


def read_env(path: Path) -> dict:
    env = {}
    for line in path.read_text(encoding='utf-8').splitlines():
        key, sep, value = line.partition('=')
        if sep:
            env[key] = value
    return env


def running(node: str) -> bool:
    pid_file = BASE / node / 'sshd.pid'
    try:
        pid = int(pid_file.read_text(encoding='utf-8'))
        cmdline = Path('/proc/%d/cmdline' % pid).read_bytes().replace(b'\0', b' ')
    except (OSError, ValueError):
        return False
    return ('-f %s' % (BASE / node / 'sshd_config')).encode() in cmdline


class Edges:
    """The two nodes: ssh commands on them, SftpLocations to them, their processes."""

    def __init__(self, env: dict, collections: Path) -> None:
        self.env = env
        self.collections = collections
        self.port = int(env['MNAAS_EDGES_PORT'])
        self.key = env['MNAAS_EDGES_KEY']
        self.known_hosts = env['MNAAS_EDGES_KNOWN_HOSTS']
        self.hosts = {'edge1': env['MNAAS_EDGE1_HOST'], 'edge2': env['MNAAS_EDGE2_HOST']}

    def ssh(self, node: str, command: str, check: bool = True, stdin: bytes | None = None) -> str:
        args = ['ssh', '-p', str(self.port), '-i', self.key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
                '-o', 'UserKnownHostsFile=' + self.known_hosts, '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR',
                'root@' + self.hosts[node], command]
        proc = subprocess.run(args, input=stdin, capture_output=True, timeout=300, check=False)
        if check:
            assert proc.returncode == 0, '%s on %s exited %d: %s' % (command[:300], node, proc.returncode, proc.stderr.decode())
        return proc.stdout.decode('utf-8', 'replace')

    def location(self, node: str, **options):
        from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # pylint: disable=import-outside-toplevel
        settings = {'user': 'root', 'private_key': self.key, 'known_hosts': self.known_hosts, 'timeout': 20.0}
        settings.update(options)
        return sftp.SftpLocation(self.hosts[node], self.port, **settings)

    def sha256(self, node: str, directory: str) -> dict:
        """{name: sha256} of the regular files of a directory but hidden ones (temps), by sha256sum on the node."""
        out = self.ssh(node, 'cd %s && find . -maxdepth 1 -type f ! -name ".*" -print0 | xargs -0 -r sha256sum' % shlex.quote(directory))
        return {line.split('  ', 1)[1][2:]: line.split('  ', 1)[0] for line in out.splitlines()}

    def mtimes(self, node: str, directory: str) -> dict:
        out = self.ssh(node, 'cd %s && find . -maxdepth 1 -type f -printf "%%T@ %%P\\n"' % shlex.quote(directory))
        return {line.split(' ', 1)[1]: int(float(line.split(' ', 1)[0])) for line in out.splitlines()}

    def make_files(self, node: str, directory: str, files: dict) -> None:
        """Write files on the node itself: {name: (size, mtime)}; content from /dev/urandom."""
        script = '\n'.join('head -c %d /dev/urandom > %s && touch -d @%d -- %s' % (size, shlex.quote('./' + name), mtime, shlex.quote(name))
                           for name, (size, mtime) in files.items())
        self.ssh(node, 'mkdir -p %s && cd %s && %s' % (shlex.quote(directory), shlex.quote(directory), script.replace('\n', ' && ')))

    def host_fingerprint(self, node: str) -> str:
        out = subprocess.run(['ssh-keygen', '-lf', str(BASE / node / 'ssh_host_ed25519_key.pub')], capture_output=True, text=True, check=True)
        return out.stdout.split()[1]

    def kill(self, node: str) -> list:
        """SIGKILL every process of the node (its sshd and every session): the node dies mid-whatever."""
        namespace = (BASE / node / 'mntns').read_text(encoding='utf-8').strip()
        pids = []
        for proc in Path('/proc').iterdir():
            if proc.name.isdigit():
                try:
                    if os.readlink(str(proc / 'ns' / 'mnt')) == namespace:
                        pids.append(int(proc.name))
                except OSError:
                    pass
        assert pids, 'no process in the namespace of %s' % node
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def start(self) -> None:
        subprocess.run([str(EDGES / 'start.sh')], check=True, capture_output=True, timeout=120,
                       env=dict(os.environ, MNAAS_EDGES_BASE=str(BASE)))

    def push_collection(self, node: str) -> None:
        """This repository's plugins to NODE_COLLECTIONS on the node (a separate system: it sees nothing of this host)."""
        archive = subprocess.run(['tar', '-C', str(REPO_ROOT), '-cf', '-', '--exclude=__pycache__', 'plugins'],
                                 capture_output=True, check=True).stdout
        target = NODE_COLLECTIONS + '/ansible_collections/mnaas/backup'
        self.ssh(node, 'rm -rf %s && mkdir -p %s && tar -C %s -xf -' % (NODE_COLLECTIONS, target, target), stdin=archive)


def node_inventory(base: Path, directory: Path, group_vars: dict, **host_vars) -> Path:
    """An inventory of the test nodes of ``base`` (their start.sh inventory: addresses, keys, known_hosts) with edge1 the
    primary and edge2 the secondary, ``group_vars`` for both and ``host_vars`` ({host: {var: value}}) on top."""
    hosts = yaml.safe_load((base / "inventory.yml").read_text(encoding="utf-8"))["all"]["children"]["edge_nodes"]["hosts"]
    hosts["edge1"]["mnaas_backup_node_role"] = "primary"
    hosts["edge2"].update({"mnaas_backup_node_role": "secondary", "mnaas_backup_primary_host": "edge1"})
    for host, values in host_vars.items():
        hosts[host].update(values)
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"edge_nodes": {"hosts": hosts}}), encoding="utf-8")
    (directory / "group_vars" / "edge_nodes.yml").write_text(yaml.safe_dump(group_vars), encoding="utf-8")
    return directory


def prepare_shared_nodes(base: Path, port: int, env: dict, cwd: Path, wheelhouse_dir: Path, tmp: Path) -> Result:
    """playbooks/prepare_nodes.yml on the nodes of ``base``: their virtualenvs (paramiko on the secondary) and the
    secondary's SFTP-only key on the primary. Idempotent: a second call changes nothing."""
    group_vars = {
        "mnaas_backup_customers": {},
        "mnaas_backup_state_dir": "/srv/mnaas/prepared/state",
        "mnaas_backup_manifest_file": "/srv/mnaas/prepared/MNAAS_backup_files_process_list.csv",
        "mnaas_backup_flag_file": "/srv/mnaas/prepared/MNAAS_backup_files_process_ProcessStatusFile",
        "mnaas_backup_primary_location": {"port": port},
        "mnaas_backup_wheelhouse": str(wheelhouse_dir),
    }
    inventory = node_inventory(base, tmp / "prepare-inventory", group_vars)
    result = playbook.run_playbook(PREPARE_PLAYBOOK, inventory, env, cwd, log=tmp / "prepare.log")
    assert result.rc == 0, "prepare_nodes.yml failed%s" % result
    return result


class SshNight:
    """One test's directory on both nodes, its inventory, and the means to run the playbook and check the nodes."""

    def __init__(self, edges, tmp: Path, env: dict, cwd: Path) -> None:
        self.edges = edges
        self.tmp = tmp
        self.env = env
        self.cwd = cwd
        self.area = '/srv/mnaas/night-%s' % uuid.uuid4().hex[:10]
        self.runs = 0
        self.expected: dict = {}   # {name: customer} of the landing files a complete night backs up
        self.inventory = self.write_inventory()

    # -- layout --------------------------------------------------------------------------------
    @property
    def landing(self) -> str:
        return self.area + '/MNAAS_Input'

    def backup_dir(self, node: str, customer: str) -> str:
        return '%s/%s/%s' % (self.area, 'backup1' if node == 'edge1' else 'backup2', customer)

    @property
    def flag(self) -> str:
        return self.area + '/MNAAS_backup_files_process_ProcessStatusFile'

    def write_inventory(self, **edge2_overrides) -> Path:
        """The service's inventory (addresses, keys, known_hosts) with the nodes' roles, and group_vars for this area."""
        group_vars = {
            'mnaas_backup_source_dir': self.landing,
            'mnaas_backup_header_lines': 1,
            'mnaas_backup_customers': {c: {'backup_dir': self.backup_dir('edge1', c), 'edge2_backup_dir': self.backup_dir('edge2', c)}
                                       for c in CUSTOMERS},
            'mnaas_backup_state_dir': self.area + '/state',
            'mnaas_backup_manifest_file': self.area + '/MNAAS_backup_files_process_list.csv',
            'mnaas_backup_flag_file': self.flag,
            'mnaas_backup_min_free_mb': 16,
            'mnaas_backup_min_age': 3600,   # make_landing's in-flight files stay in flight for the whole test
            # Host (ansible_host) and user (ansible_user) of the primary come from its inventory entry; the
            # node-to-node port is the test sshd's; key and known_hosts are the secondary's own ~/.ssh ones.
            'mnaas_backup_primary_location': {'port': self.edges.port},
        }
        # The virtualenv prepare_nodes.yml made (host vars: the service's inventory names the system Python there).
        venv = {'ansible_python_interpreter': NODE_VENV_PYTHON}
        return node_inventory(BASE, self.tmp / ('inventory-%s' % uuid.uuid4().hex[:6]), group_vars,
                              edge1=venv, edge2=dict(venv, **edge2_overrides))

    # -- data on the nodes -----------------------------------------------------------------------
    def ssh(self, node: str, command: str, check: bool = True) -> str:
        return self.edges.ssh(node, command, check=check)

    def put_landing(self, files_per_domain: int = 5) -> dict:
        """A landing set from tools/make_landing.py (small), sent to edge1 as a tar stream (mtimes kept)."""
        local = self.tmp / ('landing-%s' % uuid.uuid4().hex[:6])
        summary = load_make_landing().generate(local, customers=CUSTOMERS, files_per_domain=files_per_domain,
                                               seed=20261126, now=time.time())
        self.send(local, self.landing)
        self.expected.update({name: info['customer'] for name, info in summary['files'].items() if info['kind'] == 'regular'})
        return summary

    def send(self, local: Path, remote: str) -> None:
        archive = self.tmp / ('send-%s.tar' % uuid.uuid4().hex[:6])
        with tarfile.open(archive, 'w', format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(local.iterdir()):
                tar.add(path, arcname=path.name)
        self.edges.ssh('edge1', 'mkdir -p %s && tar -C %s -xf -' % (shlex.quote(remote), shlex.quote(remote)), stdin=archive.read_bytes())

    def add_files(self, customer: str, count: int, size: int, tag: str) -> list:
        """Files of random bytes (size each) landing on edge1 for customer; old enough to be taken."""
        files = {'%s_Traffic_20261120_%s%02d.csv' % (customer, tag, i): (size, OLD + i) for i in range(count)}
        self.edges.make_files('edge1', self.landing, files)
        self.expected.update({name: customer for name in files})
        return sorted(files)

    def sha256(self, node: str, directory: str) -> dict:
        """{name: sha256} of a directory's regular non-hidden files, by sha256sum on the node ({} when it is missing)."""
        if self.ssh(node, 'test -d %s && echo yes || echo no' % shlex.quote(directory)).strip() != 'yes':
            return {}
        return self.edges.sha256(node, directory)

    def tree(self, node: str) -> str:
        """Every entry of the area on the node: type, mode, size, mtime (directories included) and content hash."""
        area = shlex.quote(self.area)
        return self.ssh(node, 'test -d %s || exit 0; cd %s && find . -printf "%%p %%y %%m %%s %%T@\\n" | LC_ALL=C sort '
                              '&& find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum' % (area, area))

    def temps(self, node: str) -> list:
        return self.ssh(node, 'find %s -name "*%s*" 2>/dev/null || true' % (shlex.quote(self.area), TEMP_MARK)).split()

    def read(self, node: str, path: str) -> str | None:
        out = self.ssh(node, 'cat %s 2>/dev/null || echo "<missing>"' % shlex.quote(path))
        return None if out == '<missing>\n' else out

    # -- running -----------------------------------------------------------------------------
    def command(self, *extra, check: bool = False, diff: bool = False, inventory: Path | None = None) -> list:
        args = [playbook.find_tool('ansible-playbook'), '-i', str(inventory or self.inventory), str(PLAYBOOK)]
        return args + (['--check'] if check else []) + (['--diff'] if diff else []) + [str(a) for a in extra]

    def run(self, *extra, check: bool = False, diff: bool = False, expect_rc: int | None = 0, inventory: Path | None = None) -> Result:
        self.runs += 1
        return playbook.run(self.command(*extra, check=check, diff=diff, inventory=inventory), self.env, self.cwd,
                            log=self.tmp / ('run-%d.log' % self.runs), expect_rc=expect_rc)

    def start(self, *extra, log: Path) -> subprocess.Popen:
        return playbook.start(self.command(*extra), self.env, self.cwd, log)

    # -- checks ------------------------------------------------------------------------------
    def assert_backups(self, nodes=NODES, result=None) -> None:
        """Each node's backup directories hold exactly the expected files, each equal (sha256sum on the
        node) to its source on edge1; no temporary file anywhere."""
        sources = self.sha256('edge1', self.landing)
        for node in nodes:
            for customer in CUSTOMERS:
                want = {name: sources[name] for name, owner in self.expected.items() if owner == customer}
                got = self.sha256(node, self.backup_dir(node, customer))
                assert got == want, '%s %s: missing %s, unexpected %s, different %s%s' % (
                    node, customer, sorted(set(want) - set(got)), sorted(set(got) - set(want)),
                    sorted(n for n in set(got) & set(want) if got[n] != want[n]), result or '')
            assert not self.temps(node), '%s: temporary files left: %s%s' % (node, self.temps(node), result or '')

    def cleanup(self) -> None:
        for node in NODES:
            self.ssh(node, 'chattr -R -i %s 2>/dev/null; rm -rf %s' % (self.area, self.area), check=False)
