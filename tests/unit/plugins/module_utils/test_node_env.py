# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import ensurepip
except ImportError:  # Debian's Python without python3-venv, the edge nodes' own
    ensurepip = None

from ansible_collections.mnaas.backup.plugins.module_utils import _node_env, _requirements
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._node_env import PIP_FROM_WHEEL
from ansible_collections.mnaas.backup.plugins.module_utils._requirements import Library

COLLECTION = Path(__file__).resolve().parents[4]

PARAMIKO = Library('paramiko', 'paramiko', '2.10', 'sftp', 'test')
HDFS = Library('hdfs', 'hdfs', '2.7.0', 'webhdfs', 'test')
THRIFT_SASL = Library('thrift-sasl', 'thrift_sasl', '0.4.3', 'hiveserver2', 'test')
PYHIVE = Library('PyHive', 'pyhive', '0.7.0', 'hiveserver2', 'test')
TINYLIB = Library('tinylib', 'tinylib', '1.0', 'sftp', 'test')


def real_run(argv: list[str]) -> tuple[int, str, str]:
    """The runner AnsibleModule.run_command is in production: an argument list, no shell, text out. PYTHONPATH and
    the like are left out, as run_command leaves out AnsiballZ's: the virtualenv's Python sees only itself."""
    assert all(isinstance(arg, str) for arg in argv), argv
    env = {name: value for name, value in os.environ.items() if not name.startswith('PYTHON')}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return done.returncode, done.stdout, done.stderr


class Recorder:
    """A fake runner: records each argv and answers from ``answers`` ({argv index 1..2 as a tuple: (rc, out, err)})."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv), argv
        self.calls.append(argv)
        for prefix, answer in self.answers.items():
            if tuple(argv[1:1 + len(prefix)]) == prefix:
                return answer
        return 0, '', ''


@pytest.fixture
def venv(tmp_path) -> str:
    """A real, empty virtualenv made by the test's own Python."""
    path = str(tmp_path / 'venv')
    rc, out, err = real_run([sys.executable, '-m', 'venv', '--without-pip', path])
    assert rc == 0, out + err
    return path


@pytest.fixture
def fake_venv(tmp_path) -> str:
    """A directory with a ``bin/python`` for fake runners to answer for."""
    (tmp_path / 'fake' / 'bin').mkdir(parents=True)
    (tmp_path / 'fake' / 'bin' / 'python').write_text('')
    return str(tmp_path / 'fake')


@pytest.fixture
def wheelhouse(tmp_path) -> str:
    path = tmp_path / 'wheelhouse'
    path.mkdir()
    (path / 'pip-24.0-py3-none-any.whl').write_bytes(b'')
    return str(path)


# canonical, interpreter

@pytest.mark.parametrize('name, expected', [
    ('paramiko', 'paramiko'),
    ('thrift_sasl', 'thrift-sasl'),
    ('thrift-sasl', 'thrift-sasl'),
    ('Thrift.SASL', 'thrift-sasl'),
    ('PyHive', 'pyhive'),
    ('google__crc32c', 'google-crc32c'),
])
def test_canonical(name, expected):
    assert _node_env.canonical(name) == expected


def test_interpreter():
    assert _node_env.interpreter('/opt/mnaas-backup/venv') == '/opt/mnaas-backup/venv/bin/python'


# installed

def test_installed_empty_venv(venv):
    assert _node_env.installed(venv, real_run) == {}


def test_installed_no_venv(tmp_path):
    calls = Recorder()
    assert _node_env.installed(str(tmp_path / 'absent'), calls) is None
    assert _node_env.installed(str(tmp_path), calls) is None  # a directory, but no bin/python in it
    assert calls.calls == []


def test_installed_canonical_names(fake_venv):
    listing = json.dumps({'thrift_sasl': '0.4.3', 'PyHive': '0.7.1', 'paramiko': '3.4.0'})
    calls = Recorder({('-c',): (0, listing + '\n', '')})
    assert _node_env.installed(fake_venv, calls) == {'thrift-sasl': '0.4.3', 'pyhive': '0.7.1', 'paramiko': '3.4.0'}
    [argv] = calls.calls
    assert argv[:2] == [os.path.join(fake_venv, 'bin', 'python'), '-c']


def test_installed_broken_venv(fake_venv):
    calls = Recorder({('-c',): (1, '', 'error while loading shared libraries: libpython3.9.so.1.0\n')})
    with pytest.raises(BackupError) as caught:
        _node_env.installed(fake_venv, calls)
    assert fake_venv in caught.value.msg
    assert 'exited 1' in caught.value.msg and 'libpython3.9' in caught.value.msg


