# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fake SFTP host of the SFTP location's unit tests (fixtures in conftest.py): paramiko faked at the boundary,
the TCP socket, the SSH transport and the SFTP channel replaced by an in-memory server that answers the same
requests (real paramiko messages, keys and known_hosts parsing). Not a test file: the tests import it."""

from __future__ import annotations

import collections
import errno
import os
import stat
import threading
import types

try:
    import paramiko
    from paramiko.sftp import (
        CMD_ATTRS, CMD_CLOSE, CMD_DATA, CMD_EXTENDED, CMD_HANDLE, CMD_LSTAT, CMD_OPEN, CMD_READ, CMD_STATUS, CMD_WRITE, SFTP_FLAG_WRITE,
    )
except ImportError:  # the tests that need it skip (pytest.importorskip)
    paramiko = None

# pylint: disable=protected-access

HOST = 'sftp.example'
PORT = 2222
OLD = 1_700_000_000


# ---------------------------------------------------------------------------------------------
# The fake server

def reply(*fields) -> paramiko.Message:
    """A paramiko message holding ``fields``, ready to be read as a reply."""
    msg = paramiko.Message()
    for field in fields:
        if isinstance(field, paramiko.SFTPAttributes):
            field._pack(msg)
        elif isinstance(field, int):
            msg.add_int(field)
        else:
            msg.add_string(field)
    return paramiko.Message(msg.asbytes())


def status(code: int, text: str = '') -> tuple:
    return CMD_STATUS, reply(code, text, '')


class Server:
    """Files and directories of the fake host, and what the tests make it do."""

    def __init__(self, host_key) -> None:
        self.host_key = host_key
        self.files: dict[str, list] = {}          # path -> [bytearray, mtime]
        self.dirs = {'/'}
        self.denied: set[str] = set()             # paths whose requests get "permission denied"
        self.max_read = 1 << 30                   # a server that answers reads short
        self.fsync = True
        self.connects = 0
        self.connect_error: Exception | None = None
        self.auth_error: Exception | None = None
        self.gone_during_auth = False             # with auth_error: the host closed the connection while authenticating
        self.drop: dict[str, int] = {}            # request kind -> drop the connection at its Nth use
        self.drop_reply = 0                       # drop the connection at the Nth reply read
        self.replies = 0
        self.calls: collections.Counter = collections.Counter()
        self.clients: list = []
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def add(self, path: str, data: bytes, mtime: int = OLD) -> None:
        parent = os.path.dirname(path)
        while parent not in self.dirs:
            self.dirs.add(parent)
            parent = os.path.dirname(parent)
        self.files[path] = [bytearray(data), mtime]

    def attrs(self, path: str) -> paramiko.SFTPAttributes:
        attr = paramiko.SFTPAttributes()
        attr.filename = os.path.basename(path)
        attr.st_uid = attr.st_gid = 0
        attr.st_atime = OLD
        if path in self.files:
            attr.st_size = len(self.files[path][0])
            attr.st_mode = stat.S_IFREG | 0o644
            attr.st_mtime = self.files[path][1]
        elif path in self.dirs:
            attr.st_size = 4096
            attr.st_mode = stat.S_IFDIR | 0o755
            attr.st_mtime = OLD
        else:
            raise IOError(errno.ENOENT, 'No such file')
        return attr


class Transport:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.active = True
        self.options = types.SimpleNamespace(key_types=['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512'])
        self.auth: list = []

    def get_security_options(self):
        return self.options

    def start_client(self, timeout=None) -> None:
        pass

    def get_remote_server_key(self):
        return self.server.host_key

    def auth_publickey(self, user, key) -> None:
        self.auth.append(('key', user, key.get_name()))
        if self.server.auth_error:
            if self.server.gone_during_auth:
                self.active = False
            raise self.server.auth_error

    def auth_password(self, user, password) -> None:
        self.auth.append(('password', user))
        if self.server.auth_error:
            raise self.server.auth_error

    def is_active(self) -> bool:
        return self.active

    def open_session(self, **kwargs):
        raise paramiko.SSHException('no exec on this fake host')

    def close(self) -> None:
        self.active = False


class Client:
    """The SFTP channel of one thread: the SFTPClient methods and internals SftpLocation uses."""

    def __init__(self, server: Server, transport: Transport) -> None:
        self.server = server
        self.transport = transport
        self.sock = types.SimpleNamespace(closed=False, recv_ready=lambda: False)
        self.queue: collections.deque = collections.deque()
        self.num = 0
        self.handles: dict[bytes, tuple[str, bool]] = {}
        server.clients.append(self)

    def _use(self, kind: str, path: str = '') -> None:
        server = self.server
        if not self.transport.active:
            raise paramiko.SSHException('Server connection dropped: ')
        with server.lock:
            server.calls[kind] += 1
            if kind in server.drop:
                server.drop[kind] -= 1
                if server.drop[kind] == 0:
                    del server.drop[kind]
                    self.transport.active = False
                    raise paramiko.SSHException('Server connection dropped: ')
        if path and any(path == d or path.startswith(d + '/') for d in server.denied):
            raise IOError(errno.EACCES, 'Permission denied')

    # plain requests ---------------------------------------------------------------------------
    def listdir_attr(self, path):
        self._use('listdir', path)
        if path not in self.server.dirs:
            raise IOError(errno.ENOENT, 'No such file')
        names = [p for p in list(self.server.files) + list(self.server.dirs) if p != path and os.path.dirname(p) == path]
        return [self.server.attrs(p) for p in names]

    def lstat(self, path):
        self._use('lstat', path)
        return self.server.attrs(path)

    def mkdir(self, path, mode=0o777):
        self._use('mkdir', path)
        if path in self.server.dirs or path in self.server.files:
            raise IOError('Failure')
        self.server.dirs.add(path)

    def remove(self, path):
        self._use('remove', path)
        if self.server.files.pop(path, None) is None:
            raise IOError(errno.ENOENT, 'No such file')

    def rename(self, old, new):
        self._use('rename', new)
        if new in self.server.files or new in self.server.dirs:
            raise IOError('Failure')
        self.server.files[new] = self.server.files.pop(old)

    def posix_rename(self, old, new):
        self._use('posix_rename', new)
        self.server.files[new] = self.server.files.pop(old)

    def utime(self, path, times):
        self._use('utime', path)
        self.server.files[path][1] = int(times[1])

    def close(self):
        self.sock.closed = True

    # what the pipelined requests use -----------------------------------------------------------
    def _answer(self, kind, args) -> tuple:
        server = self.server
        if kind == CMD_OPEN:
            path, flags = args[0], args[1]
            self._use('open', path)
            writing = bool(flags & SFTP_FLAG_WRITE)
            if writing:
                if path in server.files:
                    return status(4, 'Failure')
                if os.path.dirname(path) not in server.dirs:
                    return status(2, 'No such file')
                server.files[path] = [bytearray(), OLD]
            elif path not in server.files:
                return status(2, 'No such file')
            handle = b'h%d' % len(self.handles)
            self.handles[handle] = (path, writing)
            return CMD_HANDLE, reply(handle)
        if kind == CMD_READ:
            self._use('read')
            path = self.handles[args[0]][0]
            data = bytes(server.files[path][0][args[1]:args[1] + min(args[2], server.max_read)])
            return (CMD_DATA, reply(data)) if data else status(1, 'EOF')
        if kind == CMD_WRITE:
            self._use('write')
            content = server.files[self.handles[args[0]][0]][0]
            offset, data = args[1], args[2]
            content[offset:offset + len(data)] = data
            return status(0)
        if kind == CMD_LSTAT:
            self._use('lstat', args[0])
            return CMD_ATTRS, reply(server.attrs(args[0]))
        if kind == CMD_CLOSE:
            self._use('close')
            self.handles.pop(args[0], None)
            return status(0)
        if kind == CMD_EXTENDED and args[0] == 'fsync@openssh.com':
            self._use('fsync')
            return status(0) if server.fsync else status(8, 'Operation unsupported')
        return status(8, 'Operation unsupported')

    def _async_request(self, fileobj, kind, *args) -> int:
        self.num += 1
        try:
            answer = self._answer(kind, args)
        except IOError as exc:
            answer = status(3 if exc.errno == errno.EACCES else 4, str(exc))
        self.queue.append((fileobj, self.num, answer))
        return self.num

    def _read_response(self, waitfor=None):
        if not self.transport.active:
            raise paramiko.SSHException('Server connection dropped: ')
        self.server.replies += 1
        if self.server.replies == self.server.drop_reply:
            self.transport.active = False
            raise paramiko.SSHException('Server connection dropped: ')
        fileobj, num, (kind, msg) = self.queue.popleft()
        if hasattr(fileobj, '_async_response'):
            fileobj._async_response(kind, msg, num)
        return None, None

    def _request(self, kind, *args):
        if kind == CMD_EXTENDED and args[0] == 'limits@openssh.com':
            raise IOError('Operation unsupported')
        answer_kind, msg = self._answer(kind, args)
        if answer_kind == CMD_STATUS:
            code = msg.get_int()
            text = msg.get_text()
            raise IOError({2: errno.ENOENT, 3: errno.EACCES}.get(code, 0) or None, text) if code in (2, 3) else IOError(text)
        return answer_kind, msg


def known_hosts_line(key) -> str:
    return '[%s]:%d %s %s\n' % (HOST, PORT, key.get_name(), key.get_base64())


def read_all(stream) -> bytes:
    parts = []
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return b''.join(parts)
        parts.append(chunk)
