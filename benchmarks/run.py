#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks of mnaas.backup against rsync, cp and an ansible.builtin.copy loop (see docs/performance.md).

    python benchmarks/run.py [--quick] [--only copy|discover|ansible|tasks|hdfs] [--data-dir DIR]

Sections:

copy      backup_copy as the module process Ansible runs on the node (interpreter start and ansible
          imports included) against ``rsync -a`` and ``cp -a``: first copy into a fresh directory and
          a no-op rerun, interleaved, order rotated every round, ratios paired per round.
discover  peak RSS and duration of the discover module process over a large landing directory,
          with max_files=500 (the role's default) and max_files=0 (every file read).
ansible   ansible-playbook: a loop of ansible.builtin.copy tasks against one backup_copy task on the
          same files, and backup_copy over the whole small data set.
tasks     the demo playbook on two landing sizes: tasks per host from PLAY RECAP must be equal.
hdfs      only when asked (``--only hdfs``; needs Java and the Hadoop jars of tests/services/hdfs):
          backup_copy to a WebHDFS location against Hadoop's FsShell -put, on an HDFS of its own
          (benchmarks/bench_hdfs.py).

Run as root without --data-dir, the data lives on a fresh loop-mounted ext4 image that this script
creates, trims, unmounts and removes (also on failure or SIGTERM); otherwise in a temporary directory
under --data-dir (default /dev/shm, a tmpfs). Data is generated with tools/make_landing.py. The
Python running this script runs the modules and must have ansible-core (the venv of ``make venv``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bench_hdfs  # benchmarks/bench_hdfs.py, beside this script

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / 'benchmarks' / 'results'
NAMESPACE, NAME = 'mnaas', 'backup'
SEED = 42
IMAGE_SIZE = '8G'
MEMORY_LIMIT_MB = 150
TILE = 4 * 10**6            # large files repeat a make_landing CSV of this size (generating 200 MB row by row takes ~90 s)
SECTIONS = ('copy', 'discover', 'ansible', 'tasks', 'hdfs')
DEFAULT_SECTIONS = ('copy', 'discover', 'ansible', 'tasks')     # hdfs runs only with --only hdfs
RECAP = re.compile(r'^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+'
                   r'failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)')


class BenchError(Exception):
    """A benchmark step failed; the message says which and why."""


class Profile(t.NamedTuple):
    """Sizes and rounds of one run."""

    small_files: int
    small_size: int
    small_rounds: int
    large_files: int
    large_size: int
    large_rounds: int
    discover_files: int
    discover_size: int
    discover_rounds: int
    ansible_files: int
    ansible_rounds: int
    task_counts: tuple[int, int]
    parallel_tasks: bool        # run the demo playbooks at the same time (quick: their durations mean nothing)


FULL = Profile(5000, 20_000, 5, 5, 200_000_000, 3, 100_000, 100, 3, 200, 3, (10, 5000), False)
QUICK = Profile(300, 20_000, 1, 3, 1_000_000, 1, 1000, 100, 1, 2, 1, (10, 40), True)


class Sample(t.NamedTuple):
    """One timed process: wall-clock seconds, CPU seconds and peak resident set size."""

    wall: float
    user: float
    sys: float
    maxrss_kb: int

    def as_dict(self) -> dict:
        return {'wall': round(self.wall, 4), 'user': round(self.user, 4), 'sys': round(self.sys, 4), 'maxrss_kb': self.maxrss_kb}


class Tools(t.NamedTuple):
    """What the benchmarks run: the Python with ansible-core, ansible-playbook and the collection tree."""

    python: str
    playbook: str
    tree: Path                  # holds ansible_collections/mnaas/backup -> REPO
    scratch: Path               # args files, outputs, playbooks

    def module_path(self, name: str) -> str:
        return str(self.tree / 'ansible_collections' / NAMESPACE / NAME / 'plugins' / 'modules' / (name + '.py'))

    def module_env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(self.tree))

    def playbook_env(self) -> dict[str, str]:
        return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.tree), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                    ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_DEPRECATION_WARNINGS='0')


def log(message: str) -> None:
    sys.stderr.write('[%s] %s\n' % (time.strftime('%H:%M:%S'), message))
    sys.stderr.flush()


