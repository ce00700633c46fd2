# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Every check of a configuration before anything is written; all problems are collected, not just the first.
"""

from __future__ import annotations

import difflib
import os
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Location
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute
from ansible_collections.mnaas.backup.plugins.module_utils._selection import compile_rules
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import check_identifier

CUSTOMER_KEYS = ('match', 'backup_dir', 'edge2_backup_dir', 'hdfs_backup_dir')


def _suggest(name: str, known: t.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return ' (did you mean %s?)' % close[0] if close else ''


def _whole(value: object) -> float:
    """``value`` as a whole number (``-e name=100`` gives the string '100'); -inf when it is none."""
    if isinstance(value, bool):
        return float('-inf')
    try:
        return int(str(value).strip())
    except ValueError:
        return float('-inf')


def check(settings: dict, known_variables: list[str], set_variables: list[str], needed_dirs: list[str]) -> list[str]:
    """Problems of a configuration, each naming the key and the value. ``needed_dirs`` are the customer
    settings this node needs (``backup_dir`` on the primary, both on the secondary)."""
    problems: list[str] = []

    def attempt(func: t.Callable, *args) -> None:
        try:
            func(*args)
        except ConfigError as exc:
            problems.append(exc.msg)

    for name in sorted(set(set_variables) - set(known_variables)):
        problems.append('unknown variable %s%s' % (name, _suggest(name, known_variables)))
    for key in ('source_dir', 'state_dir', 'lock_file', 'ledger_file', 'manifest_file', 'flag_file'):
        if key in settings:
            attempt(check_absolute, settings[key], 'mnaas_backup_' + key)
    engine = settings.get('warehouse_engine', 'sqlite')
    if engine == 'sqlite':
        if 'warehouse_database' in settings:
            attempt(check_absolute, settings['warehouse_database'], 'mnaas_backup_warehouse_database')
    else:
        attempt(check_identifier, settings.get('warehouse_database'), 'mnaas_backup_warehouse_database', False)
        if not settings.get('warehouse_host'):
            problems.append('mnaas_backup_warehouse_host is required when mnaas_backup_warehouse_engine is %s' % engine)
    for key in ('staging_table', 'final_table'):
        if key in settings:
            attempt(check_identifier, settings[key], 'mnaas_backup_' + key)
    for name in ('flag_location', 'hdfs_location'):
        location = settings.get(name) or {}
        needs = {'webhdfs': 'urls', 'sftp': 'host'}.get(location.get('type', 'local')) if isinstance(location, dict) else None
        if needs and not location.get(needs):
            problems.append('mnaas_backup_%s.%s is required when mnaas_backup_%s.type is %s' % (name, needs, name, location['type']))
    if settings.get('hdfs_count_dir'):
        attempt(check_absolute, settings['hdfs_count_dir'], 'mnaas_backup_hdfs_count_dir')
    attempt(compile_rules, settings.get('domains'), settings.get('customers'), 'mnaas_backup_')
    for key, least in (('max_files', 0), ('min_age', 0), ('header_lines', 0), ('lock_stale_after', 0), ('workers', 1), ('min_free_mb', 0)):
        if key in settings and _whole(settings[key]) < least:
            problems.append('mnaas_backup_%s must be a whole number >= %d, got %r' % (key, least, settings[key]))
    customers = settings.get('customers')
    if isinstance(customers, dict):
        owners: dict[str, str] = {}
        for name, conf in sorted(customers.items(), key=lambda item: str(item[0])):
            conf = conf or {}
            if not isinstance(conf, dict):
                continue  # compile_rules reported it
            for key in sorted(set(conf) - set(CUSTOMER_KEYS)):
                problems.append('mnaas_backup_customers.%s: unknown key %s%s (known: %s)'
                                % (name, key, _suggest(key, CUSTOMER_KEYS), ', '.join(CUSTOMER_KEYS)))
            if conf.get('hdfs_backup_dir'):
                attempt(check_absolute, conf['hdfs_backup_dir'], 'mnaas_backup_customers.%s.hdfs_backup_dir' % name)
            for key in needed_dirs:
                label = 'mnaas_backup_customers.%s.%s' % (name, key)
                if not conf.get(key):
                    problems.append('%s is missing; this node needs it' % label)
                    continue
                try:
                    path = check_absolute(conf[key], label)
                except ConfigError as exc:
                    problems.append(exc.msg)
                    continue
                if (key, path) in owners:
                    problems.append('%s %r is also the %s of customer %s; each customer needs its own directory'
                                    % (label, path, key, owners[(key, path)]))
                owners[(key, path)] = name
    return problems


def _existing_ancestor(path: str) -> str:
    """The nearest directory at or above ``path`` that exists."""
    while not os.path.isdir(path) and path != '/':
        path = os.path.dirname(path)
    return path


def check_node(settings: dict, node_role: str, min_free_mb: int, notes: list[str] | None = None) -> list[str]:
    """Problems of this node's filesystems: what must exist does, what the run creates can be created,
    and every backup filesystem has at least ``min_free_mb`` MiB free. Paths that are not absolute
    were reported by ``check`` and are left out here.

    A customer's own backup directory that exists but refuses writes is not a problem of the night but of
    that customer: it goes to ``notes`` (the copy then fails that customer and the others go on)."""
    problems: list[str] = []

    def absolute(key: str) -> str | None:
        value = settings.get(key)
        return os.path.normpath(value) if isinstance(value, str) and value.startswith('/') else None

    def creatable(path: str, label: str) -> None:
        probe = path
        while not os.path.lexists(probe) and probe != '/':
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            problems.append('%s %r cannot be created: %r is not a directory' % (label, path, probe))
        elif not os.access(probe, os.W_OK | os.X_OK):
            problems.append('%s %r cannot be created or written: %r is not writable' % (label, path, probe))

    if node_role == 'secondary' and 'primary_host' in settings and not settings['primary_host']:
        problems.append('mnaas_backup_primary_host is required on the secondary: the inventory name of the primary it pulls from')
    source = absolute('source_dir')
    if node_role == 'primary' and source and not os.path.isdir(source):
        problems.append('mnaas_backup_source_dir %r does not exist or is not a directory' % source)
    state_dir = absolute('state_dir')
    if state_dir:
        creatable(state_dir, 'mnaas_backup_state_dir')
    files = ['lock_file', 'ledger_file']
    if node_role == 'primary':
        files.append('manifest_file')
        if (settings.get('flag_location') or settings.get('hdfs_location') or {}).get('type', 'local') == 'local':
            files.append('flag_file')
        if settings.get('warehouse_engine', 'sqlite') == 'sqlite':
            files.append('warehouse_database')
    for key in files:
        path = absolute(key)
        if path and os.path.dirname(path) != state_dir and not os.path.isdir(os.path.dirname(path)):
            problems.append('mnaas_backup_%s %r: directory %r does not exist' % (key, path, os.path.dirname(path)))
    count_dir = absolute('hdfs_count_dir')
    if node_role == 'primary' and count_dir and not settings.get('hdfs_location') and not os.path.isdir(count_dir):
        problems.append('mnaas_backup_hdfs_count_dir %r does not exist on this node (mnaas_backup_hdfs_location is empty, '
                        'so the counts are written here)' % count_dir)
    write_key = 'backup_dir' if node_role == 'primary' else 'edge2_backup_dir'
    customers = settings.get('customers') if isinstance(settings.get('customers'), dict) else {}
    for name, conf in sorted(customers.items(), key=lambda item: str(item[0])):
        path = (conf or {}).get(write_key) if isinstance(conf, dict) else None
        if not isinstance(path, str) or not path.startswith('/'):
            continue
        label = 'mnaas_backup_customers.%s.%s' % (name, write_key)
        path = os.path.normpath(path)
        if os.path.isdir(path) and not os.access(path, os.W_OK | os.X_OK):
            if notes is not None:
                notes.append('%s %r is not writable: customer %s will fail tonight, the others go on' % (label, path, name))
        else:
            creatable(path, label)
        stats = os.statvfs(_existing_ancestor(path))
        free_mb = stats.f_bavail * stats.f_frsize // (1024 * 1024)
        if free_mb < min_free_mb:
            problems.append('%s %r: only %d MiB free on its filesystem, below mnaas_backup_min_free_mb=%d' % (label, path, free_mb, min_free_mb))
    return problems


def check_primary(location: Location, settings: dict, label: str = 'mnaas_backup_primary_location') -> tuple[list[str], list[str]]:
    """Problems and notes of the secondary's view of the primary, through ``location`` (how the secondary
    reads it): the primary answers (host key, login) and each customer's ``backup_dir`` and the primary's
    ledger, where they exist, are a directory and a file. A missing one is only a note: before the
    primary's first night, or in the same run before the primary has copied, there is none yet."""
    problems: list[str] = []
    notes: list[str] = []
    paths = []
    customers = settings.get('customers') if isinstance(settings.get('customers'), dict) else {}
    for name, conf in sorted(customers.items(), key=lambda item: str(item[0])):
        path = conf.get('backup_dir') if isinstance(conf, dict) else None
        if isinstance(path, str) and path.startswith('/'):
            paths.append(('mnaas_backup_customers.%s.backup_dir' % name, os.path.normpath(path), 'dir'))
    ledger = settings.get('primary_ledger_file')
    if isinstance(ledger, str) and ledger.startswith('/'):
        paths.append(('mnaas_backup_primary_ledger_file', os.path.normpath(ledger), 'file'))
    try:
        location.stat('/')
    except (BackupError, OSError) as exc:
        # No connection (unreachable, host key, login, key file): nothing else can be checked.
        return ['%s: cannot reach the primary: %s' % (label, getattr(exc, 'msg', None) or exc)], notes
    for key, path, kind in paths:
        where = location.describe(path)
        try:
            entry = location.stat(path)
        except OSError as exc:
            problems.append('%s %s on the primary cannot be read: %s' % (key, where, exc))
            continue
        if entry is None:
            notes.append('%s %s does not exist on the primary (yet): nothing of it to copy' % (key, where))
        elif entry.kind != kind:
            problems.append('%s %s on the primary is not a %s' % (key, where, 'directory' if kind == 'dir' else 'regular file'))
    return problems, notes
