# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the end-to-end tests: the real ``ansible-playbook`` on ``inventory/demo``.

Every test gets its own demo root (``-e mnaas_demo_root=<tmp>``) with a landing directory written
by ``tools/make_landing.py``, whose summary is the ground truth. Results are checked with tools
independent of the collection: ``sha256sum`` for file contents, Python's ``sqlite3`` in a separate
read-only connection for the warehouse, ``csv`` for the manifests.

These tests never skip: a missing tool is a failure.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INVENTORY = REPO_ROOT / "inventory" / "demo"
PLAYBOOK = REPO_ROOT / "playbooks" / "customer_backup.yml"
MAKE_LANDING = REPO_ROOT / "tools" / "make_landing.py"

SEED = 20261124
HOSTS = ("edge1", "edge2")
TEMP_MARK = ".mnaas-tmp."
FINAL_TABLE = "customers_files_records_count"
RUN_TIMEOUT = 600
IN_FLIGHT_AGE = 3600  # mnaas_backup_min_age of the demo runs; a file older than 2 * IN_FLIGHT_AGE is surely old enough

_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
                    re.MULTILINE)
_TASK = re.compile(r"^TASK \[(?P<name>.*)\] \**$")
_TASK_STATUS = re.compile(r"^(?P<status>ok|changed|skipping|fatal|failed): \[(?P<host>[^\]]+)\]")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    """Integration tests must never skip: a skip (a missing tool, say) is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = "integration tests must not skip; skipped because: %s" % (report.longrepr,)


# ---------------------------------------------------------------------------------------------
# Tools

def find_tool(name: str) -> str:
    """A command next to this Python (the venv's bin) or on PATH; a failure when there is none."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        pytest.fail("%s is needed by the integration tests and was found neither in %s nor on PATH" % (name, beside.parent))
    return found


def load_make_landing():
    """tools/make_landing.py as a module."""
    spec = importlib.util.spec_from_file_location("mnaas_make_landing", MAKE_LANDING)
    assert spec is not None and spec.loader is not None, "cannot load %s" % MAKE_LANDING
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256sum(paths) -> dict:
    """SHA-256 of files as the coreutils ``sha256sum`` command sees them: {Path: hex digest}."""
    paths = [Path(p) for p in paths]
    if not paths:
        return {}
    # -z: one NUL-terminated line per file, names as they are (a name may hold a newline).
    # Bytes: text mode would turn a carriage return in a name into a newline.
    proc = subprocess.run([find_tool("sha256sum"), "-z", "--"] + [str(p) for p in paths], capture_output=True, check=False)
    assert proc.returncode == 0, "sha256sum failed: %s" % proc.stderr
    digests = {}
    for line in proc.stdout.split(b"\0")[:-1]:
        digest, name = line.split(b"  ", 1)
        digests[Path(os.fsdecode(name))] = digest.decode("ascii")
    assert set(digests) == set(paths), "sha256sum did not report every file: %s" % proc.stdout
    return digests


def tree_hash(root: Path, dir_mtimes: bool = False) -> str:
    """SHA-256 over every entry below root: path, type, mode, and for files size, mtime and content.

    Directory mtimes are left out unless ``dir_mtimes``: taking and giving back the run lock
    creates and removes a file in the state directory, which touches that directory and nothing else.
    """
    digest = hashlib.sha256()
    root = Path(root)
    if not root.exists():
        return digest.hexdigest()
    for path in sorted([root] + list(root.rglob("*"))):
        info = path.lstat()
        rel = path.relative_to(root).as_posix()
        digest.update(("%s\0%o\0" % (rel, info.st_mode)).encode("utf-8", "surrogateescape"))
        if stat.S_ISREG(info.st_mode):
            digest.update(("%d\0%d\0" % (info.st_size, info.st_mtime_ns)).encode("ascii"))
            with open(path, "rb") as handle:
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(chunk)
        elif stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode("utf-8", "surrogateescape"))
        elif stat.S_ISDIR(info.st_mode) and dir_mtimes:
            digest.update(("%d" % info.st_mtime_ns).encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


def snapshot(root: Path) -> dict:
    """Every regular file below root: {relative path: (inode, size, mtime_ns)}; a rewrite changes the inode."""
    root = Path(root)
    if not root.exists():
        return {}
    found = {}
    for path in root.rglob("*"):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            found[path.relative_to(root).as_posix()] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return found


# ---------------------------------------------------------------------------------------------
# Processes of a run (fault injection)

def process_tree(pid: int) -> list:
    """pid and all its descendants, from /proc (Ansible's workers call setsid(): not one process group)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, encoding="utf-8", errors="replace") as handle:
                    children.setdefault(int(handle.read().rpartition(")")[2].split()[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def module_pids(pid: int, module: str) -> list:
    """The Python processes below pid running the collection's module (found by AnsiballZ_<module>.py in their command line)."""
    found = []
    for child in process_tree(pid):
        try:
            with open("/proc/%d/cmdline" % child, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if "python" in os.path.basename(argv[0].decode(errors="replace")) and any(
                arg.endswith(("AnsiballZ_%s.py" % module).encode()) for arg in argv):
            found.append(child)
    return found


def peak_rss_kib(pids) -> int:
    """The largest VmHWM (peak resident memory, KiB) of these processes that are still there."""
    peak = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid, encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak


def age_in_flight(night) -> None:
    """Make the generator's in-flight files old enough and expect them backed up: a test whose runs take longer
    than min_age would otherwise see them turn old between two runs (test_night.py tests them as in flight)."""
    past = time.time() - 2 * IN_FLIGHT_AGE
    for name in night.names("in_flight"):
        os.utime(night.landing / name, (past, past))
        night.files[name].update(kind="regular", mtime=past, mtime_ns=(night.landing / name).stat().st_mtime_ns)
        night.expected.add(name)


# ---------------------------------------------------------------------------------------------
# Running ansible-playbook

@dataclasses.dataclass(repr=False)
class Result:
    """One ansible-playbook run."""

    args: list
    rc: int
    output: str
    recap: dict
    duration: float

    def __repr__(self) -> str:
        return "Result(rc=%r, recap=%r)" % (self.rc, self.recap)

    def __str__(self) -> str:
        return "\n--- %s\n--- rc=%s after %.1fs; full output:\n%s" % (" ".join(self.args), self.rc, self.duration, self.output)

    def tasks(self) -> list:
        """[(task name without the role prefix, {host: status})] in output order."""
        found = []
        for line in self.output.splitlines():
            task = _TASK.match(line)
            if task:
                name = task.group("name")
                found.append((name.split(" : ", 1)[-1], {}))
                continue
            status = _TASK_STATUS.match(line)
            if status and found:
                found[-1][1].setdefault(status.group("host"), status.group("status"))
        return found

    def task(self, fragment: str) -> dict:
        """{host: status} of the one task whose name contains fragment."""
        matches = [statuses for name, statuses in self.tasks() if fragment in name]
        assert len(matches) == 1, "expected one task named like %r, got %d among %s%s" % (
            fragment, len(matches), [task[0] for task in self.tasks()], self)
        return matches[0]

    def warnings(self) -> str:
        """The warning lines."""
        return "\n".join(line for line in self.output.splitlines() if line.startswith("[WARNING]"))

    def errors(self) -> str:
        """The error lines and the failed tasks' results."""
        return "\n".join(line for line in self.output.splitlines() if line.startswith(("[ERROR]", "fatal: ")))

    def changed(self, host: str) -> int:
        """changed= of host in the PLAY RECAP."""
        assert host in self.recap, "no PLAY RECAP line for %s%s" % (host, self)
        return self.recap[host]["changed"]

    def failed(self, host: str) -> int:
        """failed= of host in the PLAY RECAP."""
        assert host in self.recap, "no PLAY RECAP line for %s%s" % (host, self)
        return self.recap[host]["failed"]


def parse_recap(output: str) -> dict:
    """{host: {ok, changed, unreachable, failed, skipped, rescued, ignored}} from the PLAY RECAP."""
    tail = output.rpartition("PLAY RECAP")[2]
    return {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in _RECAP.finditer(tail)}


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
    """Environment of every ansible-playbook run: this collection only, default callback, no colour, temps in tmp."""
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
    return env


# ---------------------------------------------------------------------------------------------
# One night: a demo root with its landing directory

class Night:
    """A demo root with a generated landing directory, and the means to run and check the playbook on it."""

    def __init__(self, root: Path, summary: dict, env: dict, cwd: Path) -> None:
        self.root = root
        self.summary = summary
        self.env = env
        self.cwd = cwd
        self.files = {name: dict(info) for name, info in summary["files"].items()}
        # The files a complete backup holds; tests add to it (in-flight files once old, extra files).
        self.expected = {name for name, info in self.files.items() if info["kind"] == "regular"}
        self.runs = 0

    hosts = HOSTS
    temp_mark = TEMP_MARK
    tree_hash = staticmethod(tree_hash)
    snapshot = staticmethod(snapshot)
    sha256sum = staticmethod(sha256sum)

    # -- paths -------------------------------------------------------------------------------
    @property
    def landing(self) -> Path:
        """The landing directory on the primary."""
        return self.root / "edge1" / "MNAAS_Input"

    def backup_root(self, host: str) -> Path:
        """Customer_backup directory of one edge node."""
        return self.root / host / ("backup1" if host == "edge1" else "backup2") / "Customer_backup"

    def backup(self, host: str, name: str) -> Path:
        """Where host keeps the backup of a landing file."""
        return self.backup_root(host) / self.files[name]["customer"] / name

    def lock(self, host: str) -> Path:
        """The run lock of host."""
        return self.root / host / "state" / "MNAAS_backup_files_process.sem"

    @property
    def ledger(self) -> Path:
        """The ledger of processed files on the primary."""
        return self.root / "edge1" / "state" / "MNAAS_backup_files_process_ledger.csv"

    @property
    def manifest(self) -> Path:
        """The run manifest on the primary."""
        return self.root / "edge1" / "MNAAS_backup_files_process_list.csv"

    @property
    def flag(self) -> Path:
        """The SUCCESS/FAIL flag on the primary."""
        return self.root / "edge1" / "MNAAS_backup_files_process_ProcessStatusFile"

    @property
    def warehouse(self) -> Path:
        """The embedded SQLite warehouse on the primary."""
        return self.root / "edge1" / "state" / "MNAAS_backup_warehouse.sqlite"

    # -- running -----------------------------------------------------------------------------
    def command(self, *extra, check: bool = False, diff: bool = False) -> list:
        """The ansible-playbook command line."""
        # The generator's in-flight files are "now": an hour of min_age keeps them in flight however long a test's
        # runs take on a loaded machine (at the default 120 s they turned old between two runs); a test may override it.
        args = [find_tool("ansible-playbook"), "-i", str(INVENTORY), str(PLAYBOOK), "-e", "mnaas_demo_root=%s" % self.root,
                "-e", json.dumps({"mnaas_backup_min_age": IN_FLIGHT_AGE})]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        return args + [str(a) for a in extra]

    def run(self, *extra, check: bool = False, diff: bool = False, expect_rc: int | None = 0) -> Result:
        """Run the playbook to its end; assert its exit code unless expect_rc is None."""
        args = self.command(*extra, check=check, diff=diff)
        started = time.monotonic()
        proc = subprocess.run(args, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=RUN_TIMEOUT, check=False)
        output = proc.stdout.decode("utf-8", "replace")
        self.runs += 1
        logs = self.root.parent / "logs"
        logs.mkdir(exist_ok=True)
        (logs / ("run-%d.log" % self.runs)).write_text(output)
        result = Result(args, proc.returncode, output, parse_recap(output), time.monotonic() - started)
        if expect_rc is not None:
            assert result.rc == expect_rc, "ansible-playbook exited %s, expected %s%s" % (result.rc, expect_rc, result)
        hosts = [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg == "--limit"] or HOSTS
        assert set(result.recap) == set(hosts), "PLAY RECAP should list %s, got %s%s" % (hosts, result.recap, result)
        return result

    @staticmethod
    def extra_vars(**variables) -> list:
        """``-e`` with typed values (JSON), as a vars file or AWX would give them."""
        return ["-e", json.dumps(variables)]

    def start(self, *extra, log: Path) -> subprocess.Popen:
        """Start the playbook in its own session (so its whole process group can be killed)."""
        with open(log, "wb") as stream:
            return subprocess.Popen(self.command(*extra), env=self.env, cwd=self.cwd,  # pylint: disable=consider-using-with
                                    stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)

    # -- the landing directory ------------------------------------------------------------------
    def add_file(self, customer: str, domain: str, name: str, chunks, mtime: float) -> None:
        """Write one more landing file from byte chunks and expect it backed up (records counted here, one header line)."""
        path = self.landing / name
        newlines = size = 0
        last = b""
        with open(path, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                newlines += chunk.count(b"\n")
                size += len(chunk)
                last = chunk[-1:] or last
        os.utime(path, (mtime, mtime))
        lines = newlines + (1 if size and last != b"\n" else 0)
        self.files[name] = {"name": name, "kind": "regular", "customer": customer, "domain": domain,
                            "records": max(lines - 1, 0), "size": size, "mtime": mtime, "mtime_ns": path.stat().st_mtime_ns}
        self.expected.add(name)

    def names(self, *kinds: str) -> list:
        """Sorted names of the landing files of these kinds (regular, in_flight, ambiguous, unassigned, unmatched)."""
        return sorted(name for name, info in self.files.items() if info["kind"] in kinds)

    def oldest_first(self, names) -> list:
        """Names sorted as discovery takes them: modification time, then name."""
        return sorted(names, key=lambda name: (self.files[name]["mtime_ns"], name))

    # -- reading results -----------------------------------------------------------------------
    def temps(self) -> list:
        """Every temporary file of a copy anywhere under the demo root."""
        return sorted(str(p) for p in self.root.rglob("*") if TEMP_MARK in p.name)

    def backed_up(self, host: str) -> set:
        """Names of the regular files in host's customer backup directories (hidden temps excluded)."""
        base = self.backup_root(host)
        if not base.exists():
            return set()
        return {p.name for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")}

    def final_rows(self) -> list:
        """Rows of the final record-count table, read in a separate read-only connection."""
        if not self.warehouse.exists():
            return []
        conn = sqlite3.connect(self.warehouse.as_uri() + "?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM %s" % FINAL_TABLE)]
        finally:
            conn.close()

    @staticmethod
    def csv_rows(path: Path) -> list:
        """Data rows of a manifest or ledger CSV."""
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    # -- checks --------------------------------------------------------------------------------
    def assert_backups(self, names, result: Result | None = None) -> None:
        """Both nodes hold exactly these files, byte for byte equal to their source, mtime kept; no temps."""
        names = set(names)
        for host in HOSTS:
            got = self.backed_up(host)
            assert got == names, "%s: missing %s, unexpected %s%s" % (host, sorted(names - got), sorted(got - names), result or "")
        sources = sha256sum(self.landing / n for n in names)
        for host in HOSTS:
            backups = sha256sum(self.backup(host, n) for n in names)
            for name in names:
                src, dest = self.landing / name, self.backup(host, name)
                assert backups[dest] == sources[src], "%s differs from its source %s%s" % (dest, src, result or "")
                assert abs(dest.stat().st_mtime_ns - src.stat().st_mtime_ns) < 1_000_000, "%s: mtime not kept" % dest
        assert not self.temps(), "temporary files left: %s%s" % (self.temps(), result or "")

    def assert_counts(self, names, result: Result | None = None) -> None:
        """The final table counts each of these files exactly once, with the generator's record count."""
        rows = self.final_rows()
        keys = [(row["customer"], row["file_name"]) for row in rows]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        assert not duplicates, "files counted more than once: %s%s" % (duplicates, result or "")
        expected = {(self.files[n]["customer"], n): self.files[n]["records"] for n in names}
        got = {(row["customer"], row["file_name"]): int(row["records"]) for row in rows}
        assert got == expected, "final table differs: missing %s, unexpected %s, wrong %s%s" % (
            sorted(set(expected) - set(got)), sorted(set(got) - set(expected)),
            sorted(k for k in set(got) & set(expected) if got[k] != expected[k]), result or "")
        per_customer = {}
        for row in rows:
            per_customer[row["customer"]] = per_customer.get(row["customer"], 0) + int(row["records"])
        expected_sums = {}
        for key, records in expected.items():
            expected_sums[key[0]] = expected_sums.get(key[0], 0) + records
        assert per_customer == expected_sums, "records per customer %s, expected %s" % (per_customer, expected_sums)

    def assert_manifest(self, path: Path, names, result: Result | None = None) -> list:
        """The CSV lists exactly these files, with their customer, domain, size, records and sha256sum."""
        rows = self.csv_rows(path)
        listed = [row["file_name"] for row in rows]
        assert sorted(listed) == sorted(names), "%s: missing %s, unexpected %s%s" % (
            path, sorted(set(names) - set(listed)), sorted(set(listed) - set(names)), result or "")
        sources = sha256sum(self.landing / n for n in listed)
        for row in rows:
            info = self.files[row["file_name"]]
            assert (row["customer"], row["domain"], int(row["file_size"]), int(row["records"])) == \
                (info["customer"], info["domain"], info["size"], info["records"]), "%s: wrong row %s" % (path, row)
            assert row["sha256"] == sources[self.landing / row["file_name"]], "%s: wrong sha256 in %s" % (path, row)
        return rows

    def assert_unlocked(self, result: Result | None = None) -> None:
        """Both run locks were given back."""
        for host in HOSTS:
            assert not self.lock(host).exists(), "%s still locked: %s%s" % (host, self.lock(host).read_text(), result or "")


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
# Edge nodes made ready by the collection itself (playbooks/prepare_nodes.yml)

PREPARE_PLAYBOOK = REPO_ROOT / "playbooks" / "prepare_nodes.yml"
NODE_VENV = "/opt/mnaas-backup/venv"
NODE_VENV_PYTHON = NODE_VENV + "/bin/python"


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The nodes' offline wheelhouse (tools/wheelhouse.py: Python 3.9, manylinux), built once; $MNAAS_WHEELHOUSE when set."""
    path = Path(os.environ.get("MNAAS_WHEELHOUSE") or REPO_ROOT / ".build" / "wheelhouse")
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "wheelhouse.py"), "-o", str(path)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, "tools/wheelhouse.py failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    assert list(path.glob("pip-*.whl")), "no pip wheel in %s" % path
    return path


def node_inventory(base: Path, directory: Path, group_vars: dict, **host_vars) -> Path:
    """An inventory of the test nodes of ``base`` (their start.sh inventory: addresses, keys, known_hosts) with edge1 the
    primary and edge2 the secondary, ``group_vars`` for both and ``host_vars`` ({host: {var: value}}) on top."""
    import yaml  # pylint: disable=import-outside-toplevel
    hosts = yaml.safe_load((base / "inventory.yml").read_text(encoding="utf-8"))["all"]["children"]["edge_nodes"]["hosts"]
    hosts["edge1"]["mnaas_backup_node_role"] = "primary"
    hosts["edge2"].update({"mnaas_backup_node_role": "secondary", "mnaas_backup_primary_host": "edge1"})
    for host, values in host_vars.items():
        hosts[host].update(values)
    (directory / "group_vars").mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"edge_nodes": {"hosts": hosts}}), encoding="utf-8")
    (directory / "group_vars" / "edge_nodes.yml").write_text(yaml.safe_dump(group_vars), encoding="utf-8")
    return directory


