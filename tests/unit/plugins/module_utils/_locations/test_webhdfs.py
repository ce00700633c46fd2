# -*- coding: utf-8 -*-
# Copyright: contributors to the mnaas.backup collection
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""WebHdfsLocation against an in-memory WebHDFS behind requests' transport adapter (the HTTP boundary).

Everything above the socket is real: requests (redirects, parameters, ``verify``), HdfsCLI's clients
(``user.name``, Kerberos auth), the location. The fake speaks the WebHDFS answers a Hadoop 3.4.1
NameNode and DataNode give (tests/system/test_webhdfs_location.py checks them on a real one).
"""

from __future__ import annotations

import io
import json
import os
import sys
import types
import typing as t
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.response import HTTPResponse

from ansible_collections.mnaas.backup.plugins.module_utils import _copy
from ansible_collections.mnaas.backup.plugins.module_utils import _hdfs_checksum as hc
from ansible_collections.mnaas.backup.plugins.module_utils._errors import BackupError, ConfigError
from ansible_collections.mnaas.backup.plugins.module_utils._locations import Entry, factory, webhdfs
from ansible_collections.mnaas.backup.plugins.module_utils._locations.local import LocalLocation

NN1 = 'http://nn1.example:9870'
NN2 = 'http://nn2.example:9870'
DN = 'dn1.example:9864'
OLD = 1_700_000_000.0


class Node(t.NamedTuple):
    kind: str                # FILE, DIRECTORY
    data: bytes = b''
    mtime: int = 0           # ms
    owner: str = 'root'
    block_size: int = 134217728


def remote(exception: str, message: str, status: int) -> tuple[int, dict]:
    return status, {'RemoteException': {'exception': exception, 'javaClassName': 'org.apache.' + exception,
                                        'message': message + '\n\tat org.apache.hadoop.Some.frame(Some.java:1)\n'}}


class FakeWebHdfs(HTTPAdapter):
    """An HA pair of NameNodes and one DataNode, in memory; ``up`` says which NameNode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, Node] = {'/': Node('DIRECTORY')}
        self.calls: list[tuple[str, str, str, str]] = []       # (method, host, op, path)
        self.active = urlsplit(NN1).netloc
        self.standby = {urlsplit(NN2).netloc}
        self.down: set[str] = set()
        self.faults: list[tuple[str, int, dict | str]] = []  # (op, status, body): answered once instead
        self.seen: list[dict] = []                          # send() keyword arguments and headers

    # -- the fake server -----------------------------------------------------------------------

    def writable(self, user: str, path: str) -> tuple[int, dict] | None:
        parent = os.path.dirname(path.rstrip('/')) or '/'
        node = self.nodes.get(parent)
        if node is not None and user not in ('root', node.owner):
            return remote('AccessControlException', 'Permission denied: user=%s, access=WRITE, inode="%s":%s:supergroup:drwxr-xr-x'
                          % (user, parent, node.owner), 403)
        return None

    def status(self, name: str, node: Node) -> dict:
        return {'pathSuffix': name, 'type': node.kind, 'length': len(node.data), 'modificationTime': node.mtime,
                'owner': node.owner, 'blockSize': node.block_size, 'permission': '755' if node.kind == 'DIRECTORY' else '644'}

    def namenode(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, dict | str, dict]:
        op = query['op']
        user = query.get('user.name', 'dr.who')
        node = self.nodes.get(path)
        if op == 'LISTSTATUS':
            if node is None:
                return (*remote('FileNotFoundException', 'File %s does not exist.' % path, 404), {})
            if node.kind == 'FILE':
                return 200, {'FileStatuses': {'FileStatus': [self.status('', node)]}}, {}
            prefix = path.rstrip('/') + '/'
            children = [self.status(p[len(prefix):], n) for p, n in sorted(self.nodes.items())
                        if p.startswith(prefix) and '/' not in p[len(prefix):] and p != prefix]
            return 200, {'FileStatuses': {'FileStatus': children}}, {}
        if op == 'GETFILESTATUS':
            if node is None:
                return (*remote('FileNotFoundException', 'File does not exist: %s' % path, 404), {})
            return 200, {'FileStatus': self.status('', node)}, {}
        if op == 'MKDIRS':
            denied = self.writable(user, path)
            if denied and node is None:
                return (*denied, {})
            parts = [p for p in path.split('/') if p]
            for depth in range(1, len(parts) + 1):
                self.nodes.setdefault('/' + '/'.join(parts[:depth]), Node('DIRECTORY', owner=user))
            return 200, {'boolean': True}, {}
        if op in ('CREATE', 'OPEN', 'GETFILECHECKSUM'):
            # As a NameNode does, the redirect carries the CREATE's overwrite.
            overwrite = '&overwrite=%s' % query['overwrite'] if 'overwrite' in query else ''
            return 307, '', {'Location': 'http://%s/webhdfs/v1%s?op=%s&user.name=%s&namenoderpcaddress=nn%s' % (DN, path, op, user, overwrite)}
        if op == 'SETTIMES':
            if node is None:
                return (*remote('FileNotFoundException', 'File/Directory %s does not exist.' % path, 404), {})
            self.nodes[path] = node._replace(mtime=int(query['modificationtime']))
            return 200, '', {}
        if op == 'RENAME':
            if node is None:
                return (*remote('FileNotFoundException', 'rename source %s is not found.' % path, 404), {})
            dest = query['destination']
            if query.get('renameoptions') == 'OVERWRITE':
                self.nodes[dest] = self.nodes.pop(path)
                return 200, '', {}
            if dest in self.nodes:
                return 200, {'boolean': False}, {}
            self.nodes[dest] = self.nodes.pop(path)
            return 200, {'boolean': True}, {}
        if op == 'DELETE':
            if node is None:
                return 200, {'boolean': False}, {}
            del self.nodes[path]
            return 200, {'boolean': True}, {}
        return (*remote('IllegalArgumentException', 'Invalid value for webhdfs parameter "op": %s' % op, 400), {})

    def datanode(self, path: str, query: dict, body: bytes) -> tuple[int, dict | str, dict]:
        op = query['op']
        node = self.nodes.get(path)
        if op == 'CREATE':
            denied = self.writable(query.get('user.name', 'dr.who'), path)
            if denied:
                return (*denied, {})
            if node is not None and query.get('overwrite') == 'false':
                return (*remote('FileAlreadyExistsException', '%s for client 127.0.0.1 already exists' % path, 403), {})
            self.nodes[path] = Node('FILE', body, mtime=1_800_000_000_000, owner=query.get('user.name', 'dr.who'))
            return 201, '', {'Location': 'hdfs://nn%s' % path}
        if node is None:
            return (*remote('FileNotFoundException', 'File does not exist: %s' % path, 404), {})
        if op == 'OPEN':
            return 200, node.data.decode('latin-1'), {}
        if op == 'GETFILECHECKSUM':
            checksum = hc.compute(io.BytesIO(node.data), 0)
            return 200, {'FileChecksum': {'algorithm': checksum.algorithm, 'bytes': checksum.hex + '00000000', 'length': 28}}, {}
        raise AssertionError(op)

    # -- requests' transport adapter interface ------------------------------------------------

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # pylint: disable=too-many-arguments
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path[len('/webhdfs/v1'):] or '/'
        self.calls.append((request.method, url.netloc, query.get('op', ''), path))
        self.seen.append({'timeout': timeout, 'verify': verify, 'headers': dict(request.headers), 'query': query, 'proxies': proxies})
        if url.netloc in self.down:
            raise requests.exceptions.ConnectionError(
                "HTTPConnectionPool(host='%s'): Max retries exceeded (Caused by NewConnectionError('<urllib3.connection.HTTPConnection>: "
                "Failed to establish a new connection: [Errno 111] Connection refused'))" % url.netloc, request=request)
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            body = b''.join(body)          # a streamed upload; an abort raises out of here as from a socket
        body = body.encode() if isinstance(body, str) else (body or b'')
        for index, (op, status, answer) in enumerate(self.faults):
            if op == query.get('op'):
                del self.faults[index]
                return self.answer(request, status, answer, {})
        if url.netloc == DN:
            status, answer, headers = self.datanode(path, query, body)
        elif url.netloc in self.standby:
            status, answer = remote('StandbyException', 'Operation category READ is not supported in state standby', 403)
            headers = {}
        else:
            status, answer, headers = self.namenode(request.method, path, query, body)
        return self.answer(request, status, answer, headers)

    def answer(self, request, status: int, answer: dict | str, headers: dict):
        data = json.dumps(answer).encode() if isinstance(answer, dict) else answer.encode('latin-1')
        headers = dict(headers, **{'Content-Type': 'application/json', 'Content-Length': str(len(data))})
        raw = HTTPResponse(body=io.BytesIO(data), headers=headers, status=status, preload_content=False, reason='X')
        return self.build_response(request, raw)

    def ops(self, host: str | None = None) -> list[str]:
        return [op for _method, netloc, op, _path in self.calls if host is None or netloc == host]


