# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile and odd input on the demo inventory (issue 6): file names, non-regular entries, crafted settings,
a legacy file with command substitutions, a sparse file, empty files, a landing directory of 100,000 files.

docs/reliability.md lists every input tried here and what happened. The sparse file is 256 MiB here;
``MNAAS_RELIABILITY_SOAK=1`` makes it the 10 GiB of the soak variant (about 40 GB read and written).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from support.night import age_in_flight
from support.playbook import REPO_ROOT, RUN_TIMEOUT, Result, find_tool
from support.processes import module_pids, peak_rss_kib

SOAK = os.environ.get('MNAAS_RELIABILITY_SOAK', '') not in ('', '0')
SPARSE_BYTES = (10 << 30) if SOAK else (256 << 20)
PEAK_RSS_KIB = 200 * 1024  # a module that read a whole file into memory would exceed this with the sparse file
CUSTOMERS = ('ACME_TELEMATICS', 'GLOBEX_FLEET', 'INITECH_METERS', 'UMBRELLA_IOT')
MANY = 100_000
CAP = 500  # the role's default mnaas_backup_max_files


def customers_file(night, path: Path, **overrides) -> list:
    """``-e @file`` giving the demo's customers, with some settings replaced."""
    customers = {}
    for name in CUSTOMERS:
        customers[name] = {'backup_dir': str(night.backup_root('edge1') / name), 'edge2_backup_dir': str(night.backup_root('edge2') / name)}
        customers[name].update(overrides.get(name, {}))
    path.write_text(json.dumps({'mnaas_backup_customers': customers}))
    return ['-e', '@%s' % path]


def run_sampled(night, *extra, log: Path, expect_rc: int = 0):
    """Run the playbook to its end while sampling the peak memory of its module processes: (Result, peak KiB)."""
    started = time.monotonic()
    proc = night.start(*extra, log=log)
    peak = 0
    try:
        while proc.poll() is None:
            pids = module_pids(proc.pid, 'discover') + module_pids(proc.pid, 'backup_copy')
            peak = max(peak, peak_rss_kib(pids))
            assert time.monotonic() - started < RUN_TIMEOUT * (4 if SOAK else 1), 'the run did not end'
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    result = Result.read(night.command(*extra), proc.returncode, log, time.monotonic() - started)
    assert result.rc == expect_rc, 'ansible-playbook exited %s, expected %s%s' % (result.rc, expect_rc, result)
    return result, peak


# ---------------------------------------------------------------------------------------------
# File names, non-regular entries, clock skew, empty and sparse files: one night and its rerun

HOSTILE_NAMES = (
    'ACME_TELEMATICS_Traffic_ with  spaces .csv',
    'ACME_TELEMATICS_Traffic_quote\'single"double.csv',
    'ACME_TELEMATICS_Traffic_unicodé_日本語_Ωµ.csv',
    'ACME_TELEMATICS_Traffic_new\nline.csv',
    'ACME_TELEMATICS_Traffic_tab\tand\rcarriage.csv',
    'ACME_TELEMATICS_Traffic_ --help -rf *.csv',
    'ACME_TELEMATICS_Traffic_a;b|c&d>e<f.csv',
    '-ACME_TELEMATICS_Traffic_leading_dash.csv',
    '--ACME_TELEMATICS_Traffic_two_dashes.csv',
)


