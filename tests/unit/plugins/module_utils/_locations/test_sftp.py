# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""SftpLocation with paramiko faked at the boundary: the TCP socket, the SSH transport and the SFTP
channel are replaced by an in-memory server that answers the same requests (real paramiko messages,
keys and known_hosts parsing). The real sshd is exercised by tests/system/test_sftp_location.py."""

from __future__ import annotations

import collections
import errno
import os
import stat
import threading
import types

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from paramiko.sftp import (  # noqa: E402
    CMD_ATTRS, CMD_CLOSE, CMD_DATA, CMD_EXTENDED, CMD_HANDLE, CMD_LSTAT, CMD_OPEN, CMD_READ, CMD_STATUS, CMD_WRITE,
    SFTP_FLAG_WRITE,
)

from ansible_collections.mnaas.backup.plugins.module_utils import _copy  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations import LIBC, sftp  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation  # noqa: E402

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


# ---------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope='module')
def host_keys():
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


@pytest.fixture(scope='module')
def client_key(tmp_path_factory):
    directory = tmp_path_factory.mktemp('keys')
    path = str(directory / 'id_ecdsa')
    paramiko.ECDSAKey.generate().write_private_key_file(path)
    encrypted = str(directory / 'id_ecdsa_encrypted')
    paramiko.ECDSAKey.generate().write_private_key_file(encrypted, password='correct horse battery')
    return types.SimpleNamespace(path=path, encrypted=encrypted)


def known_hosts_line(key) -> str:
    return '[%s]:%d %s %s\n' % (HOST, PORT, key.get_name(), key.get_base64())


@pytest.fixture
def server(host_keys):
    return Server(host_keys[0])


@pytest.fixture
def make(tmp_path, server, client_key, host_keys, monkeypatch):
    """``make(**kwargs)``: an SftpLocation whose connections reach ``server``; known_hosts holds its key."""
    known_hosts = tmp_path / 'known_hosts'
    known_hosts.write_text(known_hosts_line(host_keys[0]), encoding='utf-8')

    def open_socket(self):
        server.connects += 1
        if server.connect_error is not None:
            raise server.connect_error
        return types.SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(sftp.SftpLocation, '_open_socket', open_socket)
    monkeypatch.setattr(sftp.SftpLocation, '_make_transport', lambda self, sock: Transport(server))
    monkeypatch.setattr(sftp.SftpLocation, '_open_channel', lambda self, transport: Client(server, transport))
    monkeypatch.setattr(sftp.SftpLocation, '_sleep', staticmethod(server.sleeps.append))

    def build(**kwargs) -> sftp.SftpLocation:
        options = {'user': 'backup', 'private_key': client_key.path, 'known_hosts': str(known_hosts)}
        options.update(kwargs)
        return sftp.SftpLocation(HOST, PORT, **options)

    build.known_hosts = known_hosts
    return build


def read_all(stream) -> bytes:
    parts = []
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return b''.join(parts)
        parts.append(chunk)


# ---------------------------------------------------------------------------------------------
# Copies through the engine

@pytest.mark.parametrize('announce', [False, True], ids=['per-file', 'fetched-ahead'])
def test_pull_through_engine(make, server, tmp_path, announce):
    """Source over SFTP, local destination: bytes and whole-second mtimes kept; a second plan skips
    everything with one listing per directory and no per-file requests."""
    contents = {'f%02d.csv' % i: os.urandom(i * 7919) for i in range(12)}
    contents['big.csv'] = os.urandom(1_500_000)
    for index, (name, data) in enumerate(sorted(contents.items())):
        server.add('/in/' + name, data, OLD + index)
    loc = make()
    dest = str(tmp_path / 'out')
    transfers = [_copy.Transfer('/in', dest, sync=True)]
    opts = _copy.Options(workers=3)
    plan = _copy.plan(transfers, loc, LocalLocation(), opts)
    if not announce:
        loc.prefetch = lambda paths: None   # the engine announces its reads; here each file is read on its own
    outcomes = _copy.execute(plan, loc, LocalLocation(), opts)
    assert _copy.summarize(outcomes)['copied'] == len(contents), [o.reason for o in outcomes]
    for index, (name, data) in enumerate(sorted(contents.items())):
        with open(os.path.join(dest, name), 'rb') as stream:
            assert stream.read() == data, name
        assert os.stat(os.path.join(dest, name)).st_mtime == OLD + index
    if announce:
        assert loc._prefetch.taken == len(contents) - 1, 'every small file comes fetched ahead'
    # The stat after each read came with the read: no LSTAT of its own.
    assert server.calls['lstat'] == len(contents)
    server.calls.clear()
    again = _copy.plan(transfers, loc, LocalLocation(), opts)
    assert {a.action for a in again.actions} == {_copy.SKIP}
    assert dict(server.calls) == {'listdir': 1}
    loc.close()


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


def test_short_reads_and_a_file_that_grew(make, server):
    """A server answering 1,000 bytes a read, and a file longer than its listing: all bytes, in order;
    the stat after such a read is asked of the server, not taken from the read."""
    data = os.urandom(150_000)
    server.add('/in/f', data[:10])
    loc = make()
    assert loc.listdir('/in')['f'].size == 10
    server.files['/in/f'][0] = bytearray(data)
    server.max_read = 1000
    with loc.open_read('/in/f') as reader:
        assert read_all(reader) == data
    server.calls.clear()
    assert loc.stat('/in/f').size == len(data)
    assert server.calls['lstat'] == 1


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


# ---------------------------------------------------------------------------------------------
# Host keys

def test_unknown_host_key_is_refused(make, server, host_keys):
    make.known_hosts.write_text('', encoding='utf-8')
    loc = make()
    with pytest.raises(sftp.SftpError) as caught:
        loc.listdir('/in')
    message = str(caught.value)
    assert 'backup@%s:%d' % (HOST, PORT) in message
    assert sftp.fingerprint(host_keys[0]) in message and str(make.known_hosts) in message
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
    assert len(warnings) == 1 and sftp.fingerprint(host_keys[0]) in warnings[0] and 'accept_new' in warnings[0]
    assert loc.accepted_host_keys == [{'host': '[%s]:%d' % (HOST, PORT), 'type': host_keys[0].get_name(),
                                       'fingerprint': sftp.fingerprint(host_keys[0]), 'known_hosts': str(make.known_hosts)}]
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
    assert sftp.fingerprint(host_keys[1]) in message and sftp.fingerprint(host_keys[0]) in message
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


# ---------------------------------------------------------------------------------------------
# Credentials and reachability

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
    monkeypatch.setattr(sftp, 'paramiko', None)
    monkeypatch.setattr(sftp, 'PARAMIKO_IMPORT_ERROR', 'Traceback...\nModuleNotFoundError: No module named paramiko\n')
    with pytest.raises(sftp.SftpError, match='paramiko is needed .*%s.*No module named paramiko' % HOST):
        make().stat('/')


# ---------------------------------------------------------------------------------------------
# Errors of the server, dropped connections

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


def test_dropped_connection_is_retried_for_metadata(make, server):
    server.add('/in/f', b'abc')
    loc = make()
    assert loc.stat('/in/f').size == 3
    server.drop['lstat'] = 1
    assert loc.stat('/in/f').size == 3
    assert server.connects == 2 and server.sleeps == [0.5]


def test_dropped_connection_reconnects_and_the_file_in_flight_is_read_again(make, server, tmp_path):
    """The connection drops in the middle of a file: the next call reconnects, the copy engine reads that file again
    from the start, and every file is copied whole (issue 6, F28)."""
    for index in range(6):
        server.add('/in/f%d' % index, os.urandom(50_000), OLD + index)
    loc = make(connections=1)
    loc.prefetch = lambda paths: None   # the drop must hit a read in flight, not the engine's prefetch hint
    opts = _copy.Options(workers=1)
    transfers = [_copy.Transfer('/in', str(tmp_path / 'out'), sync=True)]
    plan = _copy.plan(transfers, loc, LocalLocation(), opts)
    server.drop_reply = server.replies + 12
    outcomes = {o.action.name: o for o in _copy.execute(plan, loc, LocalLocation(), opts)}
    assert {name: o.status for name, o in outcomes.items()} == {'f%d' % i: 'copied' for i in range(6)}, outcomes
    assert server.connects == 2     # the drop happened, and one reconnection served the rest
    for index in range(6):
        assert (tmp_path / 'out' / ('f%d' % index)).read_bytes() == server.files['/in/f%d' % index][0]
    assert sorted(os.listdir(str(tmp_path / 'out'))) == ['f%d' % i for i in range(6)], 'a temp left'


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


def test_known_hosts_name_and_fingerprint(host_keys):
    assert sftp.known_hosts_name('h', 22) == 'h'
    assert sftp.known_hosts_name('h', 2222) == '[h]:2222'
    assert sftp.fingerprint(host_keys[0]).startswith('SHA256:') and not sftp.fingerprint(host_keys[0]).endswith('=')


# ---------------------------------------------------------------------------------------------
# The channel receive buffer that replaces paramiko's BufferedPipe

def test_chunk_pipe_reads_in_order_without_losing_bytes():
    pipe = sftp._ChunkPipe()
    event = threading.Event()
    pipe.set_event(event)
    assert not event.is_set() and not pipe.read_ready() and len(pipe) == 0
    data = os.urandom(10_000)
    for start in range(0, len(data), 3000):
        pipe.feed(data[start:start + 3000])
    assert event.is_set() and len(pipe) == len(data) and pipe.peek(4) == data[:4]
    got = [pipe.read(4), pipe.read(5000), pipe.read(1), pipe.read(100_000)]
    assert [len(g) for g in got] == [4, 5000, 1, 4995]
    got.append(pipe.empty())
    assert b''.join(got) == data and len(pipe) == 0 and not event.is_set()
    with pytest.raises(paramiko.buffered_pipe.PipeTimeout):
        pipe.read(10, timeout=0.01)
    recv = sftp._Recv(types.SimpleNamespace(recv=pipe.read, in_buffer=pipe))
    pipe.feed(b'\x00\x00\x00\x03ab')
    assert not recv.has_packet()
    pipe.feed(b'c')
    assert recv.has_packet() and recv.read_all(7) == b'\x00\x00\x00\x03abc'
    pipe.close()
    assert pipe.read(10) == b'' and event.is_set()


# ---------------------------------------------------------------------------------------------
# The packet reader that replaces Packetizer.read_message on the location's transports

def packet_pair(monkeypatch, etm: bool = False):
    """Two real paramiko Packetizers over a socket pair, AES-128-CTR and HMAC-SHA2-256 (as agreed with
    an OpenSSH server by paramiko 2.x); the receiver reads with ``sftp._read_message``. Counts how often
    paramiko's own ``read_message`` is used."""
    from cryptography.hazmat.backends import default_backend  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # pylint: disable=import-outside-toplevel
    import hashlib  # pylint: disable=import-outside-toplevel
    import socket  # pylint: disable=import-outside-toplevel
    stock = paramiko.packet.Packetizer.read_message
    used = collections.Counter()

    def counting(self):
        used['stock'] += 1
        return stock(self)

    monkeypatch.setattr(paramiko.packet.Packetizer, 'read_message', counting)
    left, right = socket.socketpair()
    right.settimeout(0.05)
    cipher = Cipher(algorithms.AES(b'k' * 16), modes.CTR(b'i' * 16), backend=default_backend())
    sender, receiver = paramiko.packet.Packetizer(left), paramiko.packet.Packetizer(right)
    sender.set_outbound_cipher(cipher.encryptor(), 16, hashlib.sha256, 32, b'm' * 32, sdctr=True, etm=etm)
    receiver.set_inbound_cipher(cipher.decryptor(), 16, hashlib.sha256, 32, b'm' * 32, etm=etm)
    sftp._speed_up_packets(types.SimpleNamespace(packetizer=receiver))
    return sender, receiver, used, (left, right)


