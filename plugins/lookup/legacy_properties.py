# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: legacy_properties
short_description: Read the legacy MNAAS_backup_files_process.properties as the role's variables
version_added: 0.1.0
description:
  - Reads the bash properties file of the legacy C(MNAAS_Customer_backup_files_process.sh) job on the
    controller and returns the variables of the P(mnaas.backup.mnaas_backup#role) role that say the same.
  - The file is parsed, never executed; no shell is started. It understands what such files hold -
    C(NAME=value) with or without single or double quotes, comments, C(declare -A NAME) followed by
    the parenthesised list C(NAME=) C([key]=value ...) over several lines or by C(NAME[key]=value) lines, the same list
    right after C(declare -A NAME=), C($name) and C(${name}) resolved from earlier assignments and from O(common_variables).
  - Anything it cannot map is an error naming the file, the line and the key; all of them are reported
    at once. That is a command substitution (C($) and a parenthesis, or backticks; never run), an unresolved variable,
    an unterminated quote or parenthesis, a key assigned twice, a customer in one backup directory array
    but not in the other, a line that is not an assignment, an unknown key (see O(unknown_keys)), a relative path.
  - A command substitution (never run), an unresolved variable or another expansion that is not resolved (C(${name:-x}),
    C($1), C(~)) in a key the new job does not use is a warning naming the file, the line and the key instead, and the
    key is left out. Those keys are C(MNAAS_backup_files_process_logpath) (which often holds C(`date +%F`)),
    C(MNAAS_Customer_backup_files_process_Scriptname), an unknown key with O(unknown_keys=warn), and a helper variable,
    each as long as no mapped value uses it.
  - "Mapping (legacy key: role variable) -
    C(MNAAS_backup_files_process_file_pattern): C(mnaas_backup_domains), one glob per domain, the file name
    part of each pattern, and C(mnaas_backup_source_dir), the directory of the patterns, which must be the
    same for all;
    C(MNAAS_backup_files_process_backup_dir) and C(MNAAS_backup_files_edgenode2_backup_dir):
    C(backup_dir) and C(edge2_backup_dir) of each customer of C(mnaas_backup_customers);
    C(No_of_files_to_process): C(mnaas_backup_max_files);
    C(MNAAS_backup_files_process_ProcessStatusFileName): C(mnaas_backup_flag_file);
    C(MNAAS_backup_file_process_filename): C(mnaas_backup_manifest_file);
    C(customers_files_inter_record_count_tblname): C(mnaas_backup_staging_table);
    C(customers_files_records_count_tblname): C(mnaas_backup_final_table);
    C(customer_files_record_count_tblname_refresh): C(mnaas_backup_refresh_statement), its variables resolved
    except C($dbname.<table>), kept as written for the role to read as the final table;
    C(sem_extension): C(mnaas_backup_lock_file), C(<state_dir>/MNAAS_backup_files_process<sem_extension>), when
    O(state_dir) is given;
    C(MNAAS_backup_filename_hdfs_customer): C(mnaas_backup_hdfs_count_dir) and C(edge2node):
    C(mnaas_backup_edge2_host) - the role declares these two with the HDFS work, until then the migration
    playbook writes them as comments."
  - C(MNAAS_Customer_backup_files_process_Scriptname) and C(MNAAS_backup_files_process_logpath) are
    recognised and not mapped (the playbook and Ansible's own output replace them); they are listed in
    RV(_raw.unmapped) with O(details=true). So are helper variables, that is unknown keys that other
    values use through C($name).
author: MNAAS platform team (@mnaas)
options:
  _terms:
    description:
      - The legacy properties file, exactly one. A relative path is looked for in the C(files) search path.
    type: list
    elements: path
    required: true
  common_variables:
    description:
      - The variables that the common MNAAS configuration defines before the legacy file is sourced, by
        name without C($), for example V(dbname), V(MNAASConfPath), V(MNAASLocalLogPath), V(MNAASLocalPath),
        V(MNAASInputPath).
      - An assignment in the legacy file wins over a value given here, as in bash.
      - V(MNAASInputPath) is also the landing directory of patterns written without a directory.
      - Not named C(variables), which is the name Ansible gives every lookup for the play's variables.
    type: dict
    default: {}
  state_dir:
    description:
      - The new job's state directory (C(mnaas_backup_state_dir)), absolute. When given, the result holds
        C(mnaas_backup_state_dir) and C(mnaas_backup_lock_file) (named after C(sem_extension)).
      - When not given, the lock is the role's default C(<mnaas_backup_state_dir>/MNAAS_backup_files_process.sem);
        a C(sem_extension) other than V(.sem) then gives a warning.
    type: str
  unknown_keys:
    description:
      - What an unknown key (neither a legacy key nor a helper variable used by another value) is.
      - V(error) fails, with the closest legacy key suggested (a typo would leave the legacy job and the
        new one configured differently). V(warn) gives a warning and lists it in RV(_raw.unmapped).
    type: str
    choices: [error, warn]
    default: error
  details:
    description:
      - Return the mapping in detail (the variables, the legacy key and line of each, what was not
        mapped and why, the legacy keys the file does not set) instead of the variables alone.
      - The migration playbook renders its comments from it.
    type: bool
    default: false
notes:
  - "O(_terms) takes exactly one file and the result is one dictionary: C(lookup(...)) returns the dictionary,
    C(query(...)) (or C(lookup(..., wantlist=true))) a list holding it."
  - Values are returned as data, never templated; a value holding C({{) stays as it is.
  - Warnings (an unknown key with O(unknown_keys=warn), a lock name that needs O(state_dir), a value left unknown
    in a key the new job does not use) go through Ansible's warnings.
seealso:
  - name: The migration guide
    description: The legacy keys, what changed in behaviour, the cut-over step by step (docs/migration.md).
    link: https://example.invalid/mnaas/backup/docs/migration.md
'''

EXAMPLES = r'''
- name: Show the role variables of the legacy file
  ansible.builtin.debug:
    msg: "{{ lookup('mnaas.backup.legacy_properties', '/app/hadoop_users/MNAAS/MNAAS_Configuration_Files/MNAAS_backup_files_process.properties',
             common_variables=common) }}"
  vars:
    common:
      dbname: mnaas
      MNAASConfPath: /app/hadoop_users/MNAAS/MNAAS_Configuration_Files
      MNAASLocalLogPath: /app/hadoop_users/MNAAS/MNAAS_Logs
      MNAASLocalPath: /app/hadoop_users/MNAAS
      MNAASInputPath: /app/hadoop_users/MNAAS/MNAAS_Input

# Configure the role straight from the legacy file (group_vars/edge_nodes.yml); the migration playbook
# (mnaas.backup.migrate_legacy) writes the same as plain YAML, to review and keep.
# _legacy: "{{ lookup('mnaas.backup.legacy_properties', legacy_file, common_variables=legacy_common) }}"
# mnaas_backup_source_dir: "{{ _legacy.mnaas_backup_source_dir }}"
# mnaas_backup_domains: "{{ _legacy.mnaas_backup_domains }}"
# mnaas_backup_customers: "{{ _legacy.mnaas_backup_customers }}"

- name: Read it in detail, going on past unknown keys
  ansible.builtin.set_fact:
    legacy: "{{ lookup('mnaas.backup.legacy_properties', legacy_file, common_variables=legacy_common, details=true, unknown_keys='warn') }}"
'''

RETURN = r'''
_raw:
  description:
    - One element, the role variables of the file by name, only those it sets (the role's defaults apply to
      the rest). The variables are C(mnaas_backup_source_dir), C(mnaas_backup_domains), C(mnaas_backup_customers),
      C(mnaas_backup_max_files), C(mnaas_backup_state_dir), C(mnaas_backup_lock_file), C(mnaas_backup_manifest_file),
      C(mnaas_backup_flag_file), C(mnaas_backup_staging_table), C(mnaas_backup_final_table),
      C(mnaas_backup_refresh_statement), C(mnaas_backup_hdfs_count_dir), C(mnaas_backup_edge2_host).
    - With O(details=true), a dictionary with the keys below instead.
  type: list
  elements: dict
  sample:
    - mnaas_backup_source_dir: /app/hadoop_users/MNAAS/MNAAS_Input
      mnaas_backup_domains: {traffic: "*_Traffic_*.csv", tolling: "*_Tolling_*.csv"}
      mnaas_backup_customers:
        ACME_TELEMATICS:
          backup_dir: /backup1/MNAAS/Customer_backup/ACME_TELEMATICS
          edge2_backup_dir: /backup2/MNAAS/Customer_backup/ACME_TELEMATICS
      mnaas_backup_max_files: 500
      mnaas_backup_refresh_statement: refresh $dbname.customers_files_records_count
  contains:
    path:
      description: The file read.
      type: str
      returned: with O(details=true)
    variables:
      description: The role variables, as without O(details).
      type: dict
      returned: with O(details=true)
    sources:
      description:
        - For each role variable, and for C(mnaas_backup_domains.<domain>) and
          C(mnaas_backup_customers.<customer>.<setting>), the legacy keys it comes from, each with its line.
      type: dict
      returned: with O(details=true)
      sample: {mnaas_backup_max_files: [{key: No_of_files_to_process, line: 23}]}
    unmapped:
      description: The keys of the file that are not mapped, each with its line, value and the reason.
      type: list
      elements: dict
      returned: with O(details=true)
      sample: [{key: MNAAS_backup_files_process_logpath, line: 10, value: /app/logs/MNAAS_backup_files_process.log_,
                reason: "the legacy driver's log prefix; the run's log is Ansible's output"}]
    missing:
      description: The legacy keys the file does not set; the role's defaults apply.
      type: list
      elements: str
      returned: with O(details=true)
    warnings:
      description: The warnings given, each naming the file, the line and the key.
      type: list
      elements: str
      returned: with O(details=true)
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError
from ansible_collections.mnaas.backup.plugins.plugin_utils import _legacy

display = Display()


class LookupModule(LookupBase):
    """``lookup('mnaas.backup.legacy_properties', path, variables={...})``: the logic is in plugin_utils/_legacy.py."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError('legacy_properties reads exactly one legacy file, got %d: %r' % (len(terms), list(terms)))
        path = self.find_file_in_search_path(variables, 'files', terms[0], ignore_missing=True)
        if not path:
            raise AnsibleLookupError('the legacy file %s was not found' % terms[0])
        try:
            migration = _legacy.read(path, variables=self.get_option('common_variables'), state_dir=self.get_option('state_dir'),
                                     unknown_keys=self.get_option('unknown_keys'))
        except ConfigError as exc:
            raise AnsibleLookupError(exc.msg) from exc
        for warning in migration.warnings:
            display.warning(warning)
        for entry in migration.unmapped:
            display.vvv('%s:%d: %s not mapped: %s' % (path, entry['line'], entry['key'], entry['reason']))
        return [migration.details() if self.get_option('details') else migration.variables]
