# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small files fetched ahead (_sftp/prefetch.py)."""

from __future__ import annotations

import os

import pytest

paramiko = pytest.importorskip('paramiko')

# pylint: disable=wrong-import-position,protected-access
from ansible_collections.mnaas.backup.plugins.module_utils import _copy  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations._sftp import prefetch  # noqa: E402
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation  # noqa: E402
from ansible_collections.mnaas.backup.tests.unit.plugins.module_utils._locations.sftp_fake import OLD  # noqa: E402


@pytest.mark.parametrize('announce', [False, True], ids=['per-file', 'fetched-ahead'])
def test_pull_through_engine(make, server, tmp_path, announce):
    """Source over SFTP, local destination: bytes and whole-second mtimes kept; a second plan skips
    everything with one listing per directory and no per-file requests."""
    contents = {'f%02d.csv' % i: os.urandom(i * 7919) for i in range(12)}
    contents['big.csv'] = os.urandom(1_500_000)
    for index, (name, data) in enumerate(sorted(contents.items())):
        server.add('/in/' + name, data, OLD + index)
    loc = make()
    dest = str(tmp_path / 'out')
    transfers = [_copy.Transfer('/in', dest, sync=True)]
    opts = _copy.Options(workers=3)
    plan = _copy.plan(transfers, loc, LocalLocation(), opts)
    if not announce:
        loc.prefetch = lambda paths: None   # the engine announces its reads; here each file is read on its own
    outcomes = _copy.execute(plan, loc, LocalLocation(), opts)
    assert _copy.summarize(outcomes)['copied'] == len(contents), [o.reason for o in outcomes]
    for index, (name, data) in enumerate(sorted(contents.items())):
        with open(os.path.join(dest, name), 'rb') as stream:
            assert stream.read() == data, name
        assert os.stat(os.path.join(dest, name)).st_mtime == OLD + index
    if announce:
        assert loc._prefetch.taken == len(contents) - 1, 'every small file comes fetched ahead'
    # The stat after each read came with the read: no LSTAT of its own.
    assert server.calls['lstat'] == len(contents)
    server.calls.clear()
    again = _copy.plan(transfers, loc, LocalLocation(), opts)
    assert {a.action for a in again.actions} == {_copy.SKIP}
    assert dict(server.calls) == {'listdir': 1}
    loc.close()


class Channel:
    """An exec channel whose output comes in the pieces given."""

    def __init__(self, pieces) -> None:
        self.pieces = list(pieces)

    def recv(self, size: int) -> bytes:
        if not self.pieces:
            return b''
        piece = self.pieces.pop(0)
        if len(piece) > size:
            self.pieces.insert(0, piece[size:])
        return piece[:size]


def test_channel_output_reads_across_pieces_until_the_end():
    """The one channel adapter: what tar reads (large reads) and what the GNU check reads (everything up to a size)."""
    data = os.urandom(100_000)
    pieces = [data[i:i + 7001] for i in range(0, len(data), 7001)]
    assert prefetch.channel_output(Channel(pieces)).read(1 << 16) == data[:1 << 16]
    assert prefetch.channel_output(Channel(pieces), 1 << 20).read() == data
    stream = prefetch.channel_output(Channel([b'GNU tar', b' 1.34\n']))
    assert stream.read(1 << 16) == b'GNU tar 1.34\n' and stream.read(10) == b''
