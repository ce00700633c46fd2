# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shared HDFS and HiveServer2 (tests/services/hdfs, tests/services/hiveserver2): their clients and a test's HDFS directory."""

from __future__ import annotations

import csv
import getpass
import importlib
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from support.playbook import REPO_ROOT

SERVICES = REPO_ROOT / 'tests' / 'services'
WEBHDFS = 'http://127.0.0.1:9870'
DEMO_VARS = REPO_ROOT / 'inventory' / 'demo' / 'group_vars' / 'edge_nodes.yml'
COUNT_COLUMNS = ['customer', 'domain', 'file_name', 'file_size', 'file_mtime', 'records', 'sha256', 'run_id']
# The user who started the cluster is its superuser (root in CI); another user is refused (HTTP 403).
SUPERUSER = getpass.getuser()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=5):
            return True
    except OSError:
        return False


def ensure_service(name: str, port: int, flag: str) -> None:
    """The service answers; started with its idempotent script when it does not (and left for make to stop)."""
    if port_open(port):
        return
    if os.environ.get(flag) == '1':
        pytest.fail('%s=1 but nothing answers on port %d (tests/services/%s/start.sh)' % (flag, port, name))
    env = dict(os.environ, MNAAS_PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(SERVICES / name / 'start.sh')], env=env, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail('tests/services/%s/start.sh failed (exit %d):\n%s%s' % (name, proc.returncode, proc.stdout, proc.stderr))


