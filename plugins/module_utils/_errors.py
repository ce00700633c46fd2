# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""

from __future__ import annotations


class BackupError(Exception):
    """An error the modules report as ``msg``; ``details`` go to the result as they are."""

    def __init__(self, msg: str, **details) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class ConfigError(BackupError):
    """Bad input: the message names the key and the value."""


def missing_library(library: str, import_error: str | None, reason: str | None = None, url: str | None = None) -> BackupError:
    """The error for a library that could not be imported, raised where it is needed.

    The pattern, as community.hashi_vault and community.crypto have it: the import at the top of the file
    in ``try``, ``HAS_X`` and ``X_IMPORT_ERROR = traceback.format_exc()``; where the library is needed,
    ``if not HAS_X: raise missing_library('x', X_IMPORT_ERROR)``. The message is ansible-core's
    ``missing_required_lib`` (the library, this host's Python); the traceback goes to the result as ``exception``.
    ansible-core is imported only then, so that the locations and engines stay plain Python, usable without it
    (the system tests and the benchmarks run the SFTP location on a node that has no ansible).
    """
    try:
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel
    except ImportError:
        msg = 'Failed to import the required Python library (%s)%s' % (library, '; it is required %s' % reason if reason else '')
    else:
        msg = missing_required_lib(library, reason=reason, url=url)
    return BackupError(msg, exception=import_error)
