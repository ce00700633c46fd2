# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

What every part of the SFTP location shares: paramiko (an optional import), the SFTP v3 status codes, the errors.
"""

from __future__ import annotations

import errno
import socket
import traceback

from ansible_collections.mnaas.backup.plugins.module_utils._locations import (
    Entry, LocationError, LocationNotFoundError, LocationPermissionError, kind_of,
)

PARAMIKO_IMPORT_ERROR: str | None
try:
    import paramiko
    import paramiko.packet
    # What the other parts use of paramiko.sftp, imported once here.
    from paramiko.sftp import (  # pylint: disable=unused-import
        CMD_ATTRS, CMD_CLOSE, CMD_DATA, CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_HANDLE, CMD_LSTAT, CMD_OPEN, CMD_READ, CMD_STATUS,
        CMD_WRITE, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_READ, SFTP_FLAG_WRITE,
    )
    try:
        from paramiko.sftp import int64  # pylint: disable=unused-import
    except ImportError:  # paramiko 2.x (Debian 12's python3-paramiko): the 64-bit int marker is py3compat.long
        from paramiko.py3compat import long as int64  # type: ignore[no-redef]  # pylint: disable=unused-import
except ImportError:
    paramiko = None
    HAS_PARAMIKO = False
    PARAMIKO_IMPORT_ERROR = traceback.format_exc()
    # Never used then: no location is made without paramiko (missing_library).
    CMD_ATTRS = CMD_CLOSE = CMD_DATA = CMD_EXTENDED = CMD_EXTENDED_REPLY = CMD_HANDLE = CMD_LSTAT = CMD_OPEN = CMD_READ = CMD_STATUS = None
    CMD_WRITE = SFTP_FLAG_CREATE = SFTP_FLAG_EXCL = SFTP_FLAG_READ = SFTP_FLAG_WRITE = int64 = None
else:
    HAS_PARAMIKO = True
    PARAMIKO_IMPORT_ERROR = None

# SFTP v3 status codes (draft-ietf-secsh-filexfer-02).
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_PERMISSION_DENIED, FX_FAILURE, FX_OP_UNSUPPORTED = 0, 1, 2, 3, 4, 8
FX_ERRNO = {FX_NO_SUCH_FILE: errno.ENOENT, FX_PERMISSION_DENIED: errno.EACCES, FX_OP_UNSUPPORTED: errno.EOPNOTSUPP}

_CONNECTION_ERRORS: tuple = (EOFError, socket.timeout, ConnectionError)


class SftpError(LocationError):
    """An SFTP failure naming host and path (``retryable`` when the connection was lost)."""


class SftpNotFoundError(SftpError, LocationNotFoundError):
    """The server says the path does not exist."""


class SftpPermissionError(SftpError, LocationPermissionError):
    """The server says permission denied."""


def error(msg: str, code: int | None) -> SftpError:
    """The SftpError for a server's answer: by errno, a not-found or permission error."""
    cls = {errno.ENOENT: SftpNotFoundError, errno.EACCES: SftpPermissionError}.get(code or 0, SftpError)
    return cls(msg, code)


class Fatal(SftpError):
    """A connection error that another attempt cannot cure (host key, authentication, key file)."""


def status(msg) -> tuple[int, str]:
    """The code and text of an SFTP STATUS reply."""
    code = msg.get_int()
    try:
        text = msg.get_text()
    except Exception:  # pylint: disable=broad-except
        text = ''
    return code, text


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, _CONNECTION_ERRORS) or (HAS_PARAMIKO and isinstance(exc, paramiko.SSHException))


def reason(exc: BaseException) -> str:
    """An exception's text for a message."""
    text = str(exc).strip()
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return 'timed out' + (' (%s)' % text if text and text != 'timed out' else '')
    if isinstance(exc, EOFError) and not text:
        return 'connection closed by the server'
    return text or type(exc).__name__


def entry(name: str, attr) -> Entry:
    """The Entry of an SFTP attributes object."""
    return Entry(name, attr.st_size or 0, float(attr.st_mtime or 0), kind_of(attr.st_mode or 0))
