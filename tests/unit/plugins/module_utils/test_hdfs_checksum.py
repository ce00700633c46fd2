# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The locally computed HDFS checksum, against values a real HDFS (Hadoop 3.4.1) returned.

The vectors were written with WebHDFS CREATE (``blocksize=1024``) or ``hdfs dfs -D dfs.blocksize=1024
-D dfs.checksum.type=CRC32 -put`` and read back with GETFILECHECKSUM / ``hdfs dfs -checksum``; the data
of each is ``random.Random(size).randbytes(size)``. tests/system/test_webhdfs_location.py checks
the same against the running server.
"""

from __future__ import annotations

import io
import os
import random
import zlib

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _hdfs_checksum as hc

# size: (algorithm, the 32 bytes WebHDFS returns as hex), blocks of 1024 bytes, CRC32C.
SERVER_CRC32C = {
    1: ('MD5-of-0MD5-of-512CRC32C', '000002000000000000000000872c2987630eeb9dc55db184cdcc3f2800000000'),
    511: ('MD5-of-0MD5-of-512CRC32C', '00000200000000000000000098365a057ad0aafc232b5b06d753eabd00000000'),
    512: ('MD5-of-0MD5-of-512CRC32C', '000002000000000000000000142af79aa0c057d02877e2bae1dfa7f100000000'),
    513: ('MD5-of-0MD5-of-512CRC32C', '000002000000000000000000a87c0d5e2f69a40f45da24ab32c3753f00000000'),
    1024: ('MD5-of-0MD5-of-512CRC32C', '000002000000000000000000e8159f7e8ca906de383845be6305ead900000000'),
    2048: ('MD5-of-2MD5-of-512CRC32C', '0000020000000000000000021202f01ff62fd859c9824bdc1e7c2d3000000000'),      # 2 blocks: 32 bytes of MD5s
    3000: ('MD5-of-2MD5-of-512CRC32C', '0000020000000000000000027506b4a04876aedf57f43762b4c10f9800000000'),      # 3 blocks: padded to 64
    5127: ('MD5-of-2MD5-of-512CRC32C', '0000020000000000000000021f49675f85c834a23aa8ec59053cdd3900000000'),      # 6 blocks: padded to 128
    17409: ('MD5-of-2MD5-of-512CRC32C', '00000200000000000000000268e7b11f4b9626e5b09b3cdedad68bec00000000'),     # 18 blocks: padded to 512
}
# size: what `hdfs dfs -checksum` printed, blocks of 1024 bytes, dfs.checksum.type=CRC32.
SERVER_CRC32 = {
    1000: 'MD5-of-0MD5-of-512CRC32\t000002000000000000000000c52fe84f780baad596599c241c1b0ea5',
    2500: 'MD5-of-2MD5-of-512CRC32\t0000020000000000000000023deb14c44662c4828df4b73441eabf09',
}
# What the server answers for a file of no bytes, and for b'hello\n' in one default block.
SERVER_EMPTY = {'algorithm': 'MD5-of-0MD5-of-0CRC32', 'bytes': '00000000000000000000000070bc8f4b72a86921468bf8e8441dce5100000000', 'length': 28}
SERVER_HELLO = {'algorithm': 'MD5-of-0MD5-of-512CRC32C', 'bytes': '0000020000000000000000002b559725e23eb93541b0675b41e25ab300000000', 'length': 28}


def data_of(size: int) -> bytes:
    return random.Random(size).randbytes(size)


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes a read, as sockets do."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__()
        self.data = data
        self.pos = 0
        self.step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.step if size < 0 else min(size, self.step)
        chunk = self.data[self.pos:self.pos + size]
        self.pos += len(chunk)
        return chunk


def test_crc32c_check_value():
    # The CRC-32C check value of the catalogue of parametrised CRC algorithms, and RFC 3720's 32 zero bytes.
    assert hc.crc32c(b'123456789') == 0xE3069283
    assert hc.crc32c_python(b'123456789') == 0xE3069283
    assert hc.crc32c_python(bytes(32)) == 0x8A9136AA
    assert hc.crc32c_python(b'') == 0


def test_fast_crc32c_is_used_when_installed():
    # requirements-nodes.txt (in the test venv too) installs google-crc32c; the pure-Python table is the fallback only.
    assert hc.CRC32C_IMPLEMENTATION in ('google-crc32c', 'crc32c')


@pytest.mark.parametrize('size', [0, 1, 3, 255, 511, 512, 513, 4096, 65536 + 7])
def test_python_fallback_equals_library(size):
    rng = random.Random(size)
    for _round in range(5):
        data = rng.randbytes(size)
        assert hc.crc32c_python(data) == hc.crc32c(data)


def test_python_fallback_gives_the_same_checksums(monkeypatch):
    monkeypatch.setitem(hc._CRC_FUNCTIONS, 'CRC32C', hc.crc32c_python)
    for size in (513, 3000):
        algorithm, raw = SERVER_CRC32C[size]
        assert hc.compute(io.BytesIO(data_of(size)), 1024) == hc.parse_webhdfs({'algorithm': algorithm, 'bytes': raw, 'length': 28})


@pytest.mark.parametrize('size', sorted(SERVER_CRC32C))
def test_crc32c_checksums_equal_the_servers(size):
    algorithm, raw = SERVER_CRC32C[size]
    computed = hc.compute(io.BytesIO(data_of(size)), block_size=1024)
    assert computed.algorithm == algorithm
    assert computed.hex == raw[:56]
    assert computed == hc.parse_webhdfs({'algorithm': algorithm, 'bytes': raw, 'length': 28})


@pytest.mark.parametrize('size', sorted(SERVER_CRC32))
def test_crc32_checksums_equal_fsshell(size):
    expected = hc.parse_fsshell('/vec/crc32-%d\t%s\n' % (size, SERVER_CRC32[size]))
    assert hc.compute(io.BytesIO(data_of(size)), 1024, crc_type='CRC32') == expected
    assert expected.crc_type == 'CRC32'


def test_empty_file_is_special():
    expected = hc.parse_webhdfs(SERVER_EMPTY)
    assert expected == hc.HdfsChecksum(0, 0, 'CRC32', hc.EMPTY_MD5)
    assert hc.compute(io.BytesIO(b'')) == expected
    assert hc.compute(io.BytesIO(b''), 1024) == expected
    # Compared like a non-empty file: an empty local file is not the same as a non-empty remote one.
    assert hc.parse_webhdfs(SERVER_HELLO).compute_like(io.BytesIO(b'')) != hc.parse_webhdfs(SERVER_HELLO)
    assert expected.compute_like(io.BytesIO(b'x')) != expected
    assert expected.compute_like(io.BytesIO(b'')) == expected


def test_one_default_block():
    remote = hc.parse_webhdfs(SERVER_HELLO)
    assert remote.algorithm == 'MD5-of-0MD5-of-512CRC32C'
    assert remote.block_size == 0
    assert remote.compute_like(io.BytesIO(b'hello\n')) == remote
    assert remote.compute_like(io.BytesIO(b'hellO\n')) != remote


def test_compute_like_uses_the_remote_block_size():
    algorithm, raw = SERVER_CRC32C[5127]
    remote = hc.parse_webhdfs({'algorithm': algorithm, 'bytes': raw, 'length': 28})
    assert remote.block_size == 1024
    assert remote.compute_like(io.BytesIO(data_of(5127))) == remote
    changed = bytearray(data_of(5127))
    changed[4000] ^= 1
    assert remote.compute_like(io.BytesIO(bytes(changed))) != remote


@pytest.mark.parametrize('step', [1, 7, 511, 512, 1000, 4096])
def test_short_reads_do_not_matter(step):
    data = data_of(17409)
    assert hc.compute(Trickle(data, step), 1024) == hc.compute(io.BytesIO(data), 1024)


def test_block_boundaries_inside_a_read(monkeypatch):
    # Reads of 1,536 bytes straddle 1,024-byte blocks.
    monkeypatch.setattr(hc, 'CHUNK', 1536)
    algorithm, raw = SERVER_CRC32C[17409]
    assert hc.compute(io.BytesIO(data_of(17409)), 1024).hex == raw[:56]
    assert algorithm.startswith('MD5-of-2')


def test_large_random_data_one_block_against_definition():
    data = os.urandom(300_000)
    crcs = b''.join(hc.crc32c(data[i:i + 512]).to_bytes(4, 'big') for i in range(0, len(data), 512))
    block = hc._md5(crcs).digest()
    assert hc.compute(io.BytesIO(data)).md5 == hc._md5(block + bytes(16)).hexdigest()


def test_crc32_type_uses_zlib():
    data = data_of(600)
    crcs = zlib.crc32(data[:512]).to_bytes(4, 'big') + zlib.crc32(data[512:]).to_bytes(4, 'big')
    assert hc.compute(io.BytesIO(data), crc_type='CRC32').md5 == hc._md5(hc._md5(crcs).digest() + bytes(16)).hexdigest()


@pytest.mark.parametrize('bad', [
    {},
    {'algorithm': 'MD5-of-0MD5-of-512CRC32C', 'bytes': 'zz', 'length': 28},
    {'algorithm': 'COMPOSITE-CRC32C', 'bytes': '00' * 4, 'length': 4},
    {'algorithm': 'MD5-of-0MD5-of-512CRC32C', 'bytes': '00' * 10, 'length': 28},
    {'algorithm': 'MD5-of-9MD5-of-512CRC32C', 'bytes': SERVER_HELLO['bytes'], 'length': 28},   # name and bytes disagree
])
def test_parse_webhdfs_refuses_what_it_cannot_compute(bad):
    with pytest.raises(ValueError):
        hc.parse_webhdfs(bad)


def test_parse_fsshell_refuses_other_lines():
    with pytest.raises(ValueError):
        hc.parse_fsshell('checksum: `/x: No such file or directory')


@pytest.mark.parametrize('args', [(100, 512), (1024, 0), (-512, 512)])
def test_compute_refuses_bad_geometry(args):
    with pytest.raises(ValueError):
        hc.compute(io.BytesIO(b'x'), *args)


def test_compute_refuses_unknown_crc():
    with pytest.raises(ValueError):
        hc.compute(io.BytesIO(b'x'), crc_type='CRC64')
