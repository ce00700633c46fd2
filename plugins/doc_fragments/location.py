# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

# The suboptions of a location option, written once: they say the same as LOCATION_SPEC in
# plugins/module_utils/_locations/factory.py (tests/unit/plugins/doc_fragments/test_location.py checks it).
# The fragment's variants below are built from them.
_SUBOPTIONS = r'''
type:
  description: V(local), V(sftp) or V(webhdfs).
  type: str
  choices: [local, sftp, webhdfs]
  default: local
host:
  description: For V(sftp), the host to connect to.
  type: str
port:
  description: For V(sftp), the SSH port (22 when not given).
  type: int
user:
  description: For V(sftp), the user to log in as.
  type: str
private_key:
  description: For V(sftp), the private key file.
  type: path
private_key_passphrase:
  description: For V(sftp), the passphrase of C(private_key).
  type: str
password:
  description: For V(sftp), a password, when no key is used.
  type: str
known_hosts:
  description: For V(sftp), the known_hosts file the host key is verified against (the user's C(~/.ssh/known_hosts) when not given).
  type: path
host_key_policy:
  description:
    - For V(sftp), what to do with a host whose key is not in C(known_hosts).
    - V(reject) refuses it. V(accept_new) accepts and records it, with a warning. A changed key is always refused.
  type: str
  choices: [reject, accept_new]
  default: reject
sftp_fast_path:
  description:
    - For V(sftp), read and write with faster replacements of some of paramiko's internals (its SSH packet reader,
      the channels' receive buffers, the parsing of replies), measured to take a quarter to a third less CPU for large files.
    - Only with the paramiko versions the collection's tests cover (2.12 to 5.1); with another version paramiko's own code
      is used, with a warning. V(false) always uses paramiko's own code.
  type: bool
  default: true
  version_added: 0.2.0
urls:
  description:
    - For V(webhdfs), the NameNode URLs V(http(s\)://host:port), tried in order (HA); for example V(http://nn1.example:9870).
    - The NameNode that answered is tried first from then on; one in standby or unreachable moves to the next.
  type: list
  elements: str
hdfs_user:
  description:
    - For V(webhdfs) with C(auth=simple), the HDFS user (C(user.name)); the user running the module when not given.
    - Refused with C(auth=kerberos).
  type: str
auth:
  description:
    - For V(webhdfs), V(simple) or V(kerberos) (SPNEGO with the ticket cache of the user running the module).
    - V(kerberos) needs the C(requests-kerberos) package.
  type: str
  choices: [simple, kerberos]
  default: simple
kerberos_principal:
  description: For V(webhdfs) with C(auth=kerberos), the principal to use.
  type: str
verify:
  description: For V(webhdfs) over HTTPS, verify the server's certificate.
  type: bool
  default: true
ca_cert:
  description: For V(webhdfs) over HTTPS, the CA bundle to verify the server's certificate with. Refused with C(verify=false).
  type: path
timeout:
  description: Seconds to wait for a connection or an answer.
  type: float
  default: 30.0
retries:
  description: Rounds of attempts after a transient error (connection dropped, NameNode in standby), with backoff from 0.5 s doubling up to 8 s.
  type: int
  default: 3
'''


def _options(*options: tuple[str, str | None]) -> str:
    """An ``options:`` block of location options, (name, description) each, with the suboptions; a description of
    ``None`` leaves it to the module."""
    suboptions = '\n'.join(('      ' + line).rstrip() for line in _SUBOPTIONS.strip('\n').split('\n'))
    text = 'options:\n'
    for name, description in options:
        text += '  %s:\n' % name
        if description is not None:
            text += '    description:\n      - %s\n' % description
        text += '    type: dict\n    suboptions:\n' + suboptions + '\n'
    return text


class ModuleDocFragment:

    # Annotated, not plain, assignments: ansible-test's yamllint reads every plain assignment of a fragment's class as a
    # string literal, and these are built (the YAML of _SUBOPTIONS is still checked, by validate-modules through the modules).

    # backup_copy: where the sources are read and where the copies are written.
    DOCUMENTATION: str = _options(
        ('src_location', 'Where the O(transfers[].src) directories are; this machine by default, or over SFTP or WebHDFS.'),
        ('dest_location', 'Where the O(transfers[].dest) directories are; this machine by default, or over SFTP or WebHDFS.'))

    # status_flag and manifest: where the one file is.
    FILE: str = _options(('location', 'Where O(path) is; this machine by default, or over SFTP or WebHDFS.'))

    # preflight: the suboptions of its primary_location (the module documents the option itself).
    PRIMARY_LOCATION: str = _options(('primary_location', None))
