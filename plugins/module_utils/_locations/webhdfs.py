# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to mnaas.backup: not a public API, may change without notice.

HDFS over WebHDFS (``/webhdfs/v1`` on the NameNodes' HTTP port), as a ``Location``.

HdfsCLI (the ``hdfs`` package) sets up authentication: ``InsecureClient`` adds ``user.name`` (simple
auth), ``hdfs.ext.kerberos.KerberosClient`` adds throttled SPNEGO (needs ``requests-kerberos``).
The requests themselves go through the ``requests`` session they configured, one HTTP call per
WebHDFS operation, because HdfsCLI's higher-level methods do not fit here: ``list()`` adds a
GETFILESTATUS for one-entry directories, its failover neither backs off nor treats 5xx as
transient and its errors lose the HTTP status, ``rename()`` cannot tell "destination exists", and
``write()`` without data buffers a whole file in an unbounded queue.

Every write goes to a hidden temporary name (CREATE with ``overwrite=false``, then one PUT to the
DataNode: a small file's bytes in one body, a larger one streamed through a small bounded queue);
``commit`` sets the modification time (SETTIMES) and RENAMEs it into place, refusing to replace a
file; ``replace`` is one RENAME with OVERWRITE. So a file costs three NameNode requests and one
DataNode request, over kept-alive connections shared by the copy engine's workers.

What requests would read from the environment on every request (proxies, ``.netrc``, the CA bundle
variables) is read once per NameNode or DataNode address: scanning the environment cost more CPU
than the rest of a small file's request.

HA: ``urls`` lists the NameNodes. A standby, unreachable or failing (HTTP 5xx) NameNode makes the
operation go to the next one; the one that answered is used first from then on. When none could
serve it, the round is retried ``retries`` times with exponential backoff, then the error names
every URL tried and why it failed.
"""

from __future__ import annotations

import getpass
import http.client
import os
import posixpath
import queue
import re
import threading
import time
import traceback
import typing as t
from urllib.parse import quote, urlsplit

from ansible_collections.mnaas.backup.plugins.module_utils._errors import ConfigError, missing_library
from ansible_collections.mnaas.backup.plugins.module_utils._hdfs_checksum import HdfsChecksum, parse_webhdfs
from ansible_collections.mnaas.backup.plugins.module_utils._locations import (
    BACKOFF, Entry, Location, LocationError, LocationExistsError, LocationNotFoundError, LocationPermissionError, backoff_delay,
)

try:
    import requests
    from requests.adapters import HTTPAdapter
    from hdfs.client import InsecureClient
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:
    HAS_HDFS = False
    HDFS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_HDFS = True
    HDFS_IMPORT_ERROR = None

# RemoteExceptions after which another NameNode, or the same one a little later, may succeed.
TRANSIENT_EXCEPTIONS = frozenset(('StandbyException', 'RetriableException', 'SafeModeException', 'ObserverRetryOnActiveException'))

_KINDS = {'FILE': 'file', 'DIRECTORY': 'dir', 'SYMLINK': 'link'}
_ERRNO = re.compile(r'\[Errno -?\d+\] ([^\'")\]]+)')
_HEADERS = {'content-type': 'application/octet-stream'}   # HttpFS insists on it


class WebHdfsError(LocationError):
    """A WebHDFS operation failed; the message names the operation, the path and the HDFS user.

    ``transient``: another NameNode, or a later attempt, may succeed; the location tries again itself
    (``retries`` rounds with backoff; a streamed upload not at all). Its errors are never ``retryable``:
    the copy engine does not read a file again after them.
    """

    def __init__(self, msg: str, transient: bool = False, reason: str = '', **details) -> None:
        super().__init__(msg, **details)
        self.transient = transient
        self.reason = reason or msg


class HdfsPermissionError(WebHdfsError, LocationPermissionError):
    """HTTP 403 AccessControlException, or 401: the user may not do this."""


class HdfsNotFoundError(WebHdfsError, LocationNotFoundError):
    """HTTP 404 FileNotFoundException."""


class HdfsExistsError(WebHdfsError, LocationExistsError):
    """The path exists (FileAlreadyExistsException, or a RENAME refused because the destination exists)."""


class HdfsUnavailableError(WebHdfsError, ConnectionError):
    """No NameNode could serve the operation, after all retries."""


def _first_line(text: str) -> str:
    """A Java exception message without its stack trace."""
    lines = (text or '').strip().splitlines()
    return lines[0].strip() if lines else ''


def _remote_exception(response: requests.Response) -> tuple[str | None, str]:
    """The RemoteException's name and first message line, or (None, the start of the body)."""
    try:
        remote = response.json()['RemoteException']
        return str(remote.get('exception') or '') or None, _first_line(str(remote.get('message') or ''))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, _first_line(response.text[:300]) if response.text else ''


def _short_reason(exc: BaseException) -> str:
    """"connection refused" rather than the three nested exceptions requests reports."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return 'connection timed out'
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return 'no answer in time'
    match = _ERRNO.search(str(exc))
    if match:
        return match.group(1).strip().lower()
    return '%s: %s' % (type(exc).__name__, _first_line(str(exc))[:200])


def _json(response: requests.Response, where: str) -> dict:
    try:
        body = response.json()
    except ValueError as exc:
        raise WebHdfsError('%s: the answer is not JSON (HTTP %d): %s' % (where, response.status_code, _first_line(response.text[:200]))) from exc
    if not isinstance(body, dict):
        raise WebHdfsError('%s: unexpected answer %r' % (where, body))
    return body


def _entry(name: str, status: dict) -> Entry:
    return Entry(name, int(status.get('length') or 0), int(status.get('modificationTime') or 0) / 1000.0,
                 _KINDS.get(str(status.get('type')), 'other'))


class WebHdfsLocation(Location):
    """An HDFS namespace reached over WebHDFS, through one or more NameNodes (HA)."""

    kind = 'webhdfs'
    backoff = BACKOFF       # seconds before the first retry, doubled for each next one (backoff_delay)
    queue_chunks = 8        # chunks an upload buffers between the reader and the DataNode
    inline_bytes = 1 << 20  # a file up to this size is sent in one request body, without a streaming thread

    def __init__(self, urls: list[str], user: str | None = None, auth: str = 'simple', kerberos_principal: str | None = None,
                 verify: bool = True, ca_cert: str | None = None, timeout: float = 30.0, retries: int = 3,
                 session: requests.Session | None = None) -> None:
        if not HAS_HDFS:
            raise missing_library('hdfs', HDFS_IMPORT_ERROR)
        self.urls = [url.rstrip('/') for url in urls]
        self.auth = auth
        self.timeout = timeout
        self.retries = max(0, retries)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32)
            session.mount('http://', adapter)
            session.mount('https://', adapter)
        # What requests takes from the environment per request (trust_env) is taken once per address
        # (_environment); the CA bundle variables apply, as in requests, only without ca_cert or verify=false.
        self.verify: bool | str = ca_cert or verify
        session.verify = self.verify
        if self.verify is True:
            self.verify = os.environ.get('REQUESTS_CA_BUNDLE') or os.environ.get('CURL_CA_BUNDLE') or True
        self._trust_env = session.trust_env
        session.trust_env = False
        self._environ: dict[str, dict] = {}
        self.session = session
        if auth == 'kerberos':
            self.user = kerberos_principal
            self.identity = 'Kerberos principal %s' % kerberos_principal if kerberos_principal else 'the Kerberos principal of the ticket cache'
            self.client = _kerberos_client(';'.join(self.urls), session, kerberos_principal, timeout)
        else:
            self.user = user or getpass.getuser()
            self.identity = 'HDFS user %s' % self.user
            self.client = InsecureClient(';'.join(self.urls), user=self.user, session=session, timeout=timeout)
        self._active = 0
        self._sleep: t.Callable[[float], None] = time.sleep

    # -- requests ------------------------------------------------------------------------------

    def _environment(self, url: str) -> dict:
        """Proxies and ``.netrc`` credentials for ``url``'s address, found once (what requests' trust_env does per request)."""
        parts = urlsplit(url)
        origin = '%s://%s' % (parts.scheme, parts.netloc)
        found = self._environ.get(origin)
        if found is None:
            found = {'proxies': {}}
            if self._trust_env:
                found['proxies'] = requests.utils.get_environ_proxies(origin + '/')
                if self.session.auth is None:
                    netrc = requests.utils.get_netrc_auth(origin + '/')
                    if netrc:
                        found['auth'] = netrc
            self._environ[origin] = found
        return found

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        """One HTTP request through the session, with the timeout, TLS verification and environment settings."""
        return self.session.request(method, url, timeout=self.timeout, headers=_HEADERS, verify=self.verify,
                                    **dict(self._environment(url), **kwargs))

    def describe(self, path: str) -> str:
        parts = urlsplit(self.urls[self._active])
        return '%s://%s%s' % ('swebhdfs' if parts.scheme == 'https' else 'webhdfs', parts.netloc, path)

    def where(self, op: str, path: str) -> str:
        """What messages start with: the operation, the path and who asked."""
        return '%s %s as %s' % (op, self.describe(path), self.identity)

    def error_for(self, op: str, path: str, response: requests.Response) -> WebHdfsError:
        """The exception for a failed answer, naming the operation, the path and the user."""
        exception, message = _remote_exception(response)
        status = response.status_code
        where = self.where(op, path)
        reason = '%s: %s' % (exception or 'HTTP %d' % status, message) if message else (exception or 'HTTP %d' % status)
        if exception in TRANSIENT_EXCEPTIONS or status >= 500:
            return WebHdfsError('%s: %s' % (where, reason), transient=True, reason=reason)
        if status == 401:
            hint = ('check the ticket (klist) and the principal' if self.auth == 'kerberos'
                    else 'the cluster may require auth=kerberos')
            return HdfsPermissionError('%s: authentication failed (HTTP 401; %s): %s' % (where, hint, message or 'no details'), reason=reason)
        if exception == 'AccessControlException' or (status == 403 and exception is None):
            return HdfsPermissionError('%s: %s' % (where, message or 'permission denied (HTTP 403)'), reason=reason)
        if exception == 'FileNotFoundException' or status == 404:
            return HdfsNotFoundError('%s: not found: %s' % (where, message or 'HTTP 404'), reason=reason)
        if exception == 'FileAlreadyExistsException':
            return HdfsExistsError('%s: already exists: %s' % (where, message), reason=reason)
        return WebHdfsError('%s failed: HTTP %d %s' % (where, status, reason), reason=reason)

    def pause(self, attempt: int) -> None:
        """Wait before retry number ``attempt`` (1, 2, ...): ``backoff`` seconds, doubled each time, at most ``BACKOFF_MAX``."""
        self._sleep(backoff_delay(attempt, self.backoff))

    def _namenode(self, op: str, path: str, method: str = 'GET', redirect: bool = True, **params) -> requests.Response:
        """One WebHDFS operation: on the active NameNode, then the others; the round retried with backoff.

        Returns the answer (status below 400; with ``redirect=False`` a 307 to a DataNode).
        """
        params['op'] = op
        failures: dict[str, str] = {}
        for attempt in range(self.retries + 1):
            if attempt:
                self.pause(attempt)
            start = self._active
            for offset in range(len(self.urls)):
                index = (start + offset) % len(self.urls)
                base = self.urls[index]
                try:
                    response = self.request(method, '%s/webhdfs/v1%s' % (base, quote(path, safe='/')), params=params,
                                            allow_redirects=redirect, stream=(op == 'OPEN'))
                except requests.exceptions.SSLError as exc:
                    raise WebHdfsError('%s: TLS failed with %s: %s (set ca_cert to the CA bundle that signed the NameNode certificates)'
                                       % (self.where(op, path), base, _first_line(str(exc))[:300])) from exc
                except requests.exceptions.RequestException as exc:
                    failed = urlsplit(exc.request.url).netloc if exc.request is not None and exc.request.url else ''
                    label = base if not failed or failed == urlsplit(base).netloc else '%s (DataNode %s)' % (base, failed)
                    failures[label] = _short_reason(exc)
                    continue
                if response.status_code < 400:
                    self._active = index
                    return response
                error = self.error_for(op, path, response)
                response.close()
                if not error.transient:
                    raise error
                failures[base] = error.reason
        tried = ', '.join('%s (%s)' % item for item in failures.items())
        raise HdfsUnavailableError('%s: no NameNode could serve it after %d attempt(s); tried %s'
                                   % (self.where(op, path), self.retries + 1, tried), urls=self.urls)

    def _boolean(self, op: str, path: str, response: requests.Response) -> bool:
        return bool(_json(response, '%s %s' % (op, self.describe(path))).get('boolean'))

    # -- Location ------------------------------------------------------------------------------

    def listdir(self, path: str) -> dict[str, Entry] | None:
        """One LISTSTATUS (the NameNode streams every entry in one answer)."""
        try:
            response = self._namenode('LISTSTATUS', path)
        except HdfsNotFoundError:
            return None
        body = _json(response, 'LISTSTATUS %s' % self.describe(path))
        try:
            statuses = body['FileStatuses']['FileStatus']
        except (KeyError, TypeError) as exc:
            raise WebHdfsError('LISTSTATUS %s: unexpected answer' % self.describe(path)) from exc
        if len(statuses) == 1 and not statuses[0].get('pathSuffix'):
            raise WebHdfsError('%s is a file, not a directory' % self.describe(path))
        return {s['pathSuffix']: _entry(s['pathSuffix'], s) for s in statuses}

    def stat(self, path: str) -> Entry | None:
        try:
            response = self._namenode('GETFILESTATUS', path)
        except HdfsNotFoundError:
            return None
        body = _json(response, 'GETFILESTATUS %s' % self.describe(path))
        return _entry(posixpath.basename(path), body.get('FileStatus') or {})

    def open_read(self, path: str) -> t.BinaryIO:
        """OPEN, redirected to a DataNode; the bytes are streamed."""
        return t.cast(t.BinaryIO, _Reader(self, path, self._namenode('OPEN', path)))

    def makedirs(self, path: str) -> None:
        if not self._boolean('MKDIRS', path, self._namenode('MKDIRS', path, method='PUT')):
            raise WebHdfsError('%s: the NameNode refused to create the directory' % self.where('MKDIRS', path))

    def open_write(self, path: str) -> t.BinaryIO:
        """CREATE without overwrite: the NameNode names a DataNode, the bytes are streamed to it."""
        return t.cast(t.BinaryIO, _Upload(self, path, self.create_redirect(path)))

    def create_redirect(self, path: str) -> str:
        """The DataNode URL the NameNode names for a CREATE of ``path`` without overwrite."""
        response = self._namenode('CREATE', path, method='PUT', redirect=False, overwrite='false')
        location = response.headers.get('Location')
        if response.status_code != 307 or not location:
            raise WebHdfsError('%s: the NameNode did not redirect to a DataNode (HTTP %d)' % (self.where('CREATE', path), response.status_code))
        return location

    def flush(self, paths: list[str]) -> None:
        """Nothing to do: a file's upload returns once the DataNode pipeline closed the file, when it is
        complete and readable from every NameNode (how far its bytes reached the disks is HDFS's
        ``dfs.datanode.synconclose``)."""

    def flush_dirs(self, paths: list[str]) -> None:
        """Nothing to do: the NameNode writes each RENAME to its edit log before it answers."""

    def _set_mtime(self, path: str, mtime: float) -> None:
        # Milliseconds, rounded down so the second (what size+mtime comparisons use) stays the source's.
        self._namenode('SETTIMES', path, method='PUT', modificationtime=int(mtime * 1000))

    def commit(self, temp_path: str, final_path: str, mtime: float) -> None:
        """SETTIMES, then RENAME: it answers false, and nothing changes, when ``final_path`` exists."""
        self._set_mtime(temp_path, mtime)
        if self._boolean('RENAME', temp_path, self._namenode('RENAME', temp_path, method='PUT', destination=final_path)):
            return
        if self.stat(final_path) is not None:
            raise HdfsExistsError('RENAME to %s: it exists; left as it is' % self.describe(final_path))
        raise WebHdfsError('%s: the NameNode refused to rename it to %s (temporary file or directory gone?)'
                           % (self.where('RENAME', temp_path), final_path))

    def replace(self, temp_path: str, final_path: str, mtime: float) -> None:
        """SETTIMES, then one RENAME with OVERWRITE: a single NameNode operation, so readers see the old
        file or the new one, never neither (no window). The old file is deleted, not moved to trash."""
        self._set_mtime(temp_path, mtime)
        self._namenode('RENAME', temp_path, method='PUT', destination=final_path, renameoptions='OVERWRITE')

    def remove(self, path: str) -> None:
        """DELETE, not recursive: absent is fine, a non-empty directory is an error."""
        self._namenode('DELETE', path, method='DELETE', recursive='false')

    def checksum(self, path: str) -> HdfsChecksum | None:
        """GETFILECHECKSUM (computed by the DataNodes); ``None`` for a kind this module cannot compute."""
        body = _json(self._namenode('GETFILECHECKSUM', path), 'GETFILECHECKSUM %s' % self.describe(path))
        try:
            return parse_webhdfs(body.get('FileChecksum') or {})
        except ValueError:
            return None

    def close(self) -> None:
        self.session.close()


def _kerberos_client(url: str, session: requests.Session, principal: str | None, timeout: float):
    """HdfsCLI's KerberosClient (SPNEGO through requests-kerberos), imported only when asked for."""
    try:
        from hdfs.ext.kerberos import KerberosClient  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise missing_library('requests-kerberos', traceback.format_exc(), reason='for WebHDFS with auth=kerberos') from exc
    kwargs = {'principal': principal} if principal else {}
    return KerberosClient(url, mutual_auth='OPTIONAL', session=session, timeout=timeout, **kwargs)


class _Reader:
    """The body of an OPEN answer, read as a binary stream; transport errors become ``WebHdfsError``."""

    def __init__(self, location: WebHdfsLocation, path: str, response: requests.Response) -> None:
        self._location = location
        self._path = path
        self._response = response

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._response.raw.read(None if size is None or size < 0 else size)
        except (Urllib3Error, requests.exceptions.RequestException, http.client.HTTPException) as exc:
            raise WebHdfsError('%s: reading failed: %s' % (self._location.where('OPEN', self._path), _short_reason(exc))) from exc

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _Aborted(Exception):
    """Raised inside an upload's body so the DataNode sees a broken request, not a complete file."""


_END = object()
_ABORT = object()


class _Upload:
    """A file being written, sent as the body of one PUT to the DataNode.

    Up to ``inline_bytes`` are kept and sent on ``close`` in one body, from the calling thread. Past
    that, a thread starts the PUT and ``write`` hands it chunks through a bounded queue, so a large
    file is streamed, never held whole in memory. Errors of the PUT are raised by ``write`` or ``close``.
    """

    def __init__(self, location: WebHdfsLocation, path: str, url: str) -> None:
        self._location = location
        self._path = path
        self._url = url
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._queue: queue.Queue = queue.Queue(maxsize=location.queue_chunks)
        self._error: BaseException | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def _chunks(self) -> t.Iterator[bytes]:
        while True:
            chunk = self._queue.get()
            if chunk is _END:
                return
            if chunk is _ABORT:
                raise _Aborted()
            yield chunk

    def _send(self, body: bytes | t.Iterator[bytes]) -> None:
        where = self._location.where('CREATE', self._path)
        try:
            response = self._location.request('PUT', self._url, data=body)
        except _Aborted:
            return
        except requests.exceptions.RequestException as exc:
            self._error = WebHdfsError('%s: upload to DataNode %s failed: %s' % (where, urlsplit(self._url).netloc, _short_reason(exc)),
                                       transient=True)
            return
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            # Whatever stops the upload must reach the writer, or the file would look complete.
            self._error = exc
            return
        if response.status_code >= 300:
            self._error = self._location.error_for('CREATE', self._path, response)
        response.close()

    def _stream(self) -> None:
        """Start the PUT in a thread and hand it what was kept so far."""
        self._thread = threading.Thread(target=self._send, args=(self._chunks(),), name='webhdfs-upload', daemon=True)
        self._thread.start()
        kept, self._kept = self._kept, []
        for chunk in kept:
            self._put(chunk)

    def _put(self, item: object) -> None:
        thread = t.cast(threading.Thread, self._thread)
        while True:
            if self._error is not None:
                raise self._error
            if not thread.is_alive():
                raise WebHdfsError('%s: the upload ended early' % self._location.where('CREATE', self._path))
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError('write to a closed upload')
        if not data:
            return 0
        chunk = bytes(data)
        if self._thread is None:
            if self._kept_bytes + len(chunk) <= self._location.inline_bytes:
                self._kept.append(chunk)
                self._kept_bytes += len(chunk)
                return len(chunk)
            self._stream()
        self._put(chunk)
        return len(chunk)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            body, self._kept = b''.join(self._kept), []
            self._send(body)
            self._send_again(body)
        else:
            self._put(_END)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _send_again(self, body: bytes) -> None:
        """A body held here whose DataNode could not be reached (restarted, gone): asked for a DataNode again and
        sent again, for ``retries`` rounds with backoff. Still without overwrite: a file the lost attempt may have
        created is never replaced (the CREATE fails instead). A streamed upload is not retried (its bytes are gone)."""
        location = self._location
        for attempt in range(1, location.retries + 1):
            if not (isinstance(self._error, WebHdfsError) and self._error.transient):
                return
            location.pause(attempt)
            self._error = None
            self._url = location.create_redirect(self._path)
            self._send(body)

    def abort(self) -> None:
        """Break the upload off: the DataNode gets a truncated request, or none (the temporary file is removed by the caller)."""
        if self._closed:
            return
        self._closed = True
        self._kept = []
        if self._thread is None:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            try:
                self._queue.put(_ABORT, timeout=self._location.timeout)
            except queue.Full:
                pass
        self._thread.join(self._location.timeout)

    def __enter__(self) -> _Upload:
        return self

    def __exit__(self, exc_type, exc_value, traceback_) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def from_options(options: dict, key: str = 'location') -> WebHdfsLocation:
    """A ``WebHdfsLocation`` from a validated location option (``factory.LOCATION_SPEC``); errors name ``key``."""
    urls = options.get('urls') or []
    if not urls:
        raise ConfigError('%s.urls is required with %s.type=webhdfs: the NameNode HTTP(S) URLs, e.g. [http://nn1.example:9870]' % (key, key))
    for index, url in enumerate(urls):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname or parts.path.strip('/') or parts.query:
            raise ConfigError('%s.urls[%d] must be http://host:port or https://host:port of a NameNode, got %r' % (key, index, url))
    auth = options.get('auth') or 'simple'
    if auth not in ('simple', 'kerberos'):
        raise ConfigError('%s.auth must be simple or kerberos, got %r' % (key, auth))
    if auth == 'kerberos' and options.get('hdfs_user'):
        raise ConfigError('%s.hdfs_user is for auth=simple; with auth=kerberos the principal is the HDFS user, got %r'
                          % (key, options['hdfs_user']))
    if auth == 'simple' and options.get('kerberos_principal'):
        raise ConfigError('%s.kerberos_principal is for auth=kerberos, got %r with auth=simple' % (key, options['kerberos_principal']))
    if options.get('ca_cert') and options.get('verify') is False:
        raise ConfigError('%s.ca_cert %r is given but %s.verify is false' % (key, options['ca_cert'], key))
    timeout = options.get('timeout')
    timeout = 30.0 if timeout is None else float(timeout)
    if timeout <= 0:
        raise ConfigError('%s.timeout must be positive, got %r' % (key, timeout))
    retries = options.get('retries')
    retries = 3 if retries is None else int(retries)
    if retries < 0:
        raise ConfigError('%s.retries must be 0 or more, got %r' % (key, retries))
    return WebHdfsLocation(
        urls, user=options.get('hdfs_user'), auth=auth, kerberos_principal=options.get('kerberos_principal'),
        verify=options.get('verify', True) is not False, ca_cert=options.get('ca_cert'), timeout=timeout, retries=retries)
