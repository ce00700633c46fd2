# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import ast
import re
import sys
import typing as t
from pathlib import Path

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _requirements
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import FEATURES, LIBRARIES, Library, at_least, for_features, version_key

COLLECTION = Path(__file__).resolve().parents[4]
NODES_FILE = COLLECTION / 'requirements-nodes.txt'
# "distribution>=minimum  # feature[ (optional)]: why"
LINE_RE = re.compile(r'(?P<distribution>[A-Za-z0-9][A-Za-z0-9._-]*)>=(?P<minimum>[0-9][0-9.]*)\s+#\s*(?P<feature>[a-z0-9]+)(?: \(optional\))?:\s*\S.*')


class Line(t.NamedTuple):
    number: int
    distribution: str
    minimum: str
    feature: str


def _requirement_part(line: str) -> str:
    """A requirements file line without its comment (pip's rule: ``#`` at the start or after whitespace)."""
    return re.sub(r'(^|\s)#.*$', '', line).strip()


def _nodes_lines() -> list[Line]:
    lines = []
    for number, raw in enumerate(NODES_FILE.read_text(encoding='utf-8').splitlines(), 1):
        if not _requirement_part(raw):
            continue
        match = LINE_RE.fullmatch(raw.strip())
        assert match, '%s:%d: not "distribution>=minimum  # feature: why": %r' % (NODES_FILE.name, number, raw)
        lines.append(Line(number, match.group('distribution'), match.group('minimum'), match.group('feature')))
    return lines


def _names(path: Path) -> set[str]:
    """The normalized distribution names required by a requirements file (options such as -r left out)."""
    names = set()
    for raw in path.read_text(encoding='utf-8').splitlines():
        line = _requirement_part(raw)
        if line and not line.startswith('-'):
            names.add(_normalize(re.match(r'[A-Za-z0-9._-]+', line).group(0)))
    return names


