# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What goes wrong on a night: a conflicting backup, a run killed mid-copy, a held lock, bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time

import pytest

from support.night import big_csv
from support.processes import kill_tree

BIG_FILES = ("ACME_TELEMATICS", "GLOBEX_FLEET", "INITECH_METERS")
BIG_MIB = 150
KILL_TIMEOUT = 60


# ---------------------------------------------------------------------------------------------
# A conflicting backup is reported and left alone

def test_conflict_left_untouched(night):
    """A backup already there with other content fails the run and the flag, is kept as is; the rest is backed up."""
    victim = night.oldest_first(n for n in night.expected if night.files[n]["customer"] == "GLOBEX_FLEET")[0]
    planted = night.backup("edge1", victim)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"msisdn,payload\nnot the source\n")
    before = (planted.read_bytes(), planted.stat().st_mtime_ns, planted.stat().st_ino)

    result = night.run(expect_rc=2)
    assert result.failed("edge1") == 1, result
    assert str(planted) in result.errors(), "the conflicting backup is not named in the errors%s" % (result,)
    assert night.flag.read_bytes() == b"FAIL\n", result
    assert (planted.read_bytes(), planted.stat().st_mtime_ns, planted.stat().st_ino) == before, "the conflicting backup was touched"

    others = night.expected - {victim}
    assert night.backed_up("edge1") == night.expected, result
    assert others <= night.backed_up("edge2"), "secondary misses %s%s" % (sorted(others - night.backed_up("edge2")), result)
    sources = night.sha256sum(night.landing / n for n in others)
    for host in night.hosts:
        backups = night.sha256sum(night.backup(host, n) for n in others)
        for name in others:
            assert backups[night.backup(host, name)] == sources[night.landing / name], "%s: %s differs from its source" % (host, name)
    night.assert_manifest(night.manifest, others, result)
    night.assert_manifest(night.ledger, others, result)
    night.assert_counts(others, result)
    assert not night.temps(), result
    night.assert_unlocked(result)

    # The file in conflict is not a backup of its source: the secondary must not take it for one.
    mirrored = night.backup("edge2", victim)
    assert not mirrored.exists() or mirrored.read_bytes() == (night.landing / victim).read_bytes(), \
        "the secondary copied the primary's conflicting file %s as the backup of %s%s" % (planted, victim, result)


# ---------------------------------------------------------------------------------------------
# A run killed in the middle of a copy

def _big_temps(night, names) -> list:
    """Temporary files of the big files, already holding data, in the primary's backup directories."""
    found = []
    for customer in BIG_FILES:
        try:
            entries = list(os.scandir(night.backup_root("edge1") / customer))
        except FileNotFoundError:
            continue
        for entry in entries:
            if night.temp_mark in entry.name and any(name in entry.name for name in names):
                try:
                    if entry.stat().st_size > 0:
                        found.append(entry.path)
                except FileNotFoundError:
                    pass
    return found


def test_sigkill_mid_copy(night, tmp_path):
    """A run killed mid-copy leaves no partial file under a final name; the next run takes the stale lock over and finishes."""
    oldest = time.time() - 10 * 86400
    big = []
    for index, customer in enumerate(BIG_FILES):
        name = "%s_Traffic_20200101_%04d.csv" % (customer, 9001 + index)
        night.add_file(customer, "traffic", name, big_csv(BIG_MIB), oldest + index)
        big.append(name)

    log = tmp_path / "killed.log"
    proc = night.start(log=log)
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while not _big_temps(night, big):
            assert proc.poll() is None, "the run ended before a big file was being copied:\n%s" % log.read_text()
            assert time.monotonic() < deadline, "no temporary file within %ss:\n%s" % (KILL_TIMEOUT, log.read_text())
            time.sleep(0.01)
    finally:
        kill_tree(proc)
    killed = log.read_text()

    # Nothing under a final name differs from its source; the temporary files stay; the locks stay.
    finals = [p for host in night.hosts if night.backup_root(host).exists()
              for p in night.backup_root(host).rglob("*") if p.is_file() and night.temp_mark not in p.name]
    sources = night.sha256sum({night.landing / p.name for p in finals})
    copies = night.sha256sum(finals)
    for path in finals:
        assert copies[path] == sources[night.landing / path.name], "%s is a partial or wrong copy after the kill" % path
    assert night.temps(), "the killed run left no temporary file: was it killed mid-copy?\n%s" % killed
    assert night.lock("edge1").exists(), "the killed run's lock is gone\n%s" % killed
    assert not night.flag.exists(), "a killed run wrote the flag\n%s" % killed

    # The dead run's lock is younger than the default stale_after: take it over with stale_after=1.
    age = time.time() - night.lock("edge1").stat().st_mtime
    time.sleep(max(0.0, 2.0 - age))
    result = night.run(*night.extra_vars(mnaas_backup_lock_stale_after=1))
    assert result.changed("edge1") > 0 and result.changed("edge2") > 0, result
    warnings = result.warnings()
    assert "stale lock" in warnings and str(night.lock("edge1")) in warnings, "no warning about the stale lock taken over%s" % (result,)
    night.assert_backups(night.expected, result)  # every backup equal to its source, no temporary file left
    night.assert_counts(night.expected, result)
    night.assert_manifest(night.manifest, night.expected, result)
    assert night.flag.read_bytes() == b"SUCCESS\n", result
    night.assert_unlocked(result)
    for name in big:  # 1.3 GB of copies: not left behind in pytest's kept temporary directories when all went well
        for path in [night.landing / name] + [night.backup(host, name) for host in night.hosts]:
            path.unlink()


