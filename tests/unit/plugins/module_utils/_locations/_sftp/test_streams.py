# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files read and written with many requests in flight (_sftp/streams.py)."""

from __future__ import annotations

import os

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from ansible_collections.mnaas.backup.plugins.module_utils import _copy  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import fastpath, streams  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation  # noqa: E402
from ansible_collections.mnaas.backup.tests.unit.plugins.module_utils._locations.sftp_fake import OLD, read_all  # noqa: E402


def test_short_reads_and_a_file_that_grew(make, server):
    """A server answering 1,000 bytes a read, and a file longer than its listing: all bytes, in order;
    the stat after such a read is asked of the server, not taken from the read."""
    data = os.urandom(150_000)
    server.add('/in/f', data[:10])
    loc = make()
    assert loc.listdir('/in')['f'].size == 10
    server.files['/in/f'][0] = bytearray(data)
    server.max_read = 1000
    with loc.open_read('/in/f') as reader:
        assert read_all(reader) == data
    server.calls.clear()
    assert loc.stat('/in/f').size == len(data)
    assert server.calls['lstat'] == 1


def test_dropped_connection_reconnects_and_the_file_in_flight_is_read_again(make, server, tmp_path):
    """The connection drops in the middle of a file: the next call reconnects, the copy engine reads that file again
    from the start, and every file is copied whole (issue 6, F28)."""
    for index in range(6):
        server.add('/in/f%d' % index, os.urandom(50_000), OLD + index)
    loc = make(connections=1)
    loc.prefetch = lambda paths: None   # the drop must hit a read in flight, not the engine's prefetch hint
    opts = _copy.Options(workers=1)
    transfers = [_copy.Transfer('/in', str(tmp_path / 'out'), sync=True)]
    plan = _copy.plan(transfers, loc, LocalLocation(), opts)
    server.drop_reply = server.replies + 12
    outcomes = {o.action.name: o for o in _copy.execute(plan, loc, LocalLocation(), opts)}
    assert {name: o.status for name, o in outcomes.items()} == {'f%d' % i: 'copied' for i in range(6)}, outcomes
    assert server.connects == 2     # the drop happened, and one reconnection served the rest
    for index in range(6):
        assert (tmp_path / 'out' / ('f%d' % index)).read_bytes() == server.files['/in/f%d' % index][0]
    assert sorted(os.listdir(str(tmp_path / 'out'))) == ['f%d' % i for i in range(6)], 'a temp left'


def test_freed_memory_is_kept_from_the_first_large_file_on(make, server, monkeypatch):
    """With the fast path only: without it, glibc's settings are left alone."""
    calls = []
    monkeypatch.setattr(fastpath, 'keep_freed_memory', lambda: calls.append(1))
    monkeypatch.setattr(streams, 'MALLOC_FILE_MIN', 100_000)
    server.add('/in/small', os.urandom(99_999))
    server.add('/in/large', os.urandom(100_000))
    loc = make()
    loc.listdir('/in')
    with loc.open_read('/in/small') as reader:
        read_all(reader)
    assert calls == []
    with loc.open_read('/in/large') as reader:
        read_all(reader)
    assert calls == ([1] if loc.fast_path else [])
    loc.close()
