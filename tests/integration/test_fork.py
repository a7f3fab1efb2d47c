"""Producers forked after the app opened its storage: every enqueue that returned is stored.

The parent opens the app and enqueues a task, so its storage holds connections; it forks
CHILDREN producers (os.fork), which enqueue half their tasks, wait while an unrelated process
opens the database and closes it, and enqueue the rest. Three shapes of parent:

- it stops using the storage at once (closes it, as a daemonizing producer exits). On SQLite
  that leaves the children as the only writers, holding the parent's connection but none of its
  file locks (POSIX locks belong to a process): the other process's close then checkpointed and
  deleted the WAL the children went on committing to, and their tasks were lost;
- it goes on using it (gunicorn --preload): its connections must still work after the children
  are done. On PostgreSQL children that shared the parent's pool mixed their statements on its
  sockets (DuplicatePreparedStatement, "got no result from the query") and hung;
- it has a thread calling the storage without a pause while it forks, then closes it: a fork in
  the middle of a call, unless os.fork waited for it, hung the child's first call (SQLite's
  mutexes held by a thread the child does not have).

Servers: $SCOTER_TEST_POSTGRES_URL and $SCOTER_TEST_REDIS_URL (default: the local ones), each
test in a fresh schema or key prefix; without a server the test is skipped, except in CI
(CI=true), where it fails.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from conftest import (
    POSTGRES_URL,
    REDIS_URL,
    drop_postgres_schema,
    postgres_schema_url,
    redis_prefix_url,
)
from psycopg_pool import ConnectionPool

from scoter import Message, Scoter
from scoter.storage.postgres import PostgresStorage

CHILDREN = 4
EACH = 150
WAIT_S = 30.0
"""How long the children may take, all together, before they count as hung."""
Fork = Callable[[], int]


def _fork_without_hooks() -> int:
    """fork(2) called directly, as uWSGI or a C extension forks: Python's fork hooks (those of
    os.register_at_fork) do not run, so only the storages' check of the process id sees it."""
    return int(ctypes.CDLL(None, use_errno=True).fork())


FORKS = [
    pytest.param(os.fork, id="os.fork"),
    pytest.param(_fork_without_hooks, id="fork(2)"),
]
OPEN_AND_CLOSE = "import scoter; s = scoter.Scoter('x', {url!r}).storage; s.counts(); s.close()"
"""The unrelated process: it opens the database and closes it (`scoter info` does as much)."""


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = postgres_schema_url()
    yield url
    drop_postgres_schema(url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = redis_prefix_url()
    yield url
    prefix = url.rpartition("prefix=")[2]
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.mark.parametrize("parent", ["closes", "goes on", "is busy, then closes"])
def test_forked_producers_lose_no_task(url: str, parent: str) -> None:
    _produce_in_children(Scoter("fork", url), url, parent)


def test_a_fork_that_skips_python_hooks_is_seen_by_the_process_id(url: str) -> None:
    _produce_in_children(Scoter("fork", url), url, "closes", _fork_without_hooks)


def test_children_do_not_share_a_pool_the_caller_gave(postgres_url: str) -> None:
    schema = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(postgres_url).query))["schema"]
    kwargs = {"autocommit": True}
    with ConnectionPool(POSTGRES_URL, min_size=1, max_size=2, kwargs=kwargs, open=True) as pool:
        storage = PostgresStorage(pool=pool, schema=schema)
        _produce_in_children(Scoter("fork", storage), postgres_url, "goes on")


def _produce_in_children(app: Scoter, url: str, parent: str, fork: Fork = os.fork) -> None:
    """The run the module's docstring tells; `url` is where `app` stores its tasks."""
    app.enqueue_many([Message("noop", id="parent")])
    app.storage.wait([app.default_queue], 0.01)  # the parent's LISTEN connection, file watch
    busy = _Busy(app) if parent == "is busy, then closes" else None
    halfway_r, halfway_w = os.pipe()
    go_r, go_w = os.pipe()
    deadline = time.monotonic() + WAIT_S
    pids = [_fork_producer(app, fork, child, halfway_w, go_r) for child in range(CHILDREN)]
    codes: dict[int, int] = {}
    try:
        if busy:
            busy.stop()
        if parent != "goes on":
            app.storage.close()
        assert _read(halfway_r, CHILDREN, deadline) == b"h" * CHILDREN, "a child failed or hung"
        other = [sys.executable, "-c", OPEN_AND_CLOSE.format(url=url)]
        subprocess.run(other, check=True, timeout=WAIT_S)
        os.write(go_w, b"g" * CHILDREN)
        _wait(pids, deadline, codes)
    finally:
        _kill([pid for pid in pids if pid not in codes])
        for fd in (halfway_r, halfway_w, go_r, go_w):
            os.close(fd)
    exits = [codes.get(pid, "hung") for pid in pids]
    assert exits == [0] * CHILDREN, f"children's exit codes: {exits}"
    ids = ["parent", *(_id(child, i) for child in range(CHILDREN) for i in range(EACH))]
    if parent == "goes on":  # the children left the parent's connections alone
        app.enqueue_many([Message("noop", id="parent-after")])
        app.storage.wait([app.default_queue], 0.01)
        ids.append("parent-after")
    _assert_stored(url, ids + (busy.ids if busy else []))
    app.storage.close()


