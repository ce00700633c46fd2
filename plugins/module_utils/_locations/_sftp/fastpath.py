# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

paramiko's internals, fenced in: the only file of the collection that uses paramiko's private names.

- The pipelined requests: ``request``, ``async_request``, ``pump`` and ``attributes`` call SFTPClient's private
  ``_request``, ``_async_request`` and ``_read_response`` and SFTPAttributes' ``_from_msg`` (the ones paramiko's own
  SFTPFile uses, the same from paramiko 2.7 to 5.x). They are used with every paramiko version.
- The fast path, for the paramiko versions the tests cover (FAST_PATH_OLDEST to FAST_PATH_NEWEST) and unless the
  location's ``sftp_fast_path`` option is off; any other version gets paramiko's own code and a warning:
  - each transport's ``Packetizer.read_message`` is replaced, for AES-CTR with an HMAC (what paramiko 2.x agrees with
    OpenSSH), by one with fewer copies (``_read_message``, on the packetizer's name-mangled state);
  - each channel's receive buffer is replaced by one that keeps chunks instead of copying bytes into an array and
    shifting it on every read (``_ChunkPipe``), the client's ``_read_all`` reads whole chunks (``_Recv``) and its
    ``_read_response`` leaves the bytes of a DATA reply in those chunks (measured here: 26 MB/s for one large file
    with the stock ones);
  - requests made together leave in one write (``corked``, which replaces the client's ``_send_packet``);
  - glibc is asked to keep freed memory for reuse (``keep_freed_memory``).

Measured with tests/services/edge_nodes/bench_sftp.py.
"""

# pylint: disable=protected-access

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import hmac
import re
import socket
import struct
import threading
import time
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._locations import libc
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp.base import CMD_DATA, CMD_STATUS, paramiko

# The paramiko versions (major, minor) the tests cover, both ends included: Debian 12's and the newest on PyPI.
FAST_PATH_OLDEST = (2, 12)
FAST_PATH_NEWEST = (5, 1)

# Freed memory the process keeps for reuse (see keep_freed_memory).
TUNE_MALLOC = True
TRIM_THRESHOLD = 64 * 1024 * 1024
MMAP_THRESHOLD = 4 * 1024 * 1024
_MALLOC_TUNED = False


def paramiko_version() -> str:
    return str(getattr(paramiko, '__version__', 'unknown'))


def covered() -> bool:
    """Whether the installed paramiko is one the tests cover (the fast path is used only with those)."""
    numbers = [int(n) for n in re.findall(r'\d+', paramiko_version())[:2]]
    return len(numbers) == 2 and FAST_PATH_OLDEST <= tuple(numbers) <= FAST_PATH_NEWEST


# ---------------------------------------------------------------------------------------------
# Pipelined requests (every paramiko version)

def request(client, kind: int, *args) -> tuple:
    """One request, waiting for its reply (paramiko raises IOError for an error status)."""
    return client._request(kind, *args)


def async_request(client, target, kind: int, *args) -> int:
    """Send a request; its reply goes to ``target._async_response(kind, msg, num)``. Returns its number."""
    return client._async_request(target, kind, *args)


def attributes(msg):
    """The SFTPAttributes of an ATTRS reply."""
    return paramiko.SFTPAttributes._from_msg(msg)


class _DataReply:
    """An SFTP DATA reply whose bytes stay in the chunks they arrived in."""

    def __init__(self, parts: list[bytes], size: int) -> None:
        self.parts = parts
        self.size = size

    def get_string(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b''.join(self.parts)


def data_parts(msg) -> list[bytes]:
    """The bytes of a DATA reply, as the chunks they arrived in."""
    return msg.parts if isinstance(msg, _DataReply) else [msg.get_string()]


@contextlib.contextmanager
def corked(client) -> t.Iterator[None]:
    """Requests made inside leave together in one write: one SSH packet (or a few) instead of one
    per request, on a client with the fast path. The client must be used by this thread only (each thread has its own)."""
    if getattr(client, '_mnaas_recv', None) is None:
        yield
        return
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


def pump(client) -> None:
    """Read one reply (waiting for it), then every one already arrived, with the requests they prompt sent together."""
    with corked(client):
        client._read_response()
        recv = getattr(client, '_mnaas_recv', None)
        while recv is not None and recv.has_packet():
            client._read_response()


# ---------------------------------------------------------------------------------------------
# Channels and clients

def sftp_client(channel, fast: bool):
    """An SFTP client on ``channel`` (its subsystem started); with ``fast``, reading replies with fewer copies."""
    client = paramiko.SFTPClient(channel)
    if fast:
        client._mnaas_recv = _Recv(channel)
        client._read_all = client._mnaas_recv.read_all
        client._read_response = functools.partial(_read_response, client)
    return client


def receive_buffer(channel) -> None:
    """Give a new channel (before anything is received on it) a receive buffer that does not copy."""
    channel.in_buffer = _ChunkPipe()


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


# ---------------------------------------------------------------------------------------------
# The packet reader

_PK = '_Packetizer__'     # paramiko's Packetizer keeps its state in name-mangled attributes
_PK_STATE = ('block_engine_in', 'block_size_in', 'mac_engine_in', 'mac_key_in', 'mac_size_in', 'etm_in', 'compress_engine_in',
             'dump_packets', 'remainder', 'socket', 'closed', 'sequence_number_in', 'received_bytes', 'received_packets',
             'received_bytes_overflow', 'received_packets_overflow', 'need_rekey')


def speed_up_packets(transport) -> None:
    """Have the transport's packetizer read messages with ``_read_message`` (when it has the state that expects)."""
    packetizer = getattr(transport, 'packetizer', None)
    if packetizer is not None and all(_PK + name in packetizer.__dict__ for name in _PK_STATE):
        packetizer.read_message = functools.partial(_read_message, packetizer)


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


# ---------------------------------------------------------------------------------------------
# Memory

def keep_freed_memory() -> None:
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
