# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback of the system tests: every task start, task result and the final stats as JSON lines.

Enabled by the tests (ANSIBLE_CALLBACK_PLUGINS, ANSIBLE_CALLBACKS_ENABLED=json_events) beside the default stdout
callback, which keeps printing the text people read. Writes to the file named by $MNAAS_TEST_EVENTS (nothing
when unset), one line per event, flushed at once: a test may read it while the run goes on.
"""

from __future__ import annotations

DOCUMENTATION = '''
name: json_events
type: aggregate
short_description: task starts, results and stats of a run as JSON lines (system tests only)
description:
  - Appends one JSON object per event to the file named by the environment variable E(MNAAS_TEST_EVENTS).
'''

import json
import os

from ansible.plugins.callback import CallbackBase
from ansible.vars.clean import module_response_deepcopy, strip_internal_keys


class CallbackModule(CallbackBase):
    """One JSON line per event: task_start, result (status ok/changed/skipped/failed/unreachable), stats."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'json_events'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('MNAAS_TEST_EVENTS')

    def _write(self, **event) -> None:
        if self._path:
            with open(self._path, 'a', encoding='utf-8') as handle:
                handle.write(json.dumps(event, default=str, ensure_ascii=False) + '\n')

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._write(event='task_start', task=task.get_name())

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._write(event='task_start', task=task.get_name())

    def _result(self, result, status: str) -> None:
        values = strip_internal_keys(module_response_deepcopy(result._result))  # pylint: disable=protected-access
        for key in ('warnings', 'deprecations', 'exception'):  # shown by the stdout callback; objects, not data, in 2.19
            values.pop(key, None)
        self._write(event='result', task=result._task.get_name(), host=result._host.get_name(),  # pylint: disable=protected-access
                    status=status, result=values)

    def v2_runner_on_ok(self, result) -> None:
        self._result(result, 'changed' if result._result.get('changed') else 'ok')  # pylint: disable=protected-access

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._result(result, 'failed')

    def v2_runner_on_skipped(self, result) -> None:
        self._result(result, 'skipped')

    def v2_runner_on_unreachable(self, result) -> None:
        self._result(result, 'unreachable')

    def v2_playbook_on_stats(self, stats) -> None:
        names = {'failures': 'failed'}
        self._write(event='stats', stats={host: {names.get(k, k): v for k, v in stats.summarize(host).items()}
                                          for host in sorted(stats.processed)})
