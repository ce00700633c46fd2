# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to mnaas.backup: not a public API, may change without notice.

The warehouse interface: a ``Dialect`` writes the statements (each engine its own SQL, values
always bound as parameters), an ``Engine`` runs them. ``plan_update`` and ``verify`` are the
engine-neutral logic of the rerun-safe record-count update.
"""

from __future__ import annotations

import abc
import re
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import COLUMNS, RUN_COLUMNS

_IDENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,127}$')
NUMERIC = ('file_size', 'records')
BATCH = 200


def check_identifier(value: object, key: str, qualified: bool = True) -> str:
    """A table name (``table`` or ``db.table`` when ``qualified``), letters, digits and ``_`` only."""
    parts = value.split('.') if isinstance(value, str) else [None]
    if not parts or len(parts) > (2 if qualified else 1) or not all(isinstance(p, str) and _IDENT.fullmatch(p) for p in parts):
        raise ConfigError('%s must be an SQL identifier%s (letters, digits, "_"), got %r'
                          % (key, ' optionally qualified as db.table' if qualified else '', value))
    return value


# In a statement template: the table ({table}, or the legacy $dbname.<table>), or any other placeholder.
_PLACEHOLDER = re.compile(r'\{table\}|\$(?:dbname|\{dbname\})\.([A-Za-z_][A-Za-z0-9_]*)|\$\{?[A-Za-z_]\w*\}?|\{[^{}]*\}')


def render_template(template: str, table: str, key: str = 'refresh_statement') -> str:
    """A one-statement template with its only placeholder, the table, filled in.

    ``{table}`` and the legacy ``$dbname.<table>`` (also ``${dbname}.<table>``; ``<table>`` is the
    table's name without its database) become ``table`` as given, qualified or not. Any other
    placeholder, a ``$dbname.`` naming another table, or a second statement is an error naming the
    template. A trailing ``;`` is dropped.
    """
    bare = table.rsplit('.', 1)[-1]

    def fill(match: re.Match) -> str:
        if match.group(0) == '{table}' or (match.group(1) or '').lower() == bare.lower():
            return table
        if match.group(1):
            raise ConfigError('%s %r names the table %r; its only placeholder may be the final table %s (write {table} or $dbname.%s)'
                              % (key, template, match.group(1), table, bare))
        raise ConfigError('%s %r has the unknown placeholder %r; its only placeholder may be the final table %s '
                          '(write {table} or $dbname.%s)' % (key, template, match.group(0), table, bare))

    rendered = _PLACEHOLDER.sub(fill, template).strip().rstrip(';').rstrip()
    if ';' in rendered:
        raise ConfigError('%s %r must be a single statement (no ";" inside)' % (key, template))
    return rendered


class Statement(t.NamedTuple):
    sql: str
    params: tuple = ()

    def shown(self) -> str:
        """The statement as check mode and diff show it (parameters listed, never spliced in)."""
        return self.sql if not self.params else '%s  -- %d parameters' % (self.sql, len(self.params))


class Dialect:
    """Portable SQL: the base serves SQLite; engines override what differs."""

    name = 'generic'
    placeholder = '?'

    def column_types(self) -> list[tuple[str, str]]:
        return [(c, 'BIGINT' if c in NUMERIC else 'STRING') for c in COLUMNS]

    def create(self, table: str) -> Statement:
        cols = ', '.join('%s %s' % pair for pair in self.column_types())
        return Statement('CREATE TABLE IF NOT EXISTS %s (%s)' % (table, cols))

    def select_rows(self, table: str, file_names: list[str]) -> Statement:
        marks = ', '.join([self.placeholder] * len(file_names))
        return Statement('SELECT %s FROM %s WHERE file_name IN (%s)' % (', '.join(COLUMNS), table, marks), tuple(file_names))

    def clear(self, table: str) -> Statement:
        return Statement('DELETE FROM %s' % table)

    def insert(self, table: str, rows: list[tuple]) -> Statement:
        one = '(%s)' % ', '.join([self.placeholder] * len(COLUMNS))
        params = tuple(value for row in rows for value in row)
        return Statement('INSERT INTO %s (%s) VALUES %s' % (table, ', '.join(COLUMNS), ', '.join([one] * len(rows))), params)

    def load(self, table: str, rows: list[tuple]) -> list[Statement]:
        """Make ``table`` (the staging table) hold exactly ``rows``: emptied, then filled in batches."""
        return [self.clear(table)] + [self.insert(table, rows[i:i + BATCH]) for i in range(0, len(rows), BATCH)]

    def merge(self, staging: str, final: str) -> list[Statement]:
        """Replace the final rows of the files in staging by the staging rows: rerun-safe."""
        cols = ', '.join(COLUMNS)
        # The staging alias must not be the final table's name, or the condition would compare the staging rows with themselves.
        alias = 'staged' if final.rsplit('.', 1)[-1].lower() == 's' else 's'
        return [
            Statement('DELETE FROM %s WHERE EXISTS (SELECT 1 FROM %s %s WHERE %s.customer = %s.customer AND %s.file_name = %s.file_name)'
                      % (final, staging, alias, alias, final, alias, final)),
            Statement('INSERT INTO %s (%s) SELECT %s FROM %s' % (final, cols, cols, staging)),
        ]

    def refresh(self, final: str, template: str | None) -> list[Statement]:
        """The statements after the update: the template filled in (see ``render_template``); none without one."""
        rendered = render_template(template, final) if template else ''
        return [Statement(rendered)] if rendered else []


class Engine(abc.ABC):
    """A connection to one warehouse."""

    dialect: Dialect

    @abc.abstractmethod
    def query(self, statement: Statement) -> list[tuple]:
        """Rows of a SELECT."""

    @abc.abstractmethod
    def run(self, statements: list[Statement]) -> None:
        """Run statements in order, atomically where the engine can."""

    def has_table(self, table: str) -> bool:  # pylint: disable=unused-argument
        """Whether ``table`` exists; engines whose queries of a missing table fail tell here (SQLite's reads do not fail)."""
        return True

    def close(self) -> None:
        """Release the connection."""


def to_tuple(row: t.Mapping[str, str]) -> tuple:
    return tuple(int(row[c]) if c in NUMERIC else str(row[c]) for c in COLUMNS)


def _meaning(row: tuple) -> tuple:
    return tuple(str(v) for c, v in zip(COLUMNS, row) if c not in RUN_COLUMNS)


def final_rows(engine: Engine, final: str, keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[tuple]]:
    """The final table's rows of the files ``keys`` (customer, file name); a list, as a file may appear twice."""
    names = sorted({key[1] for key in keys})
    if not names or not engine.has_table(final):
        return {}
    index_c, index_f = COLUMNS.index('customer'), COLUMNS.index('file_name')
    found: dict[tuple[str, str], list[tuple]] = {}
    for i in range(0, len(names), BATCH):
        for row in engine.query(engine.dialect.select_rows(final, names[i:i + BATCH])):
            key = (row[index_c], row[index_f])
            if key in keys:
                found.setdefault(key, []).append(tuple(row))
    return found


def _holds(current: dict[tuple[str, str], list[tuple]], row: tuple) -> bool:
    """The final table holds ``row`` exactly once, with the same meaning."""
    have = current.get((row[0], row[2]), [])
    return len(have) == 1 and _meaning(have[0]) == _meaning(row)


class Plan(t.NamedTuple):
    statements: list[Statement]
    to_update: int
    up_to_date: int


def plan_update(engine: Engine | None, staging: str, final: str, rows: list[tuple], refresh_template: str | None,
                create_tables: bool) -> Plan:
    """What makes the final table hold exactly ``rows`` for their files: nothing when it already does."""
    dialect = engine.dialect if engine is not None else Dialect()
    keys = {(r[0], r[2]) for r in rows}
    current = final_rows(engine, final, keys) if engine is not None else {}
    up_to_date = sum(1 for r in rows if _holds(current, r))
    if not rows or up_to_date == len(rows):
        return Plan([], 0, up_to_date)
    statements = [dialect.create(staging), dialect.create(final)] if create_tables else []
    statements.extend(dialect.load(staging, rows))
    statements.extend(dialect.merge(staging, final))
    statements.extend(dialect.refresh(final, refresh_template))
    return Plan(statements, len(rows) - up_to_date, up_to_date)


def verify(engine: Engine, final: str, rows: list[tuple]) -> None:
    """Read the final counts back: each file of the manifest exactly once with its record count."""
    keys = {(r[0], r[2]) for r in rows}
    current = final_rows(engine, final, keys)
    wrong = [r[2] for r in rows if not _holds(current, r)]
    if wrong:
        raise BackupError('the final table %s does not match the manifest after the update for %d file(s): %s'
                          % (final, len(wrong), ', '.join(sorted(wrong)[:10])), mismatched=sorted(wrong))
