# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running Ansible and reading what it did.

Every run has two outputs: the default callback's text (what people read; failure messages show it) and the
JSON lines of tests/system/callback_plugins/json_events.py, kept beside the log as ``<log>.events.jsonl``.
Statuses, the recap, task results and diffs are read from the JSON; only warnings and errors that no callback
sees (the controller's own, a lookup's) are read from the text.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CALLBACK_PLUGINS = Path(__file__).resolve().parents[1] / 'callback_plugins'
EVENTS_VAR = 'MNAAS_TEST_EVENTS'
RUN_TIMEOUT = 600


def find_tool(name: str) -> str:
    """A command next to this Python (the venv's bin) or on PATH; a failure when there is none."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.fail('%s is needed by the system tests and was found neither in %s nor on PATH' % (name, beside.parent))
    return found


def callback_env() -> dict:
    """The settings that add the json_events callback to the default one (ad-hoc commands included)."""
    return {'ANSIBLE_CALLBACK_PLUGINS': str(CALLBACK_PLUGINS), 'ANSIBLE_CALLBACKS_ENABLED': 'json_events',
            'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1'}


def events_path(log: Path) -> Path:
    """The JSON events file of the run whose text goes to log."""
    return Path(str(log) + '.events.jsonl')


def read_events(log: Path) -> list:
    """The events written so far (a running playbook's last line may be incomplete: it is left out)."""
    try:
        lines = events_path(log).read_text(encoding='utf-8').split('\n')
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines[:-1]]


def started_task(log: Path, name: str) -> bool:
    """Whether the run logging to log has started the role's task of that name."""
    return any(e['event'] == 'task_start' and e['task'] == 'mnaas.backup.mnaas_backup : %s' % name for e in read_events(log))


@dataclasses.dataclass(repr=False)
class Result:
    """One Ansible run: its exit code, its text and its JSON events."""

    args: list
    rc: int
    output: str
    events: list
    duration: float

    def __repr__(self) -> str:
        return 'Result(rc=%r, recap=%r)' % (self.rc, self.recap)

    def __str__(self) -> str:
        return '\n--- %s\n--- rc=%s after %.1fs; full output:\n%s' % (' '.join(self.args), self.rc, self.duration, self.output)

    @classmethod
    def read(cls, args, rc: int, log: Path, duration: float) -> Result:
        """The result of a run that wrote its text to log and its events beside it."""
        return cls([str(a) for a in args], rc, log.read_text(encoding='utf-8', errors='replace'), read_events(log), duration)

    @property
    def recap(self) -> dict:
        """{host: {ok, changed, unreachable, failed, skipped, rescued, ignored}} of the run's end ({} if it never got there)."""
        stats = [e['stats'] for e in self.events if e['event'] == 'stats']
        return stats[-1] if stats else {}

    def results(self, host: str | None = None) -> list:
        """The task results in order: {task, host, status, result}, of one host or of all."""
        return [e for e in self.events if e['event'] == 'result' and host in (None, e['host'])]

    def tasks(self) -> list:
        """[(task name without the role prefix, {host: status})] in the order the tasks started."""
        found = []
        for event in self.events:
            if event['event'] == 'task_start':
                found.append((event['task'].split(' : ', 1)[-1], {}))
            elif event['event'] == 'result' and found:
                found[-1][1].setdefault(event['host'], event['status'])
        return found

    def task(self, fragment: str) -> dict:
        """{host: status} of the one task whose name contains fragment."""
        matches = [statuses for name, statuses in self.tasks() if fragment in name]
        assert len(matches) == 1, 'expected one task named like %r, got %d among %s%s' % (
            fragment, len(matches), [task[0] for task in self.tasks()], self)
        return matches[0]

    def failures(self, host: str, *statuses: str) -> list:
        """The failed and unreachable results of host (or those of the statuses given) in order, each as the JSON text
        the default callback shows after ``fatal: [host]: ...! =>``."""
        statuses = statuses or ('failed', 'unreachable')
        return [json.dumps(e['result'], ensure_ascii=False) for e in self.results(host) if e['status'] in statuses]

    def messages(self, host: str | None = None) -> str:
        """The ``msg`` of every result (of one host or of all), one after the other."""
        return '\n'.join(str(e['result']['msg']) for e in self.results(host) if 'msg' in e['result'])

    def diff_text(self) -> str:
        """The diffs of the changed results (--diff), rendered as the default callback renders them."""
        lines = []
        for event in self.results():
            result = event['result']
            for item in result.get('results') or [result]:
                if item.get('diff') and item.get('changed'):
                    for diff in item['diff'] if isinstance(item['diff'], list) else [item['diff']]:
                        lines.extend(_diff_lines(diff))
        return ''.join(line if line.endswith('\n') else line + '\n' for line in lines)

    def warnings(self) -> str:
        """The warning lines of the text (the controller's and lookups' warnings reach no callback)."""
        return '\n'.join(line for line in self.output.splitlines() if line.startswith('[WARNING]'))

    def errors(self) -> str:
        """The controller's error lines of the text and every failed or unreachable result (JSON), one per line."""
        lines = [line for line in self.output.splitlines() if line.startswith('[ERROR]')]
        lines += ['fatal: [%s]: %s %s' % (e['host'], e['status'].upper(), json.dumps(e['result'], ensure_ascii=False))
                  for e in self.results() if e['status'] in ('failed', 'unreachable')]
        return '\n'.join(lines)

    def changed(self, host: str) -> int:
        """changed= of host in the recap."""
        assert host in self.recap, 'no recap for %s%s' % (host, self)
        return self.recap[host]['changed']

    def failed(self, host: str) -> int:
        """failed= of host in the recap."""
        assert host in self.recap, 'no recap for %s%s' % (host, self)
        return self.recap[host]['failed']