def tool(name: str, *args: str) -> str:
    env = dict(os.environ, MNAAS_PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(SERVICES / name), *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, '%s %s failed:\n%s%s' % (name, ' '.join(args), proc.stdout, proc.stderr)
    return proc.stdout


def beeline(statement: str) -> list[str]:
    out = tool('hiveserver2/beeline.sh', '--silent=true', '--showHeader=false', '--outputformat=tsv2', '-e', statement.rstrip(';') + ';')
    return [line for line in out.splitlines() if line.strip()]


def fs(*args: str) -> str:
    """Hadoop's own client (``hdfs dfs``), one JVM a call."""
    return tool('hdfs/fsshell.sh', *args)


def hdfs_checksum_module():
    """The local computation of the HDFS checksum (plugins/module_utils/_hdfs_checksum.py), to compare
    with the checksum the DataNode computed (FsShell ``-checksum``)."""
    try:
        return importlib.import_module('ansible_collections.mnaas.backup.plugins.module_utils._hdfs_checksum')
    except ImportError:
        spec = importlib.util.spec_from_file_location('mnaas_hdfs_checksum', REPO_ROOT / 'plugins' / 'module_utils' / '_hdfs_checksum.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def hdfs_tree(base: str) -> dict:
    """Every entry below ``base``: {path: (type, owner, permission, length, modification time in ms)}, read with
    plain WebHDFS LISTSTATUS requests (not the collection's client), to the millisecond FsShell's ``-ls`` does not show."""
    found = {}
    todo = [base]
    while todo:
        directory = todo.pop()
        url = '%s/webhdfs/v1%s?op=LISTSTATUS&user.name=%s' % (WEBHDFS, urllib.parse.quote(directory), SUPERUSER)
        with urllib.request.urlopen(url, timeout=60) as answer:
            statuses = json.load(answer)['FileStatuses']['FileStatus']
        for status in statuses:
            path = '%s/%s' % (directory, status['pathSuffix'])
            found[path] = (status['type'], status['owner'], status['permission'], status['length'], status['modificationTime'])
            if status['type'] == 'DIRECTORY':
                todo.append(path)
    return found


class Hdfs:
    """A fresh directory of the shared HDFS for one test, and the role variables that use it."""

    def __init__(self, night, user: str = SUPERUSER) -> None:
        self.night = night
        self.base = '/user/%s/mnaas_%s' % (SUPERUSER, uuid.uuid4().hex[:8])
        self.user = user
        self.create()

    def create(self) -> None:
        fs('-mkdir', '-p', self.base + '/counts', self.base + '/flags', self.base + '/backup')

    def location(self, user: str | None = None, **extra) -> dict:
        return dict({'type': 'webhdfs', 'urls': [WEBHDFS], 'hdfs_user': user or self.user}, **extra)

    @property
    def flag(self) -> str:
        return self.base + '/flags/MNAAS_backup_files_process_ProcessStatusFile'

    def settings(self, **extra) -> dict:
        """The demo's customers, each also backed up to HDFS; counts, flag and backups in this HDFS directory."""
        customers = yaml.safe_load(DEMO_VARS.read_text())['mnaas_backup_customers']
        for name, conf in customers.items():
            conf['hdfs_backup_dir'] = '%s/backup/%s' % (self.base, name)
        settings = {'mnaas_backup_customers': customers, 'mnaas_backup_hdfs_location': self.location(),
                    'mnaas_backup_hdfs_count_dir': self.base + '/counts', 'mnaas_backup_flag_file': self.flag,
                    # The generated files are a day old or more, the in-flight ones brand new: they stay in flight.
                    'mnaas_backup_min_age': 3600}
        settings.update(extra)
        return settings

    def assert_backups(self, names, result=None) -> None:
        """HDFS holds exactly these files, each byte for byte its source (``-cat``) with HDFS's checksum
        equal to the one computed here from the source (``-checksum``)."""
        names = sorted(names)
        files = {path for path, stat in hdfs_tree(self.base + '/backup').items() if stat[0] == 'FILE'}
        expected = {'%s/backup/%s/%s' % (self.base, self.night.files[n]['customer'], n): n for n in names}
        assert files == set(expected), 'HDFS backups: missing %s, unexpected %s%s' % (
            sorted(set(expected) - files), sorted(files - set(expected)), result or '')
        paths = sorted(expected)
        proc = subprocess.run(['bash', str(SERVICES / 'hdfs' / 'fsshell.sh'), '-cat', *paths], capture_output=True, timeout=300,
                              check=False, env=dict(os.environ, MNAAS_PYTHON=sys.executable))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b''.join((self.night.landing / expected[p]).read_bytes() for p in paths), 'HDFS content differs'
        hc = hdfs_checksum_module()
        lines = fs('-checksum', *paths).splitlines()
        assert len(lines) == len(paths), lines
        for path, line in zip(paths, lines):
            assert line.startswith(path + '\t'), line
            with open(self.night.landing / expected[path], 'rb') as stream:
                assert hc.parse_fsshell(line) == hc.compute(stream), path

    def assert_counts(self, names, result=None) -> list:
        """The per-customer count files list each of these files exactly once, in the file of its customer and
        day, with its domain, size, records and sha256 (``sha256sum``); returns the rows."""
        listing = sorted(p for p, stat in hdfs_tree(self.base + '/counts').items() if stat[0] == 'FILE')
        rows, seen = [], {}
        out = fs('-cat', *listing) if listing else ''
        # -cat concatenates the files: each starts with the header.
        chunks = [chunk for chunk in out.split(','.join(COUNT_COLUMNS) + '\n') if chunk] if out else []
        assert out.count(','.join(COUNT_COLUMNS) + '\n') == len(listing), out[:500]
        for path, chunk in zip(listing, chunks):
            for row in csv.DictReader(io.StringIO(chunk), fieldnames=COUNT_COLUMNS):
                rows.append(row)
                seen.setdefault(row['file_name'], []).append(path)
        assert sorted(seen) == sorted(names), 'HDFS counts: missing %s, unexpected %s%s' % (
            sorted(set(names) - set(seen)), sorted(set(seen) - set(names)), result or '')
        twice = {name: paths for name, paths in seen.items() if len(paths) > 1}
        assert not twice, 'files counted more than once in HDFS: %s' % twice
        digests = self.night.sha256sum(self.night.landing / n for n in names)
        for row in rows:
            info = self.night.files[row['file_name']]
            day = row['file_mtime'][:10].replace('-', '')
            assert seen[row['file_name']] == ['%s/counts/%s/%s_%s.csv' % (self.base, info['customer'], info['customer'], day)], row
            assert (row['customer'], row['domain'], int(row['file_size']), int(row['records'])) == \
                (info['customer'], info['domain'], info['size'], info['records']), row
            assert row['sha256'] == digests[self.night.landing / row['file_name']], row
        return rows

    def flag_content(self) -> str:
        return fs('-cat', self.flag)


def per_customer_counts(night, names) -> dict:
    """{customer: (files, records, distinct file names)} as the generator made them."""
    expected: dict = {}
    for name in names:
        info = night.files[name]
        count, records = expected.get(info['customer'], (0, 0))
        expected[info['customer']] = (count + 1, records + info['records'])
    return {customer: (count, records, count) for customer, (count, records) in expected.items()}


def warehouse_counts(database: str) -> dict:
    rows = beeline('SELECT customer, COUNT(*), SUM(records), COUNT(DISTINCT file_name) FROM %s.customers_files_records_count '
                   'GROUP BY customer ORDER BY customer' % database)
    return {line.split('\t')[0]: tuple(int(x) for x in line.split('\t')[1:]) for line in rows}


def hdfs_files(base: str) -> list:
    return sorted(path for path, stat in hdfs_tree(base).items() if stat[0] == 'FILE')


def ledger_names(night) -> list:
    return sorted(row['file_name'] for row in night.csv_rows(night.ledger)) if night.ledger.exists() else []


def hdfs_script(name: str) -> None:
    env = dict(os.environ, MNAAS_PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(SERVICES / 'hdfs' / name)], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, 'tests/services/hdfs/%s failed:\n%s%s' % (name, proc.stdout, proc.stderr)
