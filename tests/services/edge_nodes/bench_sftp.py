# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SFTP location against ``rsync -a -e ssh`` on the two test edge nodes, in the production shape.

The secondary pulls from the primary: every method runs ON edge2 (a separate Debian 11 system, with the
Python 3.9 of a virtualenv holding paramiko from the nodes' wheelhouse, as the module does) and reads from
edge1 over SSH, with a key of edge2 that edge1 accepts for commands too (rsync and the streamed tar
archives need them; playbooks/prepare_nodes.yml authorises the production key for SFTP alone, which is
what ``sftp_pipe`` measures):

- ``rsync``: ``rsync -a -e ssh root@edge1:SRC/ DEST/``
- ``sftp``: the copy engine (``_copy.plan`` + ``execute``) with src=SftpLocation(edge1), dest=LocalLocation,
  fsync off (rsync does not fsync); ``sftp_fsync`` the same with fsync on (the module's default); both
  announce the files to read (``prefetch``), as the engine does once it calls that hook;
  ``sftp_nohint`` is without that call; ``sftp_pipe`` announces them but fetches them with pipelined SFTP
  requests instead of streamed tar archives (what a host without a shell for the user gets). For measuring
  one change at a time, ``sftp_stockpk``, ``sftp_malloc`` and ``sftp_2conn`` are ``sftp`` with
  paramiko's own packet reader, with glibc's malloc thresholds as they are, with 2 connections instead of 4;
  ``sftp_before`` is with neither of the first two changes.

Data: 5,000 files of 20 KB and 5 files of 200 MB on edge1; each node's /srv/mnaas is a fresh loop-mounted
ext4 image (MNAAS_EDGES_STORAGE_SIZE). The nodes are a separate set (base /tmp/mnaas-edges-bench, port 2223)
so the test nodes are left alone; they are stopped and removed at the end unless --keep.
Methods are interleaved within each round (each round another goes first; ``sync`` before every run); the
report gives medians over the rounds and the median of the per-round ratios to rsync.

    python3 tests/services/edge_nodes/bench_sftp.py [--rounds 3] [--small 5000] [--large 5] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
NODE_PY = '/root/bench/venv/bin/python'   # on edge2, made by Nodes.ready()
NODE_COLLECTIONS = '/root/bench/collections'
# Variants of the sftp method (more arguments for its pull), for --methods.
VARIANTS = {
    'sftp_stockpk': ['--stock-packets'],                # paramiko's own packet reader
    'sftp_2conn': ['--connections', '2'],
    'sftp_malloc': ['--stock-malloc'],                  # glibc's malloc thresholds left as they are
    'sftp_before': ['--stock-packets', '--stock-malloc'],   # neither (the code before issue 4's speed work)
}


# ---------------------------------------------------------------------------------------------
# Inside edge2: one copy through the engine (run as `bench_sftp.py pull ...` by the virtualenv's Python)

def pull(args) -> None:
    sys.path.insert(0, args.collections)
    # pylint: disable=import-outside-toplevel
    from ansible_collections.mnaas.backup.plugins.module_utils import _copy
    from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp
    from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import connection, fastpath, streams
    from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation
    if args.switch:
        sys.setswitchinterval(args.switch)
    for name, module, constant in (('window', connection, 'WINDOW_SIZE'), ('pipeline', streams, 'PIPELINE_BYTES'), ('packet', connection, 'MAX_PACKET')):
        value = getattr(args, name)
        if value:
            setattr(module, constant, value)
    if args.stock_malloc:
        fastpath.TUNE_MALLOC = False
    if args.stock_packets:
        fastpath.speed_up_packets = lambda transport: None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    user_before = usage.ru_utime
    started = time.monotonic()
    src = sftp.SftpLocation(args.host, args.port, 'root', '/root/.ssh/id_ed25519', known_hosts='/root/.ssh/known_hosts',
                            stream_small_files=not args.no_stream, connections=args.connections)
    if args.request:
        src._learn_limits = lambda client: None  # pylint: disable=protected-access
        src.read_size = args.request
    dest = LocalLocation()
    opts = _copy.Options(workers=args.workers, fsync=args.fsync)
    transfers = [_copy.Transfer(args.src, args.dest, sync=True)]
    the_plan = _copy.plan(transfers, src, dest, opts)
    if args.prefetch:
        # What the engine does once it announces its reads (Location.prefetch).
        src.prefetch([a.src_path for a in the_plan.actions if a.action in (_copy.COPY, _copy.OVERWRITE)])
    outcomes = _copy.execute(the_plan, src, dest, opts)
    ahead = src._prefetch  # pylint: disable=protected-access
    fetched = {'taken': ahead.taken, 'missed': ahead.missed} if ahead is not None else None
    src.close()
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({'seconds': elapsed, 'cpu': usage.ru_utime + usage.ru_stime - cpu_before, 'user': usage.ru_utime - user_before,
                      'summary': _copy.summarize(outcomes), 'prefetch': fetched}))


# ---------------------------------------------------------------------------------------------
# On the host: nodes, data, rounds

class Nodes:
    def __init__(self, base: str, port: int, size: str) -> None:
        self.base = base
        self.port = port
        self.env = dict(os.environ, MNAAS_EDGES_BASE=base, MNAAS_EDGES_PORT=str(port), MNAAS_EDGES_STORAGE_SIZE=size)

    def start(self) -> None:
        subprocess.run([os.path.join(HERE, 'start.sh')], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run([os.path.join(HERE, 'stop.sh'), '--purge'], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def ssh(self, node: str, command: str, capture: bool = False, stdin: bytes | None = None) -> str:
        host = {'edge1': '127.0.0.11', 'edge2': '127.0.0.12'}[node]
        args = ['ssh', '-p', str(self.port), '-i', os.path.join(self.base, 'keys', 'operator'), '-o', 'IdentitiesOnly=yes',
                '-o', 'BatchMode=yes', '-o', 'UserKnownHostsFile=' + os.path.join(self.base, 'known_hosts'),
                '-o', 'StrictHostKeyChecking=yes', 'root@' + host, command]
        proc = subprocess.run(args, check=True, input=stdin, stdout=subprocess.PIPE if capture else None)
        return proc.stdout.decode() if capture else ''

    def ready(self) -> None:
        """edge2 gets (under /root/bench) the collection's plugins, this script, a virtualenv with paramiko from the
        nodes' wheelhouse (tools/wheelhouse.py), and a key edge1 accepts; edge1's host key in its known_hosts."""
        wheelhouse = os.path.join(REPO, '.build', 'wheelhouse')
        subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'wheelhouse.py'), '-o', wheelhouse], check=True, stdout=subprocess.DEVNULL)
        tree = tempfile.mkdtemp(prefix='bench-', dir=self.base)
        os.makedirs(os.path.join(tree, 'collections', 'ansible_collections', 'mnaas'))
        os.symlink(REPO, os.path.join(tree, 'collections', 'ansible_collections', 'mnaas', 'backup'))
        sys.path.insert(0, os.path.join(tree, 'collections'))
        from ansible_collections.mnaas.backup.plugins.module_utils._node_env import PIP_FROM_WHEEL, pip_wheel  # pylint: disable=import-outside-toplevel
        archive = subprocess.run(['tar', '-ch', '-C', tree, '--exclude=__pycache__', 'collections/ansible_collections/mnaas/backup/plugins',
                                  '-C', HERE, 'bench_sftp.py', '-C', os.path.dirname(wheelhouse), 'wheelhouse'],
                                 check=True, stdout=subprocess.PIPE).stdout
        self.ssh('edge2', 'rm -rf /root/bench && mkdir -p /root/bench && tar -C /root/bench -xf -', stdin=archive)
        pip = '/root/bench/wheelhouse/' + os.path.basename(pip_wheel(wheelhouse))
        self.ssh('edge2', '/usr/bin/python3 -m venv --without-pip /root/bench/venv && %s -c %s %s install -q --no-index --find-links '
                 '/root/bench/wheelhouse paramiko' % (NODE_PY, shlex.quote(PIP_FROM_WHEEL), pip))
        self.ssh('edge2', 'test -f /root/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N "" -f /root/.ssh/id_ed25519')
        key = self.ssh('edge2', 'cat /root/.ssh/id_ed25519.pub', capture=True)
        line = shlex.quote(key.strip())
        self.ssh('edge1', 'grep -qxF %s /root/.ssh/authorized_keys || echo %s >> /root/.ssh/authorized_keys' % (line, line))
        with open(os.path.join(self.base, 'known_hosts'), encoding='utf-8') as known:
            edge1 = [line for line in known if line.startswith('[127.0.0.11]:')]
        self.ssh('edge2', 'cat > /root/.ssh/known_hosts', stdin=''.join(edge1).encode())