def _diff_lines(diff: dict) -> list:
    """One diff of a result as text lines: unified before/after, then the prepared text."""
    lines = []
    if 'before' in diff and 'after' in diff:
        before, after = (json.dumps(diff[x], sort_keys=True, indent=4) + '\n' if isinstance(diff[x], dict)
                         else diff[x] or '' for x in ('before', 'after'))
        lines += difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                      fromfile='before: %s' % diff['before_header'] if 'before_header' in diff else 'before',
                                      tofile='after: %s' % diff['after_header'] if 'after_header' in diff else 'after',
                                      fromfiledate='', tofiledate='', n=3)
    if diff.get('prepared'):
        lines += diff['prepared'].splitlines(True)
    return lines


def start(args, env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    """Start an Ansible command in its own session (its whole process group can be killed): text to log, events beside it."""
    events = events_path(log)
    events.unlink(missing_ok=True)
    with open(log, 'wb') as stream:
        return subprocess.Popen(  # pylint: disable=consider-using-with
            [str(a) for a in args], env=dict(env, **{EVENTS_VAR: str(events)}), cwd=cwd, stdout=stream, stderr=subprocess.STDOUT,
            start_new_session=True)


def run(args, env: dict, cwd: Path, log: Path | None = None, expect_rc: int | None = None) -> Result:
    """An Ansible command to its end; its text kept in log when given. Asserts the exit code unless expect_rc is None."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='mnaas-run-') as tmp:
        log = log or Path(tmp) / 'run.log'
        proc = start(args, env, cwd, log)
        try:
            result = Result.read(proc.args, proc.wait(timeout=RUN_TIMEOUT), log, time.monotonic() - started)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if expect_rc is not None:
        assert result.rc == expect_rc, '%s exited %s, expected %s%s' % (Path(result.args[0]).name, result.rc, expect_rc, result)
    return result


def run_playbook(playbook: Path, inventory: Path, env: dict, cwd: Path, *extra, log: Path | None = None) -> Result:
    """ansible-playbook to its end (any exit code); the output kept in ``log`` when given."""
    return run([find_tool('ansible-playbook'), '-i', inventory, playbook] + list(extra), env, cwd, log=log)