def test_installed_unreadable(fake_venv):
    with pytest.raises(BackupError) as caught:
        _node_env.installed(fake_venv, Recorder({('-c',): (0, 'Welcome!\n', '')}))
    assert fake_venv in caught.value.msg and 'Welcome!' in caught.value.msg


# wanting, describe

@pytest.mark.parametrize('library, present, wanted, described', [
    (PARAMIKO, None, True, 'paramiko (missing)\n'),
    (PARAMIKO, {}, True, 'paramiko (missing)\n'),
    (PARAMIKO, {'hdfs': '2.7.0'}, True, 'paramiko (missing)\n'),
    (PARAMIKO, {'paramiko': '2.9.2'}, True, 'paramiko 2.9.2\n'),
    (PARAMIKO, {'paramiko': '2.10'}, False, 'paramiko 2.10\n'),
    (PARAMIKO, {'paramiko': '2.10.0'}, False, 'paramiko 2.10.0\n'),
    (PARAMIKO, {'paramiko': '3.4.0'}, False, 'paramiko 3.4.0\n'),
    (HDFS, {'hdfs': '2.6.0'}, True, 'hdfs 2.6.0\n'),
    (HDFS, {'hdfs': '2.10.0'}, False, 'hdfs 2.10.0\n'),  # numerically newer, not by string
    # installed() gives canonical names; the table may spell them otherwise
    (THRIFT_SASL, {'thrift-sasl': '0.4.3'}, False, 'thrift-sasl 0.4.3\n'),
    (THRIFT_SASL._replace(distribution='thrift_sasl'), {'thrift-sasl': '0.4.3'}, False, 'thrift_sasl 0.4.3\n'),
    (PYHIVE, {'pyhive': '0.7.0'}, False, 'PyHive 0.7.0\n'),
    (PYHIVE, {'pyhive': '0.6.5'}, True, 'PyHive 0.6.5\n'),
], ids=['none', 'empty', 'other', 'too-old', 'equal', 'equal-padded', 'newer', 'hdfs-old', 'hdfs-2.10',
        'thrift-sasl', 'thrift_sasl', 'pyhive', 'pyhive-old'])
def test_wanting_and_describe(library, present, wanted, described):
    assert _node_env.wanting([library], present) == ([library] if wanted else [])
    assert _node_env.describe([library], present) == described


def test_wanting_keeps_order():
    present = {'paramiko': '3.4.0', 'thrift-sasl': '0.4.0'}
    libraries = [PYHIVE, PARAMIKO, THRIFT_SASL, HDFS]
    assert _node_env.wanting(libraries, present) == [PYHIVE, THRIFT_SASL, HDFS]
    assert _node_env.describe(libraries, present) == 'PyHive (missing)\nparamiko 3.4.0\nthrift-sasl 0.4.0\nhdfs (missing)\n'


# pip_wheel

def test_pip_wheel_none(tmp_path):
    (tmp_path / 'paramiko-3.4.0-py3-none-any.whl').write_bytes(b'')
    with pytest.raises(ConfigError) as caught:
        _node_env.pip_wheel(str(tmp_path))
    assert 'make wheelhouse' in caught.value.msg and str(tmp_path) in caught.value.msg


@pytest.mark.parametrize('names, expected', [
    (['pip-24.0-py3-none-any.whl'], 'pip-24.0-py3-none-any.whl'),
    (['pip-23.2.1-py3-none-any.whl', 'pip-24.0-py3-none-any.whl', 'pip-23.3-py3-none-any.whl'], 'pip-24.0-py3-none-any.whl'),
    (['pip-9.0.3-py2.py3-none-any.whl', 'pip-24.0-py3-none-any.whl'], 'pip-24.0-py3-none-any.whl'),
    (['pipdeptree-2.0-py3-none-any.whl', 'pip-23.0-py3-none-any.whl'], 'pip-23.0-py3-none-any.whl'),
])
def test_pip_wheel_newest(tmp_path, names, expected):
    for name in names:
        (tmp_path / name).write_bytes(b'')
    assert _node_env.pip_wheel(str(tmp_path)) == str(tmp_path / expected)


def test_pip_wheel_odd_directory_name(tmp_path):
    """glob characters in the wheelhouse's own path are taken literally."""
    odd = tmp_path / 'wheels[1]'
    odd.mkdir()
    (odd / 'pip-24.0-py3-none-any.whl').write_bytes(b'')
    assert _node_env.pip_wheel(str(odd)) == str(odd / 'pip-24.0-py3-none-any.whl')


