# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Warehouses reached over the HiveServer2 Thrift protocol with PyHive: Apache Hive, Impala (its
HiveServer2 port, 21050 by default) and the Spark Thrift Server. One engine, three dialects.

None of them can UPDATE or DELETE rows of plain (non-ACID) tables, so the rerun-safe update
rewrites the final table: its rows of files not in staging, plus the staging rows, with
``INSERT OVERWRITE``. Spark refuses to overwrite a table it reads from (parquet and other
data-source tables: ``UNSUPPORTED_OVERWRITE.TABLE``), so its dialect goes through a work table
(``<final>__mnaas_merge``), dropped at the end and, if a run died before that, at the next run.

Values are bound as parameters: PyHive quotes them (``%s`` placeholders, a tuple of values), and
identifiers are checked before they reach any statement.
"""

from __future__ import annotations

import base64
import getpass
import re
import ssl
import traceback
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, missing_library
from ansible_collections.mnaas.backup.plugins.module_utils._manifest import COLUMNS
from ansible_collections.mnaas.backup.plugins.module_utils._warehouse import BATCH, Dialect, Engine, Statement, render_template

try:
    from pyhive import exc as pyhive_exc
    from pyhive import hive
    from thrift.transport import THttpClient, TSSLSocket, TTransport
except ImportError:
    HAS_PYHIVE = False
    PYHIVE_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_PYHIVE = True
    PYHIVE_IMPORT_ERROR = None

# What a statement may raise: the server's error (PyHive's, with its status) or a lost connection.
SERVER_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError)
if HAS_PYHIVE:
    SERVER_ERRORS += (pyhive_exc.Error, TTransport.TTransportException)

ENGINES = ('hive', 'impala', 'spark')
TRANSPORTS = ('binary', 'http')
AUTHS = ('NONE', 'NOSASL', 'LDAP', 'KERBEROS', 'CUSTOM')
MERGE_SUFFIX = '__mnaas_merge'

# A refresh template that is the legacy Impala statement for the final table ("refresh $dbname.t"):
# each dialect runs its own way of refreshing instead.
_REFRESH_FINAL = re.compile(r'^refresh\s+(?:table\s+)?(?P<table>[A-Za-z0-9_.]+)$', re.IGNORECASE)
# A Java class name in a server message ("org.apache.spark.sql.AnalysisException: ").
_JAVA_CLASS = re.compile(r'(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)(?::\s+|$)')
_REPEATED_CODE = re.compile(r'(\[[A-Z][A-Z0-9_.]*\]) \1')
# The Spark Thrift Server's wrapper around every message.
_WRAPPER = re.compile(r'^Error running query:\s*')
MESSAGE_MAX = 500


class HiveQLDialect(Dialect):
    """What Hive, Impala and Spark SQL share: text tables, INSERT OVERWRITE, no UPDATE or DELETE."""

    placeholder = '%s'  # PyHive's parameter style: values quoted by PyHive, given as a tuple
    # Fields separated by commas; commas, backslashes (and on Hive and Spark line breaks) in values escaped.
    storage = "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' ESCAPED BY '\\\\' STORED AS TEXTFILE"

    def create(self, table: str) -> Statement:
        cols = ', '.join('%s %s' % pair for pair in self.column_types())
        return Statement('CREATE TABLE IF NOT EXISTS %s (%s) %s' % (table, cols, self.storage))

    def session_configuration(self, configuration: t.Mapping[str, object] | None) -> dict[str, str]:
        """The session settings as OpenSession takes them: HiveServer2 and Spark apply ``set:hiveconf:<key>`` entries."""
        settings = {}
        for key, value in (configuration or {}).items():
            name = str(key)
            settings[name if name.startswith(('set:', 'use:')) else 'set:hiveconf:' + name] = _conf_value(value)
        return settings

    def exists(self, table: str) -> Statement:
        """A statement listing ``table`` if it exists (and maybe others: compare the names)."""
        database, _dot, name = table.rpartition('.')
        return Statement("SHOW TABLES%s LIKE '%s'" % (' IN %s' % database if database else '', name))

    def clear(self, table: str) -> Statement:
        return Statement('TRUNCATE TABLE %s' % table)

    def _values(self, verb: str, table: str, rows: list[tuple]) -> Statement:
        one = '(%s)' % ', '.join([self.placeholder] * len(COLUMNS))
        params = tuple(value for row in rows for value in row)
        return Statement('INSERT %s TABLE %s VALUES %s' % (verb, table, ', '.join([one] * len(rows))), params)

    def insert(self, table: str, rows: list[tuple]) -> Statement:
        return self._values('INTO', table, rows)

    def overwrite(self, table: str, rows: list[tuple]) -> Statement:
        return self._values('OVERWRITE', table, rows)

    def load(self, table: str, rows: list[tuple]) -> list[Statement]:
        """The first batch replaces the table's rows (no TRUNCATE: it fails on external tables), the others are appended."""
        if not rows:
            return [self.clear(table)]
        return [self.overwrite(table, rows[:BATCH])] + [self.insert(table, rows[i:i + BATCH]) for i in range(BATCH, len(rows), BATCH)]

    def merged(self, staging: str, final: str) -> str:
        """A query of the final table as it must become: its rows of other files, then the staging rows."""
        cols = ', '.join(COLUMNS)
        return ('SELECT %s FROM (SELECT %s FROM %s f LEFT OUTER JOIN %s s ON f.customer = s.customer AND f.file_name = s.file_name '
                'WHERE s.file_name IS NULL UNION ALL SELECT %s FROM %s) merged'
                % (cols, ', '.join('f.' + c for c in COLUMNS), final, staging, cols, staging))

    def merge(self, staging: str, final: str) -> list[Statement]:
        """Hive and Impala overwrite a table from a query that reads it (the new files replace the old ones at the end)."""
        return [Statement('INSERT OVERWRITE TABLE %s %s' % (final, self.merged(staging, final)))]

    def default_refresh(self, final: str) -> list[Statement]:
        """What makes readers see the new rows when no template says otherwise."""
        return []

    def refresh(self, final: str, template: str | None) -> list[Statement]:
        """The template filled in; the dialect's own refresh without one, or for the legacy ``refresh <final table>``."""
        rendered = render_template(template, final) if template else ''
        if not rendered:
            return self.default_refresh(final)
        match = _REFRESH_FINAL.match(rendered)
        if match and match.group('table').lower() == final.lower():
            return self.default_refresh(final)
        return [Statement(rendered)]


