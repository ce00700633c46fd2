# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

One interface for every place a file can be read from or written to (a local directory now;
SFTP and WebHDFS implement the same methods). Paths are absolute POSIX paths inside the location.

What every location shares lives here too: the entry of a listing and the kind of a file mode, the error
contract (``LocationError`` and its kinds) and the backoff between attempts.
"""

from __future__ import annotations

import abc
import ctypes
import hashlib
import posixpath
import stat
import time
import typing as t

from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError

TEMP_MARK = '.mnaas-tmp.'


LIBC: dict = {}  # C library functions by name, looked up once; None where the C library has none


def libc(name: str, argtypes: list | None = None):
    """The C library's function ``name`` (errno kept for ctypes.get_errno), or None where there is none."""
    if name not in LIBC:
        try:
            func = getattr(ctypes.CDLL(None, use_errno=True), name)
            if argtypes is not None:
                func.argtypes = argtypes
        except (OSError, AttributeError):
            func = None
        LIBC[name] = func
    return LIBC[name]


class Entry(t.NamedTuple):
    """One directory entry: ``kind`` is ``file``, ``dir``, ``link`` or ``other``."""

    name: str
    size: int
    mtime: float
    kind: str = 'file'


def kind_of(mode: int) -> str:
    """The ``Entry.kind`` of a file mode (``st_mode``): ``file``, ``dir``, ``link`` or ``other``."""
    if stat.S_ISREG(mode):
        return 'file'
    if stat.S_ISDIR(mode):
        return 'dir'
    if stat.S_ISLNK(mode):
        return 'link'
    return 'other'


class LocationError(BackupError, OSError):
    """A location's operation failed; the message names the location and the path.

    An ``OSError``, so the copy engine reports it for the one file concerned, and a ``BackupError``, so a
    module reports it as its ``msg``. ``errno`` is set where known. ``retryable``: the connection or the
    service was lost or is unavailable for now, and the location sets itself up again on the next call, so
    the caller may do the whole operation again (the copy engine reads such a file once more from the start).
    The OSErrors of the operating system (the local location raises them as they are) are never retryable.
    """

    def __init__(self, msg: str, code: int | None = None, retryable: bool = False, **details) -> None:
        super().__init__(msg, **details)
        self.errno = code
        self.strerror = msg
        self.retryable = retryable

    def __str__(self) -> str:
        return self.msg


class LocationNotFoundError(LocationError, FileNotFoundError):
    """The path does not exist."""


class LocationPermissionError(LocationError, PermissionError):
    """The location refuses the operation to this user."""


class LocationExistsError(LocationError, FileExistsError):
    """The path exists (a commit never replaces a file)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether the operation that raised ``exc`` may succeed when done again (``LocationError.retryable``)."""
    if isinstance(exc, LocationError):
        return exc.retryable
    return False


# Backoff between attempts: BACKOFF seconds before the first retry, doubled for each next one, at most BACKOFF_MAX.
BACKOFF = 0.5
BACKOFF_MAX = 8.0


def backoff_delay(attempt: int, first: float = BACKOFF, most: float = BACKOFF_MAX) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): ``first``, doubled each time, at most ``most``."""
    return min(first * 2 ** (attempt - 1), most)


def same_mtime(first: float, second: float) -> bool:
    """Modification times compared to the second, the granularity every location keeps."""
    return int(first) == int(second)


NAME_MAX = 255  # bytes in one path component on Linux filesystems, SFTP servers and HDFS alike


def temp_name(name: str, token: str) -> str:
    """The hidden name a file is written under before it is committed.

    A name too long to carry the temp marks (a 255-byte file name) is cut, at a character boundary,
    and followed by a digest of the whole name, so that two long names never share a temp name.
    """
    temp = '.%s%s%s' % (name, TEMP_MARK, token)
    if len(temp.encode('utf-8', 'surrogateescape')) <= NAME_MAX:
        return temp
    digest = '~' + hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]
    room = NAME_MAX - len(('.%s%s%s' % (digest, TEMP_MARK, token)).encode('utf-8', 'surrogateescape'))
    head = name.encode('utf-8', 'surrogateescape')[:room].decode('utf-8', 'ignore')
    return '.%s%s%s%s' % (head, digest, TEMP_MARK, token)


def is_temp_name(name: str) -> bool:
    return name.startswith('.') and TEMP_MARK in name


class Checksum(t.Protocol):
    """A file checksum a location computes on its side, so content is compared without a download."""

    @property
    def algorithm(self) -> str:
        """The checksum's kind; two checksums of one kind are equal exactly when the contents are."""

    def compute_like(self, stream: t.BinaryIO) -> Checksum:
        """The checksum of ``stream``'s bytes computed the same way, to compare with ``==``."""


