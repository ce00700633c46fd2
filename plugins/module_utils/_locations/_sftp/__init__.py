# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

The parts of the SFTP location (``_locations/sftp.py``), one concern a file:

- ``base``: paramiko (an optional import), the SFTP status codes, the errors.
- ``fastpath``: paramiko's internals, fenced in (the faster packet reader, receive buffer and replies, the
  pipelined requests); the only file that touches paramiko's private names.
- ``hostkeys``: fingerprints, known_hosts, the host key policy.
- ``streams``: files read and written with many requests in flight.
- ``prefetch``: small files fetched ahead (pipelined SFTP, or streamed ``tar``).
- ``connection``: the SSH connections, the threads' SFTP channels, reconnecting.
"""
