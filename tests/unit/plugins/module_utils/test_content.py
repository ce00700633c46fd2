# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import gzip
import hashlib
import io
import os

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _content
from ansible_collections.mnaas.backup.plugins.module_utils._content import read_content


def content_of(data: bytes, name: str = 'x.csv', header_lines: int = 0, count: bool = True) -> _content.Content:
    return read_content(io.BytesIO(data), name, header_lines, count)


@pytest.mark.parametrize('data, records', [
    (b'', 0),
    (b'a\n', 1),
    (b'a\nb\nc\n', 3),
    (b'a\nb\nc', 3),               # unterminated last line counts
    (b'a', 1),
    (b'\n', 1),                    # one empty line
    (b'\n\n', 2),
    (b'a\r\nb\r\n', 2),            # CRLF: one record per line
    (b'a\r\nb\r\nc', 3),
    (b'a\r\nb\r', 2),              # a final CR is an unterminated line, not a terminator
])
def test_records_plain(data, records):
    assert content_of(data).records == records


@pytest.mark.parametrize('data, header_lines, records', [
    (b'h\na\nb\n', 1, 2),
    (b'h\na\nb', 1, 2),
    (b'h1\nh2\na\n', 2, 1),
    (b'h\n', 1, 0),
    (b'h\n', 5, 0),                # more header lines than lines: never negative
    (b'', 3, 0),
])
def test_header_lines(data, header_lines, records):
    assert content_of(data, header_lines=header_lines).records == records


@pytest.mark.parametrize('chunk', [1, 2, 3, 7, 64])
@pytest.mark.parametrize('data', [b'a\nbb\nccc', b'a\nbb\nccc\n', b'\n\n\nx', b'one line no newline'])
def test_records_independent_of_chunk_size(monkeypatch, chunk, data):
    monkeypatch.setattr(_content, 'CHUNK', chunk)
    assert content_of(data).records == data.count(b'\n') + (0 if data.endswith(b'\n') else 1)
    assert content_of(data).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize('data', [b'', b'x', b'a\nb\n' * 1000, os.urandom(3 * 1024 + 17)])
def test_sha256_and_size_equal_hashlib(monkeypatch, data):
    monkeypatch.setattr(_content, 'CHUNK', 1024)
    result = content_of(data, 'f.bin')
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


def test_count_false_reports_zero_records():
    result = content_of(b'a\nb\n', count=False)
    assert result.records == 0
    assert result.size == 4


def test_sha256_of_gz_is_of_compressed_bytes():
    raw = gzip.compress(b'a\nb\n', mtime=0)
    result = content_of(raw, 'f.csv.gz')
    assert result.sha256 == hashlib.sha256(raw).hexdigest()
    assert result.size == len(raw)
    assert result.records == 2


@pytest.mark.parametrize('text, header_lines, records', [
    (b'h\na\nb\n', 0, 3),
    (b'h\na\nb\n', 1, 2),
    (b'h\na\nb', 1, 2),            # unterminated last line inside the gzip data
    (b'a\r\nb\r\n', 0, 2),
    (b'', 0, 0),
    (b'h\n', 4, 0),
])
def test_records_gz_single_member(text, header_lines, records):
    assert content_of(gzip.compress(text, mtime=0), 'f.csv.gz', header_lines).records == records


def test_records_gz_not_counted_for_plain_name():
    """Only names ending in .gz are decompressed: the same bytes under another name are counted raw."""
    raw = gzip.compress(b'a\nb\nc\n' * 50, mtime=0)
    assert content_of(raw, 'f.csv.gz').records == 150
    assert content_of(raw, 'f.csv').records == raw.count(b'\n') + (0 if raw.endswith(b'\n') else 1)


@pytest.mark.parametrize('members, records', [
    ([b'a\nb\n', b'c\n'], 3),
    ([b'a\nb', b'c\n'], 2),        # lines are counted over the concatenated stream, like zcat | wc -l
    ([b'a\n', b'', b'b\n'], 2),    # an empty member in the middle
    ([b'a\n'] * 10, 10),
])
def test_records_gz_multi_member(members, records):
    raw = b''.join(gzip.compress(m, mtime=0) for m in members)
    assert content_of(raw, 'f.csv.gz').records == records


def test_gz_member_boundary_exactly_at_chunk_boundary(monkeypatch):
    first = gzip.compress(b'1\n2\n3\n' * 100, mtime=0)
    second = gzip.compress(b'4\n5\n', mtime=0)
    monkeypatch.setattr(_content, 'CHUNK', len(first))
    assert content_of(first + second, 'f.gz').records == 302


@pytest.mark.parametrize('chunk', [1, 2, 5, 10, 11, 17, 18, 19, 20, 33, 4096])
def test_gz_multi_member_any_chunk_size(monkeypatch, chunk):
    """Boundaries falling inside headers, trailers and exactly between members."""
    raw = b''.join(gzip.compress(b'row\n' * n, mtime=0) for n in (3, 0, 7, 1))
    monkeypatch.setattr(_content, 'CHUNK', chunk)
    result = content_of(raw, 'f.csv.gz')
    assert result.records == 11
    assert result.sha256 == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize('cut', [1, 4, 8, 10, 20])
def test_truncated_gz_raises_value_error(cut):
    raw = gzip.compress(b'a\nb\nc\n' * 100, mtime=0)
    with pytest.raises(ValueError, match='truncated'):
        content_of(raw[:-cut], 'broken.csv.gz')


def test_truncated_second_member_raises_value_error():
    raw = gzip.compress(b'a\n', mtime=0) + gzip.compress(b'b\nc\n', mtime=0)[:-3]
    with pytest.raises(ValueError, match='broken.gz'):
        content_of(raw, 'broken.gz')


def test_truncated_gz_not_checked_without_counting():
    raw = gzip.compress(b'a\nb\n', mtime=0)[:-4]
    assert content_of(raw, 'broken.gz', count=False).sha256 == hashlib.sha256(raw).hexdigest()


def test_empty_gz_file_counts_zero():
    assert content_of(b'', 'empty.csv.gz').records == 0
