# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One customer's destination refusing writes fails that customer's files only (issue 6, found with chattr +i)."""

from __future__ import annotations

import errno
import os

from ansible_collections.mnaas.backup.plugins.module_utils import _copy
from ansible_collections.mnaas.backup.plugins.module_utils._copy import FileSpec, Options, Transfer
from ansible_collections.mnaas.backup.plugins.module_utils._locations import temp_name
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation


class Refusing(LocalLocation):
    """A local location where some directories refuse to be created and some files to be removed (as chattr +i does)."""

    def __init__(self, no_mkdir=(), no_remove=()) -> None:
        self.no_mkdir, self.no_remove = set(no_mkdir), set(no_remove)

    def makedirs(self, path: str) -> None:
        if path in self.no_mkdir:
            raise PermissionError(errno.EPERM, 'Operation not permitted', path)
        super().makedirs(path)

    def remove(self, path: str) -> None:
        if path in self.no_remove:
            raise PermissionError(errno.EPERM, 'Operation not permitted', path)
        super().remove(path)


def setup(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    transfers = []
    for customer in ('ACME', 'GLOBEX', 'INITECH'):
        name = '%s_Traffic_1.csv' % customer
        (src / name).write_bytes(b'h\n1\n')
        transfers.append(Transfer(str(src), str(tmp_path / 'dest' / customer), (FileSpec(name),), customer=customer))
    return transfers


def test_a_directory_that_cannot_be_created_fails_only_its_files(tmp_path):
    """Before the fix the PermissionError of makedirs ended the module: no customer was backed up."""
    transfers = setup(tmp_path)
    blocked = str(tmp_path / 'dest' / 'GLOBEX')
    loc = Refusing(no_mkdir=[blocked])
    outcomes = _copy.execute(_copy.plan(transfers, loc, loc, Options()), loc, loc, Options())
    got = {o.action.transfer.customer: (o.status, o.reason) for o in outcomes}
    assert got['ACME'][0] == 'copied' and got['INITECH'][0] == 'copied'
    assert got['GLOBEX'][0] == 'failed'
    assert got['GLOBEX'][1].startswith('cannot create %s: PermissionError: [Errno 1] Operation not permitted' % blocked)
    assert sorted(os.listdir(tmp_path / 'dest')) == ['ACME', 'INITECH']


def test_a_leftover_temp_that_cannot_be_removed_does_not_stop_the_run(tmp_path):
    transfers = setup(tmp_path)
    dest = tmp_path / 'dest' / 'ACME'
    dest.mkdir(parents=True)
    leftover = dest / temp_name('ACME_Traffic_old.csv', 'aaaaaaaaaaaa')
    leftover.write_bytes(b'partial')
    loc = Refusing(no_remove=[str(leftover)])
    the_plan = _copy.plan(transfers, loc, loc, Options())
    assert the_plan.temps == [str(leftover)]
    outcomes = _copy.execute(the_plan, loc, loc, Options())
    assert [o.status for o in outcomes] == ['copied'] * 3
    assert leftover.exists()  # retried by the next run
