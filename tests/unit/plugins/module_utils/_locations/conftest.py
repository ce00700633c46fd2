# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the SFTP location's unit tests (test_sftp.py and _sftp/): the fake host of sftp_fake.py, keys, and
``make``, which builds SftpLocations reaching it, once with the fast path and once without (``fast_path``)."""

from __future__ import annotations

import types

import pytest

from ansible_collections.mnaas.backup.tests.unit.plugins.module_utils._locations import sftp_fake


@pytest.fixture(scope='module')
def host_keys():
    paramiko = pytest.importorskip('paramiko')
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


@pytest.fixture(scope='module')
def client_key(tmp_path_factory):
    paramiko = pytest.importorskip('paramiko')
    directory = tmp_path_factory.mktemp('keys')
    path = str(directory / 'id_ecdsa')
    paramiko.ECDSAKey.generate().write_private_key_file(path)
    encrypted = str(directory / 'id_ecdsa_encrypted')
    paramiko.ECDSAKey.generate().write_private_key_file(encrypted, password='correct horse battery')
    return types.SimpleNamespace(path=path, encrypted=encrypted)


@pytest.fixture
def server(host_keys):
    return sftp_fake.Server(host_keys[0])


@pytest.fixture(params=[True, False], ids=['fast-path', 'paramiko-path'])
def fast_path(request) -> bool:
    """The location's ``fast_path`` (the ``sftp_fast_path`` option): every test using ``make`` runs both ways."""
    return request.param


@pytest.fixture
def make(tmp_path, server, client_key, host_keys, monkeypatch, fast_path):
    """``make(**kwargs)``: an SftpLocation whose connections reach ``server``; known_hosts holds its key."""
    from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # pylint: disable=import-outside-toplevel
    known_hosts = tmp_path / 'known_hosts'
    known_hosts.write_text(sftp_fake.known_hosts_line(host_keys[0]), encoding='utf-8')

    def open_socket(self):
        server.connects += 1
        if server.connect_error is not None:
            raise server.connect_error
        return types.SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(sftp.SftpLocation, '_open_socket', open_socket)
    monkeypatch.setattr(sftp.SftpLocation, '_make_transport', lambda self, sock: sftp_fake.Transport(server))
    monkeypatch.setattr(sftp.SftpLocation, '_open_channel', lambda self, transport: sftp_fake.Client(server, transport))
    monkeypatch.setattr(sftp.SftpLocation, '_sleep', staticmethod(server.sleeps.append))

    def build(**kwargs) -> sftp.SftpLocation:
        options = {'user': 'backup', 'private_key': client_key.path, 'known_hosts': str(known_hosts), 'fast_path': fast_path}
        options.update(kwargs)
        return sftp.SftpLocation(sftp_fake.HOST, sftp_fake.PORT, **options)

    build.known_hosts = known_hosts
    return build
