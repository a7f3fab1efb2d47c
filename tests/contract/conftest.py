"""Backends under test. Every test of tests/contract runs once per entry of `BACKENDS`.

Adding a backend is one entry. A server-backed one reads its URL from an environment variable
and skips when it is unset, so the suite still runs locally without the server, e.g.:

    def _redis_location(tmp_path: Path) -> str:
        url = os.environ.get("SCOTER_TEST_REDIS_URL")
        if not url:
            pytest.skip("SCOTER_TEST_REDIS_URL is not set")
        return f"{url}?prefix=t{uuid.uuid4().hex}"  # anything naming a fresh, empty storage

    BACKENDS["redis"] = Backend(open=RedisStorage.from_url, locate=_redis_location)

`open` must be importable by name (a class or a module-level function, not a lambda): the
multi-process tests send it to spawned processes, each of which opens its own storage.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from scoter import local_cluster
from scoter.storage.base import Storage
from scoter.storage.memory import MemoryStorage
from scoter.storage.redis import RedisStorage
from scoter.storage.redis_cluster import RedisClusterStorage
from scoter.storage.sqlite import SQLiteStorage


@dataclass(frozen=True)
class Backend:
    """How to get a fresh storage of one backend for one test."""

    open: Callable[[str], Storage]
    """Open the storage at a location returned by `locate`."""
    locate: Callable[[Path], str]
    """A fresh, empty location (path, URL) for one test; may call pytest.skip."""
    shared: bool = True
    """Whether several processes can open one location and see the same tasks."""
    drop: Callable[[str], None] | None = None
    """Delete what a test left at its location, when that outlives the test (a server's)."""


def _open_memory(location: str) -> Storage:
    return MemoryStorage()


def _memory_location(tmp_path: Path) -> str:
    return "memory://"


def _sqlite_location(tmp_path: Path) -> str:
    return str(tmp_path / "scoter.db")


@functools.cache
def _redis_url() -> str:
    """$SCOTER_TEST_REDIS_URL or a local server; skips when it is down, fails in CI."""
    url = os.environ.get("SCOTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        return ""
    return url


def _redis_location(tmp_path: Path) -> str:
    url = _redis_url()
    if not url:
        pytest.skip("no Redis server (set SCOTER_TEST_REDIS_URL)")
    return f"{url}{'&' if '?' in url else '?'}prefix=t{uuid.uuid4().hex}"


def _redis_drop(location: str) -> None:
    storage = RedisStorage.from_url(location)
    for key in storage.client.scan_iter(f"{storage.prefix}:*", count=1000):
        storage.client.delete(key)
    storage.close()


@functools.cache
def _cluster_url() -> str:
    """A local Redis Cluster of three primaries for this session's tests, stopped at exit; ""
    when redis-server is not installed (fails in CI)."""
    problem = local_cluster.missing()
    if problem:
        if os.environ.get("CI") == "true":
            raise RuntimeError(problem)
        return ""
    directory = Path(tempfile.mkdtemp(prefix="scoter-cluster-"))
    cluster = local_cluster.LocalCluster(local_cluster.free_ports(3), directory).start()
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    atexit.register(cluster.stop)
    return cluster.url


def _cluster_location(tmp_path: Path) -> str:
    url = _cluster_url()
    if not url:
        pytest.skip(f"no Redis Cluster: {local_cluster.missing()}")
    return f"{url}?prefix=t{uuid.uuid4().hex}"


def _cluster_drop(location: str) -> None:
    prefix = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["prefix"]
    for port in local_cluster.ports_of(_cluster_url()):
        client = redis.Redis(port=port)
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


POSTGRES_URL = os.environ.get(
    "SCOTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@functools.cache
def _postgres_unreachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}"


def postgres_url() -> str:
    """The test server's URL naming a fresh schema; skips without a server, fails in CI."""
    problem = _postgres_unreachable()
    if problem and os.environ.get("CI") == "true":
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema=t{uuid.uuid4().hex[:20]}"


def drop_postgres_schema(location: str) -> None:
    import psycopg

    schema = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["schema"]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _open_postgres(location: str) -> Storage:
    from scoter.storage.postgres import PostgresStorage

    return PostgresStorage.from_url(location)


def _postgres_location(tmp_path: Path) -> str:
    return postgres_url()


BACKENDS: dict[str, Backend] = {
    "memory": Backend(open=_open_memory, locate=_memory_location, shared=False),
    "sqlite": Backend(open=SQLiteStorage, locate=_sqlite_location),
    "redis": Backend(open=RedisStorage.from_url, locate=_redis_location, drop=_redis_drop),
    "postgres": Backend(open=_open_postgres, locate=_postgres_location, drop=drop_postgres_schema),
    "cluster": Backend(
        open=RedisClusterStorage.from_url, locate=_cluster_location, drop=_cluster_drop
    ),
}


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
def location(backend: Backend, tmp_path: Path) -> Iterator[str]:
    where = backend.locate(tmp_path)
    yield where
    if backend.drop:
        backend.drop(where)


@pytest.fixture
def storage(backend: Backend, location: str) -> Iterator[Storage]:
    opened = backend.open(location)
    try:
        yield opened
    finally:
        opened.close()