def median(values: t.Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# Processes

def _tail(handle: t.IO[bytes], limit: int = 3000) -> str:
    handle.seek(0)
    return handle.read()[-limit:].decode('utf-8', 'replace')


@functools.lru_cache(maxsize=None)
def gnu_time() -> str | None:
    """GNU time, to read a process's own peak RSS.

    A child's ru_maxrss from wait4() also counts the memory of the process that forked it (its mm
    before exec): with the benchmark driver as parent that floor is the driver's own peak RSS. GNU
    time is a small C program, so the peak it reports (%M) is the measured process's own.
    """
    path = '/usr/bin/time'
    if os.access(path, os.X_OK) and 'GNU' in first_line([path, '--version']):
        return path
    return None


def _peak_rss_kb(rss_file: Path | None, usage: t.Any) -> int:
    if rss_file is None:
        return usage.ru_maxrss
    return int(rss_file.read_text().split()[-1])


def run_timed(argv: list[str], env: dict[str, str] | None = None, out: Path | None = None,
              cwd: Path | None = None) -> Sample:
    """Run argv to completion: wall time, CPU time of it and its children (os.wait4), its own peak RSS
    (GNU time when installed), stdout to ``out``; raise on a non-zero exit."""
    wrapper = gnu_time()
    rss_file = Path(tempfile.mkstemp(prefix='mnaas-bench-rss-')[1]) if wrapper else None
    command = [wrapper, '-f', '%M', '-o', str(rss_file), '--'] + argv if wrapper else argv
    try:
        with open(out or os.devnull, 'w+b') as stdout, tempfile.TemporaryFile() as stderr:
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                detail = (_tail(stdout) if out else '') + _tail(stderr)
                raise BenchError('%s exited %d:\n%s' % (shlex.join(argv[:4]), proc.returncode, detail))
        return Sample(wall, usage.ru_utime, usage.ru_stime, _peak_rss_kb(rss_file, usage))
    finally:
        if rss_file:
            rss_file.unlink()


def run_quiet(argv: list[str]) -> str:
    """Run a setup command; its stdout, or BenchError with its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError('%s failed (%d): %s' % (shlex.join(argv), done.returncode, done.stderr.strip()))
    return done.stdout


def first_line(argv: list[str]) -> str:
    try:
        return ' '.join(run_quiet(argv).splitlines()[0].split())
    except (BenchError, OSError, IndexError):
        return 'unknown'


def settle() -> None:
    """Write back dirty pages left by the previous method, so no method pays for another's writeback."""
    os.sync()


def run_module(tools: Tools, name: str, args: dict, out: Path) -> tuple[Sample, dict]:
    """Run a module file as Ansible runs it on the node: ``python module.py args.json``."""
    args_path = out.with_name(out.name + '.args.json')
    args_path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    sample = run_timed([tools.python, tools.module_path(name), str(args_path)], env=tools.module_env(), out=out)
    return sample, json.loads(out.read_text())


def run_playbook(tools: Tools, playbook: Path, inventory: str, extra: dict, out: Path) -> Sample:
    vars_path = out.with_name(out.name + '.vars.json')
    vars_path.write_text(json.dumps(extra))
    argv = [tools.playbook, '-i', inventory, '-e', '@' + str(vars_path), str(playbook)]
    return run_timed(argv, env=tools.playbook_env(), out=out, cwd=tools.scratch)


# ---------------------------------------------------------------------------------------------
# Filesystem

def describe_fs(path: Path, kind: str) -> dict:
    """The mount holding ``path`` (longest mount point prefix in /proc/self/mounts)."""
    real = os.path.realpath(path)
    best = ('?', '/', '?', '')
    with open('/proc/self/mounts') as mounts:
        for line in mounts:
            device, point, fstype, options = (line.split() + ['', '', '', ''])[:4]
            point = point.replace('\\040', ' ')
            inside = real == point or real.startswith(point.rstrip('/') + '/')
            if inside and len(point) >= len(best[1]):
                best = (device, point, fstype, options)
    usage = shutil.disk_usage(real)
    return {'kind': kind, 'path': real, 'device': best[0], 'mountpoint': best[1], 'fstype': best[2],
            'options': best[3], 'size_bytes': usage.total}


def _make_loop_fs(holder: Path) -> Path:
    image, mount = holder / 'bench.img', holder / 'mnt'
    mount.mkdir()
    run_quiet(['truncate', '-s', IMAGE_SIZE, str(image)])
    run_quiet(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', str(image)])
    run_quiet(['mount', '-o', 'loop', str(image), str(mount)])
    return mount


def _drop_loop_fs(holder: Path) -> None:
    """Trim, unmount, remove the image; never delete through a mount that is still there."""
    mount = holder / 'mnt'
    if os.path.ismount(mount):
        subprocess.run(['fstrim', str(mount)], capture_output=True, check=False)
        if subprocess.run(['umount', str(mount)], capture_output=True, check=False).returncode != 0:
            subprocess.run(['umount', '-l', str(mount)], capture_output=True, check=False)
    if os.path.ismount(mount):
        log('could not unmount %s; remove %s by hand' % (mount, holder))
        (holder / 'bench.img').unlink(missing_ok=True)
        return
    shutil.rmtree(holder, ignore_errors=True)


@contextlib.contextmanager
def _temp_dir(base: str | None, kind: str) -> t.Iterator[tuple[Path, dict]]:
    path = Path(tempfile.mkdtemp(prefix='mnaas-bench-', dir=base))
    try:
        yield path, describe_fs(path, kind)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def workspace(data_dir: str | None) -> t.Iterator[tuple[Path, dict]]:
    """Where benchmark data lives: --data-dir, else a fresh loop ext4 image when root, else a tmpfs."""
    if data_dir:
        with _temp_dir(data_dir, 'directory given with --data-dir') as found:
            yield found
        return
    if os.geteuid() == 0 and all(shutil.which(tool) for tool in ('mkfs.ext4', 'mount', 'umount', 'truncate')):
        holder = Path(tempfile.mkdtemp(prefix='mnaas-bench-loop-'))
        try:
            mount = _make_loop_fs(holder)
        except (BenchError, OSError) as exc:
            log('loop filesystem unavailable (%s); using a tmpfs' % exc)
            _drop_loop_fs(holder)
        else:
            try:
                yield mount, describe_fs(mount, 'fresh loop-mounted ext4 image (%s, sparse)' % IMAGE_SIZE)
            finally:
                _drop_loop_fs(holder)
            return
    base = '/dev/shm' if os.path.isdir('/dev/shm') else None
    with _temp_dir(base, 'tmpfs' if base else 'temporary directory') as found:
        yield found


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------
# Data

def load_make_landing() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location('mnaas_make_landing', REPO / 'tools' / 'make_landing.py')
    if spec is None or spec.loader is None:
        raise BenchError('cannot load tools/make_landing.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _write_file(landing: types.ModuleType, path: Path, entry: t.Any, size: int) -> None:
    """One make_landing CSV of about ``size`` bytes; large ones repeat the rows of a TILE-sized CSV."""
    if size <= TILE:
        path.write_bytes(landing.content(entry, SEED, size))
    else:
        tile = landing.content(entry, SEED, TILE)
        body = tile[tile.index(b'\n') + 1:]
        with open(path, 'wb') as out:
            out.write(tile)
            written = len(tile)
            while written + len(body) <= size:
                out.write(body)
                written += len(body)
            out.write(body[:body.rfind(b'\n', 0, size - written) + 1])
    os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))


def write_landing(landing: types.ModuleType, root: Path, count: int, size: int) -> list[str]:
    """``count`` regular files (the oldest of a make_landing plan, no special cases, no gzip); their names."""
    customers = list(landing.DEFAULT_CUSTOMERS)
    per_domain = -(-count // (len(landing.DOMAIN_TOKENS) * len(customers)))
    entries = landing.plan(customers, per_domain, SEED, time.time(), specials=False, gzip_ratio=0.0)
    entries = sorted(entries, key=lambda entry: entry.mtime_ns)[:count]
    root.mkdir(parents=True)
    for entry in entries:
        _write_file(landing, root / entry.name, entry, size)
    return sorted(entry.name for entry in entries)


def link_files(src: Path, names: list[str], dest: Path) -> None:
    """Hard links (same inode, size and mtime) of some source files in another directory."""
    dest.mkdir(parents=True)
    for name in names:
        os.link(src / name, dest / name)


def discover_args(landing: types.ModuleType, source: Path, max_files: int) -> dict:
    return {'source_dir': str(source), 'domains': landing.DOMAIN_PATTERNS,
            'customers': {name: {} for name in landing.DEFAULT_CUSTOMERS},
            'max_files': max_files, 'header_lines': landing.HEADER_LINES}


def count_dir(path: Path) -> tuple[int, int]:
    """Regular non-hidden files under ``path`` and their total size."""
    files = total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            if not name.startswith('.'):
                files += 1
                total += os.lstat(os.path.join(root, name)).st_size
    return files, total


class Dataset(t.NamedTuple):
    """A landing directory and what discover said of it."""

    key: str
    label: str
    path: Path
    names: list[str]
    bytes: int
    found: list[dict]           # discover's files (name, size, mtime, sha256, ...)
    discover: Sample


def make_dataset(landing: types.ModuleType, tools: Tools, work: Path, key: str, count: int, size: int) -> Dataset:
    path = work / ('landing-' + key)
    log('generating %d files of %d bytes in %s' % (count, size, path))
    names = write_landing(landing, path, count, size)
    settle()
    sample, result = run_module(tools, 'discover', discover_args(landing, path, 0), tools.scratch / ('discover-' + key + '.json'))
    if len(result['files']) != count:
        raise BenchError('discover found %d of %d files in %s: %s' % (len(result['files']), count, path, result.get('summary')))
    label = '%s files of %s' % (format(count, ','), human_bytes(size))
    return Dataset(key, label, path, names, count_dir(path)[1], result['files'], sample)


def human_bytes(size: int) -> str:
    for unit, scale in (('GB', 10**9), ('MB', 10**6), ('KB', 10**3)):
        if size >= scale:
            return '%g %s' % (round(size / scale, 1), unit)
    return '%d B' % size


# ---------------------------------------------------------------------------------------------
# Copy: backup_copy module process against rsync -a and cp -a

class Method(t.NamedTuple):
    """One way to copy a data set; ``argv(dataset, dest, tag)`` builds the command."""

    key: str
    label: str
    noop: bool                  # a no-op rerun into the same destination means something
    argv: t.Callable[[Dataset, Path, str], list[str]]
    expect_module: bool = False  # stdout is a module result to check


def _module_argv(tools: Tools, args_for: t.Callable[[Dataset, Path], dict]) -> t.Callable[[Dataset, Path, str], list[str]]:
    def argv(dataset: Dataset, dest: Path, tag: str) -> list[str]:
        args_path = tools.scratch / (tag + '.args.json')
        args_path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args_for(dataset, dest)}))
        return [tools.python, tools.module_path('backup_copy'), str(args_path)]
    return argv


