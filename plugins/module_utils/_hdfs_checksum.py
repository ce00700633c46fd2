# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

The HDFS file checksum (what WebHDFS ``GETFILECHECKSUM`` and ``hdfs dfs -checksum`` return), computed
locally from a stream so a file can be compared with its copy in HDFS without downloading it.

The algorithm, ``MD5-of-<c>MD5-of-<b>CRC32C`` (checked against Hadoop 3.4.1):

* the file is cut into HDFS blocks (``dfs.blocksize``, 128 MiB by default) and each block into chunks
  of ``b`` bytes (``dfs.bytes-per-checksum``, 512); the last chunk of the file may be short;
* each chunk's CRC32C (CRC32 on clusters with ``dfs.checksum.type=CRC32``) is written as a 4-byte
  big-endian integer; a block's MD5 is the MD5 of its CRCs;
* the file's MD5 is the MD5 of the block MD5s one after the other, zero-padded to the size of the
  Java buffer that held them: 32 bytes, doubled until they fit (64, 128, ...);
* ``c`` is the number of CRCs per block (block size / ``b``) for a file of more than one block, 0 for
  a file of one block; the checksum's bytes are ``b`` (4 bytes), ``c`` (8 bytes) and the MD5
  (16 bytes), big-endian: 28 bytes (WebHDFS prints them as hex, padded with zero bytes to 32);
* a file of no bytes has no block: its checksum is ``MD5-of-0MD5-of-0CRC32`` with the MD5 of 32
  zero bytes.

A file that HDFS stored in blocks of different sizes (``concat``, appends with new blocks) cannot be
computed from its length alone; it compares as different.
"""

from __future__ import annotations

import hashlib
import re
import struct
import typing as t
import zlib

CHUNK = 1024 * 1024


def _md5(data: bytes = b''):
    # Not for security: FIPS-mode Pythons refuse MD5 unless told so.
    return hashlib.md5(data, usedforsecurity=False)


EMPTY_MD5 = _md5(bytes(32)).hexdigest()


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c_python(data: bytes, crc: int = 0) -> int:
    """CRC32C (Castagnoli) in pure Python, table-driven: the fallback (about 4 MB/s, some 60 times slower than C)."""
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast_crc32c() -> tuple[t.Callable[[bytes], int], str]:
    """The fastest CRC32C at hand: google-crc32c (C), else the crc32c package, else pure Python."""
    try:
        import google_crc32c  # pylint: disable=import-outside-toplevel
        if getattr(google_crc32c, 'implementation', 'c') == 'c':
            return google_crc32c.value, 'google-crc32c'
    except ImportError:
        pass
    try:
        import crc32c as crc32c_package  # pylint: disable=import-outside-toplevel
        return crc32c_package.crc32c, 'crc32c'
    except ImportError:
        pass
    return crc32c_python, 'python'


crc32c, CRC32C_IMPLEMENTATION = _fast_crc32c()

_CRC_FUNCTIONS: dict[str, t.Callable[[bytes], int]] = {
    'CRC32C': crc32c,
    'CRC32': zlib.crc32,
}

_ALGORITHM = re.compile(r'^MD5-of-(\d+)MD5-of-(\d+)(CRC32C?)$')


class HdfsChecksum(t.NamedTuple):
    """An HDFS MD5-of-MD5-of-CRC file checksum; equal checksums mean equal content."""

    bytes_per_crc: int
    crc_per_block: int
    crc_type: str           # CRC32C or CRC32
    md5: str                # hex

    @property
    def algorithm(self) -> str:
        """The name WebHDFS and FsShell give it, e.g. ``MD5-of-0MD5-of-512CRC32C``."""
        return 'MD5-of-%dMD5-of-%d%s' % (self.crc_per_block, self.bytes_per_crc, self.crc_type)

    @property
    def hex(self) -> str:
        """The checksum's 28 bytes as hex, as ``hdfs dfs -checksum`` prints them."""
        return '%08x%016x%s' % (self.bytes_per_crc, self.crc_per_block, self.md5)

    @property
    def block_size(self) -> int:
        """The block size this checksum was computed with; 0 when the file had at most one block."""
        return self.crc_per_block * self.bytes_per_crc

    def compute_like(self, stream: t.BinaryIO) -> HdfsChecksum:
        """The checksum HDFS would give ``stream``'s bytes stored the way this checksum's file is."""
        return compute(stream, self.block_size, self.bytes_per_crc or 512, self.crc_type if self.bytes_per_crc else 'CRC32C')


