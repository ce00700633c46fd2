# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice."""


from __future__ import annotations

import fnmatch
import os
import re
import typing as t
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mnaas.backup.plugins.module_utils._content import read_content
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Location, same_mtime
from ansible_collections.mnaas.backup.plugins.module_utils._paths import check_absolute, check_name

SAMPLE = 100  # names listed for large groups that are only counted
SLICE = 1024  # files handed to the thread pool at a time


class Rules(t.NamedTuple):
    """How names map to customers and domains, validated."""

    domains: dict[str, tuple[re.Pattern, ...]]
    customers: dict[str, tuple[re.Pattern, ...]]


def _globs(value: object, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError('%s must be a glob or a non-empty list of globs, got %r' % (key, value))
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError('%s must not contain an empty pattern, got %r' % (key, value))
        if '/' in item:
            raise ConfigError('%s patterns match file names and must not contain "/", got %r' % (key, item))
    return tuple(items)


def compile_rules(domains: dict, customers: dict, prefix: str = '') -> Rules:
    """Check names and patterns; each error names the key (``prefix`` + option name) and the value."""
    if not isinstance(domains, dict) or not domains:
        raise ConfigError(prefix + 'domains must be a non-empty mapping of domain name to glob(s), got %r' % (domains,))
    if not isinstance(customers, dict) or not customers:
        raise ConfigError(prefix + 'customers must be a non-empty mapping of customer name to settings, got %r' % (customers,))
    compiled_domains = {}
    for name, patterns in domains.items():
        check_name(name, 'a key of %sdomains' % prefix)
        compiled_domains[name] = tuple(re.compile(fnmatch.translate(p)) for p in _globs(patterns, '%sdomains.%s' % (prefix, name)))
    compiled_customers = {}
    for name, settings in customers.items():
        check_name(name, 'a key of %scustomers' % prefix)
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise ConfigError('%scustomers.%s must be a mapping, got %r' % (prefix, name, settings))
        match = settings.get('match')
        if match is None:
            match = '%s_*' % name
        compiled_customers[name] = tuple(re.compile(fnmatch.translate(p)) for p in _globs(match, '%scustomers.%s.match' % (prefix, name)))
    return Rules(compiled_domains, compiled_customers)


def _matches(patterns: dict[str, tuple[re.Pattern, ...]], name: str) -> list[str]:
    return [key for key, regexes in patterns.items() if any(r.match(name) for r in regexes)]


class Candidate(t.NamedTuple):
    customer: str
    domain: str
    name: str
    size: int
    mtime: float


class Selection(t.NamedTuple):
    batch: list[Candidate]
    done: int
    deferred: int
    in_flight: list[dict]
    ambiguous: list[dict]
    unassigned: list[str]
    unmatched: int
    unmatched_sample: list[str]
    ignored: list[dict]
    future: list[dict]


def select(entries: t.Iterable, rules: Rules, done: t.Mapping[tuple[str, str], tuple[int, int]],
           max_files: int, min_age: float, now: float) -> Selection:
    """Sort a directory listing into the batch to process and the files reported or held back.

    ``done`` maps (customer, file name) to the (size, whole-second mtime) already processed; a file
    whose size or mtime differs from that is processed again. The cap counts only files still
    needing work, oldest first, so a capped run always makes progress and a rerun picks the same batch.
    """
    pending: list[Candidate] = []
    in_flight, ambiguous, unassigned, unmatched_sample, ignored, future = [], [], [], [], [], []
    done_count = unmatched = 0
    for entry in entries:
        name = entry.name
        if name.startswith('.'):
            continue
        domains = _matches(rules.domains, name)
        shown = printable(name)
        if not domains:
            unmatched += 1
            if len(unmatched_sample) < SAMPLE:
                unmatched_sample.append(shown)
            continue
        if shown != name:
            # Not valid UTF-8: it could not be passed on to the next task (nor to a manifest or the warehouse).
            ignored.append({'name': shown, 'reason': 'its name is not valid UTF-8; rename it to back it up'})
            continue
        if entry.kind != 'file':
            ignored.append({'name': name, 'reason': 'a %s, not a regular file' % entry.kind})
            continue
        customers = _matches(rules.customers, name)
        if len(domains) > 1 or len(customers) > 1:
            ambiguous.append({'name': name, 'domains': domains, 'customers': customers})
            continue
        if not customers:
            unassigned.append(name)
            continue
        customer, domain = customers[0], domains[0]
        seen = done.get((customer, name))
        if seen is not None and seen[0] == entry.size and same_mtime(seen[1], entry.mtime):
            done_count += 1
            continue
        age = now - entry.mtime
        if -min_age < age < min_age:
            in_flight.append({'name': name, 'age': round(age, 3)})
            continue
        if age < 0:
            # Further in the future than min_age: clock skew, not a write in progress. Held back, it would
            # wait until the clock caught up (years for a bad clock); the copy still refuses a changing file.
            future.append({'name': name, 'age': round(age, 3)})
        pending.append(Candidate(customer, domain, name, entry.size, entry.mtime))
    pending.sort(key=lambda c: (c.mtime, c.name))
    cap = len(pending) if max_files <= 0 else max_files
    return Selection(pending[:cap], done_count, max(len(pending) - cap, 0), sorted(in_flight, key=lambda x: x['name']),
                     sorted(ambiguous, key=lambda x: x['name']), sorted(unassigned), unmatched, sorted(unmatched_sample),
                     sorted(ignored, key=lambda x: x['name']), sorted(future, key=lambda x: x['name']))


def printable(name: str) -> str:
    """``name`` itself when it is valid UTF-8; else with the undecodable bytes shown as ``\\udcXX`` escapes."""
    try:
        name.encode('utf-8')
        return name
    except UnicodeEncodeError:
        return name.encode('utf-8', 'backslashreplace').decode('utf-8')


def describe_batch(source_dir: str, batch: list[Candidate], location: Location, header_lines: int,
                   workers: int) -> tuple[list[dict], list[dict]]:
    """Read every file of the batch once: SHA-256 and record count. Returns (files, errors)."""

    def read(candidate: Candidate) -> dict:
        path = os.path.join(source_dir, candidate.name)
        with location.open_read(path) as stream:
            content = read_content(stream, candidate.name, header_lines)
        after = location.stat(path)
        if content.size != candidate.size or after is None or after.size != candidate.size \
                or not same_mtime(after.mtime, candidate.mtime):
            raise BackupError('changed while it was read (still being written?); retried next run')
        return {'customer': candidate.customer, 'domain': candidate.domain, 'name': candidate.name, 'path': path,
                'size': candidate.size, 'mtime': candidate.mtime, 'records': content.records, 'sha256': content.sha256}

    def attempt(candidate: Candidate) -> tuple[dict | None, dict | None]:
        try:
            return read(candidate), None
        except BackupError as exc:
            return None, {'name': candidate.name, 'customer': candidate.customer, 'msg': exc.msg}
        except (OSError, ValueError, EOFError) as exc:
            return None, {'name': candidate.name, 'customer': candidate.customer, 'msg': '%s: %s' % (type(exc).__name__, exc)}

    files, errors = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # In slices: pool.map queues every item at once, which for 100,000 files cost 165 MB.
        for start in range(0, len(batch), SLICE):
            for found, error in pool.map(attempt, batch[start:start + SLICE]):
                if found is not None:
                    files.append(found)
                else:
                    errors.append(error)
    return files, errors


def discover(location: Location, source_dir: str, rules: Rules, done: t.Mapping, max_files: int, min_age: float,
             now: float, header_lines: int = 0, workers: int = 4) -> dict:
    """The whole discovery: one listing of ``source_dir``, then one read of each file of the batch."""
    source_dir = check_absolute(source_dir, 'source_dir')
    listing = location.listdir(source_dir)
    if listing is None:
        raise ConfigError('source_dir %r does not exist' % source_dir)
    selection = select(listing.values(), rules, done, max_files, min_age, now)
    files, errors = describe_batch(source_dir, selection.batch, location, header_lines, workers)
    per_customer: dict[str, dict[str, int]] = {name: {} for name in rules.customers}
    for found in files:
        domains = per_customer[found['customer']]
        domains[found['domain']] = domains.get(found['domain'], 0) + 1
    return {
        'files': files, 'errors': errors, 'customers': per_customer,
        'summary': {'selected': len(files), 'failed': len(errors), 'done': selection.done, 'deferred': selection.deferred,
                    'in_flight': len(selection.in_flight), 'ambiguous': len(selection.ambiguous),
                    'unassigned': len(selection.unassigned), 'unmatched': selection.unmatched, 'ignored': len(selection.ignored),
                    'future': len(selection.future)},
        'in_flight': selection.in_flight, 'ambiguous': selection.ambiguous, 'unassigned': selection.unassigned,
        'unmatched_sample': selection.unmatched_sample, 'ignored': selection.ignored, 'future': selection.future,
    }