# create

def test_create_argv(tmp_path):
    calls = Recorder()
    _node_env.create(str(tmp_path / 'venv'), '/usr/bin/python3', calls)
    assert calls.calls == [['/usr/bin/python3', '-m', 'venv', '--without-pip', str(tmp_path / 'venv')]]


def test_create_fails(tmp_path):
    calls = Recorder({('-m', 'venv'): (1, '', 'Error: [Errno 13] Permission denied\n')})
    with pytest.raises(BackupError) as caught:
        _node_env.create('/opt/venv', '/usr/bin/python3', calls)
    assert '/opt/venv' in caught.value.msg and '/usr/bin/python3' in caught.value.msg and 'Permission denied' in caught.value.msg


def test_create_real(tmp_path):
    venv = str(tmp_path / 'venv')
    _node_env.create(venv, sys.executable, real_run)
    assert os.access(_node_env.interpreter(venv), os.X_OK)
    assert not os.path.exists(os.path.join(venv, 'bin', 'pip'))
    assert _node_env.installed(venv, real_run) == {}


# install

def test_install_wheelhouse_argv(wheelhouse):
    calls = Recorder()
    _node_env.install('/opt/venv', [PARAMIKO, PYHIVE], calls, wheelhouse=wheelhouse)
    assert calls.calls == [[
        '/opt/venv/bin/python', '-c', PIP_FROM_WHEEL, os.path.join(wheelhouse, 'pip-24.0-py3-none-any.whl'),
        'install', '--disable-pip-version-check', '--no-input', '--no-cache-dir',
        '--no-index', '--find-links', wheelhouse, '--', 'paramiko>=2.10', 'PyHive>=0.7.0',
    ]]


def test_install_wheelhouse_without_pip(tmp_path):
    calls = Recorder()
    with pytest.raises(ConfigError) as caught:
        _node_env.install('/opt/venv', [PARAMIKO], calls, wheelhouse=str(tmp_path))
    assert 'make wheelhouse' in caught.value.msg
    assert calls.calls == []


def test_install_index_with_pip():
    calls = Recorder()
    _node_env.install('/opt/venv', [PARAMIKO], calls, index_url='https://pypi.example/simple')
    assert calls.calls == [
        ['/opt/venv/bin/python', '-m', 'pip', '--version'],
        ['/opt/venv/bin/python', '-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--no-cache-dir',
         '--index-url', 'https://pypi.example/simple', '--', 'paramiko>=2.10'],
    ]


def test_install_index_ensurepip():
    calls = Recorder({('-m', 'pip', '--version'): (1, '', 'No module named pip\n')})
    _node_env.install('/opt/venv', [PARAMIKO], calls, index_url='https://pypi.example/simple')
    assert [argv[1:4] for argv in calls.calls] == [
        ['-m', 'pip', '--version'], ['-m', 'ensurepip', '--default-pip'], ['-m', 'pip', 'install']]


def test_install_index_no_pip():
    calls = Recorder({('-m', 'pip', '--version'): (1, '', 'No module named pip\n'),
                      ('-m', 'ensurepip'): (1, '', 'No module named ensurepip\n')})
    with pytest.raises(BackupError) as caught:
        _node_env.install('/opt/venv', [PARAMIKO], calls, index_url='https://pypi.example/simple')
    assert 'python3-venv' in caught.value.msg and 'https://pypi.example/simple' in caught.value.msg
    assert 'No module named ensurepip' in caught.value.msg
    assert len(calls.calls) == 2  # no pip install tried


def test_install_neither():
    with pytest.raises(ConfigError) as caught:
        _node_env.install('/opt/venv', [PARAMIKO, HDFS], Recorder())
    assert 'paramiko, hdfs' in caught.value.msg


@pytest.mark.parametrize('mode', ['wheelhouse', 'index_url'])
def test_install_pip_fails(wheelhouse, mode):
    source = {'wheelhouse': wheelhouse} if mode == 'wheelhouse' else {'index_url': 'https://pypi.example/simple'}
    calls = Recorder({('-c',): (1, '', 'ERROR: No matching distribution found for paramiko>=2.10\n'),
                      ('-m', 'pip', 'install'): (1, '', 'ERROR: No matching distribution found for paramiko>=2.10\n')})
    with pytest.raises(BackupError) as caught:
        _node_env.install('/opt/venv', [PARAMIKO, HDFS], calls, **source)
    assert 'paramiko>=2.10, hdfs>=2.7.0' in caught.value.msg and '/opt/venv' in caught.value.msg
    assert 'No matching distribution' in caught.value.msg


