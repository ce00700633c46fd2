# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's ``main()`` with given arguments and return its JSON result (community.hashi_vault's pattern)."""

from __future__ import annotations

import contextlib
import json
import typing as t
from unittest import mock

import pytest

from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    @contextlib.contextmanager
    def patch_module_args(args: dict | None = None) -> t.Iterator[None]:
        with mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}).encode()):
            yield


@contextlib.contextmanager
def _as_target() -> t.Iterator[None]:
    """Run as a module runs on a target: once any test imported controller code (``ansible.errors``),
    ansible-core 2.19 sends module warnings to the controller's display instead of the result."""
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core < 2.19
        yield
        return
    with mock.patch.object(_internal, 'is_controller', False):
        yield


@pytest.fixture
def run_module(capsys) -> t.Callable[..., dict]:
    """``run_module(module, args, check_mode=False, diff=False)``: the module's result, ``failed`` set on failure."""

    def run(module, args: dict, check_mode: bool = False, diff: bool = False) -> dict:
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        capsys.readouterr()
        with patch_module_args(args), _as_target():
            with pytest.raises(SystemExit) as caught:
                module.main()
        out = capsys.readouterr().out
        result = json.loads(out)
        assert (caught.value.code != 0) == bool(result.get('failed')), out
        return result

    return run
