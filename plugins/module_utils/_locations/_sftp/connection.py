# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

The connections of an SFTP location: SSH connections (host key verified, logged in), one SFTP channel
per thread (paramiko's SFTPClient is not safe for concurrent requests on one channel: a thread may read
and drop another's response), spread over up to ``connections`` SSH connections (one paramiko transport
thread per connection does the decryption and MAC checks).

A dropped connection fails the call in flight with a message naming host and path (the copy engine
then reads that file again once, from the start); the next call reconnects (``retries`` attempts
with exponential backoff) and the remaining files go on. Once reconnecting has failed, every further
call fails at once with the same message.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._locations import BACKOFF, backoff_delay
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import fastpath, hostkeys
from ansible_collections.mnaas.backup.plugins.module_utils._errors import missing_library
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import (
    CMD_EXTENDED, CMD_EXTENDED_REPLY, FX_ERRNO, FX_NO_SUCH_FILE, FX_OP_UNSUPPORTED, FX_PERMISSION_DENIED, HAS_PARAMIKO, PARAMIKO_IMPORT_ERROR,
    Fatal, SftpError, error, is_connection_error, paramiko, reason,
)

# Request sizes: every SFTP v3 server accepts 32 KiB; OpenSSH tells larger limits (limits@openssh.com).
MIN_REQUEST = 32 * 1024
MAX_REQUEST = 255 * 1024
# The SSH channel window and packet size that let the requests in flight flow (measured with
# tests/services/edge_nodes/bench_sftp.py).
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET = 256 * 1024
# SSH connections a location opens at most (threads' channels are spread over them).
CONNECTIONS = 4


class _Link:
    """One SSH connection; ``generation`` counts its reconnections."""

    def __init__(self) -> None:
        self.transport = None
        self.generation = 0

    def alive(self) -> bool:
        return self.transport is not None and self.transport.is_active()


class _Session:
    """One SFTP channel, used by one thread, over one of the location's connections."""

    def __init__(self, client, link: _Link) -> None:
        self.client = client
        self.link = link
        self.generation = link.generation
        self.broken = False

    def usable(self) -> bool:
        return not self.broken and self.generation == self.link.generation and not self.client.sock.closed

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pylint: disable=broad-except
            pass