def copy_methods(tools: Tools) -> list[Method]:
    def files(dataset: Dataset, dest: Path) -> dict:
        return {'transfers': [{'src': str(dataset.path), 'dest': str(dest), 'files': dataset.found}]}

    def sync(dataset: Dataset, dest: Path) -> dict:
        return {'transfers': [{'src': str(dataset.path), 'dest': str(dest), 'sync': True}]}

    def no_fsync(dataset: Dataset, dest: Path) -> dict:
        return dict(files(dataset, dest), fsync=False)

    return [
        Method('rsync', 'rsync -a', True, lambda d, dest, tag: ['rsync', '-a', str(d.path) + '/', str(dest) + '/']),
        Method('rsync_syncfs', 'rsync -a, then sync -f (syncfs, as durable as fsync: true)', True,
               lambda d, dest, tag: ['sh', '-c', 'rsync -a "$1/" "$2/" && sync -f "$2"', 'sh', str(d.path), str(dest)]),
        Method('cp', 'cp -a', False, lambda d, dest, tag: ['cp', '-a', str(d.path) + '/.', str(dest)]),
        Method('ours_files', 'backup_copy, files from discover (role)', True, _module_argv(tools, files), True),
        Method('ours_sync', 'backup_copy, sync: true, no files', True, _module_argv(tools, sync), True),
        Method('ours_nofsync', 'backup_copy, files, fsync: false', True, _module_argv(tools, no_fsync), True),
        Method('ours_floor', 'backup_copy, empty transfers (process floor)', False,
               _module_argv(tools, lambda d, dest: {'transfers': []}), True),
    ]


