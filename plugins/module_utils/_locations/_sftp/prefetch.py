# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Small files the engine announces (``SftpLocation.prefetch``), fetched ahead on a thread of their own: as
streamed archives (GNU ``tar`` then ``stat`` over one exec channel per run of files) where the host runs
commands for the user, else with pipelined SFTP requests for many files at once. A file that does not come
as expected is read the ordinary way.
"""

from __future__ import annotations

import collections
import io
import posixpath
import shlex
import stat
import tarfile
import threading

from ansible_collections.mnaas.backup.plugins.module_utils._locations import Entry
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import fastpath
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import (
    CMD_ATTRS, CMD_CLOSE, CMD_DATA, CMD_HANDLE, CMD_LSTAT, CMD_OPEN, CMD_READ, SFTP_FLAG_READ, entry, int64, is_connection_error, paramiko,
)

# Files up to PREFETCH_MAX_FILE bytes (by the listing) are fetched ahead, PREFETCH_FILES of them in flight,
# at most PREFETCH_BYTES fetched and not yet taken.
PREFETCH_MAX_FILE = 1024 * 1024
PREFETCH_FILES = 64
PREFETCH_BYTES = 32 * 1024 * 1024
# Where the server runs GNU tar and stat for this user, announced small files come as streamed
# archives instead: one exec channel per run of up to TAR_CHUNK_FILES files and TAR_CHUNK_BYTES
# bytes of one directory (the first run shorter, so the workers start soon).
TAR_FIRST_FILES = 64
TAR_CHUNK_FILES = 512
TAR_CHUNK_BYTES = 8 * 1024 * 1024
TAR_CHUNK_NAME_BYTES = 32 * 1024    # the names go twice on the command line (tar, then stat)


class _ChannelRaw(io.RawIOBase):
    """A channel's stdout as a raw stream."""

    def __init__(self, channel) -> None:
        super().__init__()
        self.channel = channel

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.channel.recv(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def channel_output(channel, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> io.BufferedReader:
    """A channel's stdout as a file: ``read(size)`` gives ``size`` bytes unless the output ends first."""
    return io.BufferedReader(_ChannelRaw(channel), buffer_size=buffer_size)


class _Fetched:
    """A file fetched ahead: its bytes and its stat after the read; ``fallback`` when it is to be read the ordinary way."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        self.chunks: list[bytes] = []
        self.entry: Entry | None = None
        self.fallback = False

    @property
    def held(self) -> int:
        return sum(len(c) for c in self.chunks)


class _Ahead:
    """Fetches announced small files ahead, in order, on a thread of its own; workers ``take`` them.

    At most PREFETCH_BYTES are held fetched and not yet taken. A file that is not there as expected
    (missing, another size, changed while read, any error) is handed back as ``None``: the worker
    then reads it the ordinary way, which reports its errors with host and path.
    """

    name = 'ahead'

    def __init__(self, loc, paths: list[tuple[str, int]]) -> None:
        self.loc = loc
        self.todo: collections.deque = collections.deque(paths)
        self.planned = {path for path, size in paths}
        self.started: set[str] = set()
        self.results: dict[str, _Fetched] = {}
        self.held = 0           # bytes fetched and not yet taken
        self.blocked = False    # the fetcher waits for room
        self.stopped = False
        self.running = True
        self.taken = 0          # files handed out fetched
        self.missed = 0         # files the workers read the ordinary way instead
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._main, name='mnaas-sftp-' + self.name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.run()
        except Exception:  # pylint: disable=broad-except
            pass  # the workers read whatever is left the ordinary way (and report its errors there)
        finally:
            with self.cond:
                self.running = False
                self.cond.notify_all()

    def run(self) -> None:
        raise NotImplementedError

    def publish(self, fetched: _Fetched) -> None:
        with self.cond:
            self.results[fetched.path] = fetched
            self.held += fetched.held
            self.cond.notify_all()

    def take(self, path: str) -> _Fetched | None:
        """The fetched file at ``path``, waiting for it; ``None`` when it is to be read the ordinary way."""
        with self.cond:
            if path not in self.planned:
                return None
            self.planned.discard(path)
            while path not in self.results:
                if not self.running or (path not in self.started and self.blocked):
                    # The fetcher stopped, or the room is taken by files nobody took: read it now instead.
                    self.todo = collections.deque(item for item in self.todo if item[0] != path)
                    self.missed += 1
                    return None
                self.cond.wait(1.0)
            fetched = self.results.pop(path)
            self.held -= fetched.held
            self.cond.notify_all()
            if fetched.fallback:
                self.missed += 1
                return None
            self.taken += 1
        return fetched

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


class _Fetch(_Fetched):
    """One file fetched over SFTP: OPEN, then READs of its listed size, LSTAT and CLOSE, all in flight.
    The LSTAT is answered after the reads: when it gives the listed size, the reads hold the whole
    file, and it is the stat the engine asks for after reading."""

    def __init__(self, ahead: _SftpAhead, path: str, size: int) -> None:
        super().__init__(path, size)
        self.ahead = ahead
        self.roles: dict[int, tuple] = {}

    def start(self, client) -> None:
        self.roles[fastpath.async_request(client, self, CMD_OPEN, self.path, SFTP_FLAG_READ, paramiko.SFTPAttributes())] = ('open',)

    def _async_response(self, kind: int, msg, num: int) -> None:
        role = self.roles.pop(num, None)
        if role is None:
            return
        if role[0] == 'open':
            if kind != CMD_HANDLE:
                self.fallback = True
            else:
                self._read(msg.get_binary())
        elif role[0] == 'read':
            if kind == CMD_DATA:
                data = msg.get_string()
                if len(data) != role[2]:
                    self.fallback = True
                self.chunks.append(data)
            else:
                self.fallback = True
        elif role[0] == 'stat':
            if kind == CMD_ATTRS:
                self.entry = entry(posixpath.basename(self.path), fastpath.attributes(msg))
                if self.entry.kind != 'file' or self.entry.size != self.size:
                    self.fallback = True
            else:
                self.fallback = True
        if not self.roles:
            self.ahead.finished(self)

    def _read(self, handle: bytes) -> None:
        client = self.ahead.client
        step = self.ahead.loc.read_size
        for offset in range(0, self.size, step):
            length = min(step, self.size - offset)
            self.roles[fastpath.async_request(client, self, CMD_READ, handle, int64(offset), length)] = ('read', offset, length)
        self.roles[fastpath.async_request(client, self, CMD_LSTAT, self.path)] = ('stat',)
        self.roles[fastpath.async_request(client, self, CMD_CLOSE, handle)] = ('close',)


class _SftpAhead(_Ahead):
    """Pipelined SFTP on a channel of its own: PREFETCH_FILES files in flight, their requests sent together."""

    name = 'sftp-ahead'

    def __init__(self, loc, paths: list[tuple[str, int]]) -> None:
        self.active: dict[str, _Fetch] = {}     # paramiko holds reply targets weakly: these keep them alive
        self.inflight = 0
        self.client = None
        super().__init__(loc, paths)

    def finished(self, fetch: _Fetch) -> None:
        self.inflight -= 1
        self.active.pop(fetch.path, None)
        self.publish(fetch)

    def _next(self) -> tuple[str, int] | None:
        """The next file to start; ``None`` when there is nothing to start now."""
        with self.cond:
            if self.stopped or not self.todo:
                return None
            if self.inflight >= PREFETCH_FILES or self.held >= PREFETCH_BYTES:
                if self.inflight == 0:
                    self.blocked = True
                    self.cond.wait(0.5)
                    self.blocked = False
                return None
            path, size = self.todo.popleft()
            self.started.add(path)
            self.inflight += 1
            return path, size

    def run(self) -> None:
        self.client = self.loc.client()
        while True:
            with fastpath.corked(self.client):
                item = self._next()
                while item is not None:
                    fetch = self.active[item[0]] = _Fetch(self, item[0], item[1])
                    fetch.start(self.client)
                    item = self._next()
            with self.cond:
                if self.stopped or (not self.todo and self.inflight == 0):
                    return
            if self.inflight:
                fastpath.pump(self.client)


class _TarAhead(_Ahead):
    """Streamed archives: per directory and run of files, one exec channel runs ``tar`` (GNU) over
    the names, then ``stat`` of the same names (to stderr). Each file then costs a tar header instead
    of four SFTP requests and replies; the stat after the read is checked against the header."""

    name = 'tar-ahead'
    STAT_FORMAT = '\\001%s %Y %f %n\\000'

    def _chunk(self, first: bool) -> list[tuple[str, int]] | None:
        """The next run of files of one directory, waiting for room; ``None`` when done."""
        limit_files, limit_bytes = (TAR_FIRST_FILES, TAR_CHUNK_BYTES) if first else (TAR_CHUNK_FILES, TAR_CHUNK_BYTES)
        with self.cond:
            while not self.stopped and self.todo and self.held >= PREFETCH_BYTES - limit_bytes:
                self.blocked = True
                self.cond.wait(0.5)
            self.blocked = False
            if self.stopped or not self.todo:
                return None
            directory = posixpath.dirname(self.todo[0][0])
            chunk: list[tuple[str, int]] = []
            size = names = 0
            while self.todo and len(chunk) < limit_files and posixpath.dirname(self.todo[0][0]) == directory:
                if chunk and (size + self.todo[0][1] > limit_bytes or names > TAR_CHUNK_NAME_BYTES):
                    break
                item = self.todo.popleft()
                chunk.append(item)
                self.started.add(item[0])
                size += item[1]
                names += len(item[0]) - len(directory)
            return chunk

    def run(self) -> None:
        first = True
        while True:
            chunk = self._chunk(first)
            if chunk is None:
                return
            first = False
            fetched = {path: _Fetched(path, size) for path, size in chunk}
            try:
                self._fetch(chunk, fetched)
            except (tarfile.TarError, OSError, EOFError) as exc:
                # This run's files are read the ordinary way; a lost connection ends the fetching.
                if is_connection_error(exc):
                    raise
            finally:
                for item in fetched.values():
                    if item.entry is None:
                        item.fallback = True
                    self.publish(item)

    def _fetch(self, chunk: list[tuple[str, int]], fetched: dict[str, _Fetched]) -> None:
        directory = posixpath.dirname(chunk[0][0])
        names = ' '.join(shlex.quote(posixpath.basename(path)) for path, size in chunk)
        command = 'cd -- %s && LC_ALL=C tar --no-recursion -cf - -- %s; LC_ALL=C stat --printf=%s -- %s >&2' % (
            shlex.quote(directory), names, shlex.quote(self.STAT_FORMAT), names)
        channel = self.loc.exec_channel(command)
        try:
            headers: dict[str, tuple[int, int]] = {}
            # tarfile's stream mode copies what is left of its buffer on every read: keep that buffer
            # small (one tar record) and let the channel's reader do the large reads.
            stream = tarfile.open(fileobj=channel_output(channel, 1 << 20), mode='r|',  # pylint: disable=consider-using-with
                                  bufsize=tarfile.RECORDSIZE)
            try:
                for member in stream:
                    item = fetched.get(posixpath.join(directory, member.name))
                    if item is None or not member.isreg() or member.size != item.size:
                        continue
                    reader = stream.extractfile(member)
                    data = reader.read() if reader is not None else b''
                    if len(data) == member.size:
                        item.chunks = [data]
                        headers[item.path] = (member.size, int(member.mtime))
            finally:
                stream.close()
            errors = []
            while True:
                data = channel.recv_stderr(1 << 20)
                if not data:
                    break
                errors.append(data)
            for record in b''.join(errors).split(b'\x01')[1:]:
                text = record.split(b'\x00', 1)[0].decode('utf-8', 'surrogateescape')
                parts = text.split(' ', 3)
                if len(parts) != 4:
                    continue
                path = posixpath.join(directory, parts[3])
                item = fetched.get(path)
                if item is None or path not in headers:
                    continue
                mode = int(parts[2], 16)
                found = Entry(parts[3], int(parts[0]), float(parts[1]), 'file' if stat.S_ISREG(mode) else 'other')
                if (found.size, int(found.mtime)) == headers[path] and found.kind == 'file':
                    item.entry = found
        finally:
            channel.close()