class HiveDialect(HiveQLDialect):
    """Apache Hive: nothing to refresh, or MSCK REPAIR TABLE for a partitioned final table."""

    name = 'hive'
    storage = HiveQLDialect.storage + " TBLPROPERTIES ('serialization.escape.crlf'='true')"

    def __init__(self, msck_repair: bool = False) -> None:
        self.msck_repair = msck_repair

    def default_refresh(self, final: str) -> list[Statement]:
        return [Statement('MSCK REPAIR TABLE %s' % final)] if self.msck_repair else []


class ImpalaDialect(HiveQLDialect):
    """Impala: REFRESH the final table, or INVALIDATE METADATA when it changed outside Impala's knowledge."""

    name = 'impala'

    def __init__(self, invalidate_metadata: bool = False) -> None:
        self.invalidate_metadata = invalidate_metadata

    def session_configuration(self, configuration: t.Mapping[str, object] | None) -> dict[str, str]:
        """Impala takes its query options (``MEM_LIMIT``, ``REQUEST_POOL``...) as they are."""
        return {str(key): _conf_value(value) for key, value in (configuration or {}).items()}

    def default_refresh(self, final: str) -> list[Statement]:
        # INVALIDATE METADATA reloads everything REFRESH would, and more: one or the other.
        return [Statement('%s %s' % ('INVALIDATE METADATA' if self.invalidate_metadata else 'REFRESH', final))]


class SparkDialect(HiveQLDialect):
    """Spark SQL (the Spark Thrift Server): the update goes through a work table; REFRESH TABLE."""

    name = 'spark'
    storage = HiveDialect.storage

    def merge(self, staging: str, final: str) -> list[Statement]:
        work = final + MERGE_SUFFIX
        return [
            Statement('DROP TABLE IF EXISTS %s' % work),
            Statement('CREATE TABLE %s USING parquet AS %s' % (work, self.merged(staging, final))),
            Statement('INSERT OVERWRITE TABLE %s SELECT %s FROM %s' % (final, ', '.join(COLUMNS), work)),
            Statement('DROP TABLE %s' % work),
        ]

    def default_refresh(self, final: str) -> list[Statement]:
        # Spark reads "REFRESH db.t" (Impala's form) as a path and silently refreshes nothing.
        return [Statement('REFRESH TABLE %s' % final)]


