# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""


from __future__ import annotations

import csv
import datetime
import io
import posixpath
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Location, write_small
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
    # The minimal quoting does not quote a carriage return (only the line terminator's characters), and
    # a reader takes an unquoted one for the end of a line: a row holding one is quoted whole.
    quoted = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator='\n', quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for row in rows:
        (quoted if any('\r' in str(value) for value in row.values()) else writer).writerow(row)
    return out.getvalue().encode('utf-8')


def parse(data: bytes | None, path: str) -> list[dict[str, str]]:
    """Rows of a manifest; an empty list for a missing file. A foreign file is an error, never overwritten."""
    if not data:
        return []
    reader = csv.DictReader(io.StringIO(data.decode('utf-8')))
    try:
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise BackupError('%s is not a manifest of this collection (header %r, expected %r); not overwritten'
                              % (path, reader.fieldnames, ','.join(COLUMNS)))
        return [dict(row) for row in reader]
    except csv.Error as exc:
        raise BackupError('%s: line %d is not valid CSV (%s); not overwritten' % (path, reader.line_num, exc)) from None


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


# How rows are spread over files: ``none`` one file (``path``), ``customer_day`` one file per customer and
# day of the files' modification time (UTC) below the directory ``path``. The day comes from the file, not
# from the run, so a file lands in the same CSV whichever run (capped, failed, rerun) counts it.
SPLITS = ('none', 'customer_day')


def target_of(base: str, row: t.Mapping[str, str]) -> str:
    """``<base>/<customer>/<customer>_<YYYYMMDD>.csv`` of a row, for ``customer_day``."""
    day = row['file_mtime'][:10].replace('-', '')
    return posixpath.join(base, row['customer'], '%s_%s.csv' % (row['customer'], day))


class Write(t.NamedTuple):
    """One CSV file: its content before (``None`` when absent) and after the task."""

    path: str
    before: bytes | None
    after: bytes
    changed: bool
    rows: int
    added: int


def targets(path: str, rows: list[dict[str, str]], split: str) -> dict[str, list[dict[str, str]]]:
    """The CSV files to write and the new rows of each."""
    if split == 'none':
        return {path: rows}
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        grouped.setdefault(target_of(path, row), []).append(row)
    return grouped


def _existing(location: Location, path: str, listings: dict[str, dict | None]) -> bytes | None:
    """The bytes of ``path``, listing each directory once so that absent files cost no round trip."""
    directory, name = posixpath.split(path)
    if directory not in listings:
        listings[directory] = location.listdir(directory)
    entries = listings[directory]
    if entries is None or name not in entries:
        return None
    with location.open_read(path) as stream:
        return stream.read()


def plan(location: Location, wanted: dict[str, list[dict[str, str]]], merge_rows: bool) -> list[Write]:
    """What each file holds now and should hold, rows of the same (customer, file name) replaced."""
    listings: dict[str, dict | None] = {}
    writes = []
    for path in sorted(wanted):
        before = _existing(location, path, listings)
        existing = parse(before, location.describe(path))
        rows = merge(existing if merge_rows else [], wanted[path])
        old_meaning = set(meaning(existing))
        new_meaning = meaning(rows)
        changed = before is None or new_meaning != meaning(existing)
        writes.append(Write(path, before, render(rows) if changed else before, changed, len(rows),
                            sum(1 for m in new_meaning if m not in old_meaning)))
    return writes


def apply(location: Location, writes: t.Iterable[Write], base: str, token: str) -> None:
    """Write the changed files atomically (temp, flush, rename over), creating directories below ``base``."""
    made: set[str] = set()
    for write in writes:
        if not write.changed:
            continue
        directory = posixpath.dirname(write.path)
        if directory != base and directory not in made:
            location.makedirs(directory)
            made.add(directory)
        write_small(location, write.path, write.after, token)