class Location(abc.ABC):
    """Where files live. Implementations must make ``commit`` atomic and never replace a file."""

    kind = 'abstract'
    # Whether small files gain from parallel transfers: remote locations wait on the network per file; a local
    # filesystem does not, and threads creating small files there only contend (see _copy._slices).
    small_files_in_parallel = True

    def join(self, *parts: str) -> str:
        return posixpath.join(*parts)

    @abc.abstractmethod
    def describe(self, path: str) -> str:
        """A human readable name of ``path`` for messages (host and path)."""

    @abc.abstractmethod
    def listdir(self, path: str) -> dict[str, Entry] | None:
        """All entries of directory ``path`` in one call, by name; ``None`` when it does not exist."""

    @abc.abstractmethod
    def stat(self, path: str) -> Entry | None:
        """The entry at ``path`` without following a final symlink; ``None`` when absent."""

    @abc.abstractmethod
    def open_read(self, path: str) -> t.BinaryIO:
        """A binary stream of the file at ``path``."""

    def stat_read(self, reader: t.BinaryIO, path: str) -> Entry | None:
        """The entry at ``path`` once ``reader`` (of ``open_read``) has read it; ``None`` when it is gone, or
        where the location can tell, when ``path`` names another file than the one read (renamed over meanwhile)."""
        return self.stat(path)

    @abc.abstractmethod
    def makedirs(self, path: str) -> None:
        """Create directory ``path`` and its parents when missing."""

    @abc.abstractmethod
    def open_write(self, path: str) -> t.BinaryIO:
        """A new file at ``path`` (a temp name), failing when it exists."""

    @abc.abstractmethod
    def flush(self, paths: list[str]) -> None:
        """Make the data of the files written at ``paths`` durable (before they are committed)."""

    def flush_dirs(self, paths: list[str]) -> None:
        """Make the names committed in directories ``paths`` durable."""

    @abc.abstractmethod
    def commit(self, temp_path: str, final_path: str, mtime: float) -> None:
        """Set ``mtime`` on the temp file and move it to ``final_path``; fail if that exists."""

    @abc.abstractmethod
    def replace(self, temp_path: str, final_path: str, mtime: float) -> None:
        """Like ``commit`` but atomically replacing an existing ``final_path``."""

    @abc.abstractmethod
    def remove(self, path: str) -> None:
        """Remove the file at ``path``; absent is fine."""

    def prefetch(self, paths: list[str]) -> None:
        """A hint: the files ``open_read`` will be asked for next, in this order (a remote source may fetch ahead)."""

    def checksum(self, path: str) -> Checksum | None:
        """The checksum of the file at ``path`` computed where it is stored, or ``None``: read it to compare."""
        return None

    def close(self) -> None:
        """Release connections."""


def read_small(location: Location, path: str) -> bytes | None:
    """The bytes of a small file at ``path``, or ``None`` when there is none."""
    if location.stat(path) is None:
        return None
    with location.open_read(path) as stream:
        return stream.read()


def write_small(location: Location, path: str, data: bytes, token: str) -> None:
    """Replace the small file at ``path`` with ``data`` atomically: a hidden temp beside it, flushed, renamed over it."""
    directory, name = posixpath.split(path)
    tmp = posixpath.join(directory, temp_name(name, token))
    try:
        with location.open_write(tmp) as stream:
            stream.write(data)
        location.flush([tmp])
        location.replace(tmp, path, time.time())
    except BaseException:
        try:
            location.remove(tmp)
        except (OSError, IOError):
            pass
        raise
    location.flush_dirs([directory])
