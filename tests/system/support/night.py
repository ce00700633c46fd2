# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One night of the demo inventory on this machine: a demo root with its landing directory, the runs, the checks.

Results are checked with tools independent of the collection: ``sha256sum`` for file contents, Python's ``sqlite3``
in a separate read-only connection for the warehouse, ``csv`` for the manifests.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

from support import playbook
from support.playbook import REPO_ROOT, Result, find_tool

INVENTORY = REPO_ROOT / "inventory" / "demo"
PLAYBOOK = REPO_ROOT / "playbooks" / "customer_backup.yml"
MAKE_LANDING = REPO_ROOT / "tools" / "make_landing.py"

SEED = 20261124
HOSTS = ("edge1", "edge2")
TEMP_MARK = ".mnaas-tmp."
FINAL_TABLE = "customers_files_records_count"
LINES_PER_MIB = 16384  # big_csv: 63 random hex characters and a newline per line
IN_FLIGHT_AGE = 3600  # mnaas_backup_min_age of the demo runs; a file older than 2 * IN_FLIGHT_AGE is surely old enough


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


def age_in_flight(night) -> None:
    """Make the generator's in-flight files old enough and expect them backed up: a test whose runs take longer
    than min_age would otherwise see them turn old between two runs (test_night.py tests them as in flight)."""
    past = time.time() - 2 * IN_FLIGHT_AGE
    for name in night.names("in_flight"):
        os.utime(night.landing / name, (past, past))
        night.files[name].update(kind="regular", mtime=past, mtime_ns=(night.landing / name).stat().st_mtime_ns)
        night.expected.add(name)


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
        self.runs += 1
        logs = self.root.parent / "logs"
        logs.mkdir(exist_ok=True)
        result = playbook.run(self.command(*extra, check=check, diff=diff), self.env, self.cwd, log=logs / ("run-%d.log" % self.runs),
                              expect_rc=expect_rc)
        hosts = [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg == "--limit"] or HOSTS
        assert set(result.recap) == set(hosts), "the recap should list %s, got %s%s" % (hosts, result.recap, result)
        return result

    @staticmethod
    def extra_vars(**variables) -> list:
        """``-e`` with typed values (JSON), as a vars file or AWX would give them."""
        return ["-e", json.dumps(variables)]

    def start(self, *extra, log: Path) -> subprocess.Popen:
        """Start the playbook in its own session (so its whole process group can be killed); events beside log."""
        return playbook.start(self.command(*extra), self.env, self.cwd, log)

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


def big_csv(mib: int):
    """A CSV of about mib MiB: a header, then a random 1 MiB block of lines repeated."""
    raw = os.urandom(LINES_PER_MIB * 63 // 2).hex().encode("ascii")
    block = b"".join(raw[i:i + 63] + b"\n" for i in range(0, len(raw), 63))
    assert len(block) == 1 << 20
    yield b"msisdn_hash,payload\n"
    yield from [block] * mib


STALE = {'mnaas_backup_lock_stale_after': 1}  # a killed run's lock is taken over by the next run
BIG_MIB = 48


def add_big(night, customer: str, name: str, mtime: float) -> None:
    """A traffic file of BIG_MIB MiB more for customer, expected backed up."""
    night.add_file(customer, 'traffic', name, big_csv(BIG_MIB), mtime)


def assert_nothing_partial(night, context: str) -> None:
    """Every file under a final name in either node's backups equals its source, byte for byte."""
    finals = [p for host in night.hosts if night.backup_root(host).exists()
              for p in night.backup_root(host).rglob('*') if p.is_file() and night.temp_mark not in p.name]
    sources = night.sha256sum({night.landing / p.name for p in finals})
    copies = night.sha256sum(finals)
    for path in finals:
        assert copies[path] == sources[night.landing / path.name], '%s is a partial or wrong copy %s' % (path, context)


def age_locks(night) -> None:
    """Make the locks a killed run left older than stale_after=1."""
    time.sleep(1.2)