def _check_copy(method: Method, dataset: Dataset, dest: Path, out: Path, noop: bool) -> None:
    if method.expect_module:
        summary = json.loads(out.read_text())['summary']
        want = 0 if method.key == 'ours_floor' else len(dataset.names)
        got = summary['skipped'] if noop else summary['copied']
        if got != want or summary['failed'] or summary['conflict']:
            wanted = 'skipped' if noop else 'copied'
            raise BenchError('%s on %s: expected %d %s, got %s' % (method.label, dataset.label, want, wanted, summary))
    if method.key != 'ours_floor' and count_dir(dest) != (len(dataset.names), dataset.bytes):
        raise BenchError('%s on %s: destination holds %s, expected %s' % (method.label, dataset.label, count_dir(dest),
                                                                          (len(dataset.names), dataset.bytes)))


def _copy_once(tools: Tools, method: Method, dataset: Dataset, round_no: int) -> dict:
    dest = dataset.path.parent / ('dest-%s-%s-r%d' % (dataset.key, method.key, round_no))
    result = {}
    for phase in ('copy', 'noop') if method.noop else ('copy',):
        tag = '%s-%s-r%d-%s' % (dataset.key, method.key, round_no, phase)
        out = tools.scratch / (tag + '.out')
        argv = method.argv(dataset, dest, tag)
        settle()
        result[phase] = run_timed(argv, env=tools.module_env(), out=out)
        _check_copy(method, dataset, dest, out, phase == 'noop')
    shutil.rmtree(dest, ignore_errors=True)
    return result


def copy_rounds(tools: Tools, dataset: Dataset, rounds: int) -> dict:
    """Every method every round, in an order rotated each round; returns raw samples per method and phase."""
    methods = copy_methods(tools)
    samples: dict[str, dict[str, list[Sample]]] = {m.key: {'copy': [], 'noop': []} for m in methods}
    for round_no in range(rounds):
        shift = round_no % len(methods)
        order = methods[shift:] + methods[:shift]
        log('%s: round %d/%d: %s' % (dataset.label, round_no + 1, rounds, ', '.join(m.key for m in order)))
        for method in order:
            for phase, sample in _copy_once(tools, method, dataset, round_no).items():
                samples[method.key][phase].append(sample)
    return {'labels': {m.key: m.label for m in methods}, 'samples': samples}


def paired_ratios(samples: list[Sample], reference: list[Sample]) -> list[float]:
    return [mine.wall / ref.wall for mine, ref in zip(samples, reference) if ref.wall > 0]


def above_floor(samples: list[Sample], floor: list[Sample]) -> float | None:
    """Median per round of the time above the module process floor (interpreter start, imports, JSON)."""
    return median(mine.wall - base.wall for mine, base in zip(samples, floor)) if samples else None


def summarize_copy(dataset: Dataset, raw: dict) -> dict:
    samples = raw['samples']
    floor = samples['ours_floor']['copy']
    rows = []
    for key, label in raw['labels'].items():
        copy, noop = samples[key]['copy'], samples[key]['noop']
        module = key.startswith('ours_') and key != 'ours_floor'
        rows.append({
            'method': key, 'label': label,
            'copy_s': median(s.wall for s in copy), 'copy_cpu_s': median(s.user + s.sys for s in copy),
            'copy_vs_rsync': median(paired_ratios(copy, samples['rsync']['copy'])),
            'noop_s': median(s.wall for s in noop) if noop else None,
            'noop_vs_rsync': median(paired_ratios(noop, samples['rsync']['noop'])) if noop else None,
            'copy_above_floor_s': above_floor(copy, floor) if module else None,
            'noop_above_floor_s': above_floor(noop, floor) if module else None,
            'peak_rss_mb': max(s.maxrss_kb for s in copy + noop) / 1024,
        })
    return {'dataset': dataset.label, 'files': len(dataset.names), 'bytes': dataset.bytes, 'rounds': len(samples['rsync']['copy']),
            'discover_s': dataset.discover.wall, 'rows': rows}