def dialect_for(engine: str, invalidate_metadata: bool = False, msck_repair: bool = False) -> HiveQLDialect:
    if engine == 'hive':
        return HiveDialect(msck_repair=msck_repair)
    if engine == 'impala':
        return ImpalaDialect(invalidate_metadata=invalidate_metadata)
    if engine == 'spark':
        return SparkDialect()
    raise ValueError('engine must be one of %s, got %r' % (', '.join(ENGINES), engine))


def first_line(text: object) -> str:
    """The first non-empty line of a server's message, without Java class names; never a stack trace."""
    line = next((part.strip() for part in str(text or '').splitlines() if part.strip()), '')
    line = _REPEATED_CODE.sub(r'\1', _JAVA_CLASS.sub('', _WRAPPER.sub('', line))).strip()
    return line if len(line) <= MESSAGE_MAX else line[:MESSAGE_MAX - 3] + '...'


def server_error(exc: BaseException) -> tuple[str | None, str]:
    """(sqlState, first line of the message) of an error: PyHive's carry the server's status."""
    status = getattr(exc.args[0], 'status', None) if exc.args else None
    if status is not None and getattr(status, 'errorMessage', None):
        return getattr(status, 'sqlState', None) or None, first_line(status.errorMessage)
    return None, first_line(str(exc) or type(exc).__name__)


class Server(t.NamedTuple):
    """Where and how to connect."""

    host: str
    port: int = 10000
    transport: str = 'binary'
    http_path: str = 'cliservice'
    auth: str = 'NONE'
    username: str | None = None
    password: str | None = None
    kerberos_service_name: str | None = None
    database: str = 'default'
    configuration: dict | None = None
    use_ssl: bool = False
    ca_cert: str | None = None
    validate_certs: bool = True

    def describe(self) -> str:
        return '%s:%d (%s%s, auth %s)' % (self.host, self.port, self.transport, ' over TLS' if self.use_ssl else '', self.auth)


def _ssl_context(server: Server) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=server.ca_cert)
    if not server.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _kerberos_header(service: str, host: str) -> str:
    """The SPNEGO token of an HTTP request, from the caller's Kerberos ticket (kinit)."""
    try:
        import kerberos  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise BackupError('auth KERBEROS over HTTP needs the Python package kerberos (pykerberos) on the managed node') from None
    context = kerberos.authGSSClientInit('%s@%s' % (service, host))[1]
    kerberos.authGSSClientStep(context, '')
    return 'Negotiate ' + kerberos.authGSSClientResponse(context)


if HAS_PYHIVE:
    class CheckedHttpClient(THttpClient.THttpClient):
        """THttpClient reads any HTTP error page as a Thrift reply ("Length exceeded max allowed"): say the status instead."""

        def flush(self) -> None:
            super().flush()
            if self.code != 200:
                raise TTransport.TTransportException(
                    TTransport.TTransportException.UNKNOWN, 'HTTP %s %s from %s://%s:%s%s' % (self.code, self.message, self.scheme, self.host,
                                                                                              self.port, self.path))


def http_transport(server: Server) -> t.Any:
    """A Thrift HTTP client of ``http(s)://host:port/http_path`` with the auth header HiveServer2 expects."""
    url = '%s://%s:%d/%s' % ('https' if server.use_ssl else 'http', server.host, server.port, server.http_path.lstrip('/'))
    transport = CheckedHttpClient(url, ssl_context=_ssl_context(server) if server.use_ssl else None)
    if server.auth == 'KERBEROS':
        header = _kerberos_header(server.kerberos_service_name or 'hive', server.host)
    else:
        # LDAP and CUSTOM check the password; NONE and NOSASL want a user and some password (an empty one fails the parsing).
        credentials = '%s:%s' % (server.username or getpass.getuser(), server.password or 'x')
        header = 'Basic ' + base64.standard_b64encode(credentials.encode('utf-8')).decode('ascii')
    transport.setCustomHeaders({'Authorization': header})
    return transport


