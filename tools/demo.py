# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``make demo``: one whole night on the embedded default, then a rerun that must change nothing.

Generates a landing directory under the demo root (``MNAAS_DEMO_ROOT``, default ``.demo`` in the
repository), runs ``playbooks/customer_backup.yml`` on ``inventory/demo`` twice, checks that the
second run reports ``changed=0``, and prints where everything is with a per-customer summary.
"""
from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def _load_generator():
    spec = importlib.util.spec_from_file_location('make_landing', REPO / 'tools' / 'make_landing.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_playbook(root: Path, label: str) -> dict[str, tuple[int, ...]]:
    playbook = Path(sys.executable).parent / 'ansible-playbook'
    cmd = [str(playbook) if playbook.exists() else 'ansible-playbook', '-i', str(REPO / 'inventory' / 'demo'),
           str(REPO / 'playbooks' / 'customer_backup.yml'), '-e', 'mnaas_demo_root=%s' % root]
    print('\n=== %s: %s' % (label, ' '.join(cmd)), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    print(proc.stdout, flush=True)
    if proc.returncode != 0:
        raise SystemExit('demo: the %s failed (exit %d)' % (label, proc.returncode))
    return {host: tuple(int(x) for x in rest) for host, *rest in RECAP.findall(proc.stdout)}


def summarize(root: Path, generated: dict) -> None:
    edge1, edge2 = root / 'edge1', root / 'edge2'
    manifest = edge1 / 'MNAAS_backup_files_process_list.csv'
    database = edge1 / 'state' / 'MNAAS_backup_warehouse.sqlite'
    flag = edge1 / 'MNAAS_backup_files_process_ProcessStatusFile'
    print('Where things are:')
    for label, path in (('landing directory', edge1 / 'MNAAS_Input'), ('primary backups (edge1)', edge1 / 'backup1' / 'Customer_backup'),
                        ('secondary backups (edge2)', edge2 / 'backup2' / 'Customer_backup'), ('manifest', manifest),
                        ('ledger', edge1 / 'state' / 'MNAAS_backup_files_process_ledger.csv'), ('record counts (SQLite)', database),
                        ('status flag', flag)):
        print('  %-26s %s' % (label, path))
    with manifest.open(newline='') as stream:
        rows = list(csv.DictReader(stream))
    conn = sqlite3.connect('file:%s?mode=ro' % database, uri=True)
    try:
        counts = dict(((c, (n, r)) for c, n, r in conn.execute(
            'SELECT customer, COUNT(*), SUM(records) FROM customers_files_records_count GROUP BY customer')))
    finally:
        conn.close()
    print('\n  %-18s %8s %8s %8s %10s' % ('customer', 'edge1', 'edge2', 'manifest', 'records'))
    for customer in sorted(generated['customers']):
        primary = len(list((edge1 / 'backup1' / 'Customer_backup' / customer).glob('*')))
        secondary = len(list((edge2 / 'backup2' / 'Customer_backup' / customer).glob('*')))
        listed = sum(1 for row in rows if row['customer'] == customer)
        print('  %-18s %8d %8d %8d %10d' % (customer, primary, secondary, listed, counts.get(customer, (0, 0))[1]))
    print('\n  held back: %d in flight (too young), %d ambiguous, %d unassigned, %d matching no domain'
          % tuple(len(generated[k]) for k in ('in_flight', 'ambiguous', 'unassigned', 'unmatched')))
    print('  flag: %s' % flag.read_text(encoding='utf-8').strip())


def main() -> None:
    root = Path(os.environ.get('MNAAS_DEMO_ROOT') or REPO / '.demo').resolve()
    if root.exists():
        shutil.rmtree(root)
    generated = _load_generator().generate(str(root / 'edge1' / 'MNAAS_Input'))
    print('demo: generated %d files (%d records) in %s' % (generated['total_files'], generated['total_records'],
                                                           root / 'edge1' / 'MNAAS_Input'))
    run_playbook(root, 'first run')
    recap = run_playbook(root, 'second run (must change nothing)')
    changed = {host: values[1] for host, values in recap.items()}
    if not recap or any(changed.values()):
        raise SystemExit('demo: the second run reported changes: %s' % changed)
    print('demo: second run changed=0 on %s' % ', '.join(sorted(recap)))
    summarize(root, generated)


if __name__ == '__main__':
    main()
