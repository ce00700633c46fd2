# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connections (_sftp/connection.py): a channel per thread over a few connections, credentials,
reachability, reconnecting with backoff."""

from __future__ import annotations

import errno
import threading

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import connection  # noqa: E402
from ansible_collections.mnaas.backup.tests.unit.plugins.module_utils._locations.sftp_fake import HOST, PORT, Transport  # noqa: E402


@pytest.mark.parametrize('connections, threads, expected', [(1, 3, 1), (4, 3, 3), (2, 5, 2)])
def test_each_thread_has_its_own_channel(make, server, connections, threads, expected):
    """Each thread its own SFTP channel; the channels spread over at most ``connections`` SSH connections."""
    server.add('/in/f', b'x')
    loc = make(connections=connections)
    results = []

    def work():
        results.append(loc.stat('/in/f').size)

    workers = [threading.Thread(target=work) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == [1] * threads
    assert len(server.clients) == threads
    assert server.connects == expected


def test_missing_key_file(make, server, tmp_path):
    loc = make(private_key=str(tmp_path / 'no_such_key'))
    with pytest.raises(sftp.SftpError) as caught:
        loc.listdir('/in')
    assert str(tmp_path / 'no_such_key') in str(caught.value) and HOST in str(caught.value)
    assert caught.value.errno == errno.ENOENT
    assert server.connects == 0


@pytest.mark.parametrize('passphrase, expected', [(None, 'encrypted and no private_key_passphrase'),
                                                  ('wrong-passphrase-4711', 'wrong passphrase or not a private key')])
def test_encrypted_key(make, server, client_key, passphrase, expected):
    loc = make(private_key=client_key.encrypted, private_key_passphrase=passphrase)
    with pytest.raises(sftp.SftpError) as caught:
        loc.stat('/')
    assert expected in str(caught.value) and client_key.encrypted in str(caught.value)
    assert 'wrong-passphrase-4711' not in str(caught.value)
    good = make(private_key=client_key.encrypted, private_key_passphrase='correct horse battery')
    assert good.stat('/').kind == 'dir'


def test_authentication_failure_names_host_and_key_and_keeps_secrets(make, server, client_key):
    server.auth_error = paramiko.AuthenticationException('Authentication failed.')
    loc = make()
    with pytest.raises(sftp.SftpError) as caught:
        loc.stat('/')
    assert 'authentication failed for sftp host backup@%s:%d with key %s' % (HOST, PORT, client_key.path) in str(caught.value)
    assert server.connects == 1
    with_password = make(private_key=None, password='hunter2-secret')
    with pytest.raises(sftp.SftpError) as caught:
        with_password.stat('/')
    assert 'with password' in str(caught.value) and 'hunter2' not in str(caught.value)


def test_host_gone_during_authentication_is_a_lost_connection(make, server):
    """An sshd stopped while the client authenticates (paramiko: "transport shut down or saw EOF") says nothing of the
    key: the connection is tried again, and the host refusing connections from then on is what the error names."""
    server.auth_error = paramiko.AuthenticationException('Authentication failed: transport shut down or saw EOF')
    server.gone_during_auth = True
    loc = make(retries=2)
    original = Transport.auth_publickey

    def then_refused(self, user, key):
        server.connect_error = ConnectionRefusedError(errno.ECONNREFUSED, 'Connection refused')
        original(self, user, key)
    Transport.auth_publickey = then_refused
    try:
        with pytest.raises(sftp.SftpError) as caught:
            loc.stat('/')
    finally:
        Transport.auth_publickey = original
    message = str(caught.value)
    assert 'authentication failed' not in message, message
    assert 'Connection refused' in message and 'gave up after 3 attempt(s)' in message, message
    assert server.connects == 3 and server.sleeps == [0.5, 1.0]


def test_unreachable_host_backs_off_then_fails_fast(make, server):
    server.connect_error = ConnectionRefusedError(errno.ECONNREFUSED, 'Connection refused')
    loc = make(retries=3)
    with pytest.raises(sftp.SftpError) as caught:
        loc.listdir('/in')
    message = str(caught.value)
    assert 'cannot connect to sftp host backup@%s:%d' % (HOST, PORT) in message
    assert 'Connection refused' in message and 'gave up after 4 attempt(s)' in message
    assert server.connects == 4 and server.sleeps == [0.5, 1.0, 2.0]
    with pytest.raises(sftp.SftpError, match='gave up'):
        loc.stat('/in/f')
    assert server.connects == 4, 'once given up, later calls fail at once'


def test_missing_paramiko(make, monkeypatch):
    """ansible-core's missing_required_lib message naming paramiko and the host; the import's traceback as `exception`."""
    monkeypatch.setattr(connection, 'HAS_PARAMIKO', False)
    monkeypatch.setattr(connection, 'PARAMIKO_IMPORT_ERROR', 'Traceback...\nModuleNotFoundError: No module named paramiko\n')
    with pytest.raises(BackupError, match=r'required Python library \(paramiko\).*for sftp locations \(host backup@%s' % HOST) as caught:
        make()
    assert 'No module named paramiko' in caught.value.details['exception']


def test_dropped_connection_is_retried_for_metadata(make, server):
    server.add('/in/f', b'abc')
    loc = make()
    assert loc.stat('/in/f').size == 3
    server.drop['lstat'] = 1
    assert loc.stat('/in/f').size == 3
    assert server.connects == 2 and server.sleeps == [0.5]