@pytest.fixture
def fake() -> FakeWebHdfs:
    return FakeWebHdfs()


def make(fake: FakeWebHdfs, urls=(NN1, NN2), **kwargs) -> webhdfs.WebHdfsLocation:
    session = requests.Session()
    session.mount('http://', fake)
    session.mount('https://', fake)
    location = webhdfs.WebHdfsLocation(list(urls), session=session, **dict({'user': 'root'}, **kwargs))
    location.sleeps = []
    location._sleep = location.sleeps.append
    return location


def put(fake: FakeWebHdfs, path: str, data: bytes, mtime: float = OLD, owner: str = 'root') -> None:
    fake.nodes[path] = Node('FILE', data, int(mtime * 1000), owner)


# ---------------------------------------------------------------------------------------------
# Listing and status


def test_listdir_is_one_liststatus(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    put(fake, '/b/one.csv', b'abc', OLD + 0.25)
    fake.nodes['/b/sub'] = Node('DIRECTORY', mtime=5000)
    fake.nodes['/b/ln'] = Node('SYMLINK')
    loc = make(fake)
    listing = loc.listdir('/b')
    assert listing == {
        'one.csv': Entry('one.csv', 3, OLD + 0.25, 'file'),
        'sub': Entry('sub', 0, 5.0, 'dir'),
        'ln': Entry('ln', 0, 0.0, 'link'),
    }
    assert fake.calls == [('GET', 'nn1.example:9870', 'LISTSTATUS', '/b')]
    assert fake.seen[0]['query']['user.name'] == 'root'


def test_listdir_of_a_directory_with_one_entry_makes_one_call(fake):
    # HdfsCLI's list() would add a GETFILESTATUS here.
    fake.nodes['/b'] = Node('DIRECTORY')
    put(fake, '/b/only', b'x')
    assert list(make(fake).listdir('/b')) == ['only']
    assert fake.ops() == ['LISTSTATUS']


def test_listdir_absent_and_file(fake):
    put(fake, '/f', b'x')
    loc = make(fake)
    assert loc.listdir('/nowhere') is None
    with pytest.raises(webhdfs.WebHdfsError, match='is a file, not a directory'):
        loc.listdir('/f')


def test_stat(fake):
    put(fake, '/f', b'hello', OLD)
    loc = make(fake)
    assert loc.stat('/f') == Entry('f', 5, OLD, 'file')
    assert loc.stat('/nope') is None
    assert fake.ops() == ['GETFILESTATUS', 'GETFILESTATUS']


# ---------------------------------------------------------------------------------------------
# Writing: temp, commit, replace, remove


def test_write_then_commit(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    with loc.open_write('/b/.f.mnaas-tmp.1') as writer:
        for _round in range(20):
            writer.write(b'0123456789' * 1000)
        assert '/b/f' not in fake.nodes
    assert '/b/f' not in fake.nodes
    assert len(fake.nodes['/b/.f.mnaas-tmp.1'].data) == 200_000
    loc.commit('/b/.f.mnaas-tmp.1', '/b/f', OLD + 0.9)
    assert fake.nodes['/b/f'].mtime == int((OLD + 0.9) * 1000)
    assert '/b/.f.mnaas-tmp.1' not in fake.nodes
    assert [(m, op) for m, _h, op, _p in fake.calls] == [
        ('PUT', 'CREATE'), ('PUT', 'CREATE'), ('PUT', 'SETTIMES'), ('PUT', 'RENAME')]
    create_nn, create_dn = fake.seen[0]['query'], fake.seen[1]['query']
    assert create_nn['overwrite'] == 'false' and fake.calls[0][1] == 'nn1.example:9870'
    assert fake.calls[1][1] == DN and create_dn['user.name'] == 'root'
    assert fake.seen[3]['query']['destination'] == '/b/f'


def test_a_small_file_is_one_body_without_a_thread(fake, monkeypatch):
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    monkeypatch.setattr(webhdfs.threading, 'Thread', None)    # no thread may be started for it
    with loc.open_write('/b/.t') as writer:
        writer.write(b'a' * 1000)
        writer.write(bytearray(b'b' * 1000))
    assert fake.nodes['/b/.t'].data == b'a' * 1000 + b'b' * 1000
    headers = fake.seen[-1]['headers']
    assert fake.calls[-1][1] == DN and headers['Content-Length'] == '2000' and 'Transfer-Encoding' not in headers


def test_a_file_past_inline_bytes_is_streamed_through_a_bounded_queue(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    loc.queue_chunks = 1
    loc.inline_bytes = 5000
    data = os.urandom(300_000)
    with loc.open_write('/b/.t') as writer:
        for pos in range(0, len(data), 1000):
            writer.write(data[pos:pos + 1000])
    assert fake.nodes['/b/.t'].data == data
    assert fake.seen[-1]['headers'].get('Transfer-Encoding') == 'chunked'
    assert [op for _m, _h, op, _p in fake.calls] == ['CREATE', 'CREATE']


def test_an_exception_while_streaming_breaks_the_upload_off(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    loc.inline_bytes = 0
    with pytest.raises(RuntimeError):
        with loc.open_write('/b/.t') as writer:
            writer.write(b'partial')
            raise RuntimeError('source read failed')
    assert '/b/.t' not in fake.nodes        # the DataNode got a broken request, not a file


def test_the_environment_is_read_once_per_address(fake, monkeypatch):
    monkeypatch.setenv('HTTP_PROXY', 'http://proxy.example:3128')
    monkeypatch.setenv('NO_PROXY', 'dn1.example')
    looked_up = []
    real = requests.utils.get_environ_proxies
    monkeypatch.setattr(requests.utils, 'get_environ_proxies', lambda url, no_proxy=None: looked_up.append(url) or real(url, no_proxy))
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    for name in ('one', 'two', 'three'):
        with loc.open_write('/b/.%s' % name) as writer:
            writer.write(b'x')
        loc.commit('/b/.%s' % name, '/b/%s' % name, OLD)
    assert sorted(looked_up) == ['http://dn1.example:9864/', 'http://nn1.example:9870/']
    by_host = {host: seen['proxies'] for (_m, host, _op, _p), seen in zip(fake.calls, fake.seen)}
    assert by_host[DN] == {} and by_host['nn1.example:9870']['http'] == 'http://proxy.example:3128'


def test_empty_file(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    with loc.open_write('/b/.e'):
        pass
    assert fake.nodes['/b/.e'].data == b''


def test_an_exception_while_writing_a_small_file_sends_nothing(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    loc = make(fake)
    with pytest.raises(RuntimeError):
        with loc.open_write('/b/.t') as writer:
            writer.write(b'partial')
            raise RuntimeError('source read failed')
    assert '/b/.t' not in fake.nodes        # the DataNode never saw a complete request


def test_commit_never_replaces(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    put(fake, '/b/f', b'theirs')
    put(fake, '/b/.f.tmp', b'ours')
    loc = make(fake)
    with pytest.raises(FileExistsError) as info:
        loc.commit('/b/.f.tmp', '/b/f', OLD)
    assert isinstance(info.value, webhdfs.HdfsExistsError)
    assert 'webhdfs://nn1.example:9870/b/f' in str(info.value)
    assert fake.nodes['/b/f'].data == b'theirs'
    assert fake.ops()[-2:] == ['RENAME', 'GETFILESTATUS']


def test_replace_is_one_rename_with_overwrite(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    put(fake, '/b/f', b'old')
    put(fake, '/b/.f.tmp', b'new')
    loc = make(fake)
    loc.replace('/b/.f.tmp', '/b/f', OLD + 3)
    assert fake.nodes['/b/f'] == Node('FILE', b'new', int((OLD + 3) * 1000))
    assert fake.ops() == ['SETTIMES', 'RENAME']
    assert fake.seen[-1]['query']['renameoptions'] == 'OVERWRITE'


def test_remove_is_not_recursive_and_absent_is_fine(fake):
    put(fake, '/f', b'x')
    loc = make(fake)
    loc.remove('/f')
    loc.remove('/f')
    assert '/f' not in fake.nodes
    assert [s['query']['recursive'] for s in fake.seen] == ['false', 'false']
    assert [c[0] for c in fake.calls] == ['DELETE', 'DELETE']


def test_makedirs(fake):
    loc = make(fake)
    loc.makedirs('/a/b/c')
    assert fake.nodes['/a/b/c'].kind == 'DIRECTORY'
    assert fake.ops() == ['MKDIRS']


def test_flush_is_free(fake):
    loc = make(fake)
    loc.flush(['/a', '/b'])
    loc.flush_dirs(['/'])
    assert not fake.calls


def test_open_read_follows_the_redirect(fake):
    data = bytes(range(256)) * 100
    put(fake, '/f', data)
    loc = make(fake)
    with loc.open_read('/f') as reader:
        chunks = []
        while True:
            chunk = reader.read(1000)
            if not chunk:
                break
            chunks.append(chunk)
    assert b''.join(chunks) == data
    assert [(h, op) for _m, h, op, _p in fake.calls] == [('nn1.example:9870', 'OPEN'), (DN, 'OPEN')]


def test_checksum(fake):
    put(fake, '/f', b'hello\n')
    loc = make(fake)
    checksum = loc.checksum('/f')
    assert checksum == hc.parse_webhdfs({'algorithm': 'MD5-of-0MD5-of-512CRC32C',
                                         'bytes': '0000020000000000000000002b559725e23eb93541b0675b41e25ab300000000', 'length': 28})
    assert checksum.compute_like(io.BytesIO(b'hello\n')) == checksum


def test_checksum_of_an_unknown_kind_is_none(fake):
    put(fake, '/f', b'x')
    fake.faults.append(('GETFILECHECKSUM', 200, {'FileChecksum': {'algorithm': 'COMPOSITE-CRC32C', 'bytes': '12345678', 'length': 4}}))
    assert make(fake).checksum('/f') is None


# ---------------------------------------------------------------------------------------------
# Errors: clear messages


def test_403_names_the_path_and_the_user(fake):
    fake.nodes['/backup'] = Node('DIRECTORY', owner='root')
    loc = make(fake, user='alice')
    with pytest.raises(PermissionError) as info:
        with loc.open_write('/backup/.f.tmp') as writer:
            writer.write(b'x')
    message = str(info.value)
    assert 'CREATE webhdfs://nn1.example:9870/backup/.f.tmp as HDFS user alice' in message
    assert 'Permission denied: user=alice, access=WRITE, inode="/backup"' in message
    assert '\tat ' not in message and 'Some.java' not in message        # no Java stack trace
    with pytest.raises(webhdfs.HdfsPermissionError, match='MKDIRS .*/backup/x as HDFS user alice'):
        loc.makedirs('/backup/x')


def test_404(fake):
    loc = make(fake)
    with pytest.raises(FileNotFoundError, match=r'OPEN webhdfs://nn1.example:9870/nope as HDFS user root: not found: File does not exist: /nope'):
        loc.open_read('/nope')


def test_401_hints_at_kerberos(fake):
    fake.faults.append(('LISTSTATUS', 401, '<html>Authentication required</html>'))
    with pytest.raises(webhdfs.HdfsPermissionError, match='authentication failed .*auth=kerberos'):
        make(fake).listdir('/')


def test_other_errors_are_not_retried(fake):
    fake.faults.append(('LISTSTATUS', 400, {'RemoteException': {'exception': 'IllegalArgumentException', 'message': 'bad'}}))
    with pytest.raises(webhdfs.WebHdfsError, match='LISTSTATUS .* failed: HTTP 400 IllegalArgumentException: bad'):
        make(fake).listdir('/')
    assert fake.ops() == ['LISTSTATUS']


def test_errors_are_oserrors_and_backup_errors(fake):
    # OSError: the copy engine reports it for one file; BackupError: a module reports it as msg.
    fake.down = {urlsplit(NN1).netloc, urlsplit(NN2).netloc}
    with pytest.raises(OSError) as info:
        make(fake, retries=0).stat('/x')
    assert isinstance(info.value, BackupError)
    assert info.value.msg == str(info.value)


# ---------------------------------------------------------------------------------------------
# HA failover and retries


def test_fails_over_to_the_next_namenode_and_remembers_it(fake):
    fake.down = {urlsplit(NN1).netloc}
    fake.active, fake.standby = urlsplit(NN2).netloc, set()
    loc = make(fake)
    assert loc.listdir('/') == {}
    assert loc.listdir('/') == {}
    assert [(h, op) for _m, h, op, _p in fake.calls] == [
        ('nn1.example:9870', 'LISTSTATUS'), ('nn2.example:9870', 'LISTSTATUS'), ('nn2.example:9870', 'LISTSTATUS')]
    assert loc.describe('/x') == 'webhdfs://nn2.example:9870/x'
    assert loc.sleeps == []


def test_standby_makes_it_try_the_next(fake):
    fake.standby = {urlsplit(NN1).netloc}
    fake.active = urlsplit(NN2).netloc
    loc = make(fake)
    loc.makedirs('/d')
    loc.makedirs('/e')
    assert [h for _m, h, _op, _p in fake.calls] == ['nn1.example:9870', 'nn2.example:9870', 'nn2.example:9870']


def test_transient_errors_are_retried_with_backoff(fake):
    fake.faults += [
        ('LISTSTATUS', 503, 'Service Unavailable'),
        ('LISTSTATUS', 500, {'RemoteException': {'exception': 'NullPointerException', 'message': 'oops'}}),
        ('LISTSTATUS', 403, {'RemoteException': {'exception': 'RetriableException', 'message': 'NameNode still not started'}}),
    ]
    loc = make(fake, urls=[NN1], retries=3)
    assert loc.listdir('/') == {}
    assert loc.sleeps == [0.5, 1.0, 2.0]
    assert fake.ops() == ['LISTSTATUS'] * 4


def test_retries_run_out(fake):
    fake.faults += [('MKDIRS', 503, 'Service Unavailable')] * 3
    loc = make(fake, urls=[NN1], retries=2)
    with pytest.raises(webhdfs.HdfsUnavailableError, match=r'after 3 attempt\(s\); tried http://nn1.example:9870 \(HTTP 503: Service Unavailable\)'):
        loc.makedirs('/d')


def test_backoff_is_bounded(fake):
    fake.down = {urlsplit(NN1).netloc, urlsplit(NN2).netloc}
    loc = make(fake, retries=6)
    with pytest.raises(webhdfs.HdfsUnavailableError):
        loc.listdir('/')
    assert loc.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(fake.calls) == 7 * 2


def test_all_namenodes_unreachable_names_them(fake):
    fake.down = {urlsplit(NN1).netloc}
    loc = make(fake, retries=2)
    with pytest.raises(ConnectionError) as info:
        loc.listdir('/data')
    message = str(info.value)
    assert 'no NameNode could serve it after 3 attempt(s)' in message
    assert 'tried http://nn1.example:9870 (connection refused), http://nn2.example:9870 (StandbyException: ' \
           'Operation category READ is not supported in state standby)' in message
    assert info.value.details == {'urls': [NN1, NN2]}
    assert loc.sleeps == [0.5, 1.0]


def test_a_dead_datanode_is_named(fake):
    put(fake, '/f', b'x')
    fake.down = {DN}
    loc = make(fake, urls=[NN1], retries=1)
    with pytest.raises(webhdfs.HdfsUnavailableError, match=r'tried http://nn1.example:9870 \(DataNode dn1.example:9864\) \(connection refused\)'):
        loc.open_read('/f')


def test_upload_to_a_dead_datanode_fails_clearly(fake):
    fake.nodes['/b'] = Node('DIRECTORY')
    fake.down = {DN}
    loc = make(fake)
    with pytest.raises(webhdfs.WebHdfsError, match='upload to DataNode dn1.example:9864 failed: connection refused'):
        with loc.open_write('/b/.t') as writer:
            writer.write(b'x')


def test_a_small_upload_refused_by_its_datanode_is_sent_again(fake):
    """A DataNode restarted between the redirect and the upload (found by test_reliability_hadoop.py): the body, held
    in memory, is sent again to the DataNode the NameNode names then, after a backoff."""
    fake.nodes['/b'] = Node('DIRECTORY')
    fake.down = {DN}
    refuse_once = fake.send

    def send(request, **kwargs):
        try:
            return refuse_once(request, **kwargs)
        finally:
            if urlsplit(request.url).netloc == DN:
                fake.down = set()
    fake.send = send
    loc = make(fake)
    with loc.open_write('/b/.t') as writer:
        writer.write(b'payload')
    assert fake.nodes['/b/.t'].data == b'payload'
    assert fake.ops() == ['CREATE', 'CREATE', 'CREATE', 'CREATE'] and fake.calls[1][1] == DN and fake.calls[3][1] == DN
    assert loc.sleeps == [0.5]


def test_a_resent_upload_never_replaces_what_the_lost_attempt_wrote(fake):
    """The retry is a CREATE without overwrite too: a file the lost attempt created makes it fail, named."""
    fake.nodes['/b'] = Node('DIRECTORY')
    answer = fake.send

    def send(request, **kwargs):
        response = answer(request, **kwargs)
        if urlsplit(request.url).netloc == DN and len(fake.ops(DN)) == 1:
            raise requests.exceptions.ConnectionError('Connection aborted.', request=request)  # written, answer lost
        return response
    fake.send = send
    loc = make(fake)
    with pytest.raises(webhdfs.HdfsExistsError, match='already exists'):
        with loc.open_write('/b/.t') as writer:
            writer.write(b'payload')
    assert fake.nodes['/b/.t'].data == b'payload'


def test_tls_verification_is_on_by_default(fake, monkeypatch):
    monkeypatch.delenv('REQUESTS_CA_BUNDLE', raising=False)
    monkeypatch.delenv('CURL_CA_BUNDLE', raising=False)
    loc = make(fake, urls=['https://nn1.example:9871'])
    loc.makedirs('/d')
    assert fake.seen[-1]['verify'] is True
    assert loc.describe('/d') == 'swebhdfs://nn1.example:9871/d'


@pytest.mark.parametrize('kwargs, expected', [({'verify': False}, False), ({'ca_cert': '/etc/pki/hadoop-ca.pem'}, '/etc/pki/hadoop-ca.pem')])
def test_tls_verify_and_ca_cert(fake, kwargs, expected, monkeypatch):
    # Not overridden by the environment's CA bundle (requests lets it win over a session's verify).
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/etc/ssl/certs/ca-certificates.crt')
    make(fake, urls=['https://nn1.example:9871'], **kwargs).makedirs('/d')
    assert fake.seen[-1]['verify'] == expected


def test_tls_failure_is_not_retried(fake):
    def refuse(request, **_kwargs):
        raise requests.exceptions.SSLError('[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed', request=request)
    fake.send = refuse
    loc = make(fake, urls=['https://nn1.example:9871', 'https://nn2.example:9871'])
    with pytest.raises(webhdfs.WebHdfsError, match='TLS failed with https://nn1.example:9871: .*CERTIFICATE_VERIFY_FAILED.*set ca_cert'):
        loc.listdir('/')
    assert loc.sleeps == []


def test_timeout_and_user_reach_every_request(fake):
    fake.nodes['/b'] = Node('DIRECTORY', owner='svc_mnaas')
    loc = make(fake, timeout=7.5, user='svc_mnaas')
    with loc.open_write('/b/.t') as writer:
        writer.write(b'x')
    assert {s['timeout'] for s in fake.seen} == {7.5}
    assert {s['query']['user.name'] for s in fake.seen} == {'svc_mnaas'}
    assert {s['headers'].get('content-type') for s in fake.seen} == {'application/octet-stream'}


# ---------------------------------------------------------------------------------------------
# Kerberos, missing libraries, options


class FakeKerberosAuth(requests.auth.AuthBase):
    """Stands in for requests_kerberos.HTTPKerberosAuth: records its arguments, adds a Negotiate header."""

    instances: list[FakeKerberosAuth] = []

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        FakeKerberosAuth.instances.append(self)

    def __call__(self, request):
        request.headers['Authorization'] = 'Negotiate ZmFrZQ=='
        return request


@pytest.fixture
def fake_requests_kerberos(monkeypatch):
    module = types.ModuleType('requests_kerberos')
    module.HTTPKerberosAuth = FakeKerberosAuth
    module.REQUIRED, module.OPTIONAL, module.DISABLED = 1, 2, 3
    monkeypatch.setitem(sys.modules, 'requests_kerberos', module)
    monkeypatch.delitem(sys.modules, 'hdfs.ext.kerberos', raising=False)
    FakeKerberosAuth.instances = []
    return module


def test_kerberos_uses_hdfscli_kerberos_client(fake, fake_requests_kerberos):
    loc = make(fake, user=None, auth='kerberos', kerberos_principal='svc_mnaas@EXAMPLE.COM')
    assert type(loc.client).__name__ == 'KerberosClient'
    assert isinstance(loc.session.auth, FakeKerberosAuth)
    assert loc.session.auth.kwargs == {'principal': 'svc_mnaas@EXAMPLE.COM', 'mutual_authentication': fake_requests_kerberos.OPTIONAL}
    fake.nodes['/tmp'] = Node('DIRECTORY', owner='dr.who')
    loc.makedirs('/tmp/d')
    assert fake.seen[-1]['headers']['Authorization'] == 'Negotiate ZmFrZQ=='
    assert 'user.name' not in fake.seen[-1]['query']
    fake.nodes['/secure'] = Node('DIRECTORY', owner='hdfs')
    with pytest.raises(PermissionError, match='CREATE webhdfs://nn1.example:9870/secure/.x as Kerberos principal svc_mnaas@EXAMPLE.COM: Permission denied'):
        loc.open_write('/secure/.x').close()


def test_kerberos_without_principal_uses_the_ticket_cache(fake, fake_requests_kerberos):
    loc = make(fake, user=None, auth='kerberos')
    assert 'principal' not in loc.session.auth.kwargs
    assert loc.user is None
    assert loc.where('LISTSTATUS', '/d') == 'LISTSTATUS webhdfs://nn1.example:9870/d as the Kerberos principal of the ticket cache'


def test_kerberos_without_requests_kerberos(monkeypatch):
    monkeypatch.setitem(sys.modules, 'requests_kerberos', None)
    monkeypatch.delitem(sys.modules, 'hdfs.ext.kerberos', raising=False)
    with pytest.raises(BackupError) as info:
        webhdfs.from_options({'urls': [NN1], 'auth': 'kerberos'})
    assert 'requests-kerberos' in info.value.msg and 'auth=kerberos' in info.value.msg
    assert 'ImportError' in info.value.details['exception'] or 'ModuleNotFoundError' in info.value.details['exception']


def test_missing_hdfs_library(monkeypatch):
    monkeypatch.setattr(webhdfs, 'HAS_HDFS', False)
    monkeypatch.setattr(webhdfs, 'HDFS_IMPORT_ERROR', 'Traceback ...\nModuleNotFoundError: No module named hdfs')
    with pytest.raises(BackupError) as info:
        factory.open_location({'type': 'webhdfs', 'urls': [NN1]}, 'dest')
    assert 'Failed to import the required Python library (hdfs)' in info.value.msg
    assert info.value.details['exception'].endswith('No module named hdfs')


def test_from_options_through_the_factory():
    options = {name: spec.get('default') for name, spec in factory.LOCATION_SPEC.items()}
    options.update({'type': 'webhdfs', 'urls': [NN1 + '/', NN2], 'hdfs_user': 'mnaas', 'timeout': 12.0, 'retries': 5})
    loc = factory.open_location(options, 'dest')
    assert isinstance(loc, webhdfs.WebHdfsLocation)
    assert (loc.urls, loc.user, loc.timeout, loc.retries, loc.session.verify) == ([NN1, NN2], 'mnaas', 12.0, 5, True)
    assert loc.session.params['user.name'] == 'mnaas'


@pytest.mark.parametrize('options, message', [
    ({}, r'dest.urls is required with dest.type=webhdfs'),
    ({'urls': ['nn1:9870']}, r"dest.urls\[0\] must be http://host:port or https://host:port of a NameNode, got 'nn1:9870'"),
    ({'urls': [NN1, 'http://nn2:9870/webhdfs/v1']}, r'dest.urls\[1\] must be'),
    ({'urls': [NN1], 'auth': 'kerberos', 'hdfs_user': 'alice'}, r"dest.hdfs_user is for auth=simple.*'alice'"),
    ({'urls': [NN1], 'kerberos_principal': 'a@B'}, r'dest.kerberos_principal is for auth=kerberos'),
    ({'urls': [NN1], 'verify': False, 'ca_cert': '/ca.pem'}, r"dest.ca_cert '/ca.pem' is given but dest.verify is false"),
    ({'urls': [NN1], 'timeout': 0}, r'dest.timeout must be positive'),
    ({'urls': [NN1], 'retries': -1}, r'dest.retries must be 0 or more'),
])
def test_from_options_names_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        webhdfs.from_options(options, 'dest')


# ---------------------------------------------------------------------------------------------
# The copy engine with HDFS as destination


def landing(tmp_path, files: dict[str, bytes]) -> str:
    src = tmp_path / 'in'
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.utime(src / name, (OLD, OLD))
    return str(src)


def test_copy_engine_to_hdfs_and_noop_rerun(tmp_path, fake):
    src = landing(tmp_path, {'a.csv': b'a' * 10, 'b.csv': b'b' * 2000, 'e.csv': b''})
    loc = make(fake)
    transfers = [_copy.Transfer(src, '/backup/ACME', sync=True), _copy.Transfer(src, '/backup/OTHER', sync=True)]
    opts = _copy.Options(workers=3)
    outcomes = _copy.execute(_copy.plan(transfers, LocalLocation(), loc, opts), LocalLocation(), loc, opts)
    assert _copy.summarize(outcomes)['copied'] == 6
    for dest in ('/backup/ACME', '/backup/OTHER'):
        assert {n: (len(v.data), v.mtime) for p, v in fake.nodes.items() if p.startswith(dest + '/') for n in [p[len(dest) + 1:]]} == {
            'a.csv': (10, OLD * 1000), 'b.csv': (2000, OLD * 1000), 'e.csv': (0, OLD * 1000)}
    fake.calls.clear()
    again = _copy.plan(transfers, LocalLocation(), loc, opts)
    assert {a.action for a in again.actions} == {_copy.SKIP}
    assert fake.calls == [('GET', 'nn1.example:9870', 'LISTSTATUS', '/backup/ACME'), ('GET', 'nn1.example:9870', 'LISTSTATUS', '/backup/OTHER')]


def test_compare_checksum_reads_no_hdfs_bytes(tmp_path, fake):
    src = landing(tmp_path, {'same.csv': b'1,2,3\n' * 100, 'changed.csv': b'x' * 600})
    fake.nodes['/backup'] = Node('DIRECTORY')
    put(fake, '/backup/same.csv', b'1,2,3\n' * 100, OLD + 60)          # same content, other mtime
    put(fake, '/backup/changed.csv', b'y' * 600, OLD)                  # same size and mtime, other content
    loc = make(fake)
    the_plan = _copy.plan([_copy.Transfer(src, '/backup', sync=True)], LocalLocation(), loc, _copy.Options(compare='checksum'))
    decided = {a.name: (a.action, a.reason) for a in the_plan.actions}
    assert decided == {'same.csv': (_copy.SKIP, 'same content, different mtime'),
                       'changed.csv': (_copy.CONFLICT, 'destination exists with different content; left as it is')}
    assert 'OPEN' not in fake.ops()
    assert fake.ops().count('GETFILECHECKSUM') == 4            # NameNode + DataNode, per file


def test_hdfs_as_source_compares_without_downloading(tmp_path, fake):
    dest = tmp_path / 'restore'
    dest.mkdir()
    (dest / 'f.csv').write_bytes(b'abc' * 300)
    fake.nodes['/backup'] = Node('DIRECTORY')
    put(fake, '/backup/f.csv', b'abc' * 300)
    loc = make(fake)
    assert _copy.same_content(loc, '/backup/f.csv', LocalLocation(), str(dest / 'f.csv'))
    assert 'OPEN' not in fake.ops()


def test_a_conflict_appearing_during_the_copy_is_kept(tmp_path, fake):
    src = landing(tmp_path, {'a.csv': b'ours'})
    loc = make(fake)
    opts = _copy.Options()
    the_plan = _copy.plan([_copy.Transfer(src, '/backup', sync=True)], LocalLocation(), loc, opts)
    fake.nodes['/backup'] = Node('DIRECTORY')
    put(fake, '/backup/a.csv', b'theirs')
    outcomes = _copy.execute(the_plan, LocalLocation(), loc, opts)
    assert [(o.status, o.reason) for o in outcomes] == [('conflict', 'destination appeared during the copy; left as it is')]
    assert fake.nodes['/backup/a.csv'].data == b'theirs'
    assert [p for p in fake.nodes if p.startswith('/backup/.')] == []


def test_a_permission_error_fails_each_file_with_the_message(tmp_path, fake):
    src = landing(tmp_path, {'a.csv': b'1', 'b.csv': b'2'})
    fake.nodes['/backup'] = Node('DIRECTORY', owner='root')
    loc = make(fake, user='alice')
    opts = _copy.Options()
    outcomes = _copy.execute(_copy.plan([_copy.Transfer(src, '/backup', sync=True)], LocalLocation(), loc, opts), LocalLocation(), loc, opts)
    assert {o.status for o in outcomes} == {'failed'}
    assert all('HdfsPermissionError' in o.reason and 'as HDFS user alice' in o.reason and 'user=alice' in o.reason for o in outcomes)
