# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every location shares (_locations/__init__.py): the error contract, the backoff, the kind of a file mode."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import (
    BACKOFF, BACKOFF_MAX, LocationError, LocationExistsError, LocationNotFoundError, LocationPermissionError, backoff_delay,
    is_retryable, kind_of,
)
from ansible_collections.mnaas.backup.plugins.module_utils._locations.sftp import SftpError, SftpNotFoundError, SftpPermissionError
from ansible_collections.mnaas.backup.plugins.module_utils._locations.webhdfs import (
    HdfsExistsError, HdfsNotFoundError, HdfsPermissionError, HdfsUnavailableError, WebHdfsError,
)


@pytest.mark.parametrize('kind, builtin', [
    (LocationNotFoundError, FileNotFoundError),
    (LocationPermissionError, PermissionError),
    (LocationExistsError, FileExistsError),
])
def test_each_kind_is_the_builtin_oserror(kind, builtin):
    error = kind('cannot open sftp://h/x: no such file', errno.ENOENT)
    assert isinstance(error, builtin) and isinstance(error, LocationError)
    with pytest.raises(builtin):
        raise error


def test_a_location_error_is_an_oserror_and_a_backup_error():
    error = LocationError('cannot list webhdfs://nn/x: boom', errno.EIO, user='alice')
    assert isinstance(error, OSError) and isinstance(error, BackupError)
    assert (str(error), error.msg, error.details) == ('cannot list webhdfs://nn/x: boom', 'cannot list webhdfs://nn/x: boom', {'user': 'alice'})
    assert (error.errno, error.strerror, error.retryable) == (errno.EIO, 'cannot list webhdfs://nn/x: boom', False)
    assert '%s: %s' % (type(error).__name__, error) == 'LocationError: cannot list webhdfs://nn/x: boom'  # as the copy engine reports it


@pytest.mark.parametrize('hdfs, kind', [
    (HdfsNotFoundError, LocationNotFoundError),
    (HdfsPermissionError, LocationPermissionError),
    (HdfsExistsError, LocationExistsError),
    (HdfsUnavailableError, ConnectionError),
])
def test_webhdfs_errors_are_location_errors_of_their_kind(hdfs, kind):
    error = hdfs('OPEN webhdfs://nn/x as HDFS user root: boom')
    assert isinstance(error, kind) and isinstance(error, WebHdfsError) and isinstance(error, LocationError)
    assert not error.retryable and error.errno is None


@pytest.mark.parametrize('error, expected', [
    (LocationError('lost', retryable=True), True),
    (LocationNotFoundError('gone', retryable=True), True),
    (LocationError('refused'), False),
    (WebHdfsError('HTTP 503', transient=True), False),   # the location tried again itself
    (OSError(errno.EIO, 'Input/output error'), False),
    (ConnectionResetError(errno.ECONNRESET, 'reset'), False),
    (socket.timeout('timed out'), False),
    (SftpError('connection to sftp host x lost', retryable=True), True),
    (SftpError('sftp host x refused the key'), False),
])
def test_is_retryable(error, expected):
    assert is_retryable(error) is expected


def test_backoff_doubles_up_to_the_most():
    assert (BACKOFF, BACKOFF_MAX) == (0.5, 8.0)
    assert [backoff_delay(attempt) for attempt in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [backoff_delay(attempt, 0.01) for attempt in range(1, 4)] == [0.01, 0.02, 0.04]
    assert [backoff_delay(attempt, 1.0, 3.0) for attempt in range(1, 4)] == [1.0, 2.0, 3.0]


def test_kind_of_a_file_mode(tmp_path):
    (tmp_path / 'f').write_bytes(b'x')
    (tmp_path / 'd').mkdir()
    os.symlink('f', str(tmp_path / 'l'))
    os.mkfifo(str(tmp_path / 'p'))
    assert {name: kind_of(os.lstat(str(tmp_path / name)).st_mode) for name in 'fdlp'} == {
        'f': 'file', 'd': 'dir', 'l': 'link', 'p': 'other'}
    assert kind_of(stat.S_IFSOCK | 0o600) == 'other'
    assert kind_of(0) == 'other'


@pytest.mark.parametrize('sftp, kind', [
    (SftpError, LocationError),
    (SftpNotFoundError, FileNotFoundError),
    (SftpPermissionError, PermissionError),
])
def test_sftp_errors_are_location_errors_of_their_kind(sftp, kind):
    error = sftp('sftp host x: boom')
    assert isinstance(error, kind) and isinstance(error, LocationError) and not error.retryable


_WITHOUT_ANSIBLE = '''
import sys

class NoAnsible:
    def find_spec(self, name, path=None, target=None):
        if name == 'ansible' or name.startswith('ansible.'):
            raise ImportError('no ansible here: ' + name)

sys.meta_path.insert(0, NoAnsible())
from ansible_collections.mnaas.backup.plugins.module_utils import _copy
from ansible_collections.mnaas.backup.plugins.module_utils._errors import missing_library
from ansible_collections.mnaas.backup.plugins.module_utils._locations import local, sftp, webhdfs
print(missing_library('paramiko', 'Traceback', reason='for sftp locations (host h)').msg)
'''


def test_the_locations_and_the_copy_engine_are_plain_python():
    """They run without ansible-core (on a node, by the system tests and the benchmarks): nothing they import needs it,
    and a missing library is still named."""
    proc = subprocess.run([sys.executable, '-c', _WITHOUT_ANSIBLE], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'Failed to import the required Python library (paramiko); it is required for sftp locations (host h)'
