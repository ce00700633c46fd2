# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""


from __future__ import annotations

import hashlib
import typing as t
import zlib

CHUNK = 1024 * 1024


class Content(t.NamedTuple):
    """What one read of a file tells: its bytes' SHA-256, its size and its record count."""

    sha256: str
    size: int
    records: int


class _LineCounter:
    """Counts newline-terminated lines; a final line without a newline counts too."""

    def __init__(self) -> None:
        self.lines = 0
        self.last = b''

    def feed(self, data: bytes) -> None:
        if data:
            self.lines += data.count(b'\n')
            self.last = data[-1:]

    def total(self) -> int:
        return self.lines + (1 if self.last not in (b'', b'\n') else 0)


class _Gunzip:
    """Streams a gzip file (several members allowed) into a line counter."""

    def __init__(self, counter: _LineCounter) -> None:
        self.counter = counter
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.in_member = False

    def feed(self, data: bytes) -> None:
        while data:
            self.in_member = True
            try:
                self.counter.feed(self.inflater.decompress(data))
            except zlib.error as exc:
                raise ValueError('not valid gzip data (%s)' % exc) from None
            if not self.inflater.eof:
                return
            data = self.inflater.unused_data
            self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self.in_member = False

    def finish(self, path: str) -> None:
        self.counter.feed(self.inflater.flush())
        if self.in_member and not self.inflater.eof:
            raise ValueError('%s: truncated gzip data' % path)


def read_content(stream: t.BinaryIO, path: str, header_lines: int = 0, count: bool = True) -> Content:
    """Hash ``stream`` and count its records in one pass; ``.gz`` names are decompressed for counting."""
    digest = hashlib.sha256()
    size = 0
    counter = _LineCounter()
    gunzip = _Gunzip(counter) if path.endswith('.gz') else None
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        if count:
            if gunzip is not None:
                gunzip.feed(chunk)
            else:
                counter.feed(chunk)
    if gunzip is not None and count and size:
        gunzip.finish(path)
    records = max(counter.total() - header_lines, 0) if count else 0
    return Content(digest.hexdigest(), size, records)
