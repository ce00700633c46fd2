# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

A location on another host, over SFTP (paramiko), as source or destination. Its parts are in ``_sftp/``:
host keys (``hostkeys``), the connections and reconnecting (``connection``), files read and written with
many requests in flight (``streams``), small files fetched ahead (``prefetch``), and paramiko's internals,
fenced in (``fastpath``).

- ``listdir`` is one directory read (OPENDIR/READDIR); it keeps each file's size as a hint.
- Reads and writes are pipelined (``_sftp/streams.py``); ``prefetch(paths)`` (the engine announces the files it
  will read) fetches small files ahead (``_sftp/prefetch.py``).
- ``commit`` is SFTP v3 RENAME, which never replaces an existing name (OpenSSH links the new
  name and fails when it exists); ``replace`` is ``posix-rename@openssh.com``. Modification times
  are whole seconds (SFTP v3).
- ``flush`` is ``fsync@openssh.com`` per file, pipelined; a server without it gets a warning.
  SFTP cannot flush a directory: ``flush_dirs`` leaves that to the server's filesystem.
- ``sftp_fast_path`` (on by default) replaces some of paramiko's internals by faster ones, for the paramiko
  versions the tests cover (``_sftp/fastpath.py``); off, or with another paramiko, paramiko's own code is used.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Entry, Location
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import fastpath
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import (
    CMD_CLOSE, CMD_EXTENDED, CMD_HANDLE, CMD_OPEN, CMD_STATUS, FX_FAILURE, FX_OK, FX_OP_UNSUPPORTED, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL,
    SFTP_FLAG_READ, SFTP_FLAG_WRITE, entry, paramiko, status,
)
# This location's errors (defined with the parts, which raise them too).
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import (  # pylint: disable=unused-import
    SftpError, SftpNotFoundError, SftpPermissionError,
)
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.connection import CONNECTIONS, SftpConnector
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.prefetch import (
    PREFETCH_MAX_FILE, _Ahead, _SftpAhead, _TarAhead, channel_output,
)
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.streams import _Reader, _Replies, _Writer


