# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Maps the legacy ``MNAAS_backup_files_process.properties``, as ``_legacy_parse.py`` reads it (parsed, never
run), to the variables of the ``mnaas.backup.mnaas_backup`` role.

Every problem of reading the file is an error naming the file, the line and the key, but for a value left
unknown (a command substitution, another expansion, an unresolved variable) in a key the new job does not
use (the log path, an unknown key read with ``unknown_keys='warn'``, a helper variable; each as long as no
mapped value uses it): that is a warning, and the key is left out.
"""

from __future__ import annotations

import difflib
import posixpath
import re
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute, check_name
from ansible_collections.mnaas.backup.plugins.plugin_utils._legacy_parse import Array, LegacyError, Problem, Properties, Value, parse

# The lock file name, in the state directory, before the legacy sem_extension.
LOCK_STEM = 'MNAAS_backup_files_process'
DEFAULT_SEM_EXTENSION = '.sem'  # the role's default mnaas_backup_lock_file ends so

PATTERNS = 'MNAAS_backup_files_process_file_pattern'
BACKUP_DIRS = 'MNAAS_backup_files_process_backup_dir'
EDGE2_DIRS = 'MNAAS_backup_files_edgenode2_backup_dir'
ARRAY_KEYS = (PATTERNS, BACKUP_DIRS, EDGE2_DIRS)

# Legacy scalar key -> (role variable, kind of value).
SCALAR_KEYS = {
    'MNAAS_backup_files_process_ProcessStatusFileName': ('mnaas_backup_flag_file', 'path'),
    'MNAAS_backup_file_process_filename': ('mnaas_backup_manifest_file', 'path'),
    'MNAAS_backup_filename_hdfs_customer': ('mnaas_backup_hdfs_count_dir', 'path'),
    'customers_files_inter_record_count_tblname': ('mnaas_backup_staging_table', 'table'),
    'customers_files_records_count_tblname': ('mnaas_backup_final_table', 'table'),
    'customer_files_record_count_tblname_refresh': ('mnaas_backup_refresh_statement', 'text'),
    'sem_extension': ('mnaas_backup_lock_file', 'extension'),
    'edge2node': ('mnaas_backup_edge2_host', 'host'),
    'No_of_files_to_process': ('mnaas_backup_max_files', 'count'),
}

# Legacy keys recognised but not mapped, and why.
NOT_MAPPED = {
    'MNAAS_Customer_backup_files_process_Scriptname': 'the legacy driver script; playbooks/customer_backup.yml replaces it',
    'MNAAS_backup_files_process_logpath': "the legacy driver's log prefix; the run's log is Ansible's output "
                                          '(the callback, the AWX job output or ANSIBLE_LOG_PATH)',
}

KNOWN_KEYS = tuple(SCALAR_KEYS) + ARRAY_KEYS + tuple(NOT_MAPPED)

# The role variables returned, in this order.
ORDER = ('mnaas_backup_source_dir', 'mnaas_backup_domains', 'mnaas_backup_customers', 'mnaas_backup_max_files',
         'mnaas_backup_state_dir', 'mnaas_backup_lock_file', 'mnaas_backup_manifest_file', 'mnaas_backup_flag_file',
         'mnaas_backup_staging_table', 'mnaas_backup_final_table', 'mnaas_backup_refresh_statement',
         'mnaas_backup_hdfs_count_dir', 'mnaas_backup_edge2_host')

UNKNOWN_KEYS = ('error', 'warn')

# Kind of value -> (the pattern a value of this kind matches, what such a value is): text is taken as it is,
# a path must be absolute, a count a whole number above 0.
_FORMATS = {
    'table': (re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$'),
              'a table name (letters, digits and _, optionally database.table)'),
    'extension': (re.compile(r'^[A-Za-z0-9_.-]*$'), 'a file name suffix (letters, digits, ".", "_", "-")'),
    'host': (re.compile(r'^[A-Za-z0-9_.:-]+$'), 'a host name'),
}
_GLOB_CHARS = re.compile(r'[*?[]')


class Migration(t.NamedTuple):
    """The role variables of a legacy file and where each came from."""

    path: str
    variables: dict[str, t.Any]
    # role variable (or 'mnaas_backup_customers.<name>.<key>', 'mnaas_backup_domains.<name>') -> [{'key', 'line'}]
    sources: dict[str, list[dict[str, t.Any]]]
    unmapped: list[dict[str, t.Any]]  # [{'key', 'line', 'value', 'reason'}]: in the file, not mapped
    missing: list[str]  # known legacy keys the file does not set: the role's defaults apply
    warnings: list[str]

    def details(self) -> dict[str, t.Any]:
        return {'path': self.path, 'variables': self.variables, 'sources': self.sources, 'unmapped': self.unmapped,
                'missing': self.missing, 'warnings': self.warnings}


def _printable(text: str) -> t.Optional[str]:
    """A message when the value holds a character that is neither printable nor a tab or newline."""
    for char in text:
        if not char.isprintable() and char not in '\t\n':
            return 'holds the non-printable character U+%04X; a path or name should not' % ord(char)
    return None


class _Mapper:
    def __init__(self, properties: Properties, state_dir: t.Optional[str], unknown_keys: str) -> None:
        self.props = properties
        self.path = properties.path
        self.state_dir = state_dir
        self.unknown_keys = unknown_keys
        self.common = properties.variables
        self.read_problems: list[Problem] = []  # the problems of reading the file that stay errors
        self.problems: list[Problem] = []
        self.values: dict[str, t.Any] = {}
        self.sources: dict[str, list[dict[str, t.Any]]] = {}
        self.unmapped: list[dict[str, t.Any]] = []
        self.warnings: list[Problem] = []

    def problem(self, line: int, key: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, key, message))

    def source(self, target: str, key: str, line: int) -> None:
        self.sources.setdefault(target, []).append({'key': key, 'line': line})

    def run(self) -> Migration:
        props = self.props
        for problem in props.problems:  # a value left unknown in a key the new job does not use is only a warning
            name = problem.key.split('[', 1)[0]
            if problem in props.unknown_values and self.unused(name):
                self.warnings.append(problem._replace(message='%s (ignored: the new job does not use %s)' % (problem.message, name)))
            else:
                self.read_problems.append(problem)
        for name, value in props.scalars.items():
            if name in ARRAY_KEYS:
                self.problem(value.line, name, 'must be an associative array: declare -A %s; %s=( [key]=value ... )' % (name, name))
            elif name in SCALAR_KEYS:
                self.scalar(name, value)
            elif name in NOT_MAPPED:
                reason = NOT_MAPPED[name]
                if name in props.unresolved:
                    reason += ' (its value uses %s, not passed)' % ', '.join('$' + v for v in props.unresolved[name])
                self.unmapped.append({'key': name, 'line': value.line, 'value': value.text, 'reason': reason})
            else:
                self.unknown(name, value.line, value.text)
        for name, array in props.arrays.items():
            if name in SCALAR_KEYS or name in NOT_MAPPED:
                self.problem(array.line, name, 'must be a plain value, not an array')
            elif name not in ARRAY_KEYS:
                self.unknown(name, array.line, {k: v.text for k, v in array.elements.items()})
        self.domains()
        self.customers()
        if self.state_dir:
            self.values['mnaas_backup_state_dir'] = self.state_dir
            self.sources.setdefault('mnaas_backup_state_dir', [])
        missing = [key for key in KNOWN_KEYS if key not in props.scalars and key not in props.arrays]
        variables = {name: self.values[name] for name in ORDER if name in self.values}
        if self.read_problems or self.problems:
            raise LegacyError(self.read_problems + self.problems)
        warnings = [str(w) for w in sorted(self.warnings, key=lambda w: w.line)]
        return Migration(self.path, variables, self.sources, self.unmapped, missing, warnings)

    def unused(self, name: str, seen: frozenset = frozenset()) -> bool:
        """Whether the new job does without the value of this key: a key not mapped, an unknown key read with
        unknown_keys='warn', or a helper variable, each as long as only such keys use it."""
        if not name or name in SCALAR_KEYS or name in ARRAY_KEYS:
            return False
        users = {key.split('[', 1)[0] for _line, key in self.props.used.get(name, [])} - {name}
        if any(user in seen or not self.unused(user, seen | {name}) for user in users):
            return False
        return name in NOT_MAPPED or bool(users) or self.unknown_keys == 'warn'

    def unknown(self, name: str, line: int, value: t.Any) -> None:
        users = [(used_line, key) for used_line, key in self.props.used.get(name, []) if key.split('[', 1)[0] != name]
        if users:
            where = ', '.join('%s (line %d)' % (key, used_line) for used_line, key in users)
            self.unmapped.append({'key': name, 'line': line, 'value': value, 'reason': 'a helper variable, used by %s' % where})
            return
        close = difflib.get_close_matches(name, KNOWN_KEYS, n=1)
        message = 'unknown key%s: the new job would not use it' % (' (did you mean %s?)' % close[0] if close else '')
        if self.unknown_keys == 'error':
            self.problem(line, name, message + "; remove it, or read the file with unknown_keys='warn' to go on without it")
        else:
            self.warnings.append(Problem(self.path, line, name, message))
            self.unmapped.append({'key': name, 'line': line, 'value': value, 'reason': 'unknown key'})

    # -- scalars -----------------------------------------------------------------------------
    def scalar(self, name: str, value: Value) -> None:
        target, kind = SCALAR_KEYS[name]
        if value.text is None:
            return
        text = value.text
        bad = _printable(text)
        if bad:
            self.problem(value.line, name, '%r %s' % (text, bad))
            return
        try:
            converted = self.convert(kind, name, text)
        except ConfigError as exc:
            self.problem(value.line, name, exc.msg)
            return
        if kind == 'extension':
            self.lock_file(name, value, converted)
            return
        self.values[target] = converted
        self.source(target, name, value.line)

    @staticmethod
    def convert(kind: str, name: str, text: str) -> t.Any:
        """The value of a scalar key of this kind; raises ConfigError when it is not one."""
        if kind == 'count':
            if not re.fullmatch(r'[0-9]+', text.strip()):
                raise ConfigError('%r is not a whole number of files' % text)
            if int(text) == 0:
                raise ConfigError('0: the legacy job would process no file, but mnaas_backup_max_files 0 means no cap; '
                                  'set mnaas_backup_max_files by hand')
            return int(text)
        if kind == 'path':
            check_absolute(text, name)
        elif kind in _FORMATS:
            pattern, what = _FORMATS[kind]
            if not pattern.match(text):
                raise ConfigError('%r is not %s' % (text, what))
        return text

    def lock_file(self, name: str, value: Value, extension: str) -> None:
        if self.state_dir:
            self.values['mnaas_backup_lock_file'] = posixpath.join(self.state_dir, LOCK_STEM + extension)
            self.source('mnaas_backup_lock_file', name, value.line)
        elif extension == DEFAULT_SEM_EXTENSION:
            self.unmapped.append({'key': name, 'line': value.line, 'value': extension,
                                  'reason': "the role's default mnaas_backup_lock_file, <mnaas_backup_state_dir>/%s%s, already has it"
                                            % (LOCK_STEM, DEFAULT_SEM_EXTENSION)})
        else:
            reason = ('no state directory was given: the lock is the role\'s default <mnaas_backup_state_dir>/%s%s, not %s%s; '
                      'pass state_dir to get mnaas_backup_lock_file' % (LOCK_STEM, DEFAULT_SEM_EXTENSION, LOCK_STEM, extension))
            self.warnings.append(Problem(self.path, value.line, name, reason))
            self.unmapped.append({'key': name, 'line': value.line, 'value': extension, 'reason': reason})

    # -- arrays ------------------------------------------------------------------------------
    def array(self, name: str) -> t.Optional[Array]:
        array = self.props.arrays.get(name)
        if array is None and name not in self.props.scalars:
            self.problem(0, name, 'is missing: the legacy file must declare -A %s' % name)
        return array

    def domains(self) -> None:
        array = self.array(PATTERNS)
        if array is None:
            return
        if not array.elements and not self.read_problems:
            self.problem(array.line, PATTERNS, 'has no element: each data domain needs a glob')
        directories: dict[str, tuple[int, str]] = {}
        domains: dict[str, str] = {}
        for domain, value in array.elements.items():
            key = '%s[%s]' % (PATTERNS, domain)
            if value.text is None:
                continue
            try:
                check_name(domain, key)
            except ConfigError as exc:
                self.problem(value.line, key, exc.msg)
                continue
            found = self.split_pattern(key, value)
            if found:
                directory, glob = found
                directories.setdefault(directory, (value.line, key))
                domains[domain] = glob
                self.source('mnaas_backup_domains.%s' % domain, key, value.line)
        if len(directories) > 1:
            listed = ', '.join('%s (%s, line %d)' % (d, key, line) for d, (line, key) in directories.items())
            self.problem(array.line, PATTERNS, 'the patterns are in different directories: %s; mnaas_backup_source_dir is one landing directory'
                         % listed)
        elif directories:
            self.values['mnaas_backup_source_dir'] = next(iter(directories))
            self.source('mnaas_backup_source_dir', PATTERNS, array.assigned or array.line)
        if domains:
            self.values['mnaas_backup_domains'] = domains
            self.source('mnaas_backup_domains', PATTERNS, array.assigned or array.line)

    def split_pattern(self, key: str, value: Value) -> t.Optional[tuple[str, str]]:
        text = t.cast(str, value.text)
        bad = _printable(text)
        if bad or not text.strip():
            self.problem(value.line, key, '%r %s' % (text, bad or 'is empty: each data domain needs a glob'))
            return None
        directory, slash, glob = text.rpartition('/')
        if not slash:
            directory = self.common.get('MNAASInputPath', '')
            if not directory:
                self.problem(value.line, key, '%r has no directory and MNAASInputPath was not passed as a common variable: '
                                              'the landing directory is unknown' % text)
                return None
        if not glob.strip():
            self.problem(value.line, key, '%r ends with "/"%s: it needs a file name glob' % (text, ' and blanks' if glob else ''))
            return None
        if _GLOB_CHARS.search(directory):
            self.problem(value.line, key, '%r: only the file name may hold a glob, the directory %r must be written out' % (text, directory))
            return None
        try:
            return check_absolute(directory or '/', key + ' (its directory)'), glob
        except ConfigError as exc:
            self.problem(value.line, key, exc.msg)
            return None

    def customers(self) -> None:
        primary = self.array(BACKUP_DIRS)
        secondary = self.array(EDGE2_DIRS)
        if primary is None or secondary is None:
            return
        if not primary.elements and not secondary.elements and not self.read_problems:
            self.problem(primary.line, BACKUP_DIRS, 'has no element: there is no customer to back up')
        customers: dict[str, dict[str, str]] = {}
        for name in list(primary.elements) + [n for n in secondary.elements if n not in primary.elements]:
            entry = {}
            for array_name, array, setting, other in ((BACKUP_DIRS, primary, 'backup_dir', EDGE2_DIRS),
                                                      (EDGE2_DIRS, secondary, 'edge2_backup_dir', BACKUP_DIRS)):
                key = '%s[%s]' % (array_name, name)
                value = array.elements.get(name)
                if value is None:
                    self.problem(self.props.arrays[other].elements[name].line, '%s[%s]' % (other, name),
                                 'customer %s is not in %s (declared on line %d): every customer needs both backup directories'
                                 % (name, array_name, array.line))
                    continue
                if value.text is None:
                    continue
                try:
                    check_name(name, key)
                    check_absolute(value.text, key)
                except ConfigError as exc:
                    self.problem(value.line, key, exc.msg)
                    continue
                bad = _printable(value.text)
                if bad:
                    self.problem(value.line, key, '%r %s' % (value.text, bad))
                    continue
                entry[setting] = value.text
                self.source('mnaas_backup_customers.%s.%s' % (name, setting), key, value.line)
            if len(entry) == 2:
                customers[name] = entry
        if customers:
            self.values['mnaas_backup_customers'] = customers
            self.source('mnaas_backup_customers', BACKUP_DIRS, primary.assigned or primary.line)
            self.source('mnaas_backup_customers', EDGE2_DIRS, secondary.assigned or secondary.line)


def migrate(text: str, path: str, variables: t.Optional[t.Mapping] = None, state_dir: t.Optional[str] = None,
            unknown_keys: str = 'error') -> Migration:
    """The role variables of a legacy file's text; raises LegacyError naming every problem (file, line, key)."""
    if unknown_keys not in UNKNOWN_KEYS:
        raise ConfigError('unknown_keys must be one of %s, got %r' % (', '.join(UNKNOWN_KEYS), unknown_keys))
    if state_dir:
        state_dir = check_absolute(state_dir, 'state_dir')
    return _Mapper(parse(text, path, variables), state_dir or None, unknown_keys).run()


def read(path: str, variables: t.Optional[t.Mapping] = None, state_dir: t.Optional[str] = None, unknown_keys: str = 'error') -> Migration:
    """Read and map a legacy file; the text must be UTF-8."""
    try:
        with open(path, 'rb') as stream:
            data = stream.read()
    except OSError as exc:
        raise ConfigError('cannot read the legacy file %s: %s' % (path, exc.strerror or exc)) from exc
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b'\n') + 1
        raise LegacyError([Problem(path, line, '', 'not UTF-8 text (byte 0x%02x)' % data[exc.start])]) from exc
    return migrate(text, path, variables, state_dir, unknown_keys)