def bench_copy(tools: Tools, datasets: dict[str, Dataset], profile: Profile) -> dict:
    results = {}
    for key, rounds in (('small', profile.small_rounds), ('large', profile.large_rounds)):
        dataset = datasets[key]
        raw = copy_rounds(tools, dataset, rounds)
        results[key] = {'summary': summarize_copy(dataset, raw),
                        'raw': {k: {p: [s.as_dict() for s in v] for p, v in phases.items()} for k, phases in raw['samples'].items()}}
    return results


# ---------------------------------------------------------------------------------------------
# Discover: peak memory over a large landing directory

def bench_discover(landing: types.ModuleType, tools: Tools, work: Path, profile: Profile) -> dict:
    source = work / 'landing-discover'
    log('generating %d files of ~%d bytes for discover' % (profile.discover_files, profile.discover_size))
    write_landing(landing, source, profile.discover_files, profile.discover_size)
    empty = work / 'landing-empty'
    empty.mkdir()
    settle()
    cases = {'empty_dir': (empty, 500), 'max_files_500': (source, 500), 'max_files_0': (source, 0)}
    samples: dict[str, list[Sample]] = {case: [] for case in cases}
    selected: dict[str, dict] = {}
    keys = list(cases)
    for round_no in range(profile.discover_rounds):
        shift = round_no % len(keys)
        for case in keys[shift:] + keys[:shift]:
            path, max_files = cases[case]
            log('discover %s round %d/%d' % (case, round_no + 1, profile.discover_rounds))
            sample, result = run_module(tools, 'discover', discover_args(landing, path, max_files), tools.scratch / ('disc-%s.json' % case))
            samples[case].append(sample)
            selected[case] = result['summary']
    rows = [{'case': case, 'files_in_dir': 0 if case == 'empty_dir' else profile.discover_files,
             'max_files': cases[case][1], 'selected': selected[case]['selected'], 'deferred': selected[case]['deferred'],
             'wall_s': median(s.wall for s in samples[case]), 'cpu_s': median(s.user + s.sys for s in samples[case]),
             'peak_rss_mb': max(s.maxrss_kb for s in samples[case]) / 1024,
             'under_limit': max(s.maxrss_kb for s in samples[case]) / 1024 < MEMORY_LIMIT_MB} for case in keys]
    return {'summary': {'rows': rows, 'limit_mb': MEMORY_LIMIT_MB, 'rounds': profile.discover_rounds},
            'raw': {case: [s.as_dict() for s in values] for case, values in samples.items()}}


# ---------------------------------------------------------------------------------------------
# Ansible: a loop of ansible.builtin.copy tasks against one backup_copy task

def _play(tasks: list[dict]) -> list[dict]:
    return [{'name': 'Benchmark', 'hosts': 'all', 'gather_facts': False, 'tasks': tasks}]


def write_playbooks(scratch: Path) -> dict[str, Path]:
    """JSON is YAML: the playbooks are written as JSON."""
    plays = {
        'baseline': _play([{'name': 'One module call', 'ansible.builtin.ping': {}}]),
        'copy_loop': _play([{'name': 'Copy one file per task', 'loop': '{{ bench_files }}',
                             'ansible.builtin.copy': {'src': '{{ item }}', 'dest': '{{ bench_dest }}/', 'mode': 'preserve'}}]),
        'ours': _play([{'name': 'Copy all files in one task', 'mnaas.backup.backup_copy': {'transfers': '{{ bench_transfers }}'}}]),
    }
    paths = {}
    for key, play in plays.items():
        paths[key] = scratch / ('play-%s.yml' % key)
        paths[key].write_text(json.dumps(play, indent=1))
    return paths


PLAYBOOK_OF = {'baseline': 'baseline', 'copy_loop': 'copy_loop', 'ours_n': 'ours', 'ours_all': 'ours'}


def _ansible_case(tools: Tools, playbooks: dict[str, Path], small: Dataset, case: str, count: int, tag: str) -> Sample:
    dest = small.path.parent / ('dest-ansible-' + tag)
    found = small.found[:count]
    extra: dict[str, t.Any] = {'ansible_connection': 'local', 'ansible_python_interpreter': tools.python}
    if case == 'copy_loop':
        dest.mkdir()
        extra.update(bench_dest=str(dest), bench_files=[f['path'] for f in found])
    elif case != 'baseline':
        extra['bench_transfers'] = [{'src': str(small.path), 'dest': str(dest), 'files': found}]
    settle()
    sample = run_playbook(tools, playbooks[PLAYBOOK_OF[case]], 'localhost,', extra, tools.scratch / ('%s.out' % tag))
    if case != 'baseline' and count_dir(dest)[0] != count:
        raise BenchError('ansible %s: %d of %d files copied' % (case, count_dir(dest)[0], count))
    shutil.rmtree(dest, ignore_errors=True)
    return sample