def _normalize(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


# ---------------------------------------------------------------------------------------------
# requirements-nodes.txt and LIBRARIES say the same


def test_nodes_file_lists_exactly_the_libraries():
    lines = _nodes_lines()
    assert [(line.distribution, line.minimum) for line in lines] == [(lib.distribution, lib.minimum) for lib in LIBRARIES]


def test_nodes_file_comment_names_each_feature():
    for line, lib in zip(_nodes_lines(), LIBRARIES):
        assert line.feature == lib.feature, 'line %d: %s is for %s, the comment says %s' % (line.number, lib.distribution, lib.feature, line.feature)


def test_nodes_file_marks_the_optional_libraries():
    optional = {match.group(1) for match in re.finditer(r'^([A-Za-z0-9._-]+)>=\S+\s+#\s*[a-z0-9]+ \(optional\):', NODES_FILE.read_text(encoding='utf-8'), re.M)}
    assert optional == {lib.distribution for lib in LIBRARIES if lib.optional}


def test_nodes_file_is_grouped_by_feature():
    features = [line.feature for line in _nodes_lines()]
    groups = [feature for index, feature in enumerate(features) if index == 0 or features[index - 1] != feature]
    assert len(groups) == len(set(groups)), 'a feature appears in more than one group: %s' % features
    assert set(groups) <= set(FEATURES)


def test_nodes_file_has_only_minimum_pins():
    for raw in NODES_FILE.read_text(encoding='utf-8').splitlines():
        requirement = _requirement_part(raw)
        if requirement:
            assert re.fullmatch(r'[A-Za-z0-9._-]+>=[0-9.]+', requirement), 'not a plain ">=" pin: %r' % raw


def test_library_requirement_is_the_nodes_line():
    assert [lib.requirement for lib in LIBRARIES] == ['%s>=%s' % (line.distribution, line.minimum) for line in _nodes_lines()]
    assert Library('paramiko', 'paramiko', '2.10', 'sftp', 'why').requirement == 'paramiko>=2.10'


def test_libraries_are_consistent():
    assert len({_normalize(lib.distribution) for lib in LIBRARIES}) == len(LIBRARIES)
    for lib in LIBRARIES:
        assert lib.feature in FEATURES
        assert version_key(lib.minimum), lib
        assert re.fullmatch(r'[a-z_][a-z0-9_]*', lib.module), lib
        assert lib.why


# ---------------------------------------------------------------------------------------------
# The controller's requirements hold none of the node libraries; the test venv holds them all


def test_controller_requirements_hold_no_node_library():
    controller = _names(COLLECTION / 'requirements.txt')
    assert not controller & {_normalize(lib.distribution) for lib in LIBRARIES}
    assert 'jmespath' not in controller


def _controller_imports() -> dict[str, set[str]]:
    """The top-level modules imported by the controller-side plugins (lookups, filters) and, followed through, by the
    collection's module_utils and plugin_utils they import: top-level name -> the files importing it."""
    prefix = 'ansible_collections.mnaas.backup.plugins.'
    todo = sorted((COLLECTION / 'plugins' / 'lookup').glob('*.py')) + sorted((COLLECTION / 'plugins' / 'filter').glob('*.py'))
    seen: set[Path] = set()
    found: dict[str, set[str]] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + ['%s.%s' % (node.module, alias.name) for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith(prefix):
                    base = COLLECTION / 'plugins' / Path(*name[len(prefix):].split('.'))
                    todo.extend(candidate for candidate in (base.with_suffix('.py'), base / '__init__.py') if candidate.is_file())
                elif not name.startswith('ansible_collections.mnaas.backup.'):
                    # another collection's content counts as its own entry (a dependency to declare, not allowed here)
                    top = '.'.join(name.split('.')[:3]) if name.startswith('ansible_collections.') else name.split('.')[0]
                    found.setdefault(top, set()).add(path.relative_to(COLLECTION).as_posix())
    return found


@pytest.mark.skipif(sys.version_info < (3, 10), reason='checks the controller-side plugins, whose Python is 3.11+ '
                    '(sys.stdlib_module_names is new in 3.10); `make units` runs it')
def test_controller_plugins_import_only_the_standard_library_and_ansible():
    imports = _controller_imports()
    assert imports, 'no controller-side plugin found'
    allowed = set(sys.stdlib_module_names) | {'ansible'}
    assert {name: files for name, files in imports.items() if name not in allowed} == {}, 'add these to requirements.txt'


def test_test_requirements_include_the_nodes_file():
    lines = [_requirement_part(raw) for raw in (COLLECTION / 'tests' / 'requirements.txt').read_text(encoding='utf-8').splitlines()]
    assert '-r ../requirements.txt' in lines
    assert '-r ../requirements-nodes.txt' in lines


# ---------------------------------------------------------------------------------------------
# for_features


@pytest.mark.parametrize('feature', FEATURES)
def test_for_features_one(feature):
    found = for_features([feature])
    assert found and all(lib.feature == feature for lib in found)
    assert found == [lib for lib in LIBRARIES if lib.feature == feature]


def test_for_features_keeps_the_order_of_libraries():
    assert for_features(reversed(FEATURES)) == list(LIBRARIES)
    assert for_features(iter(['hiveserver2', 'sftp'])) == [lib for lib in LIBRARIES if lib.feature in ('sftp', 'hiveserver2')]


def test_for_features_none():
    assert for_features([]) == []


def test_for_features_without_optional():
    with_optional = for_features(['webhdfs'])
    without = for_features(['webhdfs'], optional=False)
    assert [lib.distribution for lib in with_optional] == ['hdfs', 'requests', 'google-crc32c']
    assert [lib.distribution for lib in without] == ['hdfs', 'requests']


@pytest.mark.parametrize('features, named', [
    (['ftp'], ['ftp']),
    (['sftp', 'kafka'], ['kafka']),
    (['hive', 'WebHDFS', 'sftp'], ['WebHDFS', 'hive']),
    ([''], ['']),
])
def test_for_features_unknown(features, named):
    with pytest.raises(ValueError) as failure:
        for_features(features)
    message = str(failure.value)
    assert message.startswith('unknown feature(s) %s;' % ', '.join(named))
    assert message.endswith('known: %s' % ', '.join(FEATURES))


# ---------------------------------------------------------------------------------------------
# version_key and at_least


@pytest.mark.parametrize('version, key', [
    ('2.10', (2, 10)),
    ('2.10.0', (2, 10)),
    ('2.12.0', (2, 12)),
    ('0.7.0.dev0', (0, 7)),
    ('5.1.0rc1', (5, 1)),
    ('1.0.0.post1', (1,)),
    ('v3.4', (3, 4)),
    ('  1.2.3 ', (1, 2, 3)),
    ('2.7.3+local', (2, 7, 3)),
    ('10', (10,)),
    ('0', (0,)),
    ('0.0', (0,)),
    ('', ()),
    (None, ()),
    ('garbage', ()),
    ('.1', ()),
    ('unknown 1.0', ()),
])
def test_version_key(version, key):
    assert version_key(version) == key


def test_version_key_compares_numbers_not_text():
    assert version_key('2.10') > version_key('2.9')
    assert version_key('10.0') > version_key('9.99')
    assert version_key('2.10') == version_key('2.10.0') == version_key('2.10.0.0')


@pytest.mark.parametrize('version, minimum, expected', [
    ('2.10', '2.10.0', True),
    ('2.10.0', '2.10', True),
    ('2.9.9', '2.10', False),
    ('2.12.1', '2.10', True),
    ('1.10', '1.9', True),
    ('10.0', '9.9', True),
    ('0.7.0.dev0', '0.7.0', True),  # release numbers only: a pre-release of the minimum passes
    ('0.7.0.dev0', '0.7.1', False),
    ('5.1.0rc1', '5.1', True),
    ('5.1.0rc1', '5.2', False),
    ('0.6.1', '0.6.2', False),
    ('0.6.2', '0.6.2', True),
    ('', '1.0', False),
    (None, '1.0', False),
    ('garbage', '0.1', False),
    ('unknown', '1.0', False),
    ('0', '0', True),
    ('0.1', '0', True),
])
def test_at_least(version, minimum, expected):
    assert at_least(version, minimum) is expected


@pytest.mark.parametrize('lib', LIBRARIES, ids=lambda lib: lib.distribution)
def test_every_minimum_is_at_least_itself(lib):
    assert at_least(lib.minimum, lib.minimum)
    assert not at_least('0.0.1', lib.minimum)


def test_public_names():
    assert set(_requirements.__dict__) >= {'FEATURES', 'Library', 'LIBRARIES', 'for_features', 'version_key', 'at_least'}