class _Busy(threading.Thread):
    """A thread of the parent that enqueues and reads without a pause, so that the forks come
    in the middle of its storage calls."""

    def __init__(self, app: Scoter) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.ids: list[str] = []
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            task_id = f"busy-{len(self.ids)}"
            self.app.enqueue_many([Message("noop", id=task_id)])
            self.ids.append(task_id)
            self.app.storage.get(task_id)

    def stop(self) -> None:
        self.done.set()
        self.join(WAIT_S)
        assert not self.is_alive() and self.ids, "the busy thread hung or failed"


def _assert_stored(url: str, ids: list[str]) -> None:
    storage = Scoter("check", url).storage
    try:
        missing = [task_id for task_id in ids if storage.get(task_id) is None]
    finally:
        storage.close()
    assert not missing, f"{len(missing)} of {len(ids)} enqueued tasks are not stored: {missing[:3]}"


def _id(child: int, i: int) -> str:
    return f"child{child}-{i}"


def _fork_producer(app: Scoter, fork: Fork, child: int, halfway: int, go: int) -> int:
    """A child that enqueues EACH tasks, one call each, writing a byte to `halfway` when half
    are in and reading one from `go` before the rest; it exits 0 only if every enqueue returned."""
    pid = fork()
    if pid:
        return pid
    code = 1
    try:
        for i in range(EACH):
            if i == EACH // 2:
                os.write(halfway, b"h")
                os.read(go, 1)
            app.enqueue_many([Message("noop", id=_id(child, i))])
        app.storage.wait([app.default_queue], 0.01)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _read(fd: int, n: int, deadline: float) -> bytes:
    """Up to `n` bytes from `fd`, as many as came before `deadline`."""
    got = b""
    while len(got) < n and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        got += os.read(fd, n - len(got))
    return got


def _wait(pids: list[int], deadline: float, codes: dict[int, int]) -> None:
    """Reap the children until all have exited or `deadline` passes, keeping their exit codes."""
    while len(codes) < len(pids) and time.monotonic() < deadline:
        for pid in set(pids) - codes.keys():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.01)


def _kill(pids: list[int]) -> None:
    """Kill and reap children not reaped yet (their ids cannot have gone to another process)."""
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


CRASHED_WRITER = """
import os, signal, scoter
app = scoter.Scoter("x", {url!r})
app.enqueue_many([scoter.Message("noop", id=f"crashed-{{i}}") for i in range({n})])
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("fork", FORKS)
def test_a_child_leaves_the_commits_of_others_alone(tmp_path: Path, fork: Fork) -> None:
    """A child closes the connections it inherited (at once after os.fork, at its first call
    after a fork that skipped Python's hooks): that close must not checkpoint and delete the
    WAL, which may by then hold the commits of a process killed since the fork, while the
    child's view of the WAL index predates them."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    app = Scoter("fork", url)
    app.enqueue_many([Message("noop", id="parent")])
    go_r, go_w = os.pipe()
    pid = fork()
    if pid == 0:
        code = 1
        try:
            os.read(go_r, 1)
            app.enqueue_many([Message("noop", id="child")])
            code = 0
        finally:
            os._exit(code)
    codes: dict[int, int] = {}
    try:
        app.storage.close()  # the last connection: the WAL is checkpointed and deleted
        crash = [sys.executable, "-c", CRASHED_WRITER.format(url=url, n=50)]
        assert subprocess.run(crash, timeout=WAIT_S).returncode == -signal.SIGKILL
        os.write(go_w, b"g")
        _wait([pid], time.monotonic() + WAIT_S, codes)
    finally:
        _kill([pid] if pid not in codes else [])
        os.close(go_r)
        os.close(go_w)
    assert codes == {pid: 0}
    _assert_stored(url, ["parent", "child", *(f"crashed-{i}" for i in range(50))])
