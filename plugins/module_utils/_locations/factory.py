# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Builds a ``Location`` from a module's location option (documented in the ``location`` doc fragment).
"""

from __future__ import annotations

import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Location
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation

# The argument spec of a location option; the doc fragment plugins/doc_fragments/location.py says the same.
LOCATION_SPEC = {
    'type': {'type': 'str', 'choices': ['local', 'sftp', 'webhdfs'], 'default': 'local'},
    # sftp
    'host': {'type': 'str'},
    'port': {'type': 'int'},
    'user': {'type': 'str'},
    'private_key': {'type': 'path'},
    'private_key_passphrase': {'type': 'str', 'no_log': True},
    'password': {'type': 'str', 'no_log': True},
    'known_hosts': {'type': 'path'},
    'host_key_policy': {'type': 'str', 'choices': ['reject', 'accept_new'], 'default': 'reject'},
    'sftp_fast_path': {'type': 'bool', 'default': True},
    # webhdfs
    'urls': {'type': 'list', 'elements': 'str'},
    'hdfs_user': {'type': 'str'},
    'auth': {'type': 'str', 'choices': ['simple', 'kerberos'], 'default': 'simple'},
    'kerberos_principal': {'type': 'str'},
    'verify': {'type': 'bool', 'default': True},
    'ca_cert': {'type': 'path'},
    # all remote types
    'timeout': {'type': 'float', 'default': 30.0},
    'retries': {'type': 'int', 'default': 3},
}


def open_location(options: dict | None, key: str = 'location', warn: t.Callable[[str], None] | None = None) -> Location:
    """The location the (validated) option describes; errors name ``key``; ``warn`` receives warnings (module.warn)."""
    options = options or {}
    kind = options.get('type') or 'local'
    if kind == 'local':
        return LocalLocation()
    if kind == 'sftp':
        from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # pylint: disable=import-outside-toplevel
        return sftp.from_options(options, key, warn=warn)
    if kind == 'webhdfs':
        from ansible_collections.mnaas.backup.plugins.module_utils._locations import webhdfs  # pylint: disable=import-outside-toplevel
        return webhdfs.from_options(options, key)
    raise ConfigError('%s.type must be one of local, sftp, webhdfs, got %r' % (key, kind))
