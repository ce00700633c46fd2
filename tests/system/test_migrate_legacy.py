# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Migration from the legacy properties file, end to end with the real ansible-playbook.

- playbooks/migrate_legacy.yml on the shared example: --check --diff shows the group_vars and writes
  nothing; the real run writes YAML whose values are the lookup's (as Ansible itself loads them back);
  a rerun changes nothing; a broken legacy file fails naming file:line: key and writes nothing.
- Equivalence: a demo-like night configured from a legacy file (through the lookup: once as the
  group_vars the migration playbook writes, once with lookup() in the inventory) produces the same
  backups, manifest rows, ledger and record counts as a night configured by hand-written YAML.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from support import playbook
from support.night import INVENTORY, Night
from support.playbook import REPO_ROOT, Result, find_tool

MIGRATE = REPO_ROOT / 'playbooks' / 'migrate_legacy.yml'
EXAMPLE = REPO_ROOT / 'tests' / 'unit' / 'plugins' / 'lookup' / 'fixtures' / 'MNAAS_backup_files_process.properties'
ARGUMENT_SPECS = REPO_ROOT / 'roles' / 'mnaas_backup' / 'meta' / 'argument_specs.yml'
COMMON = json.loads(EXAMPLE.with_name('MNAAS_backup_files_process.expected.json').read_text())['common_variables']
LEGACY_KEYS = (
    'MNAAS_Customer_backup_files_process_Scriptname', 'MNAAS_backup_files_process_ProcessStatusFileName',
    'MNAAS_backup_files_process_logpath', 'MNAAS_backup_file_process_filename', 'MNAAS_backup_filename_hdfs_customer',
    'customers_files_inter_record_count_tblname', 'customers_files_records_count_tblname',
    'customer_files_record_count_tblname_refresh', 'sem_extension', 'edge2node', 'No_of_files_to_process',
    'MNAAS_backup_files_process_file_pattern', 'MNAAS_backup_files_process_backup_dir', 'MNAAS_backup_files_edgenode2_backup_dir',
)


def ansible(args: list, env: dict, cwd: Path, expect_rc: int | None = 0) -> Result:
    """Run an Ansible command to its end; its output and events read as the night fixture reads them."""
    return playbook.run(args, env, cwd, expect_rc=expect_rc)


def migrate(env: dict, cwd: Path, legacy: Path, common: dict, output: Path, *extra, expect_rc: int | None = 0, **more) -> Result:
    extra_vars = dict(legacy_properties=str(legacy), legacy_variables=common, output=str(output), **more)
    return ansible([find_tool('ansible-playbook'), str(MIGRATE), '-e', json.dumps(extra_vars)] + list(extra), env, cwd,
                   expect_rc=expect_rc)


def lookup_values(env: dict, cwd: Path, legacy: Path, common: dict) -> tuple:
    """What lookup() and query() give in Ansible itself (an ad-hoc task), independently of the playbook."""
    found = []
    for function in ('lookup', 'query'):
        expression = "{{ %s('mnaas.backup.legacy_properties', %s, common_variables=%s) }}" % (function, json.dumps(str(legacy)), json.dumps(common))
        result = ansible([find_tool('ansible'), 'localhost', '-m', 'ansible.builtin.debug', '-a', json.dumps({'msg': expression})],
                         env, cwd)
        found.append(result.results('localhost')[0]['result']['msg'])
    return tuple(found)


def role_variables() -> set:
    return set(yaml.safe_load(ARGUMENT_SPECS.read_text())['argument_specs']['main']['options'])


# ---------------------------------------------------------------------------------------------
# The migration playbook on the shared example