def parse_webhdfs(file_checksum: dict) -> HdfsChecksum:
    """An ``HdfsChecksum`` from the ``FileChecksum`` object of a WebHDFS ``GETFILECHECKSUM`` answer."""
    try:
        algorithm = str(file_checksum['algorithm'])
        raw = bytes.fromhex(str(file_checksum['bytes']))
        length = int(file_checksum.get('length', 28))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError('not a WebHDFS FileChecksum: %r' % (file_checksum,)) from exc
    match = _ALGORITHM.match(algorithm)
    if match is None or length != 28 or len(raw) < 28:
        raise ValueError('unsupported HDFS checksum %s (%d bytes); only MD5-of-MD5-of-CRC32(C) is known' % (algorithm, length))
    bytes_per_crc, crc_per_block = struct.unpack('>IQ', raw[:12])
    checksum = HdfsChecksum(bytes_per_crc, crc_per_block, match.group(3), raw[12:28].hex())
    if checksum.algorithm != algorithm:
        raise ValueError('HDFS checksum %s does not match its bytes %s' % (algorithm, raw[:28].hex()))
    return checksum


def parse_fsshell(line: str) -> HdfsChecksum:
    """An ``HdfsChecksum`` from a line of ``hdfs dfs -checksum``: path, algorithm and hex, tab separated."""
    fields = line.rstrip('\n').split('\t')
    if len(fields) < 3:
        raise ValueError('not an FsShell -checksum line: %r' % line)
    return parse_webhdfs({'algorithm': fields[-2], 'bytes': fields[-1], 'length': 28})


def _crcs(data: bytes, bytes_per_crc: int, crc: t.Callable[[bytes], int]) -> bytes:
    """The big-endian CRCs of ``data``'s chunks of ``bytes_per_crc`` bytes (the last may be short)."""
    values = [crc(data[i:i + bytes_per_crc]) for i in range(0, len(data), bytes_per_crc)]
    return struct.pack('>%dI' % len(values), *values)


def compute(stream: t.BinaryIO, block_size: int = 0, bytes_per_crc: int = 512, crc_type: str = 'CRC32C') -> HdfsChecksum:
    """The HDFS checksum of ``stream``'s bytes stored in blocks of ``block_size`` bytes (0: one block)."""
    if crc_type not in _CRC_FUNCTIONS:
        raise ValueError('unknown CRC type %r' % crc_type)
    if bytes_per_crc <= 0 or block_size < 0 or block_size % bytes_per_crc:
        raise ValueError('block size %d is not a multiple of %d bytes per CRC' % (block_size, bytes_per_crc))
    crc = _CRC_FUNCTIONS[crc_type]
    blocks: list[bytes] = []
    block = _md5()
    in_block = 0
    pending = b''
    total = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        data = pending + chunk if pending else chunk
        whole = len(data) - len(data) % bytes_per_crc
        pos = 0
        while pos < whole:
            take = whole - pos if not block_size else min(whole - pos, block_size - in_block)
            block.update(_crcs(data[pos:pos + take], bytes_per_crc, crc))
            pos += take
            in_block += take
            if in_block == block_size:
                blocks.append(block.digest())
                block, in_block = _md5(), 0
        pending = data[whole:]
    if not total:
        return HdfsChecksum(0, 0, 'CRC32', EMPTY_MD5)
    if pending:
        block.update(_crcs(pending, bytes_per_crc, crc))
        in_block += len(pending)
    if in_block:
        blocks.append(block.digest())
    md5s = b''.join(blocks)
    padded = 32
    while padded < len(md5s):
        padded *= 2
    crc_per_block = block_size // bytes_per_crc if len(blocks) > 1 else 0
    return HdfsChecksum(bytes_per_crc, crc_per_block, crc_type, _md5(md5s + bytes(padded - len(md5s))).hexdigest())
