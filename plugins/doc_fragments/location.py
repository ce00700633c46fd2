# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:

    # The suboptions of a location option (plugins/module_utils/_locations/factory.py LOCATION_SPEC).
    DOCUMENTATION = r'''
options: {}
notes:
  - A location option says where files are read or written. V(local) is the machine the module runs on;
    V(sftp) reads and writes over SFTP (paramiko); V(webhdfs) talks to HDFS over WebHDFS (HdfsCLI).
'''

    SUBOPTIONS = r'''
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
  description: For V(sftp), the passphrase of O(private_key).
  type: str
password:
  description: For V(sftp), a password, when no key is used.
  type: str
known_hosts:
  description: For V(sftp), the known_hosts file the host key is verified against (the user's C(~/.ssh/known_hosts) when not given).
  type: path
host_key_policy:
  description:
    - For V(sftp), what to do with a host whose key is not in O(known_hosts).
    - V(reject) refuses it. V(accept_new) accepts and records it, with a warning. A changed key is always refused.
  type: str
  choices: [reject, accept_new]
  default: reject
urls:
  description: For V(webhdfs), the NameNode HTTP(S) URLs, tried in order (HA); for example V(http://nn1.example:9870).
  type: list
  elements: str
hdfs_user:
  description: For V(webhdfs) with O(auth=simple), the HDFS user (C(user.name)).
  type: str
auth:
  description: For V(webhdfs), V(simple) or V(kerberos) (SPNEGO with the ticket cache of the user running the module).
  type: str
  choices: [simple, kerberos]
  default: simple
kerberos_principal:
  description: For V(webhdfs) with O(auth=kerberos), the principal to use.
  type: str
verify:
  description: For V(webhdfs) over HTTPS, verify the server's certificate.
  type: bool
  default: true
ca_cert:
  description: For V(webhdfs) over HTTPS, the CA bundle to verify the server's certificate with.
  type: path
timeout:
  description: Seconds to wait for a connection or an answer.
  type: float
  default: 30.0
retries:
  description: Attempts after a transient error (connection dropped, NameNode in standby), with backoff.
  type: int
  default: 3
'''