def bench_ansible(tools: Tools, small: Dataset, profile: Profile) -> dict:
    playbooks = write_playbooks(tools.scratch)
    count = profile.ansible_files
    cases = {'baseline': 0, 'copy_loop': count, 'ours_n': count, 'ours_all': len(small.found)}
    samples: dict[str, list[Sample]] = {case: [] for case in cases}
    keys = list(cases)
    for round_no in range(profile.ansible_rounds):
        shift = round_no % len(keys)
        for case in keys[shift:] + keys[:shift]:
            log('ansible-playbook %s (%d files) round %d/%d' % (case, cases[case], round_no + 1, profile.ansible_rounds))
            samples[case].append(_ansible_case(tools, playbooks, small, case, cases[case], '%s-r%d' % (case, round_no)))
    return {'summary': summarize_ansible(samples, cases), 'raw': {case: [s.as_dict() for s in v] for case, v in samples.items()}}


def summarize_ansible(samples: dict[str, list[Sample]], cases: dict[str, int]) -> dict:
    walls = {case: [s.wall for s in values] for case, values in samples.items()}
    count, total = cases['copy_loop'], cases['ours_all']
    per_file = [(loop - base) / count for loop, base in zip(walls['copy_loop'], walls['baseline'])]
    extrapolated = [base + cost * total for base, cost in zip(walls['baseline'], per_file)]
    return {
        'files': count, 'all_files': total, 'rounds': len(walls['baseline']),
        'median_s': {case: median(values) for case, values in walls.items()},
        'copy_loop_per_file_s': median(per_file),
        'copy_loop_vs_ours_same_files': median(loop / ours for loop, ours in zip(walls['copy_loop'], walls['ours_n'])),
        'copy_loop_extrapolated_all_s': median(extrapolated),
        'extrapolated_loop_vs_ours_all': median(loop / ours for loop, ours in zip(extrapolated, walls['ours_all'])),
    }


# ---------------------------------------------------------------------------------------------
# Tasks: one module call per stage per host whatever the file count

def parse_recap(text: str) -> dict[str, dict[str, int]]:
    recap = {}
    for line in text.split('PLAY RECAP', 1)[-1].splitlines():
        match = RECAP.match(line.strip())
        if match:
            recap[match.group('host')] = {k: int(v) for k, v in match.groupdict().items() if k != 'host'}
    return recap


def _demo_run(tools: Tools, small: Dataset, work: Path, count: int) -> dict:
    root = work / ('demo-%d' % count)
    link_files(small.path, [found['name'] for found in small.found[:count]], root / 'edge1' / 'MNAAS_Input')
    out = tools.scratch / ('demo-%d.out' % count)
    log('demo playbook with %d files' % count)
    settle()
    sample = run_playbook(tools, REPO / 'playbooks' / 'customer_backup.yml', str(REPO / 'inventory' / 'demo'),
                          {'mnaas_demo_root': str(root), 'mnaas_backup_max_files': 0}, out)
    recap = parse_recap(out.read_text())
    copied = {node: count_dir(root / node / backup)[0] for node, backup in (('edge1', 'backup1'), ('edge2', 'backup2'))}
    if not recap or any(copied[node] != count for node in copied):
        raise BenchError('demo with %d files: recap %s, files backed up %s (see %s)' % (count, recap, copied, out))
    return {'files': count, 'wall_s': sample.wall, 'recap': recap, 'backed_up': copied}


def bench_tasks(tools: Tools, small: Dataset, work: Path, profile: Profile) -> dict:
    with ThreadPoolExecutor(max_workers=len(profile.task_counts) if profile.parallel_tasks else 1) as pool:
        runs = list(pool.map(lambda count: _demo_run(tools, small, work, count), profile.task_counts))
    tasks = [{host: (r['ok'], r['changed'], r['skipped'], r['failed']) for host, r in run['recap'].items()} for run in runs]
    return {'runs': runs, 'equal': all(counts == tasks[0] for counts in tasks), 'parallel': profile.parallel_tasks}


# ---------------------------------------------------------------------------------------------
# Report

def fmt(value: float | None, pattern: str = '%.3f') -> str:
    return '-' if value is None else pattern % value


def ratio(value: float | None) -> str:
    return fmt(value, '%.2fx')


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _column in header) + '|']
    return lines + ['| ' + ' | '.join(row) + ' |' for row in rows]


def report_copy(copy: dict) -> list[str]:
    lines = []
    for key in ('small', 'large'):
        if key not in copy:
            continue
        summary = copy[key]['summary']
        lines += ['', '### %s (%s rounds; discover over them: %.2f s)' % (summary['dataset'], summary['rounds'], summary['discover_s']), '']
        rows = [[r['label'], fmt(r['copy_s']), ratio(r['copy_vs_rsync']), fmt(r['copy_cpu_s']), fmt(r['copy_above_floor_s']),
                 fmt(r['noop_s']), ratio(r['noop_vs_rsync']), fmt(r['noop_above_floor_s']), fmt(r['peak_rss_mb'], '%.0f')]
                for r in summary['rows']]
        lines += table(['method', 'copy s', 'copy / rsync', 'copy CPU s', 'copy - floor s', 'no-op s', 'no-op / rsync',
                        'no-op - floor s', 'peak RSS MB'], rows)
    return lines


