# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults found by the reliability suite (issue 6): temp names of 255-byte file names, short writes on a filling filesystem."""

from __future__ import annotations

import os

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _copy
from ansible_collections.mnaas.backup.plugins.module_utils._locations import NAME_MAX, TEMP_MARK, is_temp_name, temp_name
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation

TOKEN = '0123456789ab'


def test_short_name_keeps_the_whole_name():
    assert temp_name('ACME_Traffic_1.csv', TOKEN) == '.ACME_Traffic_1.csv' + TEMP_MARK + TOKEN


@pytest.mark.parametrize('name', [
    'A' * 255,
    'A' * 220 + '.csv',
    'é' * 127,                       # 254 bytes of two-byte characters: never cut inside one
    '日本' * 42,                      # 252 bytes of three-byte characters
])
def test_long_name_is_cut_to_fit(name):
    temp = temp_name(name, TOKEN)
    assert len(temp.encode('utf-8')) <= NAME_MAX
    assert is_temp_name(temp) and temp.endswith(TEMP_MARK + TOKEN)
    assert temp.startswith('.' + name[:10])


def test_two_long_names_sharing_a_prefix_get_different_temps():
    first, second = 'A' * 250 + '1.csv', 'A' * 250 + '2.csv'
    assert temp_name(first, TOKEN) != temp_name(second, TOKEN)


def test_a_255_byte_file_is_copied(tmp_path):
    """Before the fix: OSError [Errno 36] File name too long on the temp, the file never backed up."""
    src, dest = tmp_path / 'src', tmp_path / 'dest'
    src.mkdir()
    names = ['ACME_Traffic_' + 'x' * (NAME_MAX - 17) + '.csv', 'ACME_Traffic_' + 'x' * (NAME_MAX - 18) + 'y.csv']
    for name in names:
        assert len(name.encode()) == NAME_MAX
        (src / name).write_bytes(name.encode())
    loc = LocalLocation()
    transfers = [_copy.Transfer(str(src), str(dest), tuple(_copy.FileSpec(n) for n in names))]
    outcomes = _copy.execute(_copy.plan(transfers, loc, loc, _copy.Options()), loc, loc, _copy.Options())
    assert [(o.action.name, o.status) for o in outcomes] == [(n, 'copied') for n in sorted(names)]
    assert sorted(os.listdir(dest)) == sorted(names)
    for name in names:
        assert (dest / name).read_bytes() == name.encode()


def test_a_short_write_is_never_committed(tmp_path):
    """A write(2) that takes only part of a chunk (a filesystem filling up) fails the file instead of committing it
    truncated (issue 6: found with a full tmpfs). RLIMIT_FSIZE makes the kernel cut the write short the same way."""
    resource = pytest.importorskip('resource')
    signal = pytest.importorskip('signal')
    src, dest = tmp_path / 'src', tmp_path / 'dest'
    src.mkdir()
    dest.mkdir()
    name = 'ACME_Traffic_big.csv'
    (src / name).write_bytes(b'x' * (2 << 20))  # two chunks of the copy
    loc = LocalLocation()
    transfers = [_copy.Transfer(str(src), str(dest), (_copy.FileSpec(name),))]
    the_plan = _copy.plan(transfers, loc, loc, _copy.Options())
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 19, limits[1]))  # 1.5 MiB: the second chunk is cut short
    try:
        outcomes = _copy.execute(the_plan, loc, loc, _copy.Options(fsync=False))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert [o.status for o in outcomes] == ['failed'], outcomes
    assert 'File too large' in outcomes[0].reason
    assert os.listdir(dest) == []
