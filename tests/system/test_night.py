# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One night end to end on the demo inventory: first run, no-op rerun, check mode, the cap, in-flight files."""

from __future__ import annotations

import math
import os
import time

CAP = 100
COPY_TASK = "primary backup dir"  # "Copy them to the customers' primary backup directories"


def test_first_run_then_noop(night):
    """Everything selectable is backed up on both nodes, listed, counted once; a rerun changes nothing; --limit edge2 re-syncs."""
    landing = night.tree_hash(night.landing, dir_mtimes=True)
    first = night.run()
    assert first.changed("edge1") > 0 and first.changed("edge2") > 0, first

    expected = night.expected
    assert len(expected) == sum(len(files) for domains in night.summary["customers"].values() for files in domains.values())
    night.assert_backups(expected, first)
    night.assert_manifest(night.manifest, expected, first)
    night.assert_manifest(night.ledger, expected, first)
    night.assert_counts(expected, first)
    assert sum(int(row["records"]) for row in night.final_rows()) == night.summary["total_records"]
    assert night.flag.read_bytes() == b"SUCCESS\n", first
    night.assert_unlocked(first)

    # Held back (in flight), refused (ambiguous, unassigned) or foreign (unmatched): never copied.
    left_out = night.names("in_flight", "ambiguous", "unassigned", "unmatched")
    assert set(night.summary["in_flight"]) and set(night.summary["ambiguous"]) and set(night.summary["unassigned"])
    for host in night.hosts:
        assert not set(left_out) & night.backed_up(host), first
    # Ambiguous and unassigned files are reported, by name, in warnings.
    warnings = first.warnings()
    for name in night.names("ambiguous", "unassigned"):
        assert name in warnings, "%s is not reported in a warning%s" % (name, first)
    # No source is ever removed or touched.
    assert night.tree_hash(night.landing, dir_mtimes=True) == landing

    before = night.tree_hash(night.root)
    second = night.run()
    assert second.changed("edge1") == 0 and second.changed("edge2") == 0, second
    assert night.tree_hash(night.root) == before, "the no-op rerun changed files under %s%s" % (night.root, second)
    night.assert_unlocked(second)

    # A backup lost on the secondary: a rerun limited to that node restores it and touches nothing on the primary.
    lost = night.backup("edge2", sorted(expected)[0])
    lost.unlink()
    primary = night.tree_hash(night.root / "edge1")
    third = night.run("--limit", "edge2")
    assert third.changed("edge2") > 0, third
    assert night.tree_hash(night.root / "edge1") == primary, "a --limit edge2 run changed the primary%s" % (third,)
    night.assert_backups(expected, third)
    night.assert_unlocked(third)


def test_check_mode_writes_nothing(night):
    """--check --diff shows the plan (files, SQL, flag) and writes nothing: no state dir, lock, temp or database."""
    before = night.tree_hash(night.root, dir_mtimes=True)
    plan = night.run(check=True, diff=True)
    assert night.tree_hash(night.root, dir_mtimes=True) == before, "check mode wrote under %s%s" % (night.root, plan)
    for host in night.hosts:
        assert not (night.root / host / "state").exists(), plan
    assert not night.warehouse.exists() and not night.flag.exists() and not night.manifest.exists(), plan
    assert plan.changed("edge1") > 0 and plan.changed("edge2") > 0, plan

    lines = plan.diff_text().splitlines()
    for customer in night.summary["customers"]:
        for host in night.hosts:
            header = "+++ after: %s" % (night.backup_root(host) / customer)
            assert header in lines, "no diff for %s%s" % (header, plan)
    for name in night.expected:  # one line in the primary's diff, one in the secondary's
        assert lines.count("+" + name) == 2, "%s is not planned on both nodes%s" % (name, plan)
    for name in night.names("in_flight", "ambiguous", "unassigned", "unmatched"):
        assert "+" + name not in lines, "%s is planned%s" % (name, plan)
    for statement in ("DELETE FROM customers_files_inter_record_count", "INSERT INTO customers_files_inter_record_count",
                      "INSERT INTO customers_files_records_count"):
        assert any(line.startswith(statement) for line in lines), "%r is not shown%s" % (statement, plan)
    assert "+SUCCESS" in lines, plan

    real = night.run()
    assert real.changed("edge1") > 0 and real.changed("edge2") > 0, real
    night.assert_backups(night.expected, real)
    night.assert_counts(night.expected, real)
    assert night.flag.read_bytes() == b"SUCCESS\n", real