# A real install, offline: a hand-made wheel, installed by pip run from its own wheel into a virtualenv without pip.

def _record_hash(data: bytes) -> str:
    return 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()


def make_wheel(directory: Path, name: str = 'tinylib', version: str = '1.0') -> Path:
    """A pure-Python wheel: ``name/__init__.py`` and its dist-info (METADATA, WHEEL, RECORD)."""
    info = '%s-%s.dist-info' % (name, version)
    files = {
        '%s/__init__.py' % name: ('VERSION = %r\n' % version).encode(),
        '%s/METADATA' % info: ('Metadata-Version: 2.1\nName: %s\nVersion: %s\n' % (name, version)).encode(),
        '%s/WHEEL' % info: b'Wheel-Version: 1.0\nGenerator: test_node_env\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
    }
    record = ''.join('%s,%s,%d\n' % (path, _record_hash(data), len(data)) for path, data in files.items())
    files['%s/RECORD' % info] = (record + '%s/RECORD,,\n' % info).encode()
    wheel = directory / ('%s-%s-py3-none-any.whl' % (name, version))
    with zipfile.ZipFile(str(wheel), 'w') as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def offline_pip_wheel() -> Path:
    """A pip wheel found without the network: the one bundled with this Python's ensurepip (Debian keeps it in
    /usr/share/python-wheels), else one in pip's own find-links (PIP_FIND_LINKS: `make units-py39` sets it), else
    the one `make wheelhouse` put in the build's wheelhouse."""
    places = []
    if ensurepip is not None:
        places.append(Path(ensurepip.__file__).parent / '_bundled')
        if getattr(ensurepip, '_WHEEL_PKG_DIR', None):
            places.append(Path(ensurepip._WHEEL_PKG_DIR))  # pylint: disable=protected-access
    places.append(Path('/usr/share/python-wheels'))
    places += [Path(links) for links in os.environ.get('PIP_FIND_LINKS', '').split()]
    places += [COLLECTION.parents[2] / 'wheelhouse', COLLECTION / '.build' / 'wheelhouse']
    for place in places:
        found = sorted(place.glob('pip-*.whl'))
        if found:
            return found[-1]
    pytest.fail('no pip wheel to be found offline for the real install test; looked in %s. Build one with '
                '`make wheelhouse`, or run the tests with a Python whose ensurepip bundles its pip wheel'
                % ', '.join(str(place) for place in places))


def test_real_install_from_wheelhouse(tmp_path, monkeypatch):
    house = tmp_path / 'wheelhouse'
    house.mkdir()
    make_wheel(house)
    pip = offline_pip_wheel()
    (house / pip.name).write_bytes(pip.read_bytes())
    monkeypatch.setattr(_requirements, 'LIBRARIES', (TINYLIB,))
    libraries = _requirements.for_features(['sftp'])
    assert libraries == [TINYLIB]

    venv = str(tmp_path / 'venv')
    assert _node_env.installed(venv, real_run) is None
    _node_env.create(venv, sys.executable, real_run)
    before = _node_env.installed(venv, real_run)
    assert before == {}
    assert _node_env.wanting(libraries, before) == [TINYLIB]
    _node_env.install(venv, _node_env.wanting(libraries, before), real_run, wheelhouse=str(house))
    after = _node_env.installed(venv, real_run)
    assert after == {'tinylib': '1.0'}
    assert _node_env.wanting(libraries, after) == []
    rc, out, err = real_run([_node_env.interpreter(venv), '-c', 'import tinylib; print(tinylib.VERSION)'])
    assert (rc, out, err) == (0, '1.0\n', '')


def test_real_install_missing_wheel_fails(tmp_path):
    """pip's own failure, offline: the wheelhouse lacks the library; the error names it and the virtualenv."""
    house = tmp_path / 'wheelhouse'
    house.mkdir()
    pip = offline_pip_wheel()
    (house / pip.name).write_bytes(pip.read_bytes())
    venv = str(tmp_path / 'venv')
    _node_env.create(venv, sys.executable, real_run)
    with pytest.raises(BackupError) as caught:
        _node_env.install(venv, [TINYLIB], real_run, wheelhouse=str(house))
    assert 'tinylib>=1.0' in caught.value.msg and venv in caught.value.msg
    assert _node_env.installed(venv, real_run) == {}
