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


def run_module(module, logic: t.Callable[[t.Any], dict]) -> None:
    """Call ``logic(module)`` and exit with its result; a ``BackupError`` becomes a failure with its details."""
    try:
        result = logic(module)
    except BackupError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)
