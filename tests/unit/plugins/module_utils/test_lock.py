# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import threading
import time

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _lock
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError


def holder(run_id: str, host: str = 'edge1') -> dict:
    return {'host': host, 'run_id': run_id, 'pid': 4711, 'started': '2026-11-25T02:00:00Z'}


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(str(path), (then, then))


@pytest.fixture
def lock(tmp_path) -> str:
    return str(tmp_path / 'job.sem')


def test_acquire_and_release(lock):
    taken_over, before = _lock.acquire(lock, holder('r1'), 3600)
    assert taken_over is False
    assert before.held is False
    with open(lock) as stream:
        assert json.load(stream) == holder('r1')
    state = _lock.inspect(lock, 3600)
    assert (state.held, state.holder, state.stale) == (True, holder('r1'), False)
    removed, before = _lock.release(lock, 'r1')
    assert removed is True
    assert before.holder == holder('r1')
    assert not os.path.exists(lock)


def test_inspect_absent(lock):
    assert _lock.inspect(lock, 60) == _lock.LockState(False, None, None, False)


def test_held_by_other_raises_with_holder(lock):
    _lock.acquire(lock, holder('r1', 'edge1'), 3600)
    with pytest.raises(BackupError) as caught:
        _lock.acquire(lock, holder('r2', 'edge2'), 3600)
    assert 'edge1' in caught.value.msg
    assert 'r1' in caught.value.msg
    assert caught.value.details['holder'] == holder('r1', 'edge1')
    with open(lock) as stream:
        assert json.load(stream)['run_id'] == 'r1'


def test_same_run_id_reacquire_is_fine(lock):
    _lock.acquire(lock, holder('r1'), 3600)
    taken_over, before = _lock.acquire(lock, holder('r1'), 3600)
    assert taken_over is False
    assert before.held is True
    assert _lock.inspect(lock, 3600).holder == holder('r1')


def test_stale_lock_is_taken_over(lock):
    _lock.acquire(lock, holder('dead'), 60)
    age(lock, 120)
    taken_over, before = _lock.acquire(lock, holder('r2'), 60)
    assert taken_over is True
    assert before.stale is True
    assert before.holder == holder('dead')
    assert _lock.inspect(lock, 60).holder == holder('r2')
    assert sorted(os.listdir(os.path.dirname(lock))) == ['job.sem', 'job.sem.guard']    # nothing left aside but the guard


def test_stale_after_zero_never_stale(lock):
    _lock.acquire(lock, holder('dead'), 0)
    age(lock, 10 ** 6)
    assert _lock.inspect(lock, 0).stale is False
    with pytest.raises(BackupError, match='held by'):
        _lock.acquire(lock, holder('r2'), 0)


def test_fresh_lock_not_stale(lock):
    _lock.acquire(lock, holder('r1'), 60)
    age(lock, 30)
    state = _lock.inspect(lock, 60)
    assert state.stale is False
    assert 29 <= state.age <= 40


def test_release_by_other_run_refused(lock):
    _lock.acquire(lock, holder('r1'), 3600)
    with pytest.raises(BackupError, match='not released') as caught:
        _lock.release(lock, 'r2')
    assert 'r1' in caught.value.msg
    assert os.path.exists(lock)


def test_force_release(lock):
    _lock.acquire(lock, holder('r1'), 3600)
    removed, before = _lock.release(lock, 'r2', force=True)
    assert removed is True
    assert before.holder['run_id'] == 'r1'
    assert not os.path.exists(lock)


def test_release_absent_is_noop(lock):
    removed, before = _lock.release(lock, 'r1')
    assert removed is False
    assert before.held is False


@pytest.mark.parametrize('content', [b'', b'12345\n', b'locked by cron', b'["a"]', b'{"torn": '])
def test_legacy_non_json_content_is_held(lock, content):
    with open(lock, 'wb') as stream:
        stream.write(content)
    state = _lock.inspect(lock, 3600)
    assert state.held is True
    assert state.holder['run_id'] is None
    with pytest.raises(BackupError, match='held by'):
        _lock.acquire(lock, holder('r1'), 3600)
    with pytest.raises(BackupError, match='not released'):
        _lock.release(lock, 'r1')
    assert os.path.exists(lock)