def run_playbook(playbook: Path, inventory: Path, env: dict, cwd: Path, *extra, log: Path | None = None) -> Result:
    """ansible-playbook to its end (any exit code); the output kept in ``log`` when given."""
    args = [find_tool("ansible-playbook"), "-i", str(inventory), str(playbook)] + [str(a) for a in extra]
    started = time.monotonic()
    proc = subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT, check=False)
    output = proc.stdout.decode("utf-8", "replace")
    if log is not None:
        log.write_text(output, encoding="utf-8")
    return Result(args, proc.returncode, output, parse_recap(output), time.monotonic() - started)


def prepare_shared_nodes(base: Path, port: int, env: dict, cwd: Path, wheelhouse_dir: Path, tmp: Path) -> Result:
    """playbooks/prepare_nodes.yml on the nodes of ``base``: their virtualenvs (paramiko on the secondary) and the
    secondary's SFTP-only key on the primary. Idempotent: a second call changes nothing."""
    group_vars = {
        "mnaas_backup_customers": {},
        "mnaas_backup_state_dir": "/srv/mnaas/prepared/state",
        "mnaas_backup_manifest_file": "/srv/mnaas/prepared/MNAAS_backup_files_process_list.csv",
        "mnaas_backup_flag_file": "/srv/mnaas/prepared/MNAAS_backup_files_process_ProcessStatusFile",
        "mnaas_backup_primary_location": {"port": port},
        "mnaas_backup_wheelhouse": str(wheelhouse_dir),
    }
    inventory = node_inventory(base, tmp / "prepare-inventory", group_vars)
    result = run_playbook(PREPARE_PLAYBOOK, inventory, env, cwd, log=tmp / "prepare.log")
    assert result.rc == 0, "prepare_nodes.yml failed%s" % result
    return result