# ---------------------------------------------------------------------------------------------
# Another run holds the lock

def test_lock_held_refused(night):
    """A fresh lock of another run: refused with the holder shown; nothing copied, no flag, the lock kept."""
    state = night.root / "edge1" / "state"
    state.mkdir()
    state.chmod(0o750)
    lock = night.lock("edge1")
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lock.write_text(json.dumps({"host": "otherhost", "run_id": "r-123", "pid": 1, "started": started}) + "\n")
    before = (lock.read_bytes(), lock.stat().st_mtime_ns)
    landing = night.tree_hash(night.landing, dir_mtimes=True)

    result = night.run(expect_rc=2)
    assert result.failed("edge1") == 1 and result.changed("edge1") == 0, result
    errors = result.errors()
    assert "otherhost" in errors and "r-123" in errors, "the holder is not shown%s" % (result,)
    for host in night.hosts:
        assert not night.backed_up(host), result
    assert not night.flag.exists(), "the flag was written while another run holds the lock%s" % (result,)
    for path in (night.manifest, night.ledger, night.warehouse):
        assert not path.exists(), "%s was written%s" % (path, result)
    assert (lock.read_bytes(), lock.stat().st_mtime_ns) == before, "the other run's lock was touched"
    assert not night.lock("edge2").exists(), result
    assert night.tree_hash(night.landing, dir_mtimes=True) == landing


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message naming the key and the value, nothing written

def _customer(name: str, night) -> str:
    return ("mnaas_backup_customers:\n  %s:\n    backup_dir: %s\n    edge2_backup_dir: %s\n"
            % (json.dumps(name), night.root / "edge1" / "backup1" / "x", night.root / "edge2" / "backup2" / "x"))


BAD_INPUT = {
    "relative_source_dir": (["-e", "mnaas_backup_source_dir=relative/input"], None,
                            [r"mnaas_backup_source_dir", r"relative/input"]),
    "customer_with_slash": ([], lambda night: _customer("ACME/../../etc", night),
                            [r"customers", r"ACME/\.\./\.\./etc"]),
    "customer_dotdot": ([], lambda night: _customer("..", night),
                        [r"customers", r"'\.\.'"]),
    "unknown_variable": (["-e", "mnaas_backup_max_file=10"], None,
                         [r"mnaas_backup_max_file(?!s)", r"mnaas_backup_max_files"]),
    "empty_pattern_list": ([], lambda night: "mnaas_backup_domains:\n  traffic: []\n",
                           [r"domains\.traffic", r"\[\]"]),
    "unknown_customer_key": ([], lambda night: ("mnaas_backup_customers:\n  ACME_TELEMATICS:\n    backup_dirr: %s\n    edge2_backup_dir: %s\n"
                                                % (night.root / "edge1" / "b", night.root / "edge2" / "b")),
                             [r"ACME_TELEMATICS", r"backup_dirr", r"backup_dir(?!r)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input(night, tmp_path, case):
    """Each bad setting fails both hosts before anything is written, naming the key and the value."""
    args, vars_file, patterns = BAD_INPUT[case]
    args = list(args)
    if vars_file is not None:
        path = tmp_path / ("%s.yml" % case)
        path.write_text("---\n" + vars_file(night))
        args += ["-e", "@%s" % path]
    before = night.tree_hash(night.root, dir_mtimes=True)
    result = night.run(*args, expect_rc=2)
    for host in night.hosts:
        assert result.failed(host) == 1 and result.changed(host) == 0, result
    errors = result.errors()
    for pattern in patterns:
        assert re.search(pattern, errors), "the error does not match %r%s" % (pattern, result)
    assert night.tree_hash(night.root, dir_mtimes=True) == before, "bad input wrote under %s%s" % (night.root, result)
