# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``hdfs`` section of benchmarks/run.py (``run.py --only hdfs``): backup_copy to a WebHDFS
location against Hadoop's own client, ``FsShell -put`` (what ``hdfs dfs -put`` runs).

It starts its own HDFS (tests/services/hdfs/start.sh with a base directory of its own, two free
ports and the NameNode audit log on) and stops it at the end, also on failure: the shared cluster
on 8020/9870 is never touched. Per round, in an order rotated every round:

small   1,000 files of 20 KB: the backup_copy module process (as Ansible runs it on the node, one
        transfer per customer directory, the role's ``files`` from discover, default workers) against
        one ``FsShell -put`` of the whole directory and one ``FsShell -put`` per file, a JVM each. The
        per-file way is timed on a sample of files spread over the set and extrapolated linearly to
        the whole set (sample time / sample size * files; 16 files a round, 48 in all); the report says so.
large   5 files of 200 MB: backup_copy against one ``FsShell -put`` of the directory; throughput
        ratio = FsShell's time / backup_copy's time (same bytes).
no-op   backup_copy again over the small files it just wrote. The NameNode's audit log (one line
        per namespace operation, written by the NameNode itself) is read for the span of the run, so
        the operations are counted independently of the collection's code: the target is one
        listStatus per destination directory and no per-file getfileinfo or open.