def tls_binary_transport(server: Server) -> t.Any:
    """Binary Thrift over TLS: PyHive builds plain sockets only, so the SASL layer is set up here the same way."""
    sock = TSSLSocket.TSSLSocket(server.host, server.port, ssl_context=_ssl_context(server))
    if server.auth == 'NOSASL':
        return TTransport.TBufferedTransport(sock)
    import thrift_sasl  # pylint: disable=import-outside-toplevel
    mechanism = 'GSSAPI' if server.auth == 'KERBEROS' else 'PLAIN'

    def sasl_client() -> t.Any:
        return hive.get_installed_sasl(host=server.host, sasl_auth=mechanism, service=server.kerberos_service_name or 'hive',
                                       username=server.username or getpass.getuser(), password=server.password or 'x')

    return thrift_sasl.TSaslClientTransport(sasl_client, mechanism, sock)


def connect(server: Server) -> t.Any:
    """A PyHive connection (DB-API) to ``server``."""
    common = {'username': server.username, 'database': server.database, 'configuration': dict(server.configuration or {})}
    if server.transport == 'http':
        return hive.connect(thrift_transport=http_transport(server), **common)
    if server.use_ssl:
        return hive.connect(thrift_transport=tls_binary_transport(server), **common)
    auth = {'auth': server.auth}
    if server.auth in ('LDAP', 'CUSTOM'):
        auth['password'] = server.password
    if server.auth == 'KERBEROS':
        auth['kerberos_service_name'] = server.kerberos_service_name or 'hive'
    return hive.connect(host=server.host, port=server.port, **auth, **common)


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


class PyHiveEngine(Engine):
    """One HiveServer2 session; statements run one by one (these engines have no multi-statement transactions)."""

    def __init__(self, dialect: HiveQLDialect, server: Server, connector: t.Callable[[Server], t.Any] | None = None) -> None:
        """Open a session on ``server``; ``connector`` (a fake in unit tests) makes the DB-API connection, PyHive's by default."""
        self.dialect = dialect
        server = server._replace(configuration=dialect.session_configuration(server.configuration))
        self.server = server
        self.where = '%s at %s' % (dialect.name, server.describe())
        if connector is None:
            if not HAS_PYHIVE:
                raise missing_library('pyhive[hive-pure-sasl]', PYHIVE_IMPORT_ERROR, url='https://pypi.org/project/PyHive/')
            connector = connect
        try:
            self.conn = connector(server)
        except BackupError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Thrift, SASL and socket errors have no common base; report them all the same way.
            state, message = server_error(exc)
            raise BackupError('cannot open a session on %s as %s, database %s%s: %s'
                              % (self.where, server.username or 'the current user', server.database,
                                 ' (sqlState %s)' % state if state else '', message), **({'sql_state': state} if state else {})) from None

    def _execute(self, statement: Statement) -> t.Any:
        cursor = self.conn.cursor()
        cursor.execute(statement.sql, statement.params if statement.params else None)
        return cursor

    def _fail(self, exc: BaseException, statement: Statement, position: str = '') -> BackupError:
        state, message = server_error(exc)
        shown = statement.shown()
        brief = shown if len(shown) <= MESSAGE_MAX else shown[:MESSAGE_MAX - 3] + '...'
        details = {'statement': shown}
        if state:
            details['sql_state'] = state
        return BackupError('SQL failed on %s%s%s: %s; statement: %s'
                           % (self.where, position, ' (sqlState %s)' % state if state else '', message.rstrip('; '), brief), **details)

    def query(self, statement: Statement) -> list[tuple]:
        try:
            cursor = self._execute(statement)
            return [tuple(row) for row in cursor.fetchall()]
        except SERVER_ERRORS as exc:
            raise self._fail(exc, statement) from None

    def run(self, statements: list[Statement]) -> None:
        for index, statement in enumerate(statements):
            try:
                self._execute(statement).close()
            except SERVER_ERRORS as exc:
                raise self._fail(exc, statement, ', statement %d of %d' % (index + 1, len(statements))) from None

    def has_table(self, table: str) -> bool:
        name = table.rpartition('.')[2].lower()
        return any(str(value).lower() == name for row in self.query(self.dialect.exists(table)) for value in row)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-exception-caught
            pass  # the session ends with the connection anyway
