# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

Files read and written over SFTP with many requests in flight, sent together (one SSH packet for several
requests). A read asks for the listed size, one request past it and an LSTAT at once; that LSTAT, answered
after the reads, is the stat the engine asks for after reading (no round trip of its own).
"""

from __future__ import annotations

import collections
import posixpath
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import fastpath
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import (
    CMD_ATTRS, CMD_CLOSE, CMD_DATA, CMD_LSTAT, CMD_READ, CMD_STATUS, CMD_WRITE, FX_EOF, FX_FAILURE, FX_OK, SftpError, entry, int64, status,
)

# Bytes in flight per file (measured with tests/services/edge_nodes/bench_sftp.py).
PIPELINE_BYTES = 8 * 1024 * 1024
# Freed memory the process keeps for reuse (fastpath.keep_freed_memory), from the first read of a file of
# MALLOC_FILE_MIN bytes (by the listing) on: measured a sixth less CPU for 200 MB files, and a sixth more
# for 20 KB files streamed ahead.
MALLOC_FILE_MIN = 8 * 1024 * 1024


class _Replies:
    """Collects the replies of pipelined requests (paramiko calls ``_async_response``)."""

    def __init__(self, client) -> None:
        self.client = client
        self.replies: dict[int, tuple[int, t.Any]] = {}

    def _async_response(self, kind: int, msg, num: int) -> None:
        self.replies[num] = (kind, msg)

    def send(self, kind: int, *args) -> int:
        return fastpath.async_request(self.client, self, kind, *args)

    def wait(self, num: int) -> tuple[int, t.Any]:
        """The reply to request ``num``, reading responses until it is there."""
        while num not in self.replies:
            fastpath.pump(self.client)
        return self.replies.pop(num)


class _Stream(_Replies):
    """One open file's pipelined requests: ``request`` bytes each, as many in flight as PIPELINE_BYTES hold."""

    def __init__(self, loc, client, path: str, handle: bytes, request: int) -> None:
        super().__init__(client)
        self.loc = loc
        self.path = path
        self.handle = handle
        self.request = request
        self.depth = max(2, PIPELINE_BYTES // request)


class _Reader(_Stream):
    """A file read with many requests in flight; sizes from the listing avoid a wasted round trip.

    With the request that should find the end of the file goes an LSTAT of the path: the server
    answers it after the reads, so when the file ended where the listing said, it is the stat the
    copy engine asks for after reading, and costs no round trip of its own (see ``stat``).
    """

    def __init__(self, loc, client, path: str, handle: bytes, size_hint: int | None) -> None:
        super().__init__(loc, client, path, handle, loc.read_size)
        self.pending: collections.deque = collections.deque()   # [num, offset, length] in offset order
        self.chunks: collections.deque = collections.deque()
        self.buffered = 0
        self.pos = 0            # bytes received in order
        self.next = 0           # next offset to request
        # Requests go out up to this offset: the listed size plus one request that should find the end;
        # when that one brings data (the file grew) the whole pipeline opens.
        self.hint = size_hint if size_hint is not None else 0
        if self.hint >= MALLOC_FILE_MIN and loc.fast_path:
            fastpath.keep_freed_memory()
        self.limit = self.hint + 1
        self.eof = False
        self.closed = False
        self.stat_num: int | None = None
        self.stat_valid = True
        self._fill()

    def _fill(self) -> None:
        # Refill once half the requests are answered, all in one write: one send per request cost
        # more than the rest of the read (measured: 738 sends, 0.94 s of 1.5 s CPU for 200 MB).
        if len(self.pending) > self.depth // 2:
            return
        with fastpath.corked(self.client):
            self._fill_corked()

    def _fill_corked(self) -> None:
        while not self.eof and len(self.pending) < self.depth and self.next < self.limit:
            length = self.request
            if self.next < self.hint:
                length = min(length, self.hint - self.next)
            self.pending.append([self.send(CMD_READ, self.handle, int64(self.next), length), self.next, length])
            if self.next >= self.hint and self.stat_num is None:
                self.stat_num = self.send(CMD_LSTAT, self.path)
            self.next += length

    def _take(self) -> None:
        """Wait for the oldest request and take in its data."""
        num, offset, length = self.pending.popleft()
        kind, msg = self.wait(num)
        if kind == CMD_DATA:
            parts = fastpath.data_parts(msg)
            got = sum(len(part) for part in parts)
            self.chunks.extend(part for part in parts if part)
            self.buffered += got
            self.pos += got
            if offset >= self.hint and got:
                self.limit = max(self.limit, self.pos + self.depth * self.request)
                self.stat_valid = False
            if got < length:
                # A short read: ask for the rest before anything after it.
                self.stat_valid = False
                rest = [self.send(CMD_READ, self.handle, int64(offset + got), length - got), offset + got, length - got]
                self.pending.appendleft(rest)
        elif kind == CMD_STATUS:
            code, text = status(msg)
            if code != FX_EOF:
                raise self.loc.status_error(code, text, 'read', self.path)
            self.eof = True
            if self.stat_num is not None and self.stat_valid:
                kind, msg = self.wait(self.stat_num)
                if kind == CMD_ATTRS:
                    self.loc.remember_stat(self.path, entry(posixpath.basename(self.path), fastpath.attributes(msg)))
        else:
            raise SftpError('cannot read %s: unexpected SFTP reply %d' % (self.loc.describe(self.path), kind))

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes: the data of one reply at a time (no joining copy); all the rest when ``size`` < 0."""
        if size is None or size < 0:
            parts = []
            while True:
                chunk = self.read(1 << 30)
                if not chunk:
                    return b''.join(parts)
                parts.append(chunk)
        if size == 0:
            return b''
        try:
            while not self.eof and not self.chunks:
                if not self.pending:
                    self._fill()
                    if not self.pending:
                        break
                self._take()
                self._fill()
        except SftpError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self.loc.io_error(exc, 'read', self.path) from exc
        if self.chunks and size >= len(self.chunks[0]):
            out = self.chunks.popleft()
        elif not self.chunks:
            out = b''
        else:
            parts = []
            got = 0
            while got < size:
                chunk = self.chunks.popleft()
                if got + len(chunk) > size:
                    self.chunks.appendleft(chunk[size - got:])
                    chunk = chunk[:size - got]
                parts.append(chunk)
                got += len(chunk)
            out = b''.join(parts)
        self.buffered -= len(out)
        return out

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # Not waited for: the replies (and those of reads still in flight) are taken in by later requests.
        try:
            self.send(CMD_CLOSE, self.handle)
        except Exception:  # pylint: disable=broad-except
            pass

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _Writer(_Stream):
    """A new file written with many requests in flight; errors surface at the latest in ``close``."""

    def __init__(self, loc, client, path: str, handle: bytes) -> None:
        super().__init__(loc, client, path, handle, loc.write_size)
        self.pending: collections.deque = collections.deque()
        self.buf = bytearray()
        self.offset = 0
        self.closed = False
        self.error: SftpError | None = None

    def _check(self, num: int) -> None:
        kind, msg = self.wait(num)
        code, text = status(msg) if kind == CMD_STATUS else (FX_FAILURE, 'unexpected SFTP reply %d' % kind)
        if code != FX_OK and self.error is None:
            self.error = self.loc.status_error(code, text, 'write', self.path)

    def _send(self, data: bytes) -> None:
        self.pending.append(self.send(CMD_WRITE, self.handle, int64(self.offset), data))
        self.offset += len(data)
        while len(self.pending) > self.depth:
            self._check(self.pending.popleft())
        if self.error is not None:
            raise self.error

    def write(self, data: bytes) -> int:
        try:
            if not self.buf and len(data) >= self.request:
                view = memoryview(data)
                whole = len(data) - len(data) % self.request
                for start in range(0, whole, self.request):
                    self._send(bytes(view[start:start + self.request]))
                self.buf += view[whole:]
            else:
                self.buf += data
                while len(self.buf) >= self.request:
                    self._send(bytes(self.buf[:self.request]))
                    del self.buf[:self.request]
        except SftpError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self.loc.io_error(exc, 'write', self.path) from exc
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            with fastpath.corked(self.client):
                if self.buf and self.error is None:
                    self.pending.append(self.send(CMD_WRITE, self.handle, int64(self.offset), bytes(self.buf)))
                    self.offset += len(self.buf)
                    self.buf = bytearray()
                close = self.send(CMD_CLOSE, self.handle)
            while self.pending:
                self._check(self.pending.popleft())
            kind, msg = self.wait(close)
            code, text = status(msg) if kind == CMD_STATUS else (FX_FAILURE, 'unexpected SFTP reply %d' % kind)
            if code != FX_OK and self.error is None:
                self.error = self.loc.status_error(code, text, 'close', self.path)
        except SftpError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self.loc.io_error(exc, 'write', self.path) from exc
        if self.error is not None:
            raise self.error

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
