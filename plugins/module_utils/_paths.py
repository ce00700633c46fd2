# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""


from __future__ import annotations

import posixpath
import re

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError

_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')


def check_absolute(value: object, key: str) -> str:
    """An absolute, normalised path without ``..`` components."""
    if not isinstance(value, str) or not value:
        raise ConfigError('%s must be an absolute path, got %r' % (key, value))
    if not value.startswith('/'):
        raise ConfigError('%s must be an absolute path, got relative path %r' % (key, value))
    if '\0' in value or '..' in value.split('/'):
        raise ConfigError('%s must not contain ".." or NUL, got %r' % (key, value))
    return posixpath.normpath(value)


def check_name(value: object, key: str) -> str:
    """A customer or domain name: letters, digits, ``_``, ``.``, ``-``; no ``/``, ``..`` or whitespace."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or '..' in value:
        raise ConfigError('%s must be a name of letters, digits, "_", "." and "-" (no "/", ".." or spaces), got %r'
                          % (key, value))
    return value


def check_file_name(value: object, key: str) -> str:
    """A single path component: no ``/``, not ``.`` or ``..``, not empty."""
    if not isinstance(value, str) or not value or '/' in value or '\0' in value or value in ('.', '..'):
        raise ConfigError('%s must be a file name without "/", got %r' % (key, value))
    return value
