# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SftpLocation as a location (copies through the engine, commit and replace, errors of the server, options), with the
fake host of sftp_fake.py (fixtures in conftest.py), the fast path on and off. Its parts are tested in _sftp/;
the real sshd in tests/system/test_sftp_location.py."""

from __future__ import annotations

import errno
import os

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from ansible_collections.mnaas.backup.plugins.module_utils import _copy  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation  # noqa: E402
from ansible_collections.mnaas.backup.tests.unit.plugins.module_utils._locations.sftp_fake import HOST, OLD, PORT  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Copies through the engine

def test_push_through_engine(make, server, tmp_path):
    """Local source, SFTP destination: written under a temp name, flushed (fsync@openssh.com), renamed."""
    src = tmp_path / 'src'
    src.mkdir()
    contents = {'a.csv': b'', 'b.csv': os.urandom(100_000), 'c.csv': os.urandom(10)}
    for name, data in contents.items():
        (src / name).write_bytes(data)
        os.utime(str(src / name), (OLD + 0.75, OLD + 0.75))
    loc = make()
    opts = _copy.Options(workers=2)
    transfers = [_copy.Transfer(str(src), '/backup/deep/dir', sync=True)]
    outcomes = _copy.execute(_copy.plan(transfers, LocalLocation(), loc, opts), LocalLocation(), loc, opts)
    assert _copy.summarize(outcomes)['copied'] == 3, [o.reason for o in outcomes]
    for name, data in contents.items():
        assert bytes(server.files['/backup/deep/dir/' + name][0]) == data
        assert server.files['/backup/deep/dir/' + name][1] == OLD
    assert not [p for p in server.files if '.mnaas-tmp.' in p]
    assert server.calls['fsync'] == 3
    assert {a.action for a in _copy.plan(transfers, LocalLocation(), loc, opts).actions} == {_copy.SKIP}


def test_commit_never_replaces_and_replace_does(make, server):
    server.add('/d/final', b'theirs', OLD)
    loc = make()
    for name in ('.t1', '.t2'):
        with loc.open_write('/d/' + name) as writer:
            writer.write(b'ours')
    with pytest.raises(FileExistsError) as caught:
        loc.commit('/d/.t1', '/d/final', OLD + 5)
    assert 'sftp://backup@%s:%d/d/final' % (HOST, PORT) in str(caught.value)
    assert bytes(server.files['/d/final'][0]) == b'theirs'
    loc.replace('/d/.t2', '/d/final', OLD + 5.9)
    assert server.files['/d/final'] == [bytearray(b'ours'), OLD + 5]
    loc.commit('/d/.t1', '/d/other', OLD + 7)
    assert server.files['/d/other'][1] == OLD + 7


# ---------------------------------------------------------------------------------------------
# Errors of the server

def test_permission_denied_names_host_and_path(make, server):
    server.dirs.add('/locked')
    server.denied.add('/locked')
    loc = make()
    with pytest.raises(sftp.SftpError) as caught:
        loc.listdir('/locked')
    assert str(caught.value) == 'cannot list sftp://backup@%s:%d/locked: permission denied' % (HOST, PORT)
    assert caught.value.errno == errno.EACCES and isinstance(caught.value, OSError)
    with pytest.raises(sftp.SftpError, match='cannot create sftp://backup@%s:%d/locked/.x: permission denied' % (HOST, PORT)):
        loc.open_write('/locked/.x')
    assert loc.listdir('/nope') is None and loc.stat('/nope') is None


def test_flush_without_fsync_extension_warns_once(make, server):
    warnings = []
    loc = make(warn=warnings.append)
    for name in ('/a', '/b'):
        with loc.open_write(name) as writer:
            writer.write(b'x')
    server.fsync = False
    loc.flush(['/a', '/b'])
    loc.flush(['/a'])
    assert len(warnings) == 1 and 'fsync@openssh.com' in warnings[0] and HOST in warnings[0]
    assert server.calls['fsync'] == 2


# ---------------------------------------------------------------------------------------------
# Options

def test_from_options():
    loc = sftp.from_options({'host': 'edge1', 'user': 'mnaas', 'private_key': '/k', 'known_hosts': '/kh', 'timeout': 5.0, 'retries': 1})
    assert (loc.host, loc.port, loc.user, loc.private_key, loc.known_hosts, loc.timeout, loc.retries) == ('edge1', 22, 'mnaas', '/k', '/kh', 5.0, 1)
    assert loc.describe('/x/y') == 'sftp://mnaas@edge1:22/x/y'
    with pytest.raises(ConfigError, match=r'source\.host is required'):
        sftp.from_options({'type': 'sftp'}, 'source')
    with pytest.raises(ConfigError, match=r"location\.private_key must be an absolute path, got 'id_rsa'"):
        sftp.from_options({'host': 'h', 'private_key': 'id_rsa'})
    with pytest.raises(ConfigError, match=r'location\.port'):
        sftp.from_options({'host': 'h', 'port': 70000})


def test_from_options_sftp_fast_path():
    assert sftp.from_options({'host': 'h'}).fast_path is True
    assert sftp.from_options({'host': 'h', 'sftp_fast_path': True}).fast_path is True
    assert sftp.from_options({'host': 'h', 'sftp_fast_path': False}).fast_path is False