def test_check_mode_shows_the_group_vars_and_writes_nothing(ansible_env, ansible_workdir, tmp_path):
    output = tmp_path / 'inventory' / 'group_vars' / 'edge_nodes.yml'
    plan = migrate(ansible_env, ansible_workdir, EXAMPLE, COMMON, output, '--check', '--diff')
    assert plan.recap['localhost']['changed'] == 2, plan  # the directory and the file
    assert not (tmp_path / 'inventory').exists(), 'check mode wrote %s%s' % (list(tmp_path.rglob('*')), plan)
    lines = plan.diff_text().splitlines()
    for expected in ('+mnaas_backup_max_files: 500  # No_of_files_to_process (line 23)',
                     '+mnaas_backup_source_dir: "/app/hadoop_users/MNAAS/MNAAS_Input"  # the directory of MNAAS_backup_files_process_file_pattern (line 27)',
                     '+  traffic: "*_Traffic_*.csv"  # MNAAS_backup_files_process_file_pattern[traffic] (line 28)',
                     '+    edge2_backup_dir: "/backup2/MNAAS/Customer_backup/GLOBEX_FLEET"  # MNAAS_backup_files_edgenode2_backup_dir[GLOBEX_FLEET] (line 44)',
                     '+mnaas_backup_refresh_statement: "refresh $dbname.customers_files_records_count"  '
                     '# customer_files_record_count_tblname_refresh (line 19)',
                     '+mnaas_backup_hdfs_count_dir: "/user/MNAAS/backup_files_count/customer"  # MNAAS_backup_filename_hdfs_customer (line 14)'):
        assert expected in lines, 'the diff lacks %r%s' % (expected, plan)


def test_real_run_writes_the_lookups_values(ansible_env, ansible_workdir, tmp_path):
    inventory = tmp_path / 'inventory'
    output = inventory / 'group_vars' / 'edge_nodes.yml'
    first = migrate(ansible_env, ansible_workdir, EXAMPLE, COMMON, output)
    assert first.recap['localhost']['changed'] == 2, first
    text = output.read_text(encoding='utf-8')
    written = yaml.safe_load(text)

    as_lookup, as_query = lookup_values(ansible_env, ansible_workdir, EXAMPLE, COMMON)
    assert as_query == [as_lookup], 'query() should be a list of the one dict lookup() gives'
    known = role_variables()
    assert written == {name: value for name, value in as_lookup.items() if name in known}, text
    for name, value in as_lookup.items():
        if name not in known:  # the role declares it with later work: kept as a comment to uncomment then
            assert '# %s: %s  # ' % (name, json.dumps(value)) in text, text
    for key in LEGACY_KEYS:
        assert key in text, '%s is named nowhere in%s' % (key, text)

    # Ansible loads the file back to the same values.
    (inventory / 'hosts.yml').write_text('edge_nodes:\n  hosts:\n    edge1: {}\n')
    shown = ansible([find_tool('ansible-inventory'), '-i', str(inventory / 'hosts.yml'), '--host', 'edge1'],
                    ansible_env, ansible_workdir)
    assert json.loads(shown.output[shown.output.index('{'):]) == written, shown

    again = migrate(ansible_env, ansible_workdir, EXAMPLE, COMMON, output)
    assert again.recap['localhost']['changed'] == 0, again
    plan = migrate(ansible_env, ansible_workdir, EXAMPLE, COMMON, output, '--check', '--diff')
    assert plan.recap['localhost']['changed'] == 0 and '+++ after' not in plan.diff_text(), plan
    assert output.read_text(encoding='utf-8') == text


def test_state_dir_and_unknown_keys_as_warnings(ansible_env, ansible_workdir, tmp_path):
    legacy = tmp_path / 'legacy.properties'
    legacy.write_text(EXAMPLE.read_text().replace('sem_extension=.sem', 'sem_extension=.lck\nMNAAS_retention_days=7'))
    output = tmp_path / 'group_vars.yml'
    result = migrate(ansible_env, ansible_workdir, legacy, COMMON, output, state_dir='/app/hadoop_users/MNAAS/state', legacy_unknown_keys='warn')
    assert '%s:22: MNAAS_retention_days: unknown key' % legacy in result.warnings(), result
    written = yaml.safe_load(output.read_text())
    assert written['mnaas_backup_state_dir'] == '/app/hadoop_users/MNAAS/state'
    assert written['mnaas_backup_lock_file'] == '/app/hadoop_users/MNAAS/state/MNAAS_backup_files_process.lck'
    assert '#   MNAAS_retention_days (line 22) = "7"\n#     unknown key\n' in output.read_text()


