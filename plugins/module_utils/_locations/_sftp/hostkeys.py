# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Host keys of SFTP hosts: verified against a known_hosts file; an unknown key is refused unless
``host_key_policy=accept_new`` (then it is recorded); a changed key is always refused. Messages name
the host and the key fingerprints, never a secret.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os

from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import Fatal, paramiko, reason


def fingerprint(key) -> str:
    """The OpenSSH form of a key's fingerprint: ``SHA256:`` and unpadded base64."""
    return 'SHA256:' + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode('ascii').rstrip('=')


def known_hosts_name(host: str, port: int) -> str:
    """The name a host has in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else '[%s]:%d' % (host, port)


def known_keys(known_hosts: str, host: str, port: int, policy: str, address: str):
    """The keys known_hosts has for the host (by key type), or ``None``."""
    if not os.path.exists(known_hosts):
        if policy == 'accept_new':
            return None
        raise Fatal('known_hosts file %s does not exist: cannot verify the host key of sftp host %s (host_key_policy=reject)'
                    % (known_hosts, address), errno.ENOENT)
    try:
        keys = paramiko.HostKeys(known_hosts)
    except (OSError, paramiko.SSHException) as exc:
        raise Fatal('cannot read known_hosts file %s: %s' % (known_hosts, reason(exc))) from None
    return keys.lookup(known_hosts_name(host, port))


def verify(key, known, name: str, known_hosts: str, policy: str, address: str) -> bool:
    """Whether the key the server presented is new and to be recorded (``accept_new``); ``False`` when it is
    the known one. Refuses a changed key, and an unknown one under ``reject``, naming host and fingerprints."""
    if known:
        expected = known.get(key.get_name())
        if expected is not None and expected.asbytes() == key.asbytes():
            return False
        listed = ', '.join('%s %s' % (kind, fingerprint(k)) for kind, k in sorted(known.items()))
        raise Fatal('HOST KEY CHANGED for sftp host %s: it presented %s %s but known_hosts file %s has %s; refusing to connect '
                    '(the host was reinstalled, or someone is in the middle). If the change is expected, replace the entry for %s.'
                    % (address, key.get_name(), fingerprint(key), known_hosts, listed, name))
    if policy != 'accept_new':
        raise Fatal('host key of sftp host %s is unknown: %s %s is not in known_hosts file %s; add it there '
                    '(for example from ssh-keyscan, checked out of band), or set host_key_policy=accept_new'
                    % (address, key.get_name(), fingerprint(key), known_hosts))
    return True


def record(key, name: str, known_hosts: str, address: str) -> None:
    """Append the host's key to known_hosts (made, mode 0600, with its directory, when missing)."""
    line = '%s %s %s\n' % (name, key.get_name(), key.get_base64())
    directory = os.path.dirname(known_hosts)
    try:
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, 'a') as stream:
            stream.write(line)
    except OSError as exc:
        raise Fatal('cannot record the new host key of sftp host %s in %s: %s' % (address, known_hosts, reason(exc))) from None