def test_hostile_names_odd_entries_sparse_and_empty_files(night, tmp_path):
    """Odd names back up byte for byte on both nodes and count once; links, a FIFO, a directory and a name that is not UTF-8
    are left out with a warning naming them (the run does not hang on the FIFO, nothing outside the landing dir is read);
    a far-future mtime is backed up with a warning; nothing in a name is ever run; the rerun changes nothing."""
    age_in_flight(night)
    marker = 'MNAAS_RAN_%s' % uuid.uuid4().hex[:8]
    old = time.time() - 30 * 86400
    names = list(HOSTILE_NAMES) + ['GLOBEX_FLEET_Traffic_$(touch %s).csv' % marker, 'GLOBEX_FLEET_Traffic_`touch %s`.csv' % marker,
                                   'GLOBEX_FLEET_Traffic_${IFS}$((1+1))$HOME.csv']
    prefix = 'INITECH_METERS_Traffic_'
    names += [prefix + 'x' * (255 - len(prefix) - 5) + '1.csv', prefix + 'x' * (255 - len(prefix) - 5) + '2.csv']  # 255 bytes, one prefix
    names += [prefix + 'é' * ((255 - len(prefix) - 4) // 2) + '.csv']  # 253 bytes of two-byte characters
    for index, name in enumerate(names):
        customer = next(c for c in CUSTOMERS if c in name)
        night.add_file(customer, 'traffic', name, [b'msisdn,payload\n', b'1,a\n2,b\n'], old + index)
    assert all(len(n.encode()) == 255 for n in names[-3:-1])
    night.add_file('UMBRELLA_IOT', 'tolling', 'UMBRELLA_IOT_Tolling_empty.csv', [], old)
    night.add_file('UMBRELLA_IOT', 'tolling', 'UMBRELLA_IOT_Tolling_header_only.csv', [b'msisdn,payload\n'], old)
    future = 'UMBRELLA_IOT_Actives_future.csv'
    night.add_file('UMBRELLA_IOT', 'actives', future, [b'msisdn,payload\n', b'1,a\n'], time.time() + 86400)
    sparse = 'UMBRELLA_IOT_Traffic_sparse.csv'
    with open(night.landing / sparse, 'wb') as handle:
        handle.write(b'msisdn,payload\n')
        handle.truncate(SPARSE_BYTES)  # a hole: zeros the disk does not hold
    os.utime(night.landing / sparse, (old, old))
    # One record: the header line, then one line of zeros without a final newline (a last line counts).
    night.files[sparse] = {'name': sparse, 'kind': 'regular', 'customer': 'UMBRELLA_IOT', 'domain': 'traffic', 'records': 1,
                           'size': SPARSE_BYTES, 'mtime': old, 'mtime_ns': (night.landing / sparse).stat().st_mtime_ns}
    night.expected.add(sparse)

    outside = tmp_path / 'outside' / 'secret.csv'
    outside.parent.mkdir()
    outside.write_bytes(b'msisdn,payload\nSECRET-OUTSIDE-THE-LANDING-DIR\n')
    left_out = {
        'UMBRELLA_IOT_Traffic_link_out.csv': lambda p: p.symlink_to(outside),
        'UMBRELLA_IOT_Traffic_link_in.csv': lambda p: p.symlink_to(night.landing / names[0]),
        'UMBRELLA_IOT_Traffic_fifo.csv': os.mkfifo,
        'UMBRELLA_IOT_Traffic_dir.csv': lambda p: (p.mkdir(), (p / 'UMBRELLA_IOT_Traffic_inner.csv').write_text('h\n1\n')),
    }
    for name, make in left_out.items():
        make(night.landing / name)
    not_utf8 = os.fsdecode(b'UMBRELLA_IOT_Traffic_latin1_\xe9t\xe9.csv')
    (night.landing / not_utf8).write_bytes(b'msisdn,payload\n1,a\n')
    os.utime(night.landing / not_utf8, (old, old))
    landing = night.tree_hash(night.landing, dir_mtimes=True)

    first, peak = run_sampled(night, *customers_file(night, tmp_path / 'customers.json',
                                                     ACME_TELEMATICS={'match': ['ACME_TELEMATICS_*', '-ACME_TELEMATICS_*', '--ACME_TELEMATICS_*']}),
                              log=tmp_path / 'first.log')
    night.assert_backups(night.expected, first)
    night.assert_counts(night.expected, first)
    night.assert_manifest(night.ledger, night.expected, first)
    assert night.flag.read_bytes() == b'SUCCESS\n', first
    night.assert_unlocked(first)
    warnings = first.warnings()
    for name in left_out:
        assert name in warnings, '%s is not named in a warning%s' % (name, first)
    assert 'UMBRELLA_IOT_Traffic_latin1_\\udce9t\\udce9.csv (its name is not valid UTF-8' in warnings, first
    assert future in warnings and 'in the future' in warnings, first
    for host in night.hosts:
        assert not set(left_out) & night.backed_up(host), first
        # grep streams (the backups hold the sparse file, 10 GiB in the soak variant); exit 1: no file holds it.
        leaked = subprocess.run(['grep', '-rlF', '--', 'SECRET-OUTSIDE', str(night.backup_root(host))], capture_output=True, text=True, check=False)
        assert leaked.returncode == 1, 'the symlink target outside the landing dir is in %s %s' % (leaked.stdout, leaked.stderr)
    assert night.tree_hash(night.landing, dir_mtimes=True) == landing, 'the landing directory was changed'
    assert 0 < peak < PEAK_RSS_KIB, 'peak memory of the modules %d KiB with a %d-byte sparse file' % (peak, SPARSE_BYTES)
    ran = [p for where in (night.root, night.cwd) for p in where.rglob(marker)]
    ran += [where / marker for where in (REPO_ROOT, Path.home(), Path('/'), Path('/tmp')) if (where / marker).exists()]
    assert not ran, 'a command substitution in a file name was run: %s' % ran

    before = night.tree_hash(night.root)
    second = night.run(*customers_file(night, tmp_path / 'customers.json',
                                       ACME_TELEMATICS={'match': ['ACME_TELEMATICS_*', '-ACME_TELEMATICS_*', '--ACME_TELEMATICS_*']}))
    assert second.changed('edge1') == 0 and second.changed('edge2') == 0, second
    assert night.tree_hash(night.root) == before, 'the rerun changed files%s' % (second,)
    for host in night.hosts:  # the copies of the sparse file are not kept in pytest's temporary directories
        night.backup(host, sparse).unlink()


# ---------------------------------------------------------------------------------------------
# Settings crafted for path traversal and SQL injection: refused before anything is written

def test_crafted_customer_table_and_path_settings_refused(night, tmp_path):
    """Each crafted value is refused by the preflight, named with its key; nothing is written anywhere, no SQL runs."""
    crafted = {
        'mnaas_backup_customers': {
            "ACME'; DROP TABLE customers_files_records_count; --": {'backup_dir': str(night.root / 'b1'), 'edge2_backup_dir': str(night.root / 'b2')},
        },
        'mnaas_backup_staging_table': 'x; DROP TABLE customers_files_records_count; --',
        'mnaas_backup_final_table': 'customers_files_records_count`; SELECT 1',
    }
    path = tmp_path / 'crafted.json'
    path.write_text(json.dumps(crafted))
    traversal = tmp_path / 'traversal.json'
    traversal.write_text(json.dumps({'mnaas_backup_customers': {'ACME_TELEMATICS': {
        'backup_dir': str(night.root) + '/edge1/../../../etc/cron.d', 'edge2_backup_dir': str(night.root / 'b2')}},
        'mnaas_backup_domains': {'traffic': ['../../etc/*']}}))
    before = night.tree_hash(night.root, dir_mtimes=True)
    for extra, patterns in ((path, ["mnaas_backup_staging_table", "x; DROP TABLE", "mnaas_backup_final_table", "`; SELECT 1",
                                    "customers", "ACME'; DROP TABLE"]),
                            (traversal, ["mnaas_backup_customers.ACME_TELEMATICS.backup_dir", "/../../../etc/cron.d",
                                         "domains.traffic", "../../etc/*"])):
        result = night.run('-e', '@%s' % extra, expect_rc=2)
        for host in night.hosts:
            assert result.failed(host) == 1 and result.changed(host) == 0, result
        errors = result.errors()
        for pattern in patterns:
            assert pattern in errors, 'the error does not name %r%s' % (pattern, result)
    assert night.tree_hash(night.root, dir_mtimes=True) == before, 'crafted settings wrote under %s' % night.root


# ---------------------------------------------------------------------------------------------
# A legacy properties file with command substitutions

def test_legacy_file_substitutions_never_run(ansible_env, ansible_workdir, tmp_path):
    """Through the real migration playbook: every $(...) and backtick is reported with its line and key, none runs."""
    marker = tmp_path / 'ran'
    example = REPO_ROOT / 'tests' / 'unit' / 'plugins' / 'lookup' / 'fixtures' / 'MNAAS_backup_files_process.properties'
    text = example.read_text()
    for old, new in (('edge2node=mtthdoped02', 'edge2node=$(touch %s)' % marker),
                     ('sem_extension=.sem', 'sem_extension=`touch %s`' % marker),
                     ('No_of_files_to_process=500', 'No_of_files_to_process="5$(touch %s)00"' % marker),
                     ('[traffic]="$MNAASInputPath/*_Traffic_*.csv"', '[traffic]="$MNAASInputPath/$(touch %s)*_Traffic_*.csv"' % marker)):
        assert old in text, old
        text = text.replace(old, new)
    text += 'eval "touch %s"\n$(touch %s)\n' % (marker, marker)
    legacy = tmp_path / 'legacy.properties'
    legacy.write_text(text)
    output = tmp_path / 'inventory' / 'group_vars' / 'edge_nodes.yml'
    extra = {'legacy_properties': str(legacy), 'output': str(output), 'legacy_variables': {
        'dbname': 'mnaas', 'MNAASConfPath': '/c', 'MNAASLocalLogPath': '/l', 'MNAASLocalPath': '/p', 'MNAASInputPath': '/i'}}
    proc = subprocess.run([find_tool('ansible-playbook'), str(REPO_ROOT / 'playbooks' / 'migrate_legacy.yml'),
                           '-e', json.dumps(extra)], env=ansible_env, cwd=ansible_workdir, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT, check=False)
    out = proc.stdout.decode('utf-8', 'replace')
    assert proc.returncode == 2, out
    for key in ('edge2node: command substitution', 'sem_extension: command substitution', 'No_of_files_to_process: command substitution',
                'MNAAS_backup_files_process_file_pattern[traffic]: command substitution'):
        assert key in out and 'is not run' in out, 'no problem reported for %r:\n%s' % (key, out)
    assert not marker.exists(), 'a command substitution of the legacy file was run'
    assert not output.exists() and not (tmp_path / 'inventory').exists(), out


# ---------------------------------------------------------------------------------------------
# A landing directory of 100,000 files

def test_landing_with_100000_files_bounded_by_the_default_cap(night, tmp_path):
    """100,000 more files: one run takes exactly the 500 oldest still needing work, counts them once, holds the rest back."""
    age_in_flight(night)
    base = time.time() - 20 * 86400  # older than the generator's files: the whole batch comes from here
    many = []
    for index in range(MANY):
        customer = CUSTOMERS[index % len(CUSTOMERS)]
        name = '%s_Activations_20200101_%06d.csv' % (customer, index)
        path = night.landing / name
        with open(path, 'wb') as handle:
            handle.write(b'msisdn,payload\n%d,x\n' % index)
        mtime = base + index
        os.utime(path, (mtime, mtime))
        night.files[name] = {'name': name, 'kind': 'regular', 'customer': customer, 'domain': 'activations', 'records': 1,
                             'size': path.stat().st_size, 'mtime': mtime, 'mtime_ns': int(mtime * 1e9)}
        many.append(name)
    pending = len(night.expected) + MANY

    result, peak = run_sampled(night, log=tmp_path / 'many.log')
    batch = many[:CAP]
    night.assert_backups(batch, result)
    night.assert_counts(batch, result)
    night.assert_manifest(night.manifest, batch, result)
    assert night.flag.read_bytes() == b'SUCCESS\n', result
    assert '%d file(s) backed up and counted' % CAP in result.messages() and 'held back: %d by the cap' % (pending - CAP) in result.messages(), result
    assert 0 < peak < PEAK_RSS_KIB, 'peak memory of the modules %d KiB with %d files in the landing dir' % (peak, pending)
