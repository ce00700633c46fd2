# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

A dedicated virtualenv on an edge node holding the libraries its steps import (``_requirements``), installed
offline from a wheelhouse (pip runs from its own wheel there: the node needs no pip) or from an index URL.
Commands are argument lists, never a shell.
"""

from __future__ import annotations

import glob
import json
import os
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import Library, at_least, version_key

# Run by the virtualenv's Python: every installed distribution and its version, as JSON.
_INVENTORY = (
    'import json\n'
    'from importlib import metadata\n'
    'print(json.dumps({d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}))\n'
)

# pip run from its wheel (a node needs no pip of its own), on sysconfig's install scheme: pip imports distutils on
# Python < 3.10 unless told so through this attribute (its hook for distributors), and a node's Python may have no
# distutils (Debian ships it apart, as python3-distutils). argv: -c PIP_FROM_WHEEL WHEEL pip-arguments...
PIP_FROM_WHEEL = (
    'import runpy, sys, sysconfig\n'
    'sysconfig._PIP_USE_SYSCONFIG = True\n'
    'sys.path.insert(0, sys.argv.pop(1))\n'
    'runpy.run_module("pip", run_name="__main__", alter_sys=True)\n'
)

# (argv) -> (rc, stdout, stderr): AnsibleModule.run_command, or a fake in unit tests.
Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]


def canonical(name: str) -> str:
    """A distribution name as pip compares them: ``thrift_sasl``, ``Thrift.SASL`` -> ``thrift-sasl``."""
    return '-'.join(part for part in name.lower().replace('_', '-').replace('.', '-').split('-') if part)


def interpreter(venv: str) -> str:
    """The virtualenv's Python: the ``ansible_python_interpreter`` of the node's night."""
    return os.path.join(venv, 'bin', 'python')


def installed(venv: str, run: Runner) -> dict[str, str] | None:
    """{canonical name: version} of the virtualenv's distributions; None when there is no virtualenv."""
    python = interpreter(venv)
    if not os.path.exists(python):
        return None
    rc, out, err = run([python, '-c', _INVENTORY])
    if rc != 0:
        raise BackupError('the virtualenv %s does not work: %s -c ... exited %d: %s' % (venv, python, rc, (err or out).strip()[-500:]))
    try:
        found = json.loads(out)
    except ValueError:
        raise BackupError('the virtualenv %s listed its libraries unreadably: %r' % (venv, out[-500:])) from None
    return {canonical(name): version for name, version in found.items()}


def wanting(libraries: t.Iterable[Library], present: dict[str, str] | None) -> list[Library]:
    """The libraries not there at their least version."""
    present = present or {}
    return [lib for lib in libraries if not at_least(present.get(canonical(lib.distribution)), lib.minimum)]


def describe(libraries: t.Iterable[Library], present: dict[str, str] | None) -> str:
    """One line a library, as the diff shows them: ``paramiko 3.4.0`` or ``paramiko (missing)``."""
    present = present or {}
    lines = []
    for lib in libraries:
        version = present.get(canonical(lib.distribution))
        lines.append('%s %s\n' % (lib.distribution, version) if version else '%s (missing)\n' % lib.distribution)
    return ''.join(lines)


def pip_wheel(wheelhouse: str) -> str:
    """The pip wheel of the wheelhouse (the newest by its version when there are several: 24.0 after 9.0.3)."""
    found = sorted(glob.glob(os.path.join(glob.escape(wheelhouse), 'pip-*.whl')),
                   key=lambda path: (version_key(os.path.basename(path)[len('pip-'):]), path))
    if not found:
        raise ConfigError('wheelhouse %s holds no pip wheel (pip-*.whl): build it with `make wheelhouse` (tools/wheelhouse.py)' % wheelhouse)
    return found[-1]


def create(venv: str, python: str, run: Runner) -> None:
    """A virtualenv without pip (the node's Python may have no ensurepip: Debian's python3-venv)."""
    rc, out, err = run([python, '-m', 'venv', '--without-pip', venv])
    if rc != 0:
        raise BackupError('cannot create the virtualenv %s with %s: %s' % (venv, python, (err or out).strip()[-500:]))


def install(venv: str, libraries: list[Library], run: Runner, wheelhouse: str | None = None, index_url: str | None = None) -> None:
    """pip install the libraries' requirements into the virtualenv, offline from the wheelhouse or from the index."""
    python = interpreter(venv)
    common = ['install', '--disable-pip-version-check', '--no-input', '--no-cache-dir']
    if wheelhouse:
        argv = [python, '-c', PIP_FROM_WHEEL, pip_wheel(wheelhouse)] + common + ['--no-index', '--find-links', wheelhouse]
    elif index_url:
        rc, out, err = run([python, '-m', 'pip', '--version'])
        if rc != 0:
            rc, out, err = run([python, '-m', 'ensurepip', '--default-pip'])
        if rc != 0:
            raise BackupError("no pip for installing from %s: the node's Python has no ensurepip (on Debian: the python3-venv package); "
                              "install from a wheelhouse instead (%s)" % (index_url, (err or out).strip()[-300:]))
        argv = [python, '-m', 'pip'] + common + ['--index-url', index_url]
    else:
        raise ConfigError('a wheelhouse or an index URL is needed to install %s' % ', '.join(lib.distribution for lib in libraries))
    rc, out, err = run(argv + ['--'] + [lib.requirement for lib in libraries])
    if rc != 0:
        raise BackupError('pip could not install %s into %s: %s' % (
            ', '.join(lib.requirement for lib in libraries), venv, (err or out).strip()[-1500:]))