def report_ansible(summary: dict) -> list[str]:
    med = summary['median_s']
    rows = [
        ['ansible-playbook, one ping task (fixed cost)', fmt(med['baseline'])],
        ['`ansible.builtin.copy` loop, %d tasks' % summary['files'], fmt(med['copy_loop'])],
        ['backup_copy, 1 task, same %d files' % summary['files'], fmt(med['ours_n'])],
        ['backup_copy, 1 task, all %s files' % format(summary['all_files'], ','), fmt(med['ours_all'])],
        ['copy loop, marginal cost per file', fmt(summary['copy_loop_per_file_s'])],
        ['copy loop extrapolated to %s files' % format(summary['all_files'], ','), fmt(summary['copy_loop_extrapolated_all_s'], '%.1f')],
        ['ratio copy loop / backup_copy, same %d files' % summary['files'], ratio(summary['copy_loop_vs_ours_same_files'])],
        ['ratio copy loop (extrapolated) / backup_copy, %s files' % format(summary['all_files'], ','),
         ratio(summary['extrapolated_loop_vs_ours_all'])],
    ]
    return ['', '### ansible-playbook (%d rounds)' % summary['rounds'], ''] + table(['what', 'seconds / ratio'], rows)


def report_discover(summary: dict) -> list[str]:
    rows = [[r['case'], format(r['files_in_dir'], ','), str(r['max_files']), format(r['selected'], ','), fmt(r['wall_s']),
             fmt(r['cpu_s']), fmt(r['peak_rss_mb'], '%.1f'), 'yes' if r['under_limit'] else '**no**'] for r in summary['rows']]
    header = ['case', 'files in dir', 'max_files', 'selected', 'wall s', 'CPU s', 'peak RSS MB', '< %d MB' % summary['limit_mb']]
    return ['', '### discover (%d rounds)' % summary['rounds'], ''] + table(header, rows)


def report_tasks(tasks: dict) -> list[str]:
    rows = []
    for run in tasks['runs']:
        for host, recap in sorted(run['recap'].items()):
            rows.append([format(run['files'], ','), host, str(recap['ok']), str(recap['changed']), str(recap['skipped']),
                         str(recap['failed']), str(run['backed_up'].get(host, '-')), fmt(run['wall_s'], '%.1f')])
    concurrent = ' (both runs at the same time: durations not comparable)' if tasks.get('parallel') else ''
    lines = ['', '### Tasks per host, demo playbook (max_files=0)%s' % concurrent, '']
    lines += table(['files', 'host', 'ok', 'changed', 'skipped', 'failed', 'files backed up', 'run s'], rows)
    return lines + ['', 'Task counts equal for every size: **%s**' % ('yes' if tasks['equal'] else 'NO')]


def verdicts(results: dict) -> list[str]:
    lines = []
    for key in ('small', 'large'):
        rows = {r['method']: r for r in results.get('copy', {}).get(key, {}).get('summary', {}).get('rows', [])}
        if rows:
            ours = rows['ours_files']
            lines.append('- copy %s: backup_copy / rsync -a = %s (%s), no-op %s (%s)' % (
                results['copy'][key]['summary']['dataset'], ratio(ours['copy_vs_rsync']),
                'meets' if ours['copy_vs_rsync'] <= 1 else 'MISSES', ratio(ours['noop_vs_rsync']),
                'meets' if ours['noop_vs_rsync'] <= 1 else 'MISSES'))
    for row in results.get('discover', {}).get('summary', {}).get('rows', []):
        if row['case'] != 'empty_dir':
            verdict = 'under' if row['under_limit'] else 'OVER'
            lines.append('- discover %s: peak %.1f MB (%s %d MB)' % (row['case'], row['peak_rss_mb'], verdict, MEMORY_LIMIT_MB))
    if 'tasks' in results and 'equal' in results['tasks']:
        lines.append('- tasks per host equal for %s files: %s' % (
            ' and '.join(str(r['files']) for r in results['tasks']['runs']), 'yes' if results['tasks']['equal'] else 'NO'))
    if 'hdfs' in results and 'error' not in results['hdfs']:
        lines += bench_hdfs.verdicts(results['hdfs'])
    return lines


def render(results: dict) -> str:
    meta = results['meta']
    lines = ['## mnaas.backup benchmarks, %s' % meta['date'], '',
             '%s; %d CPUs; data on %s (%s at %s); python %s, ansible-core %s, %s' % (
                 meta['profile'], meta['nproc'], meta['filesystem']['kind'], meta['filesystem']['fstype'],
                 meta['filesystem']['device'], meta['python'], meta['ansible_core'], meta['rsync']),
             '', 'Medians; ratios are medians of per-round ratios (same round, interleaved). Peak RSS: %s.' % meta['peak_rss_source']]
    if 'copy' in results and 'error' not in results['copy']:
        lines += report_copy(results['copy'])
    if 'ansible' in results and 'error' not in results['ansible']:
        lines += report_ansible(results['ansible']['summary'])
    if 'discover' in results and 'error' not in results['discover']:
        lines += report_discover(results['discover']['summary'])
    if 'tasks' in results and 'error' not in results['tasks']:
        lines += report_tasks(results['tasks'])
    if 'hdfs' in results and 'error' not in results['hdfs']:
        lines += bench_hdfs.report(sys.modules[__name__], results['hdfs'])
    lines += ['', '### Verdicts', ''] + verdicts(results)
    errors = ['- %s: %s' % (name, section['error']) for name, section in results.items() if isinstance(section, dict) and 'error' in section]
    if errors:
        lines += ['', '### Errors', ''] + errors
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------
# Main

