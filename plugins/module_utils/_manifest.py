# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""


from __future__ import annotations

import csv
import datetime
import io
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_file_name, check_name

COLUMNS = ('customer', 'domain', 'file_name', 'file_size', 'file_mtime', 'records', 'sha256', 'run_id')
# Columns that say which run wrote a row: not part of what a row means.
RUN_COLUMNS = ('run_id',)


def iso_utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def epoch_of(iso: str) -> int:
    return int(datetime.datetime.strptime(iso, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc).timestamp())


def row_of(found: t.Mapping, run_id: str, index: int = 0) -> dict[str, str]:
    """A manifest row from one file as ``discover`` returns it."""
    key = 'files[%d]' % index
    try:
        return {
            'customer': check_name(found['customer'], key + '.customer'),
            'domain': check_name(found['domain'], key + '.domain'),
            'file_name': check_file_name(found['name'], key + '.name'),
            'file_size': str(int(found['size'])),
            'file_mtime': iso_utc(float(found['mtime'])),
            'records': str(int(found['records'])),
            'sha256': str(found['sha256']),
            'run_id': run_id,
        }
    except KeyError as exc:
        raise ConfigError('%s lacks the key %s (pass the files that discover returned)' % (key, exc)) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError('%s has a bad value: %s' % (key, exc)) from None


def key_of(row: t.Mapping[str, str]) -> tuple[str, str]:
    return row['customer'], row['file_name']


def render(rows: t.Iterable[t.Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode('utf-8')


def parse(data: bytes | None, path: str) -> list[dict[str, str]]:
    """Rows of a manifest; an empty list for a missing file. A foreign file is an error, never overwritten."""
    if not data:
        return []
    reader = csv.DictReader(io.StringIO(data.decode('utf-8')))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise BackupError('%s is not a manifest of this collection (header %r, expected %r); not overwritten'
                          % (path, reader.fieldnames, ','.join(COLUMNS)))
    return [dict(row) for row in reader]


def meaning(rows: t.Iterable[t.Mapping[str, str]]) -> list[tuple]:
    """Rows without the columns that only say which run wrote them, in a stable order."""
    return sorted(tuple(row[c] for c in COLUMNS if c not in RUN_COLUMNS) for row in rows)


def merge(existing: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """The ledger update: rows of ``new`` replace rows with the same (customer, file name)."""
    by_key = {key_of(row): row for row in existing}
    for row in new:
        old = by_key.get(key_of(row))
        if old is None or meaning([old]) != meaning([row]):
            by_key[key_of(row)] = row
    return sorted(by_key.values(), key=lambda row: (row['customer'], row['file_name']))


def done_index(rows: t.Iterable[t.Mapping[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(customer, file name) -> (size, mtime) of the rows of a ledger, for discovery."""
    return {key_of(row): (int(row['file_size']), epoch_of(row['file_mtime'])) for row in rows}