class SftpConnector:
    """The connections to ``host`` and the calls over them. Thread-safe: each thread gets its own SFTP channel."""

    backoff = BACKOFF

    def __init__(self, host: str, port: int = 22, user: str | None = None, private_key: str | None = None,
                 private_key_passphrase: str | None = None, password: str | None = None, known_hosts: str | None = None,
                 host_key_policy: str = 'reject', timeout: float = 30.0, retries: int = 3,
                 warn: t.Callable[[str], None] | None = None, connections: int = CONNECTIONS, fast_path: bool = True) -> None:
        self.host = host
        self.port = port or 22
        self.user = user or _local_user()
        if not HAS_PARAMIKO:
            raise missing_library('paramiko', PARAMIKO_IMPORT_ERROR, reason='for sftp locations (host %s)' % self.address)
        self.private_key = private_key
        self._passphrase = private_key_passphrase
        self._password = password
        self.known_hosts = known_hosts or os.path.expanduser('~/.ssh/known_hosts')
        self.host_key_policy = host_key_policy
        self.timeout = timeout
        self.retries = max(0, retries)
        self._warn = warn
        self.warnings: list[str] = []
        self.accepted_host_keys: list[dict] = []
        self.read_size = MIN_REQUEST
        self.write_size = MIN_REQUEST
        # Whether paramiko's internals are replaced by faster ones (fastpath); off for a paramiko the tests do not cover.
        self.fast_path = fast_path
        self._fast_path_checked = False
        self._lock = threading.Lock()
        self._local = threading.local()
        # The threads' channels are spread over up to CONNECTIONS SSH connections: one paramiko
        # transport thread decrypts and checks everything that arrives on its connection, and with
        # several, that work (much of it outside the GIL) runs side by side (measured: 4 large files
        # in parallel, 12.2 s over one connection, 10.5 s over four). The first thread gets the first.
        self.connections = max(1, connections)
        self._links = [_Link() for index in range(self.connections)]
        self._threads = 0
        self._sessions: list[_Session] = []
        self._down: SftpError | None = None

    # -- names -------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        host = '[%s]' % self.host if ':' in self.host else self.host
        return '%s@%s:%d' % (self.user, host, self.port)

    def describe(self, path: str) -> str:
        return 'sftp://%s%s' % (self.address, path)

    def _note(self, msg: str) -> None:
        self.warnings.append(msg)
        if self._warn is not None:
            self._warn(msg)

    # -- errors ------------------------------------------------------------------------------
    def status_error(self, code: int, text: str, what: str, path: str) -> SftpError:
        """An error status of the server, for ``what`` (a verb) on ``path``."""
        why = {FX_NO_SUCH_FILE: 'no such file or directory', FX_PERMISSION_DENIED: 'permission denied',
               FX_OP_UNSUPPORTED: 'operation not supported by the server'}.get(code, text or 'failure (SFTP status %d)' % code)
        return error('cannot %s %s: %s' % (what, self.describe(path), why), FX_ERRNO.get(code))

    def io_error(self, exc: BaseException, what: str, path: str) -> SftpError:
        """An exception of paramiko during ``what`` on ``path``, named; a lost connection marks the session."""
        if isinstance(exc, SftpError):
            return exc
        session = getattr(self._local, 'session', None)
        transport = session.link.transport if session is not None else self._links[0].transport
        if is_connection_error(exc) or (transport is not None and not transport.is_active()) \
                or (session is not None and getattr(session.client.sock, 'closed', False)):
            if session is not None:
                session.broken = True
            return SftpError('connection to sftp host %s lost while trying to %s %s: %s' % (
                self.address, what, self.describe(path), reason(exc)), errno.ECONNABORTED, retryable=True)
        code = getattr(exc, 'errno', None)
        if code == errno.ENOENT:
            why = 'no such file or directory'
        elif code == errno.EACCES:
            why = 'permission denied'
        else:
            why = reason(exc)
        return error('cannot %s %s: %s' % (what, self.describe(path), why), code)

    # -- connection --------------------------------------------------------------------------
    def _load_key(self):
        path = self.private_key
        if not os.path.exists(path):
            raise Fatal('private key file %s for sftp host %s does not exist' % (path, self.address), errno.ENOENT)
        if not os.access(path, os.R_OK):
            raise Fatal('private key file %s for sftp host %s is not readable' % (path, self.address), errno.EACCES)
        encrypted = Fatal('private key file %s for sftp host %s is encrypted and no private_key_passphrase was given' % (path, self.address))
        try:
            return _read_private_key(path, self._passphrase)
        except paramiko.PasswordRequiredException:
            raise encrypted from None
        except (paramiko.SSHException, ValueError, TypeError, OSError) as exc:
            if self._passphrase is None and 'encrypted' in str(exc):
                raise encrypted from None
            raise Fatal('cannot load private key file %s for sftp host %s (wrong passphrase or not a private key): %s'
                        % (path, self.address, reason(exc))) from None

    def verify_host_key(self, key, known) -> None:
        """Accept the key the server presented, or refuse it with a message naming host and fingerprints."""
        name = hostkeys.known_hosts_name(self.host, self.port)
        if not hostkeys.verify(key, known, name, self.known_hosts, self.host_key_policy, self.address):
            return
        hostkeys.record(key, name, self.known_hosts, self.address)
        self.accepted_host_keys.append({'host': name, 'type': key.get_name(), 'fingerprint': hostkeys.fingerprint(key),
                                        'known_hosts': self.known_hosts})
        self._note('sftp host %s was not in known_hosts file %s: accepted and recorded its %s key %s (host_key_policy=accept_new)'
                   % (self.address, self.known_hosts, key.get_name(), hostkeys.fingerprint(key)))

    def _check_fast_path(self) -> None:
        """The fast path only with a paramiko the tests cover; another one gets paramiko's own code, and a warning."""
        if self._fast_path_checked:
            return
        self._fast_path_checked = True
        if self.fast_path and not fastpath.covered():
            self.fast_path = False
            self._note('paramiko %s is not a version the sftp fast path was tested with (%s to %s): sftp host %s is read and '
                       "written with paramiko's own code, which is slower" % (
                           fastpath.paramiko_version(), '.'.join(map(str, fastpath.FAST_PATH_OLDEST)),
                           '.'.join(map(str, fastpath.FAST_PATH_NEWEST)), self.address))

    def _open_socket(self) -> socket.socket:
        """A TCP connection to the host (the unit tests replace this)."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        # Pipelined requests are small writes: without this, Nagle holds each until the previous is acknowledged.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(seconds)

    def _make_transport(self, sock):
        """A paramiko Transport over ``sock`` with large windows and packets (the unit tests replace this).
        AES-GCM first where paramiko has it (3.x and later): no separate MAC, a fifth less CPU per byte here."""
        transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET)
        options = transport.get_security_options()
        gcm = [c for c in ('aes128-gcm@openssh.com', 'aes256-gcm@openssh.com') if c in options.ciphers]
        if gcm:
            options.ciphers = gcm + [c for c in options.ciphers if c not in gcm]
        if self.fast_path:
            fastpath.speed_up_packets(transport)
        return transport

    def _open_transport(self):
        """Connect, verify the host key, log in; an error names the host (and the key file)."""
        self._check_fast_path()
        pkey = self._load_key() if self.private_key else None
        known = hostkeys.known_keys(self.known_hosts, self.host, self.port, self.host_key_policy, self.address)
        try:
            sock = self._open_socket()
        except OSError as exc:
            raise SftpError('cannot connect to sftp host %s: %s' % (self.address, reason(exc)), getattr(exc, 'errno', None),
                            retryable=True) from None
        transport = None
        try:
            transport = self._make_transport(sock)
            if known:
                # Ask for the key types known_hosts has first, as OpenSSH does.
                options = transport.get_security_options()
                options.key_types = [k for k in options.key_types if k in known] + [k for k in options.key_types if k not in known]
            transport.start_client(timeout=self.timeout)
            self.verify_host_key(transport.get_remote_server_key(), known)
            self._authenticate(transport, pkey)
            return transport
        except SftpError:
            _close_quietly(transport, sock)
            raise
        except Exception as exc:  # pylint: disable=broad-except
            _close_quietly(transport, sock)
            raise SftpError('cannot connect to sftp host %s: %s' % (self.address, reason(exc)), getattr(exc, 'errno', None),
                            retryable=True) from None

    def _authenticate(self, transport, pkey) -> None:
        try:
            if pkey is not None:
                transport.auth_publickey(self.user, pkey)
                return
            if self._password is not None:
                transport.auth_password(self.user, self._password)
                return
            for name in ('id_ed25519', 'id_ecdsa', 'id_rsa'):
                path = os.path.expanduser('~/.ssh/' + name)
                if os.path.exists(path):
                    self.private_key = path
                    transport.auth_publickey(self.user, self._load_key())
                    return
            raise Fatal('no private_key or password given for sftp host %s, and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa' % self.address)
        except paramiko.AuthenticationException as exc:
            if not transport.is_active():
                # The host went away while we authenticated (its sshd stopped): no verdict on the key, a lost connection.
                raise SftpError('cannot connect to sftp host %s: the connection closed during authentication (%s)'
                                % (self.address, reason(exc)), retryable=True) from None
            how = 'key %s' % self.private_key if self.private_key else 'password'
            raise Fatal('authentication failed for sftp host %s with %s: %s' % (self.address, how, reason(exc))) from None

    @property
    def _transport(self):
        """The first connection's transport (``None`` before connecting)."""
        return self._links[0].transport

    def _reconnect_locked(self, link: _Link) -> None:
        if self._down is not None:
            raise self._down
        _close_quietly(link.transport, None)
        link.transport = None
        last: SftpError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(backoff_delay(attempt, self.backoff))
            try:
                link.transport = self._open_transport()
                link.generation += 1
                return
            except Fatal as exc:
                self._down = exc
                raise
            except SftpError as exc:
                last = exc
        self._down = SftpError('%s (gave up after %d attempt(s))' % (last, self.retries + 1), getattr(last, 'errno', None), retryable=True)
        raise self._down

    def _live_link(self, link: _Link) -> _Link:
        """``link``, connected (again) when needed; call with the lock held."""
        if not link.alive():
            self._reconnect_locked(link)
        return link

    def _session(self) -> _Session:
        session = getattr(self._local, 'session', None)
        if session is not None and session.usable():
            return session
        with self._lock:
            if session is not None:
                session.close()
                link = session.link
            else:
                link = self._links[self._threads % self.connections]
                self._threads += 1
            for attempt in range(2):
                self._live_link(link)
                try:
                    client = self._open_channel(link.transport)
                    break
                except Exception as exc:  # pylint: disable=broad-except
                    if attempt or not is_connection_error(exc):
                        raise SftpError('cannot open an SFTP channel to sftp host %s: %s' % (self.address, reason(exc)),
                                        retryable=True) from None
                    _close_quietly(link.transport, None)
                    link.transport = None
            if not self._sessions:
                self._learn_limits(client)
            session = _Session(client, link)
            self._sessions.append(session)
            self._local.session = session
            return session

    def client(self):
        """This thread's SFTP client (connecting when needed)."""
        return self._session().client

    def _new_channel(self, transport):
        """A session channel with large window and packets (with the fast path, a receive buffer that does not copy)."""
        channel = transport.open_session(window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET)
        if self.fast_path:
            fastpath.receive_buffer(channel)     # before anything is received on it
        channel.settimeout(self.timeout)
        return channel

    def _open_channel(self, transport):
        """An SFTP client on a new channel of ``transport`` (the unit tests replace this)."""
        channel = self._new_channel(transport)
        channel.invoke_subsystem('sftp')
        return fastpath.sftp_client(channel, self.fast_path)

    def exec_channel(self, command: str):
        """A new channel running ``command`` on the host (large window and packets)."""
        with self._lock:
            transport = self._live_link(self._links[0]).transport
        channel = self._new_channel(transport)
        channel.exec_command(command)
        return channel

    def _learn_limits(self, client) -> None:
        """Request sizes from limits@openssh.com; 32 KiB for servers without it."""
        try:
            kind, msg = fastpath.request(client, CMD_EXTENDED, 'limits@openssh.com')
            if kind == CMD_EXTENDED_REPLY:
                msg.get_int64()
                max_read = msg.get_int64()
                max_write = msg.get_int64()
                self.read_size = max(MIN_REQUEST, min(MAX_REQUEST, max_read or MIN_REQUEST))
                self.write_size = max(MIN_REQUEST, min(MAX_REQUEST, max_write or MIN_REQUEST))
        except (OSError, EOFError, paramiko.SSHException):
            pass

    def call(self, what: str, path: str, func: t.Callable[[t.Any], t.Any], retry: bool = True) -> t.Any:
        """``func(sftp_client)`` on this thread's channel; a dropped connection is retried (when
        ``retry``) on a new one, up to ``retries`` times; errors are ``SftpError`` naming host and path."""
        attempt = 0
        while True:
            session = self._session()
            try:
                return func(session.client)
            except SftpError:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                failure = self.io_error(exc, what, path)
                if not (failure.retryable and retry and attempt < self.retries):
                    raise failure from None
                session.broken = True
                attempt += 1
                self._sleep(backoff_delay(attempt, self.backoff))

    def close(self) -> None:
        """Close every channel and connection (the next call connects again)."""
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions = []
            for link in self._links:
                _close_quietly(link.transport, None)
                link.transport = None
                link.generation += 1


def _read_private_key(path: str, passphrase: str | None):
    """A private key of any type paramiko knows."""
    from_path = getattr(paramiko.PKey, 'from_path', None)
    if from_path is not None:  # paramiko >= 3.2: any key type; the passphrase as bytes
        return from_path(path, passphrase.encode('utf-8') if isinstance(passphrase, str) else passphrase)
    last: Exception = paramiko.SSHException('not a private key paramiko knows')
    for name in ('Ed25519Key', 'ECDSAKey', 'RSAKey', 'DSSKey'):
        cls = getattr(paramiko, name, None)
        if cls is not None:
            try:
                return cls.from_private_key_file(path, password=passphrase)
            except paramiko.PasswordRequiredException:
                raise
            except (paramiko.SSHException, ValueError) as exc:
                last = exc
    raise last


def _close_quietly(transport, sock) -> None:
    for thing in (transport, sock):
        if thing is not None:
            try:
                thing.close()
            except Exception:  # pylint: disable=broad-except
                pass


def _local_user() -> str:
    try:
        import pwd  # pylint: disable=import-outside-toplevel
        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get('USER', 'root')