def test_broken_legacy_file_fails_and_writes_nothing(ansible_env, ansible_workdir, tmp_path):
    legacy = tmp_path / 'legacy.properties'
    legacy.write_text(EXAMPLE.read_text().replace('No_of_files_to_process=500', 'No_of_files_to_process=$(ls | wc -l)')
                      .replace('[GLOBEX_FLEET]=/backup2', '[GLOBEX]=/backup2'))
    output = tmp_path / 'inventory' / 'group_vars' / 'edge_nodes.yml'
    result = migrate(ansible_env, ansible_workdir, legacy, COMMON, output, expect_rc=2)
    assert '%s:23: No_of_files_to_process: command substitution $(ls | wc -l) is not run' % legacy in result.output, result
    assert '%s:37: MNAAS_backup_files_process_backup_dir[GLOBEX_FLEET]: customer GLOBEX_FLEET is not in ' \
           'MNAAS_backup_files_edgenode2_backup_dir' % legacy in result.output, result
    assert '%s:44: MNAAS_backup_files_edgenode2_backup_dir[GLOBEX]: customer GLOBEX is not in' % legacy in result.output, result
    assert not (tmp_path / 'inventory').exists(), result

    missing = ansible([find_tool('ansible-playbook'), str(MIGRATE), '-e', 'legacy_properties=%s' % legacy],
                      ansible_env, ansible_workdir, expect_rc=2)
    assert 'Give -e legacy_properties=' in missing.output, missing


# ---------------------------------------------------------------------------------------------
# Equivalence: a night from the legacy file equals a night from hand-written YAML

CAP = 200  # two capped runs take the whole demo night
DOMAINS = {'traffic': 'Traffic', 'activations': 'Activations', 'actives': 'Actives', 'tolling': 'Tolling'}

# The demo night's settings as the legacy job has them, paths under the night's root; both array
# syntaxes, a helper variable, comments. edge2node and the HDFS count directory are left out: the demo
# has no HDFS, and the second node is the inventory's edge2.
LEGACY = '''#!/bin/bash
# The demo night, as the legacy job would be configured for it.
MNAAS_Customer_backup_files_process_Scriptname=MNAAS_Customer_backup_files_process.sh
MNAAS_backup_files_process_ProcessStatusFileName=$MNAASConfPath/MNAAS_backup_files_process_ProcessStatusFile
MNAAS_backup_files_process_logpath=$MNAASLocalLogPath/MNAAS_backup_files_process.log_
MNAAS_backup_file_process_filename="$MNAASLocalPath/MNAAS_backup_files_process_list.csv"  # the run manifest
customers_files_inter_record_count_tblname=customers_files_inter_record_count
customers_files_records_count_tblname=customers_files_records_count
# SQLite's ANALYZE stands in for Impala's refresh on the embedded warehouse
customer_files_record_count_tblname_refresh="ANALYZE {table}"
sem_extension=.sem
No_of_files_to_process=%(cap)d

declare -A MNAAS_backup_files_process_file_pattern
MNAAS_backup_files_process_file_pattern=(
%(patterns)s
)

backup1_root=%(backup1)s
declare -A MNAAS_backup_files_process_backup_dir=(
%(primary)s
)

declare -A MNAAS_backup_files_edgenode2_backup_dir
%(secondary)s
'''

HAND_WRITTEN = '''---
# The same night written by hand.
mnaas_backup_source_dir: %(landing)s
mnaas_backup_domains:
%(domains)s
mnaas_backup_customers:
%(customers)s
mnaas_backup_max_files: %(cap)d
mnaas_backup_manifest_file: %(manifest)s
mnaas_backup_flag_file: %(flag)s
mnaas_backup_staging_table: customers_files_inter_record_count
mnaas_backup_final_table: customers_files_records_count
mnaas_backup_refresh_statement: ANALYZE {table}
'''

