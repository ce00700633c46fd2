# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

The Python libraries the modules import on the edge nodes, by the step of the night that needs them.
``requirements-nodes.txt`` at the top of the collection lists the same (a unit test keeps the two in step):
the wheelhouse is built from it, ``prepare_nodes.yml`` installs from it, and the preflight checks it.

A *feature* is a step of the night that imports a library: ``sftp`` (the secondary reads the primary over
SFTP), ``webhdfs`` (a location in HDFS: copies, counts, the flag), ``hiveserver2`` (the warehouse engines
hive, impala and spark). The embedded SQLite engine and local directories need nothing beyond the standard
library.
"""

from __future__ import annotations

import importlib
import re
import sys
import typing as t
from importlib import metadata

FEATURES = ('sftp', 'webhdfs', 'hiveserver2')


class Library(t.NamedTuple):
    """One library: its distribution name (pip), the module the collection imports, the least version, the
    feature that needs it, and whether a missing one only costs speed (``optional``)."""

    distribution: str
    module: str
    minimum: str
    feature: str
    why: str
    optional: bool = False

    @property
    def requirement(self) -> str:
        """The pip requirement, for example ``paramiko>=2.10``."""
        return '%s>=%s' % (self.distribution, self.minimum)


LIBRARIES = (
    Library('paramiko', 'paramiko', '2.10', 'sftp', "the secondary's pull from the primary over SFTP"),
    Library('hdfs', 'hdfs', '2.7.0', 'webhdfs', 'WebHDFS: the HDFS copies, counts and flag'),
    Library('requests', 'requests', '2.20', 'webhdfs', 'WebHDFS: HTTP sessions'),
    Library('google-crc32c', 'google_crc32c', '1.5.0', 'webhdfs',
            'fast CRC32C for HDFS checksums (a pure-Python fallback is built in)', optional=True),
    Library('PyHive', 'pyhive', '0.7.0', 'hiveserver2', 'the hive, impala and spark warehouse engines'),
    Library('thrift', 'thrift', '0.10.0', 'hiveserver2', 'HiveServer2 protocol (PyHive)'),
    Library('thrift-sasl', 'thrift_sasl', '0.4.3', 'hiveserver2', 'HiveServer2 SASL transport (PyHive)'),
    Library('pure-sasl', 'puresasl', '0.6.2', 'hiveserver2', 'HiveServer2 SASL mechanisms (PyHive)'),
)


def for_features(features: t.Iterable[str], optional: bool = True) -> list[Library]:
    """The libraries these features need, in the order of LIBRARIES; ``optional=False`` leaves out the optional ones."""
    wanted = set(features)
    unknown = wanted - set(FEATURES)
    if unknown:
        raise ValueError('unknown feature(s) %s; known: %s' % (', '.join(sorted(unknown)), ', '.join(FEATURES)))
    return [lib for lib in LIBRARIES if lib.feature in wanted and (optional or not lib.optional)]


def version_key(version: str) -> tuple[int, ...]:
    """The numeric release part of a version, for comparing: ``2.12.0`` -> (2, 12), ``0.7.0.dev0`` -> (0, 7),
    ``5.1.0rc1`` -> (5, 1). Trailing zeros are dropped so that 2.10 and 2.10.0 compare equal."""
    match = re.match(r'\s*v?(\d+(?:\.\d+)*)', version or '')
    if not match:
        return ()
    parts = [int(part) for part in match.group(1).split('.')]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def at_least(version: str | None, minimum: str) -> bool:
    """Whether ``version`` is ``minimum`` or newer (release numbers only; an unknown version is not)."""
    if not version:
        return False
    found = version_key(version)
    return bool(found) and found >= version_key(minimum)


# How a node gets its libraries; {requirement} and {python} are filled in.
INSTALL_HINT = ("run playbooks/prepare_nodes.yml (mnaas.backup.prepare_nodes) for this node, "
                "or pip install '{requirement}' into {python}'s environment")


class Installed(t.NamedTuple):
    """What this Python holds of one library: the ``version`` found (None when it is not installed or tells none),
    whether it is usable (``ok``: importable, at least the minimum) and, when it is not, why: a ``problem`` for a
    required library, only a ``note`` for an optional one."""

    library: Library
    version: str | None
    ok: bool
    problem: str | None = None
    note: str | None = None

    def result(self) -> dict:
        """As the preflight module returns it (``libraries``)."""
        lib = self.library
        return {'distribution': lib.distribution, 'module': lib.module, 'minimum': lib.minimum, 'optional': lib.optional,
                'version': self.version, 'ok': self.ok}


def _first_line(exc: BaseException) -> str:
    """``RuntimeError: boom`` from an exception: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return '%s: %s' % (type(exc).__name__, lines[0]) if lines else type(exc).__name__


def _distribution_version(library: Library) -> str | None:
    try:
        return metadata.version(library.distribution)
    # PackageNotFoundError, or metadata that cannot be read.
    except Exception:  # pylint: disable=broad-except
        return None


def _module_version(module: t.Any) -> str | None:
    version = getattr(module, '__version__', None)
    return version if isinstance(version, str) and version else None


def examine(library: Library) -> Installed:
    """Import ``library`` in this Python and read its installed version (the distribution's metadata, else the
    module's ``__version__``). Importing is the test: a broken C extension, or a dependency of the library that is
    missing, raises at import, anything from ImportError to RuntimeError."""
    python = sys.executable or 'this Python'
    version: str | None = None
    try:
        module = importlib.import_module(library.module)
    except ModuleNotFoundError as exc:
        if exc.name == library.module or library.module.startswith('%s.' % exc.name):
            reason = 'is not installed'
        else:  # a module the library itself imports is missing
            version = _distribution_version(library)
            reason = 'cannot be imported: %s' % _first_line(exc)
    # Whatever importing raises is the problem reported.
    except Exception as exc:  # pylint: disable=broad-except
        version = _distribution_version(library)
        reason = 'cannot be imported: %s' % _first_line(exc)
    else:
        version = _distribution_version(library) or _module_version(module)
        if version is None:
            reason = ('imports, but its version cannot be read (no metadata of the distribution %s, no %s.__version__)'
                      % (library.distribution, library.module))
        elif not at_least(version, library.minimum):
            reason = 'is version %s, older than the %s needed' % (version, library.minimum)
        else:
            return Installed(library, version, True)
    how = INSTALL_HINT.format(requirement=library.requirement, python=python)
    if library.optional:
        note = ('the optional Python library %s of %s %s; the night goes on without it, only slower: %s. To install it, %s'
                % (library.distribution, python, reason, library.why, how))
        return Installed(library, version, False, note=note)
    problem = ('the Python library %s of %s %s; it is needed for %s. To install it, %s'
               % (library.distribution, python, reason, library.why, how))
    return Installed(library, version, False, problem=problem)


def installed(libraries: t.Iterable[Library]) -> list[Installed]:
    """``examine`` each library, in the order given."""
    return [examine(library) for library in libraries]
