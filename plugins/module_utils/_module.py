# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

The glue every module shares: run the logic, turn library errors into ``fail_json``.
"""

from __future__ import annotations

import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError


LONG = 20  # lists longer than this are shown by their length in the echoed arguments


def brief(value: t.Any) -> t.Any:
    """Arguments as the result echoes them: long lists (thousands of files) shown by their length."""
    if isinstance(value, dict):
        return {key: brief(item) for key, item in value.items()}
    if isinstance(value, list):
        return '<%d items>' % len(value) if len(value) > LONG else [brief(item) for item in value]
    return value


def run_module(module, logic: t.Callable[[t.Any], dict]) -> None:
    """Call ``logic(module)`` and exit with its result; a ``BackupError`` becomes a failure with its details.

    The result echoes the arguments briefly: echoing a list of 5,000 files back cost more than
    copying them (measured in docs/performance.md). Secrets are still masked by exit_json.
    """
    invocation = {'module_args': brief(module.params)}
    failure = None
    try:
        result = logic(module)
    except BackupError as exc:
        failure = exc
    # fail_json outside the except block: inside it, ansible-core reports an expected failure as an exception.
    if failure is not None:
        details = dict(failure.details)
        details.setdefault('invocation', invocation)
        module.fail_json(msg=failure.msg, **details)
    result.setdefault('invocation', invocation)
    module.exit_json(**result)