# Through the lookup, live: the inventory reads the legacy file on every run.
LIVE_LOOKUP = '''---
_legacy_file: %(path)s
_legacy_common: %(common)s
_legacy: "{{ lookup('mnaas.backup.legacy_properties', _legacy_file, common_variables=_legacy_common) }}"
mnaas_backup_source_dir: "{{ _legacy.mnaas_backup_source_dir }}"
mnaas_backup_domains: "{{ _legacy.mnaas_backup_domains }}"
mnaas_backup_customers: "{{ _legacy.mnaas_backup_customers }}"
mnaas_backup_max_files: "{{ _legacy.mnaas_backup_max_files }}"
mnaas_backup_manifest_file: "{{ _legacy.mnaas_backup_manifest_file }}"
mnaas_backup_flag_file: "{{ _legacy.mnaas_backup_flag_file }}"
mnaas_backup_staging_table: "{{ _legacy.mnaas_backup_staging_table }}"
mnaas_backup_final_table: "{{ _legacy.mnaas_backup_final_table }}"
mnaas_backup_refresh_statement: "{{ _legacy.mnaas_backup_refresh_statement }}"
'''

# Not in the legacy file, the same for every night (on top of the demo inventory's other settings):
# files younger than an hour are in flight (the generator's regular files are a day old or more, its
# in-flight files just written), so the nights agree however long each takes.
LOCAL = {'mnaas_backup_min_age': 3600}


class InventoryNight(Night):
    """A night run with its own inventory instead of inventory/demo."""

    def __init__(self, root: Path, summary: dict, env: dict, cwd: Path, inventory: Path) -> None:
        super().__init__(root, summary, env, cwd)
        self.inventory = inventory

    def command(self, *extra, check: bool = False, diff: bool = False) -> list:
        args = super().command(*extra, check=check, diff=diff)
        args[args.index(str(INVENTORY))] = str(self.inventory)
        return args


def inventory_for(base: Path, compared: set) -> Path:
    """inventory/demo (its hosts, host_vars and group_vars, still templated on mnaas_demo_root) without the
    compared settings, which the caller adds as group_vars/edge_nodes/main.yml."""
    inventory = base / 'inventory'
    (inventory / 'group_vars' / 'edge_nodes').mkdir(parents=True)
    (inventory / 'host_vars').mkdir()
    shutil.copy(INVENTORY / 'hosts.yml', inventory / 'hosts.yml')
    for source in (INVENTORY / 'host_vars').glob('*.yml'):
        settings = {k: v for k, v in (yaml.safe_load(source.read_text()) or {}).items() if k not in compared}
        (inventory / 'host_vars' / source.name).write_text('---\n' + yaml.safe_dump(settings, sort_keys=False))
    demo = yaml.safe_load((INVENTORY / 'group_vars' / 'edge_nodes.yml').read_text()) or {}
    settings = dict({k: v for k, v in demo.items() if k not in compared}, **LOCAL)
    (inventory / 'group_vars' / 'edge_nodes' / 'local.yml').write_text('---\n' + yaml.safe_dump(settings, sort_keys=False))
    return inventory


def twin(night, base: Path) -> tuple:
    """A second night root holding the same landing directory (names, bytes and mtimes)."""
    root = base / 'demo'
    shutil.copytree(night.landing, root / 'edge1' / 'MNAAS_Input', copy_function=shutil.copy2)
    return root, night.summary


def legacy_file(root: Path, customers: list, path: Path) -> dict:
    """Write the legacy file of a night root; return the common variables it needs."""
    path.write_text(LEGACY % {
        'cap': CAP,
        'patterns': '\n'.join('    [%s]="$MNAASInputPath/*_%s_*.csv"' % item for item in DOMAINS.items()),
        'backup1': json.dumps(str(root / 'edge1' / 'backup1' / 'Customer_backup')),
        'primary': '\n'.join('    [%s]=$backup1_root/%s  # primary' % (c, c) for c in customers),
        'secondary': '\n'.join('MNAAS_backup_files_edgenode2_backup_dir[%s]=%s' % (c, json.dumps(str(root / 'edge2' / 'backup2' / 'Customer_backup' / c)))
                               for c in customers),
    })
    return {'dbname': 'main', 'MNAASConfPath': str(root / 'edge1'), 'MNAASLocalLogPath': str(root / 'logs'),
            'MNAASLocalPath': str(root / 'edge1'), 'MNAASInputPath': str(root / 'edge1' / 'MNAAS_Input')}


