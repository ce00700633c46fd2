# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The processes of a run: finding its modules, sampling their memory, stopping and killing them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

WAIT = 120


def process_tree(pid: int) -> list:
    """pid and all its descendants, from /proc (Ansible's workers call setsid(): not one process group)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, encoding="utf-8", errors="replace") as handle:
                    children.setdefault(int(handle.read().rpartition(")")[2].split()[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def module_pids(pid: int, module: str) -> list:
    """The Python processes below pid running the collection's module (found by AnsiballZ_<module>.py in their command line)."""
    found = []
    for child in process_tree(pid):
        try:
            with open("/proc/%d/cmdline" % child, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if "python" in os.path.basename(argv[0].decode(errors="replace")) and any(
                arg.endswith(("AnsiballZ_%s.py" % module).encode()) for arg in argv):
            found.append(child)
    return found


def peak_rss_kib(pids) -> int:
    """The largest VmHWM (peak resident memory, KiB) of these processes that are still there."""
    peak = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid, encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak


def alive(pid: int) -> bool:
    """Whether pid still runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def kill_tree(proc) -> None:
    """SIGKILL the playbook's process group and every descendant, as a crash would.

    Ansible's workers call setsid(), so the modules they run are not in the playbook's process
    group: the whole tree is stopped first (so nothing forks or commits meanwhile), then killed.
    """
    stopped = set()
    while True:
        new = [pid for pid in process_tree(proc.pid) if pid not in stopped]
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in stopped):
        assert time.monotonic() < deadline, "processes survived SIGKILL: %s" % [pid for pid in stopped if alive(pid)]
        time.sleep(0.05)


def wait_for(predicate, proc, log: Path, what: str, timeout: float = WAIT):
    """Poll until predicate() is true; fail if the run ended first or it took too long."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        assert proc.poll() is None, 'the run ended before %s:\n%s' % (what, log.read_text(errors='replace'))
        assert time.monotonic() < deadline, 'no %s within %ss:\n%s' % (what, timeout, log.read_text(errors='replace'))
        time.sleep(0.005)


def started_task(log: Path, name: str) -> bool:
    return ('TASK [mnaas.backup.mnaas_backup : %s]' % name) in log.read_text(errors='replace')


def signal_all(pids, sig) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
