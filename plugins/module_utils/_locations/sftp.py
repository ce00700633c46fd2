# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

A location on another host, over SFTP (paramiko), as source or destination.

- Host keys are verified against a known_hosts file; an unknown key is refused unless
  ``host_key_policy=accept_new`` (then it is recorded and a warning given); a changed key is
  always refused. Messages name the host and the key fingerprints, never a secret.
- One SFTP channel per thread (paramiko's SFTPClient is not safe for concurrent requests on one
  channel: a thread may read and drop another's response), spread over up to ``connections`` SSH
  connections (one paramiko transport thread per connection does the decryption and MAC checks).
- A dropped connection fails the call in flight with a message naming host and path (the copy engine
  then reads that file again once, from the start); the next call reconnects (``retries`` attempts
  with exponential backoff) and the remaining files go on.
  Once reconnecting has failed, every further call fails at once with the same message.
- ``listdir`` is one directory read (OPENDIR/READDIR); it keeps each file's size as a hint.
- Reads and writes are pipelined: many requests of the server's maximum size in flight, sent
  together (one SSH packet for several requests). A read asks for the listed size, one request
  past it and an LSTAT at once; that LSTAT, answered after the reads, is the stat the engine asks
  for after reading (no round trip of its own).
- ``prefetch(paths)`` (the engine announces the files it will read) fetches small files ahead on
  a thread of its own: as streamed archives (GNU ``tar`` then ``stat`` over one exec channel per run
  of files) where the host runs commands for the user, else with pipelined SFTP requests for many
  files at once. A file that does not come as expected is read the ordinary way.
- ``commit`` is SFTP v3 RENAME, which never replaces an existing name (OpenSSH links the new
  name and fails when it exists); ``replace`` is ``posix-rename@openssh.com``. Modification times
  are whole seconds (SFTP v3).
- ``flush`` is ``fsync@openssh.com`` per file, pipelined; a server without it gets a warning.
  SFTP cannot flush a directory: ``flush_dirs`` leaves that to the server's filesystem.

paramiko's SFTPClient private methods ``_request``, ``_async_request``, ``_read_response``,
``_send_packet`` and ``_write_all`` (the ones its own SFTPFile uses, the same from paramiko 2.7 to
5.x) carry the pipelined requests. Each channel's receive buffer is replaced by one that keeps
chunks instead of copying bytes into an array and shifting it on every read, and the client's
``_read_all`` reads whole chunks (measured here: 26 MB/s for one large file with the stock ones). Each transport's
``Packetizer.read_message`` is replaced, for AES-CTR with an HMAC (what paramiko 2.x agrees with
OpenSSH), by one with fewer copies (``_read_message``), and glibc is asked to keep freed memory for
reuse (``_keep_freed_memory``). Measured with tests/services/edge_nodes/bench_sftp.py.
"""

# pylint: disable=protected-access

from __future__ import annotations

import base64
import collections
import contextlib
import errno
import functools
import hashlib
import hmac
import io
import os
import posixpath
import shlex
import socket
import stat
import struct
import tarfile
import threading
import time
import traceback
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Entry, Location, libc

PARAMIKO_IMPORT_ERROR: str | None
try:
    import paramiko
    import paramiko.packet
    from paramiko.sftp import (
        CMD_ATTRS, CMD_CLOSE, CMD_DATA, CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_HANDLE, CMD_LSTAT, CMD_OPEN, CMD_READ, CMD_STATUS,
        CMD_WRITE, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_READ, SFTP_FLAG_WRITE,
    )
    try:
        from paramiko.sftp import int64
    except ImportError:  # paramiko 2.x (Debian 12's python3-paramiko): the 64-bit int marker is py3compat.long
        from paramiko.py3compat import long as int64  # type: ignore[no-redef]
except ImportError:
    paramiko = None
    PARAMIKO_IMPORT_ERROR = traceback.format_exc()
else:
    PARAMIKO_IMPORT_ERROR = None

# SFTP v3 status codes (draft-ietf-secsh-filexfer-02).
_FX_OK, _FX_EOF, _FX_NO_SUCH_FILE, _FX_PERMISSION_DENIED, _FX_FAILURE, _FX_OP_UNSUPPORTED = 0, 1, 2, 3, 4, 8
_FX_ERRNO = {_FX_NO_SUCH_FILE: errno.ENOENT, _FX_PERMISSION_DENIED: errno.EACCES, _FX_OP_UNSUPPORTED: errno.EOPNOTSUPP}

# Request sizes: every SFTP v3 server accepts 32 KiB; OpenSSH tells larger limits (limits@openssh.com).
MIN_REQUEST = 32 * 1024
MAX_REQUEST = 255 * 1024
# Bytes in flight per file, and the SSH channel window and packet size that let them flow (measured
# with tests/services/edge_nodes/bench_sftp.py).
PIPELINE_BYTES = 8 * 1024 * 1024
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET = 256 * 1024
# Small files the engine announces (``prefetch``) are fetched ahead over one channel: files up to
# PREFETCH_MAX_FILE bytes (by the listing), PREFETCH_FILES of them in flight, at most PREFETCH_BYTES
# fetched and not yet taken.
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
# Freed memory the process keeps for reuse (see _keep_freed_memory), from the first read of a file of
# MALLOC_FILE_MIN bytes (by the listing) on: measured a sixth less CPU for 200 MB files, and a sixth more
# for 20 KB files streamed ahead.
TUNE_MALLOC = True
MALLOC_FILE_MIN = 8 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024
MMAP_THRESHOLD = 4 * 1024 * 1024
_MALLOC_TUNED = False
# SSH connections a location opens at most (threads' channels are spread over them).
CONNECTIONS = 4
# Reconnect backoff: BACKOFF * 2 ** n seconds before attempt n + 1, at most BACKOFF_MAX.
BACKOFF = 0.5
BACKOFF_MAX = 8.0

_CONNECTION_ERRORS: tuple = (EOFError, socket.timeout, ConnectionError)


class SftpError(BackupError, OSError):
    """An SFTP failure naming host and path: an ``OSError`` for the copy engine (one file fails),
    a ``BackupError`` for a module (its message becomes ``msg``). ``errno`` is set where known."""

    def __init__(self, msg: str, code: int | None = None, connection_lost: bool = False) -> None:
        super().__init__(msg)
        self.errno = code
        self.strerror = msg
        self.filename = None
        self.connection_lost = connection_lost

    def __str__(self) -> str:
        return self.msg


class SftpNotFoundError(SftpError, FileNotFoundError):
    """The server says the path does not exist."""


class SftpPermissionError(SftpError, PermissionError):
    """The server says permission denied."""


def _error(msg: str, code: int | None) -> SftpError:
    """The SftpError for a server's answer: by errno, a not-found or permission error."""
    cls = {errno.ENOENT: SftpNotFoundError, errno.EACCES: SftpPermissionError}.get(code or 0, SftpError)
    return cls(msg, code)


class _Fatal(SftpError):
    """A connection error that another attempt cannot cure (host key, authentication, key file)."""


def fingerprint(key) -> str:
    """The OpenSSH form of a key's fingerprint: ``SHA256:`` and unpadded base64."""
    return 'SHA256:' + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode('ascii').rstrip('=')


def known_hosts_name(host: str, port: int) -> str:
    """The name a host has in known_hosts: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else '[%s]:%d' % (host, port)


def _status(msg) -> tuple[int, str]:
    code = msg.get_int()
    try:
        text = msg.get_text()
    except Exception:  # pylint: disable=broad-except
        text = ''
    return code, text


def _is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, _CONNECTION_ERRORS) or (paramiko is not None and isinstance(exc, paramiko.SSHException))


_PK = '_Packetizer__'     # paramiko's Packetizer keeps its state in name-mangled attributes
_PK_STATE = ('block_engine_in', 'block_size_in', 'mac_engine_in', 'mac_key_in', 'mac_size_in', 'etm_in', 'compress_engine_in',
             'dump_packets', 'remainder', 'socket', 'closed', 'sequence_number_in', 'received_bytes', 'received_packets',
             'received_bytes_overflow', 'received_packets_overflow', 'need_rekey')


def _read_message(packetizer):
    """paramiko's ``Packetizer.read_message`` for the usual case (a 16-byte block cipher such as AES-CTR, then
    a MAC over the plain text, no compression): the same checks and accounting with fewer copies and
    Python steps per packet. The packet is received into one buffer, decrypted into another, the MAC is
    computed over both parts without joining them and compared in constant time by ``hmac``, and the
    message bytes are made once (stock: seven copies of every byte, a Python loop comparing the MAC).
    Any other case (ETM, AEAD, compression, packet dumps, the banner's leftover) goes to paramiko's own."""
    state = packetizer.__dict__
    engine = state[_PK + 'block_engine_in']
    mac_size = state[_PK + 'mac_size_in']
    if (engine is None or not mac_size or state[_PK + 'etm_in'] or state.get(_PK + 'aead_in') or state[_PK + 'block_size_in'] != 16
            or state[_PK + 'compress_engine_in'] is not None or state[_PK + 'dump_packets'] or state[_PK + 'remainder']):
        return paramiko.packet.Packetizer.read_message(packetizer)
    header = engine.update(packetizer.read_all(16, check_rekey=True))
    packet_size = struct.unpack('>I', header[:4])[0]
    if packet_size < 12 or (packet_size - 12) % 16:
        raise paramiko.SSHException('Invalid packet blocking')
    body = packet_size - 12
    received = bytearray(body + mac_size)
    _recv_into(packetizer, memoryview(received))
    plain = bytearray(body + 15)
    size = engine.update_into(memoryview(received)[:body], plain) if body else 0
    seq = state[_PK + 'sequence_number_in']
    mac = hmac.new(state[_PK + 'mac_key_in'], struct.pack('>II', seq, packet_size), state[_PK + 'mac_engine_in'])
    mac.update(header[4:])
    mac.update(memoryview(plain)[:size])
    if not hmac.compare_digest(mac.digest()[:mac_size], bytes(received[body:])):
        raise paramiko.SSHException('Mismatched MAC')
    end = packet_size - header[4]          # the payload ends before the padding
    if end < 2:
        raise paramiko.SSHException('Invalid packet padding')
    data = header[6:4 + end] if end <= 12 else b''.join((header[6:], memoryview(plain)[:end - 12]))
    msg = paramiko.Message(data)
    msg.seqno = seq
    seq = (seq + 1) & 0xffffffff
    if seq == 0 and not getattr(packetizer, '_initial_kex_done', True):
        raise paramiko.SSHException('Sequence number rolled over during initial kex!')
    state[_PK + 'sequence_number_in'] = seq
    raw = packet_size + mac_size + 4
    state[_PK + 'received_bytes'] += raw
    state[_PK + 'received_packets'] += 1
    if state[_PK + 'need_rekey']:
        state[_PK + 'received_bytes_overflow'] += raw
        state[_PK + 'received_packets_overflow'] += 1
        if state[_PK + 'received_packets_overflow'] >= packetizer.REKEY_PACKETS_OVERFLOW_MAX \
                or state[_PK + 'received_bytes_overflow'] >= packetizer.REKEY_BYTES_OVERFLOW_MAX:
            raise paramiko.SSHException('Remote transport is ignoring rekey requests')
    elif state[_PK + 'received_packets'] >= packetizer.REKEY_PACKETS or state[_PK + 'received_bytes'] >= packetizer.REKEY_BYTES:
        state[_PK + 'received_bytes_overflow'] = 0
        state[_PK + 'received_packets_overflow'] = 0
        packetizer._trigger_rekey()
    return header[5], msg


def _recv_into(packetizer, view: memoryview) -> None:
    """Fill ``view`` from the packetizer's socket, as its ``read_all`` waits (timeouts, keepalives, closing)."""
    sock = packetizer.__dict__[_PK + 'socket']
    while len(view):
        if packetizer.handshake_timed_out():
            raise EOFError()
        try:
            got = sock.recv_into(view)
        except socket.timeout:
            got = -1
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                if packetizer.__dict__[_PK + 'closed']:
                    raise EOFError() from None
                raise
            got = -1
        if got < 0:
            if packetizer.__dict__[_PK + 'closed']:
                raise EOFError()
            packetizer._check_keepalive()
        elif got == 0:
            raise EOFError()
        else:
            view = view[got:]


def _keep_freed_memory() -> None:
    """glibc gives freed memory back to the system as soon as 128 KiB are free at the top of a heap, and
    serves blocks over 128 KiB with their own mmap: a transfer that keeps ~8 MiB of packets in flight
    then faults in fresh pages for most of the bytes it receives (measured: 60,000 page faults for
    400 MB). Keeping up to TRIM_THRESHOLD freed bytes, and blocks up to MMAP_THRESHOLD on the heap,
    takes that to a few thousand. Once per process, where the C library has ``mallopt``."""
    global _MALLOC_TUNED  # pylint: disable=global-statement
    if _MALLOC_TUNED or not TUNE_MALLOC:
        return
    _MALLOC_TUNED = True
    mallopt = libc('mallopt')
    if mallopt is None:
        return
    mallopt(-1, TRIM_THRESHOLD)     # M_TRIM_THRESHOLD
    mallopt(-3, MMAP_THRESHOLD)     # M_MMAP_THRESHOLD


def _speed_up_packets(transport) -> None:
    """Have the transport's packetizer read messages with ``_read_message`` (when it has the state that expects)."""
    packetizer = getattr(transport, 'packetizer', None)
    if packetizer is not None and all(_PK + name in packetizer.__dict__ for name in _PK_STATE):
        packetizer.read_message = functools.partial(_read_message, packetizer)


class _ChunkPipe:
    """Replaces a channel's receive buffer (paramiko's BufferedPipe, same methods): keeps the chunks
    the transport hands over as they are. BufferedPipe copies every byte into an array and out again,
    and each partial read shifts the whole array (measured here: 26 MB/s for one large file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._event = None
        self._chunks: collections.deque = collections.deque()
        self._offset = 0        # bytes of the first chunk already read
        self._size = 0
        self._closed = False

    def set_event(self, event) -> None:
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data) -> None:
        with self._lock:
            if self._event is not None:
                self._event.set()
            if data:
                self._chunks.append(bytes(data))
                self._size += len(data)
            self._cv.notify_all()

    def read_ready(self) -> bool:
        with self._lock:
            return self._size > 0

    def peek(self, size: int) -> bytes:
        """Up to ``size`` buffered bytes, left in the buffer."""
        with self._lock:
            parts = []
            offset = self._offset
            for chunk in self._chunks:
                parts.append(chunk[offset:offset + size - sum(len(p) for p in parts)])
                offset = 0
                if sum(len(p) for p in parts) >= size:
                    break
            return b''.join(parts)

    def _take(self, size: int) -> bytes:
        parts = []
        while size and self._chunks:
            chunk = self._chunks[0]
            left = len(chunk) - self._offset
            if left <= size:
                parts.append(chunk if not self._offset else chunk[self._offset:])
                self._chunks.popleft()
                self._offset = 0
                size -= left
            else:
                parts.append(chunk[self._offset:self._offset + size])
                self._offset += size
                size = 0
        out = parts[0] if len(parts) == 1 else b''.join(parts)
        self._size -= len(out)
        if not self._size and self._event is not None and not self._closed:
            self._event.clear()
        return out

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        with self._lock:
            if not self._size:
                if self._closed:
                    return b''
                if timeout == 0.0:
                    raise paramiko.buffered_pipe.PipeTimeout()
                while not self._size and not self._closed:
                    then = time.time()
                    self._cv.wait(timeout)
                    if timeout is not None:
                        timeout -= time.time() - then
                        if timeout <= 0.0 and not self._size:
                            raise paramiko.buffered_pipe.PipeTimeout()
            return self._take(nbytes)

    def empty(self) -> bytes:
        with self._lock:
            return self._take(self._size)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self) -> int:
        return self._size


class _Recv:
    """Replaces ``SFTPClient._read_all``: whole chunks from the channel, joined once."""

    def __init__(self, channel) -> None:
        self.channel = channel

    def has_packet(self) -> bool:
        """Whether a whole SFTP packet is already buffered, so reading it will not wait."""
        pipe = self.channel.in_buffer
        have = len(pipe)
        return have >= 4 and have >= 4 + struct.unpack('>I', pipe.peek(4))[0]

    def read_parts(self, size: int) -> list[bytes]:
        """``size`` bytes as the chunks the channel holds."""
        parts = []
        while size > 0:
            data = self.channel.recv(size)
            if not data:
                raise EOFError()
            parts.append(data)
            size -= len(data)
        return parts

    def read_all(self, size: int) -> bytes:
        parts = self.read_parts(size)
        return parts[0] if len(parts) == 1 else b''.join(parts)


class _DataReply:
    """An SFTP DATA reply whose bytes stay in the chunks they arrived in."""

    def __init__(self, parts: list[bytes], size: int) -> None:
        self.parts = parts
        self.size = size

    def get_string(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b''.join(self.parts)


_MISSING = object()


def _read_response(client, waitfor: int | None = None) -> tuple:
    """paramiko's ``SFTPClient._read_response``, except that the bytes of a DATA reply are not copied
    into a message (three copies of every byte read: measured a fifth of the CPU of a large read)."""
    recv = client._mnaas_recv
    while True:
        try:
            size, kind, num = struct.unpack('>IBI', recv.read_all(9))
            if kind == CMD_DATA:
                length = struct.unpack('>I', recv.read_all(4))[0]
                msg = _DataReply(recv.read_parts(length), length)
                if size > 9 + length:
                    recv.read_all(size - 9 - length)
            else:
                msg = paramiko.Message(recv.read_all(size - 5))
        except EOFError as exc:
            raise paramiko.SSHException('Server connection dropped: %s' % exc) from None
        with client._lock:
            fileobj = client._expecting.pop(num, _MISSING)
        if fileobj is _MISSING:
            if waitfor is None:
                return None, None
            continue
        if num == waitfor:
            if kind == CMD_STATUS:
                client._convert_status(msg)
            return kind, msg
        if hasattr(fileobj, '_async_response'):    # not type(None), paramiko's mark of a synchronous request
            fileobj._async_response(kind, msg, num)
        if waitfor is None:
            return None, None


@contextlib.contextmanager
def _corked(client) -> t.Iterator[None]:
    """Requests made inside leave together in one write: one SSH packet (or a few) instead of one
    per request. The client must be used by this thread only (each thread has its own)."""
    parts: list[bytes] = []

    def send_packet(kind: int, packet) -> None:
        data = packet.asbytes()
        parts.append(struct.pack('>IB', len(data) + 1, kind) + data)

    client._send_packet = send_packet
    try:
        yield
    finally:
        del client._send_packet
    if parts:
        client._write_all(b''.join(parts))


def _pump(client) -> None:
    """Read one reply (waiting for it), then every one already arrived, with the requests they prompt sent together."""
    with _corked(client):
        client._read_response()
        recv = getattr(client, '_mnaas_recv', None)
        while recv is not None and recv.has_packet():
            client._read_response()


class _Replies:
    """Collects the replies of pipelined requests (paramiko calls ``_async_response``)."""

    def __init__(self, client) -> None:
        self.client = client
        self.replies: dict[int, tuple[int, t.Any]] = {}

    def _async_response(self, kind: int, msg, num: int) -> None:
        self.replies[num] = (kind, msg)

    def send(self, kind: int, *args) -> int:
        return self.client._async_request(self, kind, *args)

    def wait(self, num: int) -> tuple[int, t.Any]:
        """The reply to request ``num``, reading responses until it is there."""
        while num not in self.replies:
            _pump(self.client)
        return self.replies.pop(num)


class _Reader(_Replies):
    """A file read with many requests in flight; sizes from the listing avoid a wasted round trip.

    With the request that should find the end of the file goes an LSTAT of the path: the server
    answers it after the reads, so when the file ended where the listing said, it is the stat the
    copy engine asks for after reading, and costs no round trip of its own (see ``stat``).
    """

    def __init__(self, loc: SftpLocation, client, path: str, handle: bytes, size_hint: int | None) -> None:
        super().__init__(client)
        self.loc = loc
        self.path = path
        self.handle = handle
        self.request = loc.read_size
        self.depth = max(2, PIPELINE_BYTES // self.request)
        self.pending: collections.deque = collections.deque()   # [num, offset, length] in offset order
        self.chunks: collections.deque = collections.deque()
        self.buffered = 0
        self.pos = 0            # bytes received in order
        self.next = 0           # next offset to request
        # Requests go out up to this offset: the listed size plus one request that should find the end;
        # when that one brings data (the file grew) the whole pipeline opens.
        self.hint = size_hint if size_hint is not None else 0
        if self.hint >= MALLOC_FILE_MIN:
            _keep_freed_memory()
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
        with _corked(self.client):
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
            parts = msg.parts if isinstance(msg, _DataReply) else [msg.get_string()]
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
            code, text = _status(msg)
            if code != _FX_EOF:
                raise self.loc.status_error(code, text, 'read', self.path)
            self.eof = True
            if self.stat_num is not None and self.stat_valid:
                kind, msg = self.wait(self.stat_num)
                if kind == CMD_ATTRS:
                    self.loc.remember_stat(self.path, _entry(posixpath.basename(self.path), paramiko.SFTPAttributes._from_msg(msg)))
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


class _Writer(_Replies):
    """A new file written with many requests in flight; errors surface at the latest in ``close``."""

    def __init__(self, loc: SftpLocation, client, path: str, handle: bytes) -> None:
        super().__init__(client)
        self.loc = loc
        self.path = path
        self.handle = handle
        self.request = loc.write_size
        self.depth = max(2, PIPELINE_BYTES // self.request)
        self.pending: collections.deque = collections.deque()
        self.buf = bytearray()
        self.offset = 0
        self.closed = False
        self.error: SftpError | None = None

    def _check(self, num: int) -> None:
        kind, msg = self.wait(num)
        code, text = _status(msg) if kind == CMD_STATUS else (_FX_FAILURE, 'unexpected SFTP reply %d' % kind)
        if code != _FX_OK and self.error is None:
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
            with _corked(self.client):
                if self.buf and self.error is None:
                    self.pending.append(self.send(CMD_WRITE, self.handle, int64(self.offset), bytes(self.buf)))
                    self.offset += len(self.buf)
                    self.buf = bytearray()
                close = self.send(CMD_CLOSE, self.handle)
            while self.pending:
                self._check(self.pending.popleft())
            kind, msg = self.wait(close)
            code, text = _status(msg) if kind == CMD_STATUS else (_FX_FAILURE, 'unexpected SFTP reply %d' % kind)
            if code != _FX_OK and self.error is None:
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

    def __init__(self, loc: SftpLocation, paths: list[tuple[str, int]]) -> None:
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
        self.roles[client._async_request(self, CMD_OPEN, self.path, SFTP_FLAG_READ, paramiko.SFTPAttributes())] = ('open',)

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
                self.entry = _entry(posixpath.basename(self.path), paramiko.SFTPAttributes._from_msg(msg))
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
            self.roles[client._async_request(self, CMD_READ, handle, int64(offset), length)] = ('read', offset, length)
        self.roles[client._async_request(self, CMD_LSTAT, self.path)] = ('stat',)
        self.roles[client._async_request(self, CMD_CLOSE, handle)] = ('close',)


class _SftpAhead(_Ahead):
    """Pipelined SFTP on a channel of its own: PREFETCH_FILES files in flight, their requests sent together."""

    name = 'sftp-ahead'

    def __init__(self, loc: SftpLocation, paths: list[tuple[str, int]]) -> None:
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
        self.client = self.loc._session().client
        while True:
            with _corked(self.client):
                item = self._next()
                while item is not None:
                    fetch = self.active[item[0]] = _Fetch(self, item[0], item[1])
                    fetch.start(self.client)
                    item = self._next()
            with self.cond:
                if self.stopped or (not self.todo and self.inflight == 0):
                    return
            if self.inflight:
                _pump(self.client)


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
                if _is_connection_error(exc):
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
            # small (one tar record) and let io.BufferedReader do the large reads.
            source = io.BufferedReader(_ChannelRaw(channel), buffer_size=1 << 20)
            stream = tarfile.open(fileobj=source, mode='r|', bufsize=tarfile.RECORDSIZE)  # pylint: disable=consider-using-with
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
                entry = Entry(parts[3], int(parts[0]), float(parts[1]), 'file' if stat.S_ISREG(mode) else 'other')
                if (entry.size, int(entry.mtime)) == headers[path] and entry.kind == 'file':
                    item.entry = entry
        finally:
            channel.close()


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


class _ChannelStream:
    """A channel's stdout as a file for tarfile's stream mode."""

    def __init__(self, channel) -> None:
        self.channel = channel

    def read(self, size: int) -> bytes:
        parts = []
        while size > 0:
            data = self.channel.recv(size)
            if not data:
                break
            parts.append(data)
            size -= len(data)
        return b''.join(parts)


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


class SftpLocation(Location):
    """Files on ``host`` over SFTP. Thread-safe: each thread gets its own SFTP channel."""

    kind = 'sftp'
    backoff = BACKOFF

    def __init__(self, host: str, port: int = 22, user: str | None = None, private_key: str | None = None,
                 private_key_passphrase: str | None = None, password: str | None = None, known_hosts: str | None = None,
                 host_key_policy: str = 'reject', timeout: float = 30.0, retries: int = 3,
                 warn: t.Callable[[str], None] | None = None, stream_small_files: bool = True,
                 connections: int = CONNECTIONS) -> None:
        self.host = host
        self.port = port or 22
        self.user = user or _local_user()
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
        self._sizes: dict[str, int] = {}
        self._no_fsync = False
        self._prefetch: _Ahead | None = None
        self.stream_small_files = stream_small_files
        self._can_tar: bool | None = None

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
        reason = {_FX_NO_SUCH_FILE: 'no such file or directory', _FX_PERMISSION_DENIED: 'permission denied',
                  _FX_OP_UNSUPPORTED: 'operation not supported by the server'}.get(code, text or 'failure (SFTP status %d)' % code)
        return _error('cannot %s %s: %s' % (what, self.describe(path), reason), _FX_ERRNO.get(code))

    def io_error(self, exc: BaseException, what: str, path: str) -> SftpError:
        """An exception of paramiko during ``what`` on ``path``, named; a lost connection marks the session."""
        if isinstance(exc, SftpError):
            return exc
        session = getattr(self._local, 'session', None)
        transport = session.link.transport if session is not None else self._links[0].transport
        if _is_connection_error(exc) or (transport is not None and not transport.is_active()) \
                or (session is not None and getattr(session.client.sock, 'closed', False)):
            if session is not None:
                session.broken = True
            return SftpError('connection to sftp host %s lost while trying to %s %s: %s' % (
                self.address, what, self.describe(path), _reason(exc)), errno.ECONNABORTED, connection_lost=True)
        code = getattr(exc, 'errno', None)
        if code == errno.ENOENT:
            reason = 'no such file or directory'
        elif code == errno.EACCES:
            reason = 'permission denied'
        else:
            reason = _reason(exc)
        return _error('cannot %s %s: %s' % (what, self.describe(path), reason), code)

    # -- connection --------------------------------------------------------------------------
    def _load_key(self):
        path = self.private_key
        if not os.path.exists(path):
            raise _Fatal('private key file %s for sftp host %s does not exist' % (path, self.address), errno.ENOENT)
        if not os.access(path, os.R_OK):
            raise _Fatal('private key file %s for sftp host %s is not readable' % (path, self.address), errno.EACCES)
        encrypted = _Fatal('private key file %s for sftp host %s is encrypted and no private_key_passphrase was given' % (path, self.address))
        try:
            return _read_private_key(path, self._passphrase)
        except paramiko.PasswordRequiredException:
            raise encrypted from None
        except (paramiko.SSHException, ValueError, TypeError, OSError) as exc:
            if self._passphrase is None and 'encrypted' in str(exc):
                raise encrypted from None
            raise _Fatal('cannot load private key file %s for sftp host %s (wrong passphrase or not a private key): %s'
                         % (path, self.address, _reason(exc))) from None

    def _known_keys(self):
        """The keys known_hosts has for this host (by key type), or ``None``."""
        if not os.path.exists(self.known_hosts):
            if self.host_key_policy == 'accept_new':
                return None
            raise _Fatal('known_hosts file %s does not exist: cannot verify the host key of sftp host %s (host_key_policy=reject)'
                         % (self.known_hosts, self.address), errno.ENOENT)
        try:
            keys = paramiko.HostKeys(self.known_hosts)
        except (OSError, paramiko.SSHException) as exc:
            raise _Fatal('cannot read known_hosts file %s: %s' % (self.known_hosts, _reason(exc))) from None
        return keys.lookup(known_hosts_name(self.host, self.port))

    def verify_host_key(self, key, known) -> None:
        """Accept the key the server presented, or refuse it with a message naming host and fingerprints."""
        name = known_hosts_name(self.host, self.port)
        if known:
            expected = known.get(key.get_name())
            if expected is not None and expected.asbytes() == key.asbytes():
                return
            listed = ', '.join('%s %s' % (kind, fingerprint(k)) for kind, k in sorted(known.items()))
            raise _Fatal('HOST KEY CHANGED for sftp host %s: it presented %s %s but known_hosts file %s has %s; refusing to connect '
                         '(the host was reinstalled, or someone is in the middle). If the change is expected, replace the entry for %s.'
                         % (self.address, key.get_name(), fingerprint(key), self.known_hosts, listed, name))
        if self.host_key_policy != 'accept_new':
            raise _Fatal('host key of sftp host %s is unknown: %s %s is not in known_hosts file %s; add it there '
                         '(for example from ssh-keyscan, checked out of band), or set host_key_policy=accept_new'
                         % (self.address, key.get_name(), fingerprint(key), self.known_hosts))
        line = '%s %s %s\n' % (name, key.get_name(), key.get_base64())
        directory = os.path.dirname(self.known_hosts)
        try:
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
            fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, 'a') as stream:
                stream.write(line)
        except OSError as exc:
            raise _Fatal('cannot record the new host key of sftp host %s in %s: %s' % (self.address, self.known_hosts, _reason(exc))) from None
        self.accepted_host_keys.append({'host': name, 'type': key.get_name(), 'fingerprint': fingerprint(key), 'known_hosts': self.known_hosts})
        self._note('sftp host %s was not in known_hosts file %s: accepted and recorded its %s key %s (host_key_policy=accept_new)'
                   % (self.address, self.known_hosts, key.get_name(), fingerprint(key)))

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
        _speed_up_packets(transport)
        return transport

    def _open_transport(self):
        """Connect, verify the host key, log in; an error names the host (and the key file)."""
        if paramiko is None:
            raise _Fatal('the Python library paramiko is needed for sftp locations (host %s) and cannot be imported: %s'
                         % (self.address, (PARAMIKO_IMPORT_ERROR or '').strip().splitlines()[-1]))
        pkey = self._load_key() if self.private_key else None
        known = self._known_keys()
        try:
            sock = self._open_socket()
        except OSError as exc:
            raise SftpError('cannot connect to sftp host %s: %s' % (self.address, _reason(exc)), getattr(exc, 'errno', None),
                            connection_lost=True) from None
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
            raise SftpError('cannot connect to sftp host %s: %s' % (self.address, _reason(exc)), getattr(exc, 'errno', None),
                            connection_lost=True) from None

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
            raise _Fatal('no private_key or password given for sftp host %s, and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa' % self.address)
        except paramiko.AuthenticationException as exc:
            if not transport.is_active():
                # The host went away while we authenticated (its sshd stopped): no verdict on the key, a lost connection.
                raise SftpError('cannot connect to sftp host %s: the connection closed during authentication (%s)'
                                % (self.address, _reason(exc)), connection_lost=True) from None
            how = 'key %s' % self.private_key if self.private_key else 'password'
            raise _Fatal('authentication failed for sftp host %s with %s: %s' % (self.address, how, _reason(exc))) from None

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
                self._sleep(min(self.backoff * 2 ** (attempt - 1), BACKOFF_MAX))
            try:
                link.transport = self._open_transport()
                link.generation += 1
                return
            except _Fatal as exc:
                self._down = exc
                raise
            except SftpError as exc:
                last = exc
        self._down = SftpError('%s (gave up after %d attempt(s))' % (last, self.retries + 1), getattr(last, 'errno', None), connection_lost=True)
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
                    if attempt or not _is_connection_error(exc):
                        raise SftpError('cannot open an SFTP channel to sftp host %s: %s' % (self.address, _reason(exc)),
                                        connection_lost=True) from None
                    _close_quietly(link.transport, None)
                    link.transport = None
            if not self._sessions:
                self._learn_limits(client)
            session = _Session(client, link)
            self._sessions.append(session)
            self._local.session = session
            return session

    def _new_channel(self, transport):
        """A session channel with large window and packets, and a receive buffer that does not copy."""
        channel = transport.open_session(window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET)
        channel.in_buffer = _ChunkPipe()     # before anything is received on it
        channel.settimeout(self.timeout)
        return channel

    def _open_channel(self, transport):
        """An SFTP client on a new channel of ``transport`` (the unit tests replace this)."""
        channel = self._new_channel(transport)
        channel.invoke_subsystem('sftp')
        client = paramiko.SFTPClient(channel)
        client._mnaas_recv = _Recv(channel)
        client._read_all = client._mnaas_recv.read_all
        client._read_response = functools.partial(_read_response, client)
        return client

    def _learn_limits(self, client) -> None:
        """Request sizes from limits@openssh.com; 32 KiB for servers without it."""
        try:
            kind, msg = client._request(CMD_EXTENDED, 'limits@openssh.com')
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
                error = self.io_error(exc, what, path)
                if not (error.connection_lost and retry and attempt < self.retries):
                    raise error from None
                session.broken = True
                attempt += 1
                self._sleep(min(self.backoff * 2 ** (attempt - 1), BACKOFF_MAX))

    # -- Location ----------------------------------------------------------------------------
    def listdir(self, path: str) -> dict[str, Entry] | None:
        try:
            attrs = self.call('list', path, lambda c: c.listdir_attr(path))
        except SftpNotFoundError:
            return None
        entries = {}
        for attr in attrs:
            entry = _entry(attr.filename, attr)
            entries[entry.name] = entry
            if entry.kind == 'file':
                self._sizes[posixpath.join(path, entry.name)] = entry.size
        return entries

    def remember_stat(self, path: str, entry: Entry) -> None:
        """The stat the server gave right after this thread read ``path`` to its end."""
        self._local.after_read = (path, entry)

    def stat(self, path: str) -> Entry | None:
        after_read = getattr(self._local, 'after_read', None)
        self._local.after_read = None
        if after_read is not None and after_read[0] == path:
            return after_read[1]
        try:
            attr = self.call('stat', path, lambda c: c.lstat(path))
        except SftpNotFoundError:
            return None
        return _entry(posixpath.basename(path), attr)

    def prefetch(self, paths: list[str]) -> None:
        """The files that will be read next, in order: the small ones (by their listing) are fetched
        ahead over a channel of their own, many in flight, so each costs no round trip of its own."""
        if self._prefetch is not None:
            self._prefetch.stop()
            self._prefetch = None
        small = [(path, self._sizes[path]) for path in paths if self._sizes.get(path, PREFETCH_MAX_FILE + 1) <= PREFETCH_MAX_FILE]
        if len(small) > 1:
            self._prefetch = (_TarAhead if self.can_tar() else _SftpAhead)(self, small)

    def exec_channel(self, command: str):
        """A new channel running ``command`` on the host (large window and packets)."""
        with self._lock:
            transport = self._live_link(self._links[0]).transport
        channel = self._new_channel(transport)
        channel.exec_command(command)
        return channel

    def can_tar(self) -> bool:
        """Whether small files can come as streamed archives: the host runs commands for this user, with GNU tar and stat."""
        if self._can_tar is None:
            self._can_tar = False
            if self.stream_small_files:
                try:
                    channel = self.exec_channel('LC_ALL=C tar --version; LC_ALL=C stat --version')
                    try:
                        out = _ChannelStream(channel).read(1 << 16)
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
            kind, msg = client._request(CMD_OPEN, path, SFTP_FLAG_READ, paramiko.SFTPAttributes())
            if kind != CMD_HANDLE:
                raise SftpError('cannot open %s: unexpected SFTP reply %d' % (self.describe(path), kind))
            return _Reader(self, client, path, msg.get_binary(), self._sizes.get(path))
        return t.cast(t.BinaryIO, self.call('open', path, start))

    def open_write(self, path: str) -> t.BinaryIO:
        attrs = paramiko.SFTPAttributes()
        attrs.st_mode = 0o644
        flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL

        def start(client):
            kind, msg = client._request(CMD_OPEN, path, flags, attrs)
            if kind != CMD_HANDLE:
                raise SftpError('cannot create %s: unexpected SFTP reply %d' % (self.describe(path), kind))
            return _Writer(self, client, path, msg.get_binary())
        try:
            return t.cast(t.BinaryIO, self.call('create', path, start, retry=False))
        except SftpError as exc:
            if not exc.connection_lost:
                raise
        # The connection dropped while creating: the name may exist, half made; it is ours (a fresh temp name).
        self.remove(path)
        return t.cast(t.BinaryIO, self.call('create', path, start, retry=False))

    def makedirs(self, path: str) -> None:
        entry = self.stat(path)
        if entry is not None:
            if entry.kind != 'dir':
                raise SftpError('cannot create directory %s: a %s is in the way' % (self.describe(path), entry.kind), errno.ENOTDIR)
            return
        parent = posixpath.dirname(path)
        if parent and parent != path:
            self.makedirs(parent)
        try:
            self.call('create directory', path, lambda c: c.mkdir(path, 0o755))
        except SftpError:
            entry = self.stat(path)
            if entry is None or entry.kind != 'dir':
                raise

    def flush(self, paths: list[str]) -> None:
        """fsync@openssh.com on every file: all opens, then all fsyncs, in flight together."""
        if self._no_fsync or not paths:
            return

        def run(client):
            replies = _Replies(client)
            with _corked(client):
                opened = [(path, replies.send(CMD_OPEN, path, SFTP_FLAG_READ, paramiko.SFTPAttributes())) for path in paths]
            handles = []
            first: SftpError | None = None
            for path, num in opened:
                kind, msg = replies.wait(num)
                if kind == CMD_HANDLE:
                    handles.append((path, msg.get_binary()))
                elif first is None:
                    code, text = _status(msg) if kind == CMD_STATUS else (_FX_FAILURE, 'unexpected reply')
                    first = self.status_error(code, text, 'open for flushing', path)
            with _corked(client):
                synced = [(path, handle, replies.send(CMD_EXTENDED, 'fsync@openssh.com', handle)) for path, handle in handles]
            unsupported = False
            for path, handle, num in synced:
                kind, msg = replies.wait(num)
                code, text = _status(msg) if kind == CMD_STATUS else (_FX_FAILURE, 'unexpected reply')
                if code == _FX_OP_UNSUPPORTED:
                    unsupported = True
                elif code != _FX_OK and first is None:
                    first = self.status_error(code, text, 'flush', path)
            with _corked(client):
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
            if exc.connection_lost:
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
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions = []
            for link in self._links:
                _close_quietly(link.transport, None)
                link.transport = None
                link.generation += 1


def _entry(name: str, attr) -> Entry:
    mode = attr.st_mode or 0
    if stat.S_ISREG(mode):
        kind = 'file'
    elif stat.S_ISDIR(mode):
        kind = 'dir'
    elif stat.S_ISLNK(mode):
        kind = 'link'
    else:
        kind = 'other'
    return Entry(name, attr.st_size or 0, float(attr.st_mtime or 0), kind)


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


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'timed out' + (' (%s)' % text if text and text != 'timed out' else '')
    if isinstance(exc, EOFError) and not text:
        return 'connection closed by the server'
    return text or type(exc).__name__


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
        timeout=30.0 if timeout is None else float(timeout), retries=3 if retries is None else int(retries), warn=warn)
