# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Host keys: verified against known_hosts, the host key policy, fingerprints (_sftp/hostkeys.py)."""

from __future__ import annotations

import stat

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import hostkeys  # noqa: E402
from ansible_collections.mnaas.backup.tests.unit.plugins.module_utils._locations.sftp_fake import HOST, PORT, known_hosts_line  # noqa: E402


def test_unknown_host_key_is_refused(make, server, host_keys):
    make.known_hosts.write_text('', encoding='utf-8')
    loc = make()
    with pytest.raises(sftp.SftpError) as caught:
        loc.listdir('/in')
    message = str(caught.value)
    assert 'backup@%s:%d' % (HOST, PORT) in message
    assert hostkeys.fingerprint(host_keys[0]) in message and str(make.known_hosts) in message
    assert 'host_key_policy=accept_new' in message
    assert isinstance(caught.value, BackupError)
    # Not retried, and nothing was sent to authenticate.
    assert server.connects == 1 and server.sleeps == []


def test_accept_new_records_and_warns(make, server, host_keys):
    make.known_hosts.write_text('', encoding='utf-8')
    warnings = []
    loc = make(host_key_policy='accept_new', warn=warnings.append)
    server.add('/in/f', b'x')
    assert set(loc.listdir('/in')) == {'f'}
    assert len(warnings) == 1 and hostkeys.fingerprint(host_keys[0]) in warnings[0] and 'accept_new' in warnings[0]
    assert loc.accepted_host_keys == [{'host': '[%s]:%d' % (HOST, PORT), 'type': host_keys[0].get_name(),
                                       'fingerprint': hostkeys.fingerprint(host_keys[0]), 'known_hosts': str(make.known_hosts)}]
    assert make.known_hosts.read_text(encoding='utf-8') == known_hosts_line(host_keys[0])
    # Recorded: the next connection is verified against it, silently.
    again = make(warn=warnings.append)
    assert set(again.listdir('/in')) == {'f'}
    assert len(warnings) == 1


def test_accept_new_creates_a_missing_known_hosts(make, tmp_path):
    path = tmp_path / 'ssh' / 'known_hosts'
    loc = make(known_hosts=str(path), host_key_policy='accept_new')
    assert loc.listdir('/') == {}
    assert path.read_text(encoding='utf-8').startswith('[%s]:%d ' % (HOST, PORT))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize('policy', ['reject', 'accept_new'])
def test_changed_host_key_is_refused(make, server, host_keys, policy):
    server.host_key = host_keys[1]
    before = make.known_hosts.read_text(encoding='utf-8')
    loc = make(host_key_policy=policy)
    with pytest.raises(sftp.SftpError) as caught:
        loc.stat('/in')
    message = str(caught.value)
    assert 'HOST KEY CHANGED' in message and 'backup@%s:%d' % (HOST, PORT) in message
    assert hostkeys.fingerprint(host_keys[1]) in message and hostkeys.fingerprint(host_keys[0]) in message
    assert make.known_hosts.read_text(encoding='utf-8') == before
    assert loc.accepted_host_keys == []


def test_missing_known_hosts_is_refused(make, tmp_path):
    loc = make(known_hosts=str(tmp_path / 'nope'))
    with pytest.raises(sftp.SftpError, match='known_hosts file .*nope does not exist.*%s' % HOST):
        loc.stat('/')


def test_known_key_types_are_asked_for_first(make, server):
    loc = make()
    loc.stat('/')
    assert loc._transport.options.key_types[0] == 'ecdsa-sha2-nistp256'


def test_known_hosts_name_and_fingerprint(host_keys):
    assert hostkeys.known_hosts_name('h', 22) == 'h'
    assert hostkeys.known_hosts_name('h', 2222) == '[h]:2222'
    assert hostkeys.fingerprint(host_keys[0]).startswith('SHA256:') and not hostkeys.fingerprint(host_keys[0]).endswith('=')