Every copy is checked with FsShell (a JVM of Hadoop's own client): file count and bytes (``-count``)
of both copies, and ``-checksum`` of a sample of files of backup_copy's copy against the same files
of FsShell's copy; a mismatch fails the section.

The helpers (timing, data, discover) are run.py's: ``bench`` receives run.py's module object.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import types
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVICE = REPO / 'tests' / 'services' / 'hdfs'
AUDIT = re.compile(r'FSNamesystem\.audit: allowed=(?P<allowed>\w+)\s.*?\scmd=(?P<cmd>\S+)\s+src=(?P<src>\S*)\s.*proto=(?P<proto>\w+)')


class HdfsProfile(t.NamedTuple):
    small_files: int
    small_size: int
    per_file_sample: int        # FsShell -put calls timed per round, one JVM each
    small_rounds: int
    large_files: int
    large_size: int
    large_rounds: int
    checksum_sample: int


FULL = HdfsProfile(1000, 20_000, 16, 3, 5, 200_000_000, 3, 8)
QUICK = HdfsProfile(100, 20_000, 3, 1, 2, 5_000_000, 1, 3)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Cluster:
    """Our own MiniDFSCluster: its base directory, ports, environment for the service scripts."""

    def __init__(self, base: Path, run: types.ModuleType) -> None:
        self.run = run
        self.base = base
        self.rpc_port = free_port()
        self.http_port = free_port()
        while self.http_port == self.rpc_port:
            self.http_port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.http_port
        self.user = getpass.getuser()
        self.env = dict(os.environ, MNAAS_HDFS_BASE=str(base), MNAAS_HDFS_RPC_PORT=str(self.rpc_port),
                        MNAAS_HDFS_HTTP_PORT=str(self.http_port), MNAAS_HDFS_AUDIT='1')
        self.log = base / 'hdfs.log'

    def start(self) -> None:
        self.run.log('starting our own HDFS: %s, RPC %d, base %s' % (self.url, self.rpc_port, self.base))
        done = subprocess.run(['bash', str(SERVICE / 'start.sh')], env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise self.run.BenchError('tests/services/hdfs/start.sh failed (%d): %s' % (done.returncode, done.stderr[-3000:]))

    def stop(self) -> None:
        done = subprocess.run(['bash', str(SERVICE / 'stop.sh')], env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            self.run.log('stop.sh failed (%d): %s' % (done.returncode, done.stderr[-2000:]))
        else:
            self.run.log('our HDFS stopped')

    def fsshell_argv(self, *args: str) -> list[str]:
        return ['bash', str(SERVICE / 'fsshell.sh')] + list(args)

    def fsshell(self, *args: str) -> str:
        done = subprocess.run(self.fsshell_argv(*args), env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise self.run.BenchError('FsShell %s failed (%d): %s' % (' '.join(args[:3]), done.returncode, done.stderr[-2000:]))
        return done.stdout

    def webhdfs(self, method: str, path: str, **params: str) -> dict:
        """A WebHDFS call with the standard library (setup and cleanup, untimed)."""
        query = urllib.parse.urlencode(dict(params, **{'user.name': self.user}))
        request = urllib.request.Request('%s/webhdfs/v1%s?%s' % (self.url, urllib.parse.quote(path), query), method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                body = answer.read()
        except urllib.error.HTTPError as exc:
            raise self.run.BenchError('WebHDFS %s %s: HTTP %d %s' % (params.get('op'), path, exc.code, exc.read()[:300])) from exc
        return json.loads(body) if body else {}

    def audit_offset(self) -> int:
        return self.log.stat().st_size

    def audit_since(self, offset: int, under: str) -> dict[str, int]:
        """Namespace operations on paths under ``under`` logged since ``offset``: ``cmd/proto`` -> count."""
        time.sleep(0.5)     # the NameNode logs after answering
        counts: dict[str, int] = {}
        with open(self.log, 'rb') as log:
            log.seek(offset)
            for raw in log:
                match = AUDIT.search(raw.decode('utf-8', 'replace'))
                if match and (match.group('src') == under or match.group('src').startswith(under + '/')):
                    key = '%s/%s' % (match.group('cmd'), match.group('proto'))
                    counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def _transfers(dataset: t.Any, dest: str) -> list[dict]:
    """One transfer per customer, files as the role passes them (name, size, mtime, sha256)."""
    by_customer: dict[str, list[dict]] = {}
    for found in dataset.found:
        by_customer.setdefault(found.get('customer') or 'all', []).append(
            {key: found[key] for key in ('name', 'size', 'mtime', 'sha256') if key in found})
    return [{'src': str(dataset.path), 'dest': '%s/%s' % (dest, customer), 'customer': customer, 'files': files}
            for customer, files in sorted(by_customer.items())]


def _ours(run: types.ModuleType, tools: t.Any, cluster: Cluster, dataset: t.Any, dest: str, tag: str, noop: bool) -> t.Any:
    args = {'transfers': _transfers(dataset, dest),
            'dest_location': {'type': 'webhdfs', 'urls': [cluster.url], 'hdfs_user': cluster.user}}
    run.settle()
    sample, result = run.run_module(tools, 'backup_copy', args, tools.scratch / ('hdfs-%s.json' % tag))
    summary = result.get('summary') or {}
    want = 'skipped' if noop else 'copied'
    if result.get('failed') or summary.get(want) != len(dataset.names) or summary.get('failed') or summary.get('conflict'):
        raise run.BenchError('backup_copy %s: expected %d %s, got %s %s' % (tag, len(dataset.names), want, summary, result.get('msg', '')))
    return sample


def _fs_dir(run: types.ModuleType, cluster: Cluster, dataset: t.Any, dest: str) -> t.Any:
    run.settle()
    return run.run_timed(cluster.fsshell_argv('-put', str(dataset.path), dest), env=cluster.env)


def _fs_each(run: types.ModuleType, cluster: Cluster, dataset: t.Any, names: list[str], dest: str) -> float:
    """Seconds of one FsShell -put per file over ``names`` (a JVM each), summed."""
    cluster.webhdfs('PUT', dest, op='MKDIRS')
    total = 0.0
    for name in names:
        run.settle()
        total += run.run_timed(cluster.fsshell_argv('-put', str(dataset.path / name), dest + '/'), env=cluster.env).wall
    return total


def _spread(names: list[str], count: int) -> list[str]:
    """``count`` names spread evenly over the sorted list."""
    count = min(count, len(names))
    return [names[(index * len(names)) // count] for index in range(count)]


def _count(cluster: Cluster, path: str) -> tuple[int, int]:
    """Files and bytes under ``path``, by FsShell -count (DIR_COUNT FILE_COUNT CONTENT_SIZE PATHNAME)."""
    fields = cluster.fsshell('-count', path).split()
    return int(fields[1]), int(fields[2])


def _verify(run: types.ModuleType, cluster: Cluster, dataset: t.Any, ours: str, theirs: str, nested: bool, sample: int) -> dict:
    """FsShell's view of both copies: counts and bytes, and checksums of a sample compared file by file."""
    want = (len(dataset.names), dataset.bytes)
    for label, path in (('backup_copy', ours), ('FsShell -put', theirs)):
        got = _count(cluster, path)
        if got != want:
            raise run.BenchError('%s copy %s holds %s files/bytes, expected %s' % (label, path, got, want))
    customer_of = {found['name']: found.get('customer') or 'all' for found in dataset.found}
    names = _spread(dataset.names, sample)
    ours_paths = ['%s/%s/%s' % (ours, customer_of[name], name) if nested else '%s/%s' % (ours, name) for name in names]
    theirs_paths = ['%s/%s' % (theirs, name) for name in names]
    sums: dict[str, str] = {}
    for line in cluster.fsshell('-checksum', *(ours_paths + theirs_paths)).splitlines():
        fields = line.split('\t')
        if len(fields) == 3:
            sums[fields[0]] = fields[2]
    for mine, other in zip(ours_paths, theirs_paths):
        if not sums.get(mine) or sums.get(mine) != sums.get(other):
            raise run.BenchError('checksum of %s (%s) differs from FsShell\'s copy %s (%s)' % (mine, sums.get(mine), other, sums.get(other)))
    return {'files': want[0], 'bytes': want[1], 'checksums_compared': len(names)}


def warm_up(run: types.ModuleType, tools: t.Any, cluster: Cluster, dataset: t.Any) -> None:
    """One untimed copy each way first: a fresh NameNode and DataNode answer their first requests several
    times slower (class loading, JIT), which would count against whichever method ran first."""
    run.log('hdfs: warm-up (untimed): backup_copy and FsShell -put of %s' % dataset.label)
    _ours(run, tools, cluster, dataset, '/bench/warm-up/ours', 'warm-up', False)
    _fs_dir(run, cluster, dataset, '/bench/warm-up/fs-dir')
    cluster.webhdfs('DELETE', '/bench/warm-up', op='DELETE', recursive='true')


def _rounds(run: types.ModuleType, tools: t.Any, cluster: Cluster, dataset: t.Any, rounds: int, methods: list[str],
            profile: HdfsProfile) -> dict:
    samples: dict[str, list[float]] = {method: [] for method in methods}
    extra: dict[str, list] = {'noop_s': [], 'noop_ops': [], 'copy_ops': [], 'load': [], 'verified': []}
    sample_names = _spread(dataset.names, profile.per_file_sample)
    for round_no in range(rounds):
        root = '/bench/%s-r%d' % (dataset.key, round_no)
        cluster.webhdfs('PUT', root, op='MKDIRS')
        shift = round_no % len(methods)
        order = methods[shift:] + methods[:shift]
        run.log('hdfs %s: round %d/%d: %s (load %.1f)' % (dataset.label, round_no + 1, rounds, ', '.join(order), os.getloadavg()[0]))
        extra['load'].append(os.getloadavg()[0])
        for method in order:
            if method == 'ours':
                offset = cluster.audit_offset()
                samples[method].append(_ours(run, tools, cluster, dataset, root + '/ours', '%s-r%d' % (dataset.key, round_no), False).wall)
                extra['copy_ops'].append(cluster.audit_since(offset, root + '/ours'))
                offset = cluster.audit_offset()
                extra['noop_s'].append(_ours(run, tools, cluster, dataset, root + '/ours', '%s-r%d-noop' % (dataset.key, round_no), True).wall)
                extra['noop_ops'].append(cluster.audit_since(offset, root + '/ours'))
            elif method == 'fs_dir':
                samples[method].append(_fs_dir(run, cluster, dataset, root + '/fs-dir').wall)
            elif method == 'fs_each':
                samples[method].append(_fs_each(run, cluster, dataset, sample_names, root + '/fs-each'))
        extra['verified'].append(_verify(run, cluster, dataset, root + '/ours', root + '/fs-dir', True, profile.checksum_sample))
        cluster.webhdfs('DELETE', root, op='DELETE', recursive='true')
    return dict(samples=samples, **extra)


def summarize(run: types.ModuleType, dataset: t.Any, raw: dict, profile: HdfsProfile) -> dict:
    samples = raw['samples']
    ours = samples['ours']
    summary: dict[str, t.Any] = {
        'dataset': dataset.label, 'files': len(dataset.names), 'bytes': dataset.bytes, 'rounds': len(ours),
        'load_per_round': raw['load'], 'ours_s': run.median(ours), 'fs_dir_s': run.median(samples['fs_dir']),
        'fs_dir_vs_ours': run.median(fs / mine for fs, mine in zip(samples['fs_dir'], ours)),
        'noop_s': run.median(raw['noop_s']), 'verified': raw['verified'][-1] if raw['verified'] else None,
        'mb_per_s': {'ours': dataset.bytes / 1e6 / run.median(ours), 'fs_dir': dataset.bytes / 1e6 / run.median(samples['fs_dir'])},
    }
    if 'fs_each' in samples:
        count = len(_spread(dataset.names, profile.per_file_sample))
        extrapolated = [each / count * len(dataset.names) for each in samples['fs_each']]
        summary.update({
            'fs_each_sample_files': count, 'fs_each_sample_s': run.median(samples['fs_each']),
            'fs_each_per_file_s': run.median(each / count for each in samples['fs_each']),
            'fs_each_extrapolated_s': run.median(extrapolated),
            'fs_each_vs_ours': run.median(fs / mine for fs, mine in zip(extrapolated, ours)),
        })
    directories = len({found.get('customer') or 'all' for found in dataset.found})
    summary.update({'directories': directories, 'copy_ops': raw['copy_ops'][-1] if raw['copy_ops'] else {},
                    'noop_ops': raw['noop_ops'][-1] if raw['noop_ops'] else {}})
    noop = raw['noop_ops']
    summary['noop_ops_ok'] = bool(noop) and all(
        ops.get('listStatus/webhdfs', 0) == directories and not any(cmd.split('/')[0] in ('getfileinfo', 'open') for cmd in ops)
        for ops in noop)
    summary['noop_ops_all_rounds'] = noop
    return summary


def bench(run: types.ModuleType, tools: t.Any, work: Path, quick: bool) -> dict:
    """The section: our own cluster, both data sets, every round; the cluster stopped whatever happens."""
    profile = QUICK if quick else FULL
    for tool in ('java', 'curl'):
        if shutil.which(tool) is None:
            raise run.BenchError('%s not found (`make apt-deps`): the hdfs section runs a MiniDFSCluster' % tool)
    landing = run.load_make_landing()
    small = run.make_dataset(landing, tools, work, 'hdfs-small', profile.small_files, profile.small_size)
    large = run.make_dataset(landing, tools, work, 'hdfs-large', profile.large_files, profile.large_size)
    cluster = Cluster(Path(tempfile.mkdtemp(prefix='mnaas-bench-hdfs-', dir=str(work))), run)
    try:
        cluster.start()
        cluster.fsshell('-mkdir', '-p', '/bench')
        warm_up(run, tools, cluster, small)
        results = {'profile': profile._asdict(), 'url': cluster.url, 'rpc_port': cluster.rpc_port}
        raw_small = _rounds(run, tools, cluster, small, profile.small_rounds, ['ours', 'fs_dir', 'fs_each'], profile)
        raw_large = _rounds(run, tools, cluster, large, profile.large_rounds, ['ours', 'fs_dir'], profile)
        results['small'] = {'summary': summarize(run, small, raw_small, profile), 'raw': raw_small}
        results['large'] = {'summary': summarize(run, large, raw_large, profile), 'raw': raw_large}
        return results
    finally:
        cluster.stop()
        shutil.rmtree(cluster.base, ignore_errors=True)


def report(run: types.ModuleType, hdfs: dict) -> list[str]:
    fmt, ratio, table = run.fmt, run.ratio, run.table
    small, large = hdfs['small']['summary'], hdfs['large']['summary']
    lines = ['', '### HDFS (WebHDFS location) against FsShell -put (own MiniDFSCluster at %s)' % hdfs['url'], '']
    rows = [
        ['backup_copy module process, webhdfs (%d customer directories)' % small['directories'], fmt(small['ours_s']), '1.00x'],
        ['FsShell -put of the whole directory (one JVM)', fmt(small['fs_dir_s']), ratio(small['fs_dir_vs_ours'])],
        ['FsShell -put per file (one JVM each): %d sampled files, extrapolated linearly to %s' % (
            small['fs_each_sample_files'], format(small['files'], ',')), fmt(small['fs_each_extrapolated_s'], '%.1f'),
         ratio(small['fs_each_vs_ours'])],
        ['  (per file: %s s; the sample itself: %s s)' % (fmt(small['fs_each_per_file_s']), fmt(small['fs_each_sample_s'])), '', ''],
        ['backup_copy no-op rerun', fmt(small['noop_s']), ''],
    ]
    loads = ', '.join('%.1f' % x for x in small['load_per_round'])
    lines += ['#### %s (%d rounds; load average per round %s)' % (small['dataset'], small['rounds'], loads), '']
    lines += table(['method', 'median s', 'its time / backup_copy (per-round median)'], rows)
    rows = [
        ['backup_copy module process, webhdfs', fmt(large['ours_s']), fmt(large['mb_per_s']['ours'], '%.0f'), '1.00x'],
        ['FsShell -put of the whole directory', fmt(large['fs_dir_s']), fmt(large['mb_per_s']['fs_dir'], '%.0f'), ratio(large['fs_dir_vs_ours'])],
    ]
    loads = ', '.join('%.1f' % x for x in large['load_per_round'])
    lines += ['', '#### %s (%d rounds; load average per round %s)' % (large['dataset'], large['rounds'], loads), '']
    lines += table(['method', 'median s', 'MB/s (of medians)', 'FsShell time / backup_copy time = throughput ratio'], rows)
    lines += ['', '#### NameNode audit log: operations under the destination (last round)', '']
    ops = sorted(set(small['copy_ops']) | set(small['noop_ops']))
    lines += table(['operation/protocol', 'first copy of %s files' % format(small['files'], ','), 'no-op rerun'],
                   [[op, str(small['copy_ops'].get(op, 0)), str(small['noop_ops'].get(op, 0))] for op in ops])
    lines += ['', 'Checked with FsShell: file count and bytes of both copies, `-checksum` of %d files of backup_copy\'s copy '
              'against FsShell\'s copy of the same files (small and large sets, every round).' % small['verified']['checksums_compared']]
    return lines


def verdicts(hdfs: dict) -> list[str]:
    small, large = hdfs['small']['summary'], hdfs['large']['summary']
    return [
        '- hdfs %s: FsShell -put per file (extrapolated) / backup_copy = %.2fx (target >= 5x: %s)' % (
            small['dataset'], small['fs_each_vs_ours'], 'meets' if small['fs_each_vs_ours'] >= 5 else 'MISSES'),
        '- hdfs %s: FsShell -put of the directory / backup_copy = %.2fx (target >= 1x: %s)' % (
            small['dataset'], small['fs_dir_vs_ours'], 'meets' if small['fs_dir_vs_ours'] >= 1 else 'MISSES'),
        '- hdfs %s: throughput backup_copy / FsShell -put = %.2fx (target >= 0.8x: %s)' % (
            large['dataset'], large['fs_dir_vs_ours'], 'meets' if large['fs_dir_vs_ours'] >= 0.8 else 'MISSES'),
        '- hdfs no-op over %s files in %d directories: %s (target: one listStatus per directory, no getfileinfo/open: %s)' % (
            format(small['files'], ','), small['directories'], small['noop_ops'], 'meets' if small['noop_ops_ok'] else 'MISSES'),
    ]