def test_cap_progress_and_exact_counts(night):
    """Capped runs take the oldest files still needing work; counts stay exact, even when the ledger is lost."""
    order = night.oldest_first(night.expected)
    runs = math.ceil(len(order) / CAP)
    assert runs <= 3, "the generator's night should take about 3 capped runs, not %d" % runs
    done = []
    for run in range(1, runs + 1):
        result = night.run(*night.extra_vars(mnaas_backup_max_files=CAP))
        assert result.changed("edge1") > 0 and result.changed("edge2") > 0, result
        assert result.task(COPY_TASK)["edge1"] == "changed", result
        batch = night.backed_up("edge1") - set(done)
        wanted = order[len(done):len(done) + CAP]
        assert batch == set(wanted), "run %d: missing %s, unexpected %s%s" % (run, sorted(set(wanted) - batch), sorted(batch - set(wanted)), result)
        remaining = order[len(done) + CAP:]
        if remaining:  # oldest first: nothing left behind is older than the batch
            assert max(night.files[n]["mtime_ns"] for n in batch) < min(night.files[n]["mtime_ns"] for n in remaining)
        done += wanted
        night.assert_backups(done, result)
        night.assert_manifest(night.manifest, wanted, result)  # the run manifest lists this run's files
        night.assert_counts(done, result)
        assert night.flag.read_bytes() == b"SUCCESS\n", result
    assert set(done) == night.expected

    # Lose the ledger: every file is picked again, nothing is copied again, nothing is counted twice.
    night.ledger.unlink()
    backups = {host: night.snapshot(night.backup_root(host)) for host in night.hosts}
    rerun = night.run()
    assert rerun.task(COPY_TASK)["edge1"] == "ok", "the copy task copied files again%s" % (rerun,)
    assert rerun.changed("edge2") == 0, rerun
    for host in night.hosts:
        assert night.snapshot(night.backup_root(host)) == backups[host], "%s: backups were rewritten%s" % (host, rerun)
    night.assert_counts(night.expected, rerun)
    night.assert_manifest(night.ledger, night.expected, rerun)
    assert night.flag.read_bytes() == b"SUCCESS\n", rerun
    night.assert_unlocked(rerun)


def test_young_file_then_old_enough(night):
    """A file modified just now is held back; once old enough it is backed up and counted exactly once."""
    young = night.names("in_flight")
    assert young
    first = night.run()
    for host in night.hosts:
        assert not set(young) & night.backed_up(host), first
    assert not set(young) & {row["file_name"] for row in night.csv_rows(night.ledger)}, first
    night.assert_counts(night.expected, first)

    past = time.time() - 7200  # older than twice the runs' min_age (conftest.IN_FLIGHT_AGE)
    for name in young:
        os.utime(night.landing / name, (past, past))
        night.files[name]["mtime_ns"] = (night.landing / name).stat().st_mtime_ns
        night.expected.add(name)
    second = night.run()
    assert second.changed("edge1") > 0 and second.changed("edge2") > 0, second
    assert second.task(COPY_TASK)["edge1"] == "changed", second
    night.assert_manifest(night.manifest, young, second)
    night.assert_backups(night.expected, second)
    night.assert_counts(night.expected, second)
    assert sum(int(row["records"]) for row in night.final_rows()) == \
        night.summary["total_records"] + sum(night.files[name]["records"] for name in young)
    assert night.flag.read_bytes() == b"SUCCESS\n", second


def test_numbers_given_on_the_command_line(night):
    """``-e name=value`` gives strings: numeric settings given so are accepted like the argument spec's int."""
    before = night.tree_hash(night.root, dir_mtimes=True)
    plan = night.run("-e", "mnaas_backup_max_files=100", "-e", "mnaas_backup_lock_stale_after=60", "-e", "mnaas_backup_workers=2",
                     check=True, expect_rc=None)
    assert plan.rc == 0, "numbers given as -e name=value are refused%s" % (plan,)
    assert night.tree_hash(night.root, dir_mtimes=True) == before, plan