MAKE_DATA = r'''
import os, sys
root, small, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for kind, count, size in (('small', small, 20 * 1024), ('large', large, 200 * 1000 * 1000)):
    d = os.path.join(root, kind)
    os.makedirs(d, exist_ok=True)
    block = os.urandom(min(size, 1 << 20))
    for i in range(count):
        p = os.path.join(d, '%s_%05d.csv' % (kind, i))
        with open(p, 'wb') as f:
            left = size
            while left:
                n = min(left, len(block))
                f.write(block[:n - 8] + i.to_bytes(8, 'big') if n > 8 else block[:n])
                left -= n
        os.utime(p, (1700000000 + i, 1700000000 + i))
os.sync()
'''


def timed_shell(nodes: Nodes, command: str) -> float:
    out = nodes.ssh('edge2', 'start=$(date +%%s.%%N); %s >/dev/null; end=$(date +%%s.%%N); echo "$start $end"' % command, capture=True)
    start, end = out.split()
    return float(end) - float(start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command')
    pull_args = sub.add_parser('pull')
    for name in ('collections', 'host', 'src', 'dest'):
        pull_args.add_argument('--' + name, required=True)
    pull_args.add_argument('--port', type=int, required=True)
    pull_args.add_argument('--workers', type=int, default=4)
    pull_args.add_argument('--fsync', action='store_true')
    pull_args.add_argument('--prefetch', action='store_true')
    pull_args.add_argument('--no-stream', action='store_true')
    pull_args.add_argument('--switch', type=float, default=0.0, help='sys.setswitchinterval')
    for name in ('window', 'pipeline', 'packet', 'request'):
        pull_args.add_argument('--' + name, type=int, default=0)
    pull_args.add_argument('--connections', type=int, default=4)
    pull_args.add_argument('--stock-malloc', action='store_true')
    pull_args.add_argument('--stock-packets', action='store_true', help="paramiko's own Packetizer.read_message")
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--small', type=int, default=5000)
    parser.add_argument('--large', type=int, default=5)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--base', default='/tmp/mnaas-edges-bench')
    parser.add_argument('--port', type=int, default=2223)
    parser.add_argument('--storage-size', default='6G')
    parser.add_argument('--keep', action='store_true', help='leave the benchmark nodes running')
    parser.add_argument('--methods', default='rsync,sftp,sftp_fsync,sftp_pipe,sftp_nohint')
    parser.add_argument('--sets', default='small,large')
    parser.add_argument('--extra', default='', help='extra arguments for every sftp pull (tuning: --window N ...)')
    args = parser.parse_args()
    if args.command == 'pull':
        pull(args)
        return

    nodes = Nodes(args.base, args.port, args.storage_size)
    nodes.start()
    try:
        nodes.ready()
        nodes.ssh('edge1', 'test -d /srv/mnaas/bench/large || /usr/bin/python3 -c %s /srv/mnaas/bench %d %d' % (
            shlex.quote(MAKE_DATA), args.small, args.large))
        ssh_cmd = 'ssh -p %d -o BatchMode=yes -o StrictHostKeyChecking=yes' % args.port
        methods = args.methods.split(',')
        print('load average at start: %s' % ' '.join('%.2f' % x for x in os.getloadavg()), flush=True)
        results: dict = {}
        cpu: dict = {}

        def run(method: str, kind: str) -> float:
            src = '/srv/mnaas/bench/%s' % kind
            dest = '/srv/mnaas/out/%s/%s' % (method, kind)
            if method == 'rsync':
                return timed_shell(nodes, 'mkdir -p %s && rsync -a -e %s root@127.0.0.11:%s/ %s/' % (dest, shlex.quote(ssh_cmd), src, dest))
            command = [NODE_PY, '/root/bench/bench_sftp.py', 'pull', '--collections', NODE_COLLECTIONS, '--host', '127.0.0.11',
                       '--port', str(args.port), '--src', src, '--dest', dest, '--workers', str(args.workers)]
            if method == 'sftp_fsync':
                command.append('--fsync')
            if method != 'sftp_nohint':
                command.append('--prefetch')
            if method == 'sftp_pipe':
                command.append('--no-stream')
            command += VARIANTS.get(method, [])
            command += shlex.split(args.extra)
            out = json.loads(nodes.ssh('edge2', ' '.join(shlex.quote(c) for c in command), capture=True))
            cpu.setdefault((kind, method), []).append(out['cpu'])
            return out['seconds']

        for number in range(args.rounds):
            for kind in args.sets.split(','):
                # The methods take turns going first; each starts with no dirty pages of another's writes.
                for method in methods[number % len(methods):] + methods[:number % len(methods)]:
                    nodes.ssh('edge2', 'rm -rf /srv/mnaas/out; sync')
                    seconds = run(method, kind)
                    results.setdefault((kind, method), []).append(seconds)
                    nodes.ssh('edge2', 'sync')
                    again = run(method, kind)
                    results.setdefault((kind + '_noop', method), []).append(again)
                    print('round %d %-6s %-10s %6.2f s  no-op %5.2f s' % (number + 1, kind, method, seconds, again), flush=True)
        print('\nmedians over %d rounds (pull edge1 -> edge2, workers=%d, loop ext4 on both nodes);' % (args.rounds, args.workers))
        print('ratio = median over the rounds of (method / rsync in the same round):')
        for kind in [k for s in args.sets.split(',') for k in (s, s + '_noop')]:
            base = results.get((kind, 'rsync'))
            for method in methods:
                times = results[(kind, method)]
                ratio = ' %5.2fx rsync' % statistics.median(t / b for t, b in zip(times, base)) if base else ''
                spent = cpu.get((kind, method))
                spent = '  (process CPU %.2f s)' % statistics.median(spent) if spent else ''
                print('  %-11s %-12s %6.2f s%s%s' % (kind, method, statistics.median(times), ratio, spent))
        print('load average: %s' % ' '.join('%.2f' % x for x in os.getloadavg()))
    finally:
        if not args.keep:
            nodes.stop()


if __name__ == '__main__':
    main()
