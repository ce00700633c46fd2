# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to mnaas.backup: not a public API, may change without notice."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import Dialect, Engine, Statement


class SqliteDialect(Dialect):
    name = 'sqlite'

    def column_types(self) -> list[tuple[str, str]]:
        return [(c, 'INTEGER' if t == 'BIGINT' else 'TEXT') for c, t in super().column_types()]


class SqliteEngine(Engine):
    """The embedded warehouse of local runs: one SQLite file."""

    dialect = SqliteDialect()

    def __init__(self, path: str, read_only: bool = False) -> None:
        self.path = path
        self.conn = None
        try:
            if read_only:
                if os.path.exists(path):
                    # A URI, for mode=ro: the path quoted, so that "#", "?" or "%" in it stay part of the file name.
                    self.conn = sqlite3.connect('file:%s?mode=ro' % urllib.parse.quote(path), uri=True)
            else:
                self.conn = sqlite3.connect(path, isolation_level=None)
                self.conn.execute('PRAGMA busy_timeout = 30000')
        except sqlite3.Error as exc:
            raise BackupError('cannot open the SQLite database %s: %s' % (path, exc)) from None

    def query(self, statement: Statement) -> list[tuple]:
        if self.conn is None:
            return []
        try:
            return self.conn.execute(statement.sql, statement.params).fetchall()
        except sqlite3.OperationalError as exc:
            if 'no such table' in str(exc):
                return []
            raise BackupError('SQL failed on %s: %s; statement: %s' % (self.path, exc, statement.shown())) from None

    def run(self, statements: list[Statement]) -> None:
        if self.conn is None:
            raise BackupError('%s is opened read-only' % self.path)
        current = None
        try:
            self.conn.execute('BEGIN IMMEDIATE')
            for current in statements:
                self.conn.execute(current.sql, current.params)
            self.conn.execute('COMMIT')
        except sqlite3.Error as exc:
            self.conn.execute('ROLLBACK')
            raise BackupError('SQL failed on %s: %s; statement: %s'
                              % (self.path, exc, current.shown() if current else '-')) from None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
