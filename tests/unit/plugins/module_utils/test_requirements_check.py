# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The check of the libraries in this Python (``examine``, ``installed``), against real modules and
package metadata written to a temporary directory on ``sys.path``: the boundary is the import system itself."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from ansible_collections.mnaas.backup.plugins.module_utils import _requirements
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import (
    FEATURES, Installed, Library, examine, for_features, installed,
)

PYTHON = '/opt/mnaas/night/bin/python3'
HOW = "run playbooks/prepare_nodes.yml (mnaas.backup.prepare_nodes) for this node, or pip install '%s' into " + PYTHON + "'s environment"

MODULES = {
    'mnaas_fake_ok': "__version__ = '2.12.0'\n",
    'mnaas_fake_old': "__version__ = '2.4.2'\n",
    'mnaas_fake_broken': "raise RuntimeError('undefined symbol: EVP_foo\\nsecond line')\n",
    'mnaas_fake_needs_dep': "import mnaas_fake_absent_dependency\n",
    'mnaas_fake_unversioned': '',
    # The distribution's metadata says 3.1.0; the module's own __version__ is stale.
    'mnaas_fake_meta': "__version__ = '0.0.1'\n",
}


def lib(name: str, minimum: str = '2.10', optional: bool = False, distribution: str | None = None) -> Library:
    return Library(distribution or name.replace('_', '-'), name, minimum, 'sftp', 'the pull over SFTP', optional=optional)


@pytest.fixture(autouse=True)
def fake_site(tmp_path, monkeypatch):
    """A directory on sys.path holding the fake modules and one distribution's metadata; this Python is PYTHON."""
    for name, code in MODULES.items():
        (tmp_path / (name + '.py')).write_text(code)
    dist_info = tmp_path / 'mnaas_fake_meta-3.1.0.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text('Metadata-Version: 2.1\nName: mnaas-fake-meta\nVersion: 3.1.0\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, 'executable', PYTHON)
    yield
    for name in [name for name in sys.modules if name.startswith('mnaas_fake_')]:
        del sys.modules[name]


def test_ok_version_from_the_module_when_no_metadata():
    assert examine(lib('mnaas_fake_ok')) == Installed(lib('mnaas_fake_ok'), '2.12.0', True)


def test_metadata_version_comes_first():
    found = examine(lib('mnaas_fake_meta', minimum='3.0'))
    assert (found.version, found.ok, found.problem) == ('3.1.0', True, None)


def test_missing_names_the_library_the_python_and_how_to_install():
    library = lib('mnaas_fake_absent')
    found = examine(library)
    assert (found.version, found.ok, found.note) == (None, False, None)
    assert found.problem == ('the Python library mnaas-fake-absent of %s is not installed; it is needed for the pull over SFTP. To install it, '
                             % PYTHON + HOW % 'mnaas-fake-absent>=2.10')


def test_import_raising_anything_is_reported_with_its_first_line():
    found = examine(lib('mnaas_fake_broken'))
    assert not found.ok and found.version is None
    assert 'mnaas-fake-broken of %s cannot be imported: RuntimeError: undefined symbol: EVP_foo;' % PYTHON in found.problem
    assert 'second line' not in found.problem
    assert found.problem.endswith(HOW % 'mnaas-fake-broken>=2.10')


def test_a_missing_dependency_is_not_the_library_missing():
    found = examine(lib('mnaas_fake_needs_dep'))
    assert "cannot be imported: ModuleNotFoundError: No module named 'mnaas_fake_absent_dependency'" in found.problem


def test_too_old_gives_the_version_found_and_the_minimum():
    found = examine(lib('mnaas_fake_old'))
    assert (found.version, found.ok) == ('2.4.2', False)
    assert 'mnaas-fake-old of %s is version 2.4.2, older than the 2.10 needed;' % PYTHON in found.problem


def test_the_minimum_itself_is_enough():
    assert examine(lib('mnaas_fake_old', minimum='2.4.2')).ok


def test_a_version_that_cannot_be_read_is_a_problem():
    found = examine(lib('mnaas_fake_unversioned'))
    assert not found.ok and found.version is None
    assert 'imports, but its version cannot be read (no metadata of the distribution mnaas-fake-unversioned' in found.problem


def test_unreadable_metadata_falls_back_to_the_module(monkeypatch):
    def broken(distribution):
        raise ValueError('bad METADATA of %s' % distribution)

    monkeypatch.setattr(metadata, 'version', broken)
    assert examine(lib('mnaas_fake_ok')).version == '2.12.0'


@pytest.mark.parametrize('name', ['mnaas_fake_absent', 'mnaas_fake_broken', 'mnaas_fake_old'])
def test_optional_is_never_a_problem_only_a_note(name):
    found = examine(lib(name, optional=True))
    assert found.problem is None and not found.ok
    assert found.note.startswith('the optional Python library %s of %s ' % (name.replace('_', '-'), PYTHON))
    assert 'the night goes on without it, only slower: the pull over SFTP.' in found.note
    assert [found.problem for found in installed([lib(name, optional=True)]) if found.problem] == []


def test_missing_lists_the_problems_in_order():
    libraries = [lib('mnaas_fake_absent'), lib('mnaas_fake_ok'), lib('mnaas_fake_old'), lib('mnaas_fake_broken', optional=True)]
    problems = [found.problem for found in installed(libraries) if found.problem]  # as the preflight reports them
    assert len(problems) == 2
    assert 'mnaas-fake-absent of' in problems[0] and 'mnaas-fake-old of' in problems[1]
    assert [found.ok for found in installed(libraries)] == [False, True, False, False]


def test_result_as_the_module_returns_it():
    assert examine(lib('mnaas_fake_old')).result() == {
        'distribution': 'mnaas-fake-old', 'module': 'mnaas_fake_old', 'minimum': '2.10', 'optional': False, 'version': '2.4.2', 'ok': False}
    assert examine(lib('mnaas_fake_absent')).result()['version'] is None


def test_the_table_is_checked_in_its_order():
    """Whatever this Python holds, every library of every feature gets one answer, required ones a problem when not ok."""
    found = installed(for_features(FEATURES))
    assert [item.library for item in found] == list(_requirements.LIBRARIES)
    for item in found:
        assert item.ok or (item.note if item.library.optional else item.problem)
