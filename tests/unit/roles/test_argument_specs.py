# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role's meta/argument_specs.yml and defaults/main.yml describe the same variables with the same defaults."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

COLLECTION = pathlib.Path(__file__).resolve().parents[3]
ROLES = sorted(path for path in (COLLECTION / 'roles').glob('*') if (path / 'meta' / 'argument_specs.yml').is_file())
TYPES = {'str': str, 'path': str, 'int': int, 'bool': bool, 'dict': dict, 'list': list, 'float': (int, float), 'raw': object}
PUBLIC = re.compile(r'(?<!\w)mnaas_backup_\w+')


def load(path: pathlib.Path):
    with path.open() as stream:
        return yaml.safe_load(stream)


def options(role: pathlib.Path) -> dict[str, dict]:
    return load(role / 'meta' / 'argument_specs.yml')['argument_specs']['main']['options']


def defaults(role: pathlib.Path) -> dict:
    path = role / 'defaults' / 'main.yml'
    return (load(path) or {}) if path.is_file() else {}


def test_there_is_a_role():
    assert ROLES, 'no role with meta/argument_specs.yml under %s' % (COLLECTION / 'roles')


@pytest.mark.parametrize('role', ROLES, ids=lambda role: role.name)
def test_every_option_documented_and_typed(role):
    bad = []
    for name, spec in options(role).items():
        if not spec.get('description'):
            bad.append('%s has no description' % name)
        if spec.get('type') not in TYPES:
            bad.append('%s has no known type (%r)' % (name, spec.get('type')))
        if spec.get('type') == 'list' and 'elements' not in spec:
            bad.append('%s is a list without elements' % name)
        if not name.startswith('mnaas_backup_'):
            bad.append('%s is not prefixed mnaas_backup_' % name)
    assert bad == []


@pytest.mark.parametrize('role', ROLES, ids=lambda role: role.name)
def test_defaults_hold_exactly_the_options(role):
    assert sorted(defaults(role)) == sorted(options(role))


@pytest.mark.parametrize('role', ROLES, ids=lambda role: role.name)
def test_spec_default_equals_defaults_value(role):
    """``required: true`` with a value in defaults/main.yml would never be enforced, so every option has a default."""
    values = defaults(role)
    bad = []
    for name, spec in options(role).items():
        if name not in values:
            continue
        if spec.get('required'):
            bad.append('%s is required: true but defaults/main.yml sets it to %r' % (name, values[name]))
        if 'default' not in spec:
            bad.append('%s has no default in argument_specs.yml, defaults/main.yml has %r' % (name, values[name]))
        elif spec['default'] != values[name]:
            bad.append('%s: argument_specs.yml default %r != defaults/main.yml %r' % (name, spec['default'], values[name]))
    assert bad == []


@pytest.mark.parametrize('role', ROLES, ids=lambda role: role.name)
def test_defaults_match_type_and_choices(role):
    values = defaults(role)
    bad = []
    for name, spec in options(role).items():
        if name not in values:
            continue
        value, kind = values[name], spec.get('type', 'str')
        if not isinstance(value, TYPES.get(kind, object)) or (kind == 'int' and isinstance(value, bool)):
            bad.append('%s: default %r is not a %s' % (name, value, kind))
        if 'choices' in spec and value not in spec['choices']:
            bad.append('%s: default %r not in %r' % (name, value, spec['choices']))
    assert bad == []


@pytest.mark.parametrize('role', ROLES, ids=lambda role: role.name)
def test_tasks_use_only_declared_variables(role):
    declared = set(options(role))
    used = set()
    for path in sorted((role / 'tasks').glob('*.yml')) + sorted((role / 'handlers').glob('*.yml')):
        used.update(PUBLIC.findall(path.read_text()))
    assert sorted(used - declared) == []