class SftpLocation(SftpConnector, Location):
    """Files on ``host`` over SFTP. Thread-safe: each thread gets its own SFTP channel."""

    kind = 'sftp'

    def __init__(self, host: str, port: int = 22, user: str | None = None, private_key: str | None = None,
                 private_key_passphrase: str | None = None, password: str | None = None, known_hosts: str | None = None,
                 host_key_policy: str = 'reject', timeout: float = 30.0, retries: int = 3,
                 warn: t.Callable[[str], None] | None = None, stream_small_files: bool = True,
                 connections: int = CONNECTIONS, fast_path: bool = True) -> None:
        super().__init__(host, port, user, private_key, private_key_passphrase, password, known_hosts, host_key_policy, timeout, retries,
                         warn, connections, fast_path)
        self._sizes: dict[str, int] = {}
        self._no_fsync = False
        self._prefetch: _Ahead | None = None
        self.stream_small_files = stream_small_files
        self._can_tar: bool | None = None

    def listdir(self, path: str) -> dict[str, Entry] | None:
        try:
            attrs = self.call('list', path, lambda c: c.listdir_attr(path))
        except SftpNotFoundError:
            return None
        entries = {}
        for attr in attrs:
            found = entry(attr.filename, attr)
            entries[found.name] = found
            if found.kind == 'file':
                self._sizes[posixpath.join(path, found.name)] = found.size
        return entries

    def remember_stat(self, path: str, found: Entry) -> None:
        """The stat the server gave right after this thread read ``path`` to its end."""
        self._local.after_read = (path, found)

    def stat(self, path: str) -> Entry | None:
        after_read = getattr(self._local, 'after_read', None)
        self._local.after_read = None
        if after_read is not None and after_read[0] == path:
            return after_read[1]
        try:
            attr = self.call('stat', path, lambda c: c.lstat(path))
        except SftpNotFoundError:
            return None
        return entry(posixpath.basename(path), attr)

    def prefetch(self, paths: list[str]) -> None:
        """The files that will be read next, in order: the small ones (by their listing) are fetched
        ahead over a channel of their own, many in flight, so each costs no round trip of its own."""
        if self._prefetch is not None:
            self._prefetch.stop()
            self._prefetch = None
        small = [(path, self._sizes[path]) for path in paths if self._sizes.get(path, PREFETCH_MAX_FILE + 1) <= PREFETCH_MAX_FILE]
        if len(small) > 1:
            self._prefetch = (_TarAhead if self.can_tar() else _SftpAhead)(self, small)

    def can_tar(self) -> bool:
        """Whether small files can come as streamed archives: the host runs commands for this user, with GNU tar and stat."""
        if self._can_tar is None:
            self._can_tar = False
            if self.stream_small_files:
                try:
                    channel = self.exec_channel('LC_ALL=C tar --version; LC_ALL=C stat --version')
                    try:
                        out = channel_output(channel).read(1 << 16)
                        self._can_tar = channel.recv_exit_status() == 0 and b'GNU tar' in out and b'GNU coreutils' in out
                    finally:
                        channel.close()
                except Exception:  # pylint: disable=broad-except
                    self._can_tar = False
        return self._can_tar

    def open_read(self, path: str) -> t.BinaryIO:
        self._local.after_read = None
        ahead = self._prefetch
        fetched = ahead.take(path) if ahead is not None else None
        if fetched is not None:
            if fetched.entry is not None:
                self.remember_stat(path, fetched.entry)
            return t.cast(t.BinaryIO, io.BytesIO(b''.join(fetched.chunks)))

        def start(client):
            kind, msg = fastpath.request(client, CMD_OPEN, path, SFTP_FLAG_READ, paramiko.SFTPAttributes())
            if kind != CMD_HANDLE:
                raise SftpError('cannot open %s: unexpected SFTP reply %d' % (self.describe(path), kind))
            return _Reader(self, client, path, msg.get_binary(), self._sizes.get(path))
        return t.cast(t.BinaryIO, self.call('open', path, start))

    def open_write(self, path: str) -> t.BinaryIO:
        attrs = paramiko.SFTPAttributes()
        attrs.st_mode = 0o644
        flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL

        def start(client):
            kind, msg = fastpath.request(client, CMD_OPEN, path, flags, attrs)
            if kind != CMD_HANDLE:
                raise SftpError('cannot create %s: unexpected SFTP reply %d' % (self.describe(path), kind))
            return _Writer(self, client, path, msg.get_binary())
        try:
            return t.cast(t.BinaryIO, self.call('create', path, start, retry=False))
        except SftpError as exc:
            if not exc.retryable:
                raise
        # The connection dropped while creating: the name may exist, half made; it is ours (a fresh temp name).
        self.remove(path)
        return t.cast(t.BinaryIO, self.call('create', path, start, retry=False))

    def makedirs(self, path: str) -> None:
        found = self.stat(path)
        if found is not None:
            if found.kind != 'dir':
                raise SftpError('cannot create directory %s: a %s is in the way' % (self.describe(path), found.kind), errno.ENOTDIR)
            return
        parent = posixpath.dirname(path)
        if parent and parent != path:
            self.makedirs(parent)
        try:
            self.call('create directory', path, lambda c: c.mkdir(path, 0o755))
        except SftpError:
            found = self.stat(path)
            if found is None or found.kind != 'dir':
                raise

    def flush(self, paths: list[str]) -> None:
        """fsync@openssh.com on every file: all opens, then all fsyncs, in flight together."""
        if self._no_fsync or not paths:
            return

        def run(client):
            replies = _Replies(client)
            with fastpath.corked(client):
                opened = [(path, replies.send(CMD_OPEN, path, SFTP_FLAG_READ, paramiko.SFTPAttributes())) for path in paths]
            handles = []
            first: SftpError | None = None
            for path, num in opened:
                kind, msg = replies.wait(num)
                if kind == CMD_HANDLE:
                    handles.append((path, msg.get_binary()))
                elif first is None:
                    code, text = status(msg) if kind == CMD_STATUS else (FX_FAILURE, 'unexpected reply')
                    first = self.status_error(code, text, 'open for flushing', path)
            with fastpath.corked(client):
                synced = [(path, handle, replies.send(CMD_EXTENDED, 'fsync@openssh.com', handle)) for path, handle in handles]
            unsupported = False
            for path, handle, num in synced:
                kind, msg = replies.wait(num)
                code, text = status(msg) if kind == CMD_STATUS else (FX_FAILURE, 'unexpected reply')
                if code == FX_OP_UNSUPPORTED:
                    unsupported = True
                elif code != FX_OK and first is None:
                    first = self.status_error(code, text, 'flush', path)
            with fastpath.corked(client):
                closes = [replies.send(CMD_CLOSE, handle) for path, handle, num in synced]
            for num in closes:
                replies.wait(num)
            return first, unsupported

        first, unsupported = self.call('flush', paths[0], run)
        if unsupported:
            self._no_fsync = True
            self._note('sftp host %s does not support fsync@openssh.com: files written there are not flushed to disk before '
                       'they are committed' % self.address)
        if first is not None:
            raise first

    def flush_dirs(self, paths: list[str]) -> None:
        """SFTP has no way to flush a directory; the server's filesystem commits the new names."""

    def commit(self, temp_path: str, final_path: str, mtime: float) -> None:
        self.call('set the modification time of', temp_path, lambda c: c.utime(temp_path, (int(mtime), int(mtime))))
        try:
            # SFTP v3 RENAME fails when the new name exists (OpenSSH: link() then unlink()), so nothing is replaced.
            # Not retried: after a dropped connection the rename may have happened; the file then fails this
            # run and is found complete (same size and mtime) by the next.
            self.call('rename %s to' % self.describe(temp_path), final_path, lambda c: c.rename(temp_path, final_path), retry=False)
        except SftpError as exc:
            if exc.retryable:
                raise
            if self.stat(final_path) is not None:
                raise FileExistsError(errno.EEXIST, 'File exists', self.describe(final_path)) from None
            raise

    def replace(self, temp_path: str, final_path: str, mtime: float) -> None:
        self.call('set the modification time of', temp_path, lambda c: c.utime(temp_path, (int(mtime), int(mtime))))
        try:
            self.call('rename %s over' % self.describe(temp_path), final_path, lambda c: c.posix_rename(temp_path, final_path), retry=False)
        except SftpError as exc:
            if exc.errno == errno.EOPNOTSUPP or 'unsupported' in str(exc).lower():
                raise SftpError('cannot replace %s atomically: sftp host %s does not support posix-rename@openssh.com'
                                % (self.describe(final_path), self.address), errno.EOPNOTSUPP) from None
            raise

    def remove(self, path: str) -> None:
        try:
            self.call('remove', path, lambda c: c.remove(path))
        except SftpNotFoundError:
            pass

    def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.stop()
            self._prefetch = None
        super().close()


