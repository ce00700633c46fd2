# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""paramiko's internals, fenced in (_sftp/fastpath.py): the receive buffer, the packet reader and the memory
settings that replace paramiko's, used only for the paramiko versions the tests cover."""

from __future__ import annotations

import collections
import os
import threading
import types

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from ansible_collections.mnaas.backup.plugins.module_utils._locations import LIBC  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import fastpath  # noqa: E402


# ---------------------------------------------------------------------------------------------
# The channel receive buffer that replaces paramiko's BufferedPipe

def test_chunk_pipe_reads_in_order_without_losing_bytes():
    pipe = fastpath._ChunkPipe()
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
    recv = fastpath._Recv(types.SimpleNamespace(recv=pipe.read, in_buffer=pipe))
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
    an OpenSSH server by paramiko 2.x); the receiver reads with ``fastpath._read_message``. Counts how often
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
    fastpath.speed_up_packets(types.SimpleNamespace(packetizer=receiver))
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


# ---------------------------------------------------------------------------------------------
# Memory

def test_freed_memory_is_kept_once_per_process(monkeypatch):
    """mallopt is asked once: trim threshold, then mmap threshold; not at all when TUNE_MALLOC is off or
    when the C library has no mallopt."""
    calls = []
    monkeypatch.setitem(LIBC, 'mallopt', lambda *args: calls.append(args))
    monkeypatch.setattr(fastpath, '_MALLOC_TUNED', False)
    monkeypatch.setattr(fastpath, 'TUNE_MALLOC', False)
    fastpath.keep_freed_memory()
    assert calls == []
    monkeypatch.setattr(fastpath, 'TUNE_MALLOC', True)
    fastpath.keep_freed_memory()
    fastpath.keep_freed_memory()
    assert calls == [(-1, fastpath.TRIM_THRESHOLD), (-3, fastpath.MMAP_THRESHOLD)]
    monkeypatch.setattr(fastpath, '_MALLOC_TUNED', False)
    monkeypatch.setitem(LIBC, 'mallopt', None)
    fastpath.keep_freed_memory()
    assert fastpath._MALLOC_TUNED and len(calls) == 2


# ---------------------------------------------------------------------------------------------
# The versions covered, and the way back to paramiko's own code

@pytest.mark.parametrize('version, covered', [('2.11.1', False), ('2.12.0', True), ('3.4.1', True), ('5.1.0', True),
                                              ('5.1.7', True), ('5.2.0', False), ('6.0', False), ('unknown', False)])
def test_covered_versions(monkeypatch, version, covered):
    monkeypatch.setattr(paramiko, '__version__', version)
    assert fastpath.covered() is covered


@pytest.mark.parametrize('version', ['2.11.1', '99.0.0'])
def test_a_paramiko_outside_the_range_falls_back_with_a_warning(make, server, monkeypatch, version):
    """Never a failure: paramiko's own code, and one warning naming the version and the host."""
    monkeypatch.setattr(paramiko, '__version__', version)
    server.add('/in/f', b'abc')
    warnings = []
    loc = make(warn=warnings.append, fast_path=True)
    assert loc.stat('/in/f').size == 3
    with loc.open_read('/in/f') as reader:
        assert reader.read() == b'abc'
    assert loc.fast_path is False
    assert len(warnings) == 1 and 'paramiko %s' % version in warnings[0] and 'sftp.example' in warnings[0], warnings
    assert '2.12 to 5.1' in warnings[0]
    server.drop['lstat'] = 1
    assert loc.stat('/in/f').size == 3 and server.connects == 2
    assert len(warnings) == 1, 'once per location'


def test_no_warning_when_the_fast_path_is_off(make, monkeypatch):
    monkeypatch.setattr(paramiko, '__version__', '99.0.0')
    warnings = []
    loc = make(warn=warnings.append, fast_path=False)
    assert loc.stat('/').kind == 'dir'
    assert warnings == []


@pytest.mark.parametrize('fast', [True, False], ids=['fast-path', 'paramiko-path'])
def test_paramiko_is_left_alone_without_the_fast_path(fast, tmp_path):
    """The transports, channels and clients get the replacements with the fast path only."""
    from ansible_collections.mnaas.backup.plugins.module_utils._locations import sftp  # pylint: disable=import-outside-toplevel
    import socket  # pylint: disable=import-outside-toplevel
    left, right = socket.socketpair()
    loc = sftp.SftpLocation('h', fast_path=fast, known_hosts=str(tmp_path / 'known_hosts'))
    transport = loc._make_transport(left)
    try:
        assert ('read_message' in transport.packetizer.__dict__) is fast
        channel = types.SimpleNamespace(in_buffer=None, settimeout=lambda timeout: None)
        loc._new_channel(types.SimpleNamespace(open_session=lambda **kwargs: channel))
        assert isinstance(channel.in_buffer, fastpath._ChunkPipe) is fast
    finally:
        transport.close()
        left.close()
        right.close()