def hand_written(night, customers: list) -> str:
    root = night.root
    return HAND_WRITTEN % {
        'landing': json.dumps(str(night.landing)),
        'domains': '\n'.join('  %s: "*_%s_*.csv"' % item for item in DOMAINS.items()),
        'customers': '\n'.join('  %s:\n    backup_dir: %s\n    edge2_backup_dir: %s' % (
            c, json.dumps(str(night.backup_root('edge1') / c)), json.dumps(str(night.backup_root('edge2') / c))) for c in customers),
        'cap': CAP,
        'manifest': json.dumps(str(night.manifest)),
        'flag': json.dumps(str(root / 'edge1' / 'MNAAS_backup_files_process_ProcessStatusFile')),
    }


def without_run(rows: list) -> list:
    return sorted(tuple(sorted((k, v) for k, v in row.items() if k != 'run_id')) for row in rows)


def outcome(night) -> dict:
    """Everything a night leaves that must not depend on how it was configured (run ids left out)."""
    return {
        'backups': {host: night.tree_hash(night.backup_root(host)) for host in night.hosts},
        'manifest': without_run(night.csv_rows(night.manifest)),
        'ledger': without_run(night.csv_rows(night.ledger)),
        'counts': without_run(night.final_rows()),
        'flag': night.flag.read_bytes(),
    }


def test_legacy_configured_night_equals_hand_written_night(night, tmp_path, ansible_env, ansible_workdir):
    customers = sorted(night.summary['customers'])
    wanted = sorted(n for n in night.expected if n.endswith('.csv'))  # the legacy globs take .csv only
    assert CAP < len(wanted) <= 2 * CAP and len(wanted) < len(night.expected), 'the generator changed: %d files' % len(wanted)

    # By hand: the demo inventory with the legacy settings written as YAML.
    by_hand = hand_written(night, customers)
    compared = set(yaml.safe_load(by_hand))
    by_hand_inventory = inventory_for(tmp_path / 'by_hand', compared)
    (by_hand_inventory / 'group_vars' / 'edge_nodes' / 'main.yml').write_text(by_hand)
    nights = {'by hand': InventoryNight(night.root, night.summary, ansible_env, ansible_workdir, by_hand_inventory)}

    # From the legacy file: group_vars written by the migration playbook, and lookup() live in the inventory.
    for label in ('migrated', 'live lookup'):
        base = tmp_path / label.replace(' ', '_')
        root, summary = twin(night, base)
        inventory = inventory_for(base, compared)
        legacy = base / 'MNAAS_backup_files_process.properties'
        common = legacy_file(root, customers, legacy)
        group_vars = inventory / 'group_vars' / 'edge_nodes' / 'main.yml'
        if label == 'migrated':
            migrate(ansible_env, ansible_workdir, legacy, common, group_vars)
            assert yaml.safe_load(group_vars.read_text())['mnaas_backup_max_files'] == CAP
        else:
            group_vars.write_text(LIVE_LOOKUP % {'path': json.dumps(str(legacy)), 'common': json.dumps(common)})
        nights[label] = InventoryNight(root, summary, ansible_env, ansible_workdir, inventory)

    results = {}
    for run in (1, 2):
        for label, each in nights.items():
            result = each.run()
            assert result.changed('edge1') > 0 and result.changed('edge2') > 0, '%s, run %d%s' % (label, run, result)
            assert each.flag.read_bytes() == b'SUCCESS\n', '%s, run %d%s' % (label, run, result)
            results[label] = outcome(each)
        assert len(results['by hand']['manifest']) == (CAP if run == 1 else len(wanted) - CAP), results['by hand']['manifest']
        for label in ('migrated', 'live lookup'):
            for item in ('backups', 'manifest', 'ledger', 'counts', 'flag'):
                assert results[label][item] == results['by hand'][item], 'run %d: the %s night\'s %s differ from the hand-written night\'s' % (
                    run, label, item)

    # And each is right on its own: every .csv file backed up on both nodes, listed, counted once.
    for label, each in nights.items():
        each.assert_backups(wanted)
        each.assert_manifest(each.ledger, wanted)
        each.assert_counts(wanted)
        each.assert_unlocked()
        assert not any(name.endswith('.gz') for host in each.hosts for name in each.backed_up(host)), label