def from_options(options: dict, key: str = 'location', warn: t.Callable[[str], None] | None = None) -> SftpLocation:
    """The SFTP location a validated location option describes; errors name ``key``."""
    host = options.get('host')
    if not host:
        raise ConfigError('%s.host is required when %s.type is sftp' % (key, key))
    port = options.get('port') or 22
    if not 0 < int(port) < 65536:
        raise ConfigError('%s.port must be between 1 and 65535, got %r' % (key, port))
    policy = options.get('host_key_policy') or 'reject'
    if policy not in ('reject', 'accept_new'):
        raise ConfigError('%s.host_key_policy must be reject or accept_new, got %r' % (key, policy))
    for name in ('private_key', 'known_hosts'):
        value = options.get(name)
        if value and not os.path.isabs(value):
            raise ConfigError('%s.%s must be an absolute path, got %r' % (key, name, value))
    timeout = options.get('timeout')
    retries = options.get('retries')
    return SftpLocation(
        host=host, port=int(port), user=options.get('user'), private_key=options.get('private_key'),
        private_key_passphrase=options.get('private_key_passphrase'), password=options.get('password'),
        known_hosts=options.get('known_hosts'), host_key_policy=policy,
        timeout=30.0 if timeout is None else float(timeout), retries=3 if retries is None else int(retries), warn=warn,
        fast_path=options.get('sftp_fast_path') is not False)
