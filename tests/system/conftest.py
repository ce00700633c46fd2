# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the system tests; the helpers they use live in support/ (a package of this directory, not tests).

The playbook runs use the real ``ansible-playbook`` with Ansible's defaults plus the json_events callback of
callback_plugins/ (support/playbook.py reads it). These tests never skip: a missing tool is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:  # support/, whatever pytest's import mode
    sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
from support import edges as edge_nodes, hadoop as hadoop_services  # noqa: E402
from support.night import SEED, Night, load_make_landing  # noqa: E402
from support.playbook import REPO_ROOT, callback_env, find_tool  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    """Integration tests must never skip: a skip (a missing tool, say) is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = "integration tests must not skip; skipped because: %s" % (report.longrepr,)


# ---------------------------------------------------------------------------------------------
# Ansible

@pytest.fixture(scope="session")
def collection_path(tmp_path_factory) -> Path:
    """A collections root whose ansible_collections/mnaas/backup is this repository (a symlink)."""
    base = tmp_path_factory.mktemp("collections")
    namespace = base / "ansible_collections" / "mnaas"
    namespace.mkdir(parents=True)
    (namespace / "backup").symlink_to(REPO_ROOT, target_is_directory=True)
    return base


@pytest.fixture(scope="session")
def ansible_workdir(tmp_path_factory) -> Path:
    """Working directory of the ansible-playbook runs (not the repository: no ansible.cfg or relative path leaks in)."""
    return tmp_path_factory.mktemp("ansible")


@pytest.fixture(scope="session")
def ansible_env(collection_path, ansible_workdir) -> dict:
    """Environment of every Ansible run: this collection only, default callback and json_events, no colour, temps in tmp."""
    work = ansible_workdir
    config = work / "ansible.cfg"
    config.write_text("# empty: the tests run with Ansible's defaults plus the environment below\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    playbook_bin = str(Path(find_tool("ansible-playbook")).parent)
    env.update({
        "PATH": playbook_bin + os.pathsep + env.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",  # leave no __pycache__ in the repository's plugins
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_HOME": str(work / "home"),
        "ANSIBLE_COLLECTIONS_PATH": str(collection_path),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(work / "local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(work / "remote-tmp"),
    })
    env.update(callback_env())
    return env


# ---------------------------------------------------------------------------------------------
# One night of the demo inventory

@pytest.fixture(scope="session")
def make_landing():
    """tools/make_landing.py, the landing directory generator."""
    return load_make_landing()


@pytest.fixture
def night(tmp_path, make_landing, ansible_env, ansible_workdir) -> Night:  # pylint: disable=redefined-outer-name
    """A fresh demo root whose landing directory tools/make_landing.py generated just now."""
    root = tmp_path / "demo"
    summary = make_landing.generate(root / "edge1" / "MNAAS_Input", seed=SEED, now=time.time())
    return Night(root, summary, ansible_env, ansible_workdir)


# ---------------------------------------------------------------------------------------------
# Edge nodes made ready by the collection itself (playbooks/prepare_nodes.yml), nights over SSH

@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The nodes' offline wheelhouse (tools/wheelhouse.py: Python 3.9, manylinux), built once; $MNAAS_WHEELHOUSE when set."""
    path = Path(os.environ.get("MNAAS_WHEELHOUSE") or REPO_ROOT / ".build" / "wheelhouse")
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "wheelhouse.py"), "-o", str(path)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, "tools/wheelhouse.py failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    assert list(path.glob("pip-*.whl")), "no pip wheel in %s" % path
    return path


@pytest.fixture(scope="module")
def edges(tmp_path_factory, ansible_env, ansible_workdir, wheelhouse):  # pylint: disable=redefined-outer-name
    """The two nodes: started here unless they are up, stopped only if started here; made ready by
    playbooks/prepare_nodes.yml (their virtualenvs, the secondary's SFTP-only key on the primary)."""
    base = edge_nodes.BASE
    started = False
    if os.environ.get("MNAAS_EDGES_STARTED") != "1" and not (edge_nodes.running("edge1") and edge_nodes.running("edge2")):
        proc = subprocess.run([str(edge_nodes.EDGES / "start.sh")], capture_output=True, text=True, timeout=180,
                              env=dict(os.environ, MNAAS_EDGES_BASE=str(base)), check=False)
        assert proc.returncode == 0, "start.sh failed:\n%s\n%s" % (proc.stdout, proc.stderr)
        started = True
    nodes = edge_nodes.Edges(edge_nodes.read_env(base / "env"), tmp_path_factory.mktemp("unused"))
    edge_nodes.prepare_shared_nodes(base, nodes.port, ansible_env, ansible_workdir, wheelhouse, tmp_path_factory.mktemp("prepare"))
    yield nodes
    if started:
        subprocess.run([str(edge_nodes.EDGES / "stop.sh")], check=True, capture_output=True, timeout=120,
                       env=dict(os.environ, MNAAS_EDGES_BASE=str(base)))


@pytest.fixture
def ssh_night(edges, tmp_path, ansible_env, ansible_workdir):  # pylint: disable=redefined-outer-name
    """One test's directory on both nodes, removed afterwards."""
    night = edge_nodes.SshNight(edges, tmp_path, ansible_env, ansible_workdir)  # pylint: disable=redefined-outer-name
    yield night
    night.cleanup()


# ---------------------------------------------------------------------------------------------
# HDFS and HiveServer2

@pytest.fixture(scope="module")
def hadoop():
    """Both services answer (started with their scripts when they do not)."""
    hadoop_services.ensure_service("hdfs", 9870, "MNAAS_HDFS_STARTED")
    hadoop_services.ensure_service("hiveserver2", 10000, "MNAAS_HS2_STARTED")
