# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The local location's commit: into place in one rename that never replaces, or link + unlink where there is none."""

from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils._locations import LIBC, local

MTIME = 1764021600.123456


@pytest.fixture(params=['renameat2', 'link'])
def commit_way(request, monkeypatch):
    """Both ways of committing: the kernel's renameat2, and link + unlink where the C library has none."""
    if request.param == 'link':
        monkeypatch.setitem(LIBC, 'renameat2', None)
    return request.param


def test_commit_moves_the_temp_into_place_with_the_mtime(tmp_path, commit_way):  # pylint: disable=redefined-outer-name,unused-argument
    temp, final = tmp_path / '.f.csv.tmp', tmp_path / 'f.csv'
    temp.write_bytes(b'abc\n')
    local.LocalLocation().commit(str(temp), str(final), MTIME)
    assert final.read_bytes() == b'abc\n'
    assert not temp.exists()
    assert final.stat().st_mtime_ns == 1764021600123456000


def test_commit_never_replaces_an_existing_file(tmp_path, commit_way):  # pylint: disable=redefined-outer-name,unused-argument
    temp, final = tmp_path / '.f.csv.tmp', tmp_path / 'f.csv'
    temp.write_bytes(b'new\n')
    final.write_bytes(b'old\n')
    with pytest.raises(FileExistsError):
        local.LocalLocation().commit(str(temp), str(final), MTIME)
    assert final.read_bytes() == b'old\n'
    assert temp.read_bytes() == b'new\n'  # left for the caller to discard


def test_commit_falls_back_when_the_filesystem_refuses_renameat2(tmp_path, monkeypatch):
    calls = []

    def refuse(*args):
        calls.append(args)
        local.ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setitem(LIBC, 'renameat2', refuse)
    temp, final = tmp_path / '.f.csv.tmp', tmp_path / 'f.csv'
    temp.write_bytes(b'abc\n')
    local.LocalLocation().commit(str(temp), str(final), MTIME)
    assert len(calls) == 1
    assert final.read_bytes() == b'abc\n' and not temp.exists()


def test_commit_reports_other_errors(tmp_path):
    final = tmp_path / 'f.csv'
    with pytest.raises(OSError) as info:
        local.LocalLocation().commit(str(tmp_path / 'missing.tmp'), str(final), MTIME)
    assert info.value.errno == errno.ENOENT
    assert not os.path.lexists(str(final))