def channel_data(size: int) -> paramiko.Message:
    msg = paramiko.Message()
    msg.add_byte(bytes([94]))   # MSG_CHANNEL_DATA
    msg.add_int(7)
    msg.add_string(bytes(range(256)) * (size // 256) + b'x' * (size % 256))
    return msg


@pytest.mark.parametrize('etm', [False, True], ids=['mac-over-plaintext', 'etm-goes-to-paramiko'])
def test_packet_reader_reads_what_paramiko_sends(monkeypatch, etm):
    sender, receiver, used, sockets = packet_pair(monkeypatch, etm)
    sizes = [0, 1, 5, 11, 300, 42_000, 262_100, 70_001]
    sent = [channel_data(size) for size in sizes]
    thread = threading.Thread(target=lambda: [sender.send_message(m) for m in sent])
    thread.start()
    try:
        for number, msg in enumerate(sent):
            cmd, got = receiver.read_message()
            assert (cmd, got.seqno) == (94, number)
            assert got.get_int() == 7 and got.get_binary() == msg.asbytes()[9:]
    finally:
        thread.join()
        for sock in sockets:
            sock.close()
    assert used['stock'] == (len(sizes) if etm else 0)


def test_packet_reader_refuses_a_changed_byte_and_asks_for_rekeying(monkeypatch):
    sender, receiver, used, sockets = packet_pair(monkeypatch)
    receiver.REKEY_PACKETS = 2
    left, right = sockets
    try:
        sender.send_message(channel_data(1000))
        sender.send_message(channel_data(1000))
        assert receiver.read_message()[0] == 94 and not receiver.need_rekey()
        assert receiver.read_message()[0] == 94 and receiver.need_rekey()
        # A byte of the next packet changed on the way: the MAC does not match.
        frame = []
        sender._Packetizer__socket = types.SimpleNamespace(send=lambda data: frame.append(bytes(data)) or len(data))
        sender.send_message(channel_data(1000))
        data = bytearray(b''.join(frame))
        data[100] ^= 1
        left.sendall(bytes(data))
        with pytest.raises(paramiko.SSHException, match='Mismatched MAC'):
            receiver.read_message()
        left.close()
        with pytest.raises(EOFError):
            receiver.read_message()
    finally:
        for sock in sockets:
            sock.close()
    assert used['stock'] == 0


def test_freed_memory_is_kept_once_per_process(monkeypatch):
    """mallopt is asked once: trim threshold, then mmap threshold; not at all when TUNE_MALLOC is off or
    when the C library has no mallopt."""
    calls = []
    monkeypatch.setitem(LIBC, 'mallopt', lambda *args: calls.append(args))
    monkeypatch.setattr(sftp, '_MALLOC_TUNED', False)
    monkeypatch.setattr(sftp, 'TUNE_MALLOC', False)
    sftp._keep_freed_memory()
    assert calls == []
    monkeypatch.setattr(sftp, 'TUNE_MALLOC', True)
    sftp._keep_freed_memory()
    sftp._keep_freed_memory()
    assert calls == [(-1, sftp.TRIM_THRESHOLD), (-3, sftp.MMAP_THRESHOLD)]
    monkeypatch.setattr(sftp, '_MALLOC_TUNED', False)
    monkeypatch.setitem(LIBC, 'mallopt', None)
    sftp._keep_freed_memory()
    assert sftp._MALLOC_TUNED and len(calls) == 2


def test_freed_memory_is_kept_from_the_first_large_file_on(make, server, monkeypatch):
    calls = []
    monkeypatch.setattr(sftp, '_keep_freed_memory', lambda: calls.append(1))
    monkeypatch.setattr(sftp, 'MALLOC_FILE_MIN', 100_000)
    server.add('/in/small', os.urandom(99_999))
    server.add('/in/large', os.urandom(100_000))
    loc = make()
    loc.listdir('/in')
    with loc.open_read('/in/small') as reader:
        read_all(reader)
    assert calls == []
    with loc.open_read('/in/large') as reader:
        read_all(reader)
    assert calls == [1]
    loc.close()