def find_tools(scratch: Path) -> Tools:
    """The Python running us (it must have ansible-core), its ansible-playbook, a collection tree."""
    if importlib.util.find_spec('ansible') is None:
        raise BenchError('%s has no ansible-core: run with the venv of `make venv`' % sys.executable)
    for tool in ('rsync', 'cp'):
        if shutil.which(tool) is None:
            raise BenchError('%s not found (`make apt-deps` installs rsync)' % tool)
    beside = Path(sys.executable).parent / 'ansible-playbook'
    playbook = str(beside) if beside.exists() else shutil.which('ansible-playbook')
    if not playbook:
        raise BenchError('ansible-playbook not found next to %s nor on PATH' % sys.executable)
    tree = scratch / 'collections'
    (tree / 'ansible_collections' / NAMESPACE).mkdir(parents=True)
    (tree / 'ansible_collections' / NAMESPACE / NAME).symlink_to(REPO)
    return Tools(sys.executable, playbook, tree, scratch)


def metadata(profile: Profile, quick: bool, filesystem: dict) -> dict:
    from ansible.release import __version__ as ansible_version
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'command': shlex.join([sys.executable] + sys.argv), 'profile': 'quick' if quick else 'full',
        'sizes': profile._asdict(), 'nproc': os.cpu_count(), 'loadavg_start': os.getloadavg(),
        'kernel': platform.release(), 'python': platform.python_version(), 'ansible_core': ansible_version,
        'peak_rss_source': 'GNU time %M of the process itself' if gnu_time() else
                           'wait4 ru_maxrss: includes the benchmark driver\'s own peak RSS as a floor',
        'rsync': first_line(['rsync', '--version']), 'cp': first_line(['cp', '--version']), 'filesystem': filesystem,
    }


def run_sections(sections: list[str], profile: Profile, tools: Tools, work: Path) -> dict:
    landing = load_make_landing()
    results: dict[str, dict] = {}
    datasets: dict[str, Dataset] = {}

    def dataset(key: str) -> Dataset:
        if key not in datasets:
            count, size = (profile.small_files, profile.small_size) if key == 'small' else (profile.large_files, profile.large_size)
            datasets[key] = make_dataset(landing, tools, work, key, count, size)
        return datasets[key]

    steps: dict[str, t.Callable[[], dict]] = {
        'copy': lambda: bench_copy(tools, {'small': dataset('small'), 'large': dataset('large')}, profile),
        'discover': lambda: bench_discover(landing, tools, work, profile),
        'ansible': lambda: bench_ansible(tools, dataset('small'), profile),
        'tasks': lambda: bench_tasks(tools, dataset('small'), work, profile),
        'hdfs': lambda: bench_hdfs.bench(sys.modules[__name__], tools, work, profile is QUICK),
    }
    for section in sections:
        started = time.perf_counter()
        try:
            results[section] = steps[section]()
        except BenchError as exc:
            log('%s: FAILED: %s' % (section, exc))
            results[section] = {'error': str(exc)}
        results[section]['section_s'] = round(time.perf_counter() - started, 1)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmarks of mnaas.backup (see docs/performance.md).')
    parser.add_argument('--quick', action='store_true', help='small sizes, one or two rounds: a smoke run of under a minute')
    parser.add_argument('--only', action='append', choices=SECTIONS, help='run only this section (repeatable)')
    parser.add_argument('--data-dir', help='put the data in a temporary directory under DIR instead of a loop ext4 image / tmpfs')
    parser.add_argument('--results-dir', default=str(RESULTS_DIR), help='where the JSON results go (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = QUICK if args.quick else FULL
    sections = [s for s in SECTIONS if (s in args.only if args.only else s in DEFAULT_SECTIONS)]
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    try:
        with workspace(args.data_dir) as (work, filesystem):
            scratch = work / 'scratch'
            scratch.mkdir()
            tools = find_tools(scratch)
            results: dict[str, t.Any] = {'meta': metadata(profile, args.quick, filesystem)}
            log('data on %s (%s), results of: %s' % (work, filesystem['kind'], ', '.join(sections)))
            results.update(run_sections(sections, profile, tools, work))
    except BenchError as exc:
        log('error: %s' % exc)
        return 2
    results['meta']['loadavg_end'] = os.getloadavg()
    results['meta']['total_s'] = round(time.perf_counter() - started, 1)
    text = render(results)
    sys.stdout.write(text)
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ('%s%s.json' % (time.strftime('%Y%m%dT%H%M%S'), '-quick' if args.quick else ''))
    out.write_text(json.dumps(dict(results, markdown=text), indent=1, default=str) + '\n')
    log('raw results: %s (%.0f s)' % (out, results['meta']['total_s']))
    return 1 if any(isinstance(v, dict) and 'error' in v for v in results.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
