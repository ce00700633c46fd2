# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the mnaas.backup.mnaas_backup role makes of the results of a night: which nodes are ready, which files are
backed up, what failed. Each filter is documented in the YAML file of its name beside this one."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

# SSH's own last words on a connection it multiplexes: not what the module printed.
SSH_CLOSED = re.compile(r'Shared connection to .* closed')


def _mapping(name, what, value):
    if not isinstance(value, Mapping):
        raise AnsibleFilterError('%s: %s must be a mapping, got %r' % (name, what, value))
    return value


def _key(name, what, value, key):
    if key not in _mapping(name, what, value):
        raise AnsibleFilterError('%s: %s has no %s' % (name, what, key))
    return value[key]


def _host_results(name, hosts, hostvars, variable):
    """(host, the value of its variable, {} when it has none) for each host."""
    return [(host, _mapping(name, 'hostvars of %s' % host, hostvars[host]).get(variable) or {}) for host in hosts]


def _per_customer(files):
    """'ACME 2, GLOBEX 1': how many of the files each customer has. As Jinja's groupby did: by customer ignoring case,
    named as the first of its files names it."""
    counts = {}
    for entry in files:
        customer = entry.get('customer')
        counts.setdefault(customer.lower() if isinstance(customer, str) else customer, [customer, 0])[1] += 1
    return ', '.join('%s %d' % tuple(counts[key]) for key in sorted(counts, key=str))


def _copy_problems(name, files):
    return ['%s: %s' % (_key(name, 'a file of the copy', entry, 'dest'), _key(name, 'a file of the copy', entry, 'reason')) for entry in files]


def _why_incomplete(result):
    """The first line of the result's msg; the last line the module printed (for a traceback, the exception); its exit status."""
    printed = [line.strip() for output in (result.get('module_stderr', ''), result.get('module_stdout', ''))
               for line in str(output).splitlines()]
    printed = [line for line in printed if line and not SSH_CLOSED.match(line)]
    parts = str(result.get('msg', '')).splitlines()[:1] + printed[-1:]
    if 'rc' in result:
        parts.append('exit status %s' % result['rc'])
    return '; '.join(part for part in parts if part)


def readiness(hosts, hostvars, variable):
    results = _host_results('readiness', hosts, hostvars, variable)
    # A result without the module's settings_valid (nor unreachable or skipped) is a preflight that did not complete.
    incomplete = [(host, result) for host, result in results
                  if result and not {'settings_valid', 'unreachable', 'skipped'} & set(result)]
    return {
        'not_ready': [host for host, result in results if result.get('problems')] + [host for host, dummy in incomplete],
        'bad_settings': [host for host, result in results if not result.get('settings_valid', True)],
        'incomplete': ['%s (%s)' % (host, _why_incomplete(result)) for host, result in incomplete],
    }


def failed_hosts(hosts, play_hosts, hostvars, variable):
    gone = [host for host in hosts if host not in play_hosts]
    failed = [host for host in play_hosts if _mapping('failed_hosts', 'hostvars of %s' % host, hostvars[host]).get(variable)]
    return list(dict.fromkeys(gone)) + failed


def customers_with(customers, key):
    return {name: settings for name, settings in _mapping('customers_with', 'the input', customers).items()
            if isinstance(settings, Mapping) and settings.get(key)}


def backed_up(discovered, copies):
    name = 'backed_up'
    files = _key(name, 'the discover result', discovered, 'files')
    errors = _key(name, 'the discover result', discovered, 'errors')
    # A file is done only once every copy of it is. backup_copy lists in its files only the files to copy (check mode),
    # in conflict or failed.
    not_done = [result for copy in copies for result in _mapping(name, 'a copy result', copy).get('files', [])
                if result.get('status') != 'would_copy']
    not_copied_paths = set(result.get('src') for result in not_done)
    missed = [entry for entry in files if _key(name, 'a discovered file', entry, 'path') in not_copied_paths]
    return {
        'files': [entry for entry in files if entry['path'] not in not_copied_paths],
        'problems': ['%s: %s' % (_key(name, 'a discover error', error, 'name'), _key(name, 'a discover error', error, 'msg'))
                     for error in errors] + _copy_problems(name, not_done),
        'per_customer': _per_customer(errors + missed),
    }


def not_copied(copy, on_conflict):
    results = _key('not_copied', 'the copy result', copy, 'files')
    failed = [result for result in results if result.get('status') == 'failed']
    if on_conflict == 'fail':
        failed += [result for result in results if result.get('status') == 'conflict']
    return {'files': failed, 'problems': _copy_problems('not_copied', failed), 'per_customer': _per_customer(failed)}


class FilterModule:

    def filters(self):
        return {
            'readiness': readiness,
            'failed_hosts': failed_hosts,
            'customers_with': customers_with,
            'backed_up': backed_up,
            'not_copied': not_copied,
        }
