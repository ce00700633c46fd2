# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""


from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import fsync_dir, read_file


class LockState(t.NamedTuple):
    held: bool
    holder: dict | None
    age: float | None
    stale: bool


def read_holder(path: str) -> dict | None:
    data = read_file(path)
    if data is None:
        return None
    try:
        holder = json.loads(data.decode('utf-8'))
        if not isinstance(holder, dict):
            raise ValueError('not an object')
    except ValueError:
        # A legacy .sem file or a torn write: still a lock, its holder unknown.
        holder = {'host': None, 'run_id': None, 'started': None, 'raw': data.decode('utf-8', 'replace')[:200]}
    return holder


def inspect(path: str, stale_after: float, now: float | None = None) -> LockState:
    now = time.time() if now is None else now
    holder = read_holder(path)
    if holder is None:
        return LockState(False, None, None, False)
    try:
        age = now - os.stat(path).st_mtime
    except FileNotFoundError:
        return LockState(False, None, None, False)
    return LockState(True, holder, round(age, 3), stale_after > 0 and age > stale_after)


def _create(path: str, holder: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, 'w') as stream:
        json.dump(holder, stream, sort_keys=True)
        stream.write('\n')
        stream.flush()
        os.fsync(stream.fileno())
    fsync_dir(os.path.dirname(path))


@contextlib.contextmanager
def _guard(path: str) -> t.Iterator[None]:
    """Serialise the runs that replace or remove a lock file (an flock, freed when its process dies).

    Creating a free lock needs no guard: O_EXCL decides. Replacing a stale lock or releasing one does,
    so that a lock is re-read and removed with nobody else removing or replacing it in between.
    """
    fd = os.open(path + '.guard', os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def held_error(path: str, state: LockState, run_id: str | None = None, **fields) -> BackupError:
    """The refusal naming the holder: to take the lock, or with ``run_id``, to release the lock of another run."""
    fields = fields or {'holder': state.holder, 'age': state.age}
    if run_id is None:
        return BackupError('lock %s is held by %s' % (path, describe(state)), **fields)
    return BackupError('lock %s is held by %s, not by run %s; not released' % (path, describe(state), run_id), **fields)


def acquire(path: str, holder: dict, stale_after: float) -> tuple[bool, LockState]:
    """Take the lock atomically. Returns (taken_over, previous state); raises when another run holds it."""
    try:
        _create(path, holder)
        return False, LockState(False, None, None, False)
    except FileExistsError:
        pass
    with _guard(path):
        state = inspect(path, stale_after)
        if state.holder and state.holder.get('run_id') == holder.get('run_id'):
            return False, state
        if state.held and not state.stale:
            raise held_error(path, state)
        if state.held:
            os.unlink(path)
        try:
            _create(path, holder)
        except FileExistsError:
            # Created meanwhile by a run that found it free.
            raise held_error(path, inspect(path, stale_after)) from None
        return state.held, state


def release(path: str, run_id: str, force: bool = False) -> tuple[bool, LockState]:
    """Remove the lock if this run holds it (or ``force``). Returns (removed, state before)."""
    if not inspect(path, 0).held:
        return False, LockState(False, None, None, False)
    with _guard(path):
        state = inspect(path, 0)
        if not state.held:
            return False, state
        if not force and (state.holder or {}).get('run_id') != run_id:
            raise held_error(path, state, run_id)
        os.unlink(path)
        return True, state


def describe(state: LockState) -> str:
    holder = state.holder or {}
    return 'host %s, run %s, started %s (%ss ago)' % (holder.get('host'), holder.get('run_id'), holder.get('started'), state.age)