def test_legacy_stale_lock_is_taken_over(lock):
    with open(lock, 'wb') as stream:
        stream.write(b'legacy\n')
    age(lock, 7200)
    taken_over, before = _lock.acquire(lock, holder('r1'), 3600)
    assert taken_over is True
    assert before.holder['raw'] == 'legacy\n'
    assert _lock.inspect(lock, 3600).holder == holder('r1')


def test_late_takeover_never_moves_a_fresh_lock_away(lock):
    """Run B found the lock stale, but run A took it over while B waited for the guard: B re-reads
    the lock under the guard, finds A's fresh lock, and leaves it in place."""
    _lock.acquire(lock, holder('dead'), 60)
    age(lock, 3600)
    guard = os.open(lock + '.guard', os.O_WRONLY | os.O_CREAT, 0o644)
    fcntl.flock(guard, fcntl.LOCK_EX)
    outcome = []

    def run_b():
        try:
            outcome.append(_lock.acquire(lock, holder('B'), 60))
        except BackupError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_b)
    thread.start()
    time.sleep(0.2)
    assert outcome == []                      # B waits for the guard
    os.unlink(lock)                           # what A does under the guard: replace the stale lock
    with open(lock, 'w', encoding='utf-8') as stream:
        json.dump(holder('A'), stream)
    os.close(guard)
    thread.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], BackupError)
    assert 'A' == _lock.inspect(lock, 60).holder['run_id']
    assert sorted(os.listdir(os.path.dirname(lock))) == ['job.sem', 'job.sem.guard']


def test_describe_names_the_holder(lock):
    _lock.acquire(lock, holder('r9', 'edge7'), 3600)
    text = _lock.describe(_lock.inspect(lock, 3600))
    assert 'edge7' in text and 'r9' in text and '2026-11-25T02:00:00Z' in text


# --- concurrency ---------------------------------------------------------------------------------

CONTENDERS = 8


def _contend(path: str, index: int, stale_after: float, barrier, results) -> None:
    barrier.wait()
    try:
        results.put((index, 'won', _lock.acquire(path, holder('run-%d' % index), stale_after)[0]))
    except BackupError:
        results.put((index, 'lost', None))
    except Exception as exc:
        results.put((index, 'crashed', repr(exc)))


def contend(path: str, stale_after: float) -> dict[str, list]:
    """Start the contenders at once; the indexes of the runs that won, lost and crashed."""
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(CONTENDERS)
    results = context.Queue()
    procs = [context.Process(target=_contend, args=(path, i, stale_after, barrier, results)) for i in range(CONTENDERS)]
    for proc in procs:
        proc.start()
    outcome: dict[str, list] = {'won': [], 'lost': [], 'crashed': []}
    for proc in procs:
        index, status, detail = results.get(timeout=30)
        outcome[status].append(index if status != 'crashed' else (index, detail))
    for proc in procs:
        proc.join(timeout=30)
    return outcome


@pytest.mark.parametrize('attempt', range(3))
def test_concurrent_acquire_exactly_one_wins(lock, attempt):
    outcome = contend(lock, 3600)
    assert outcome['crashed'] == []
    assert len(outcome['won']) == 1, outcome
    assert len(outcome['lost']) == CONTENDERS - 1
    assert _lock.inspect(lock, 3600).holder['run_id'] == 'run-%d' % outcome['won'][0]


@pytest.mark.parametrize('attempt', range(3))
def test_concurrent_stale_takeover_exactly_one_wins(lock, attempt):
    _lock.acquire(lock, holder('dead'), 60)
    age(lock, 3600)
    outcome = contend(lock, 60)
    assert outcome['crashed'] == []
    assert len(outcome['won']) == 1, outcome
    assert _lock.inspect(lock, 60).holder['run_id'] == 'run-%d' % outcome['won'][0]
    assert sorted(os.listdir(os.path.dirname(lock))) == ['job.sem', 'job.sem.guard']
