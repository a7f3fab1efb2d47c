"""Backends and executors for the chaos suite, and the SCOTER_LONG switch for its long runs.

Each backend is a storage URL. SQLite always runs (a file in tmp_path). Redis and PostgreSQL
run against $SCOTER_TEST_REDIS_URL / $SCOTER_TEST_POSTGRES_URL (default: a local server) in a
fresh namespace; they skip when the server is down, except in CI (CI=true), where they fail.
The Redis Cluster is three primaries the session starts on loopback ports (skipped without
redis-server).
$SCOTER_TEST_CHAOS_URLS adds any other URLs (space-separated), used as given.
Every backend runs with every executor of `scoter worker` (`-k`).
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

from scoter import local_cluster
from scoter.consumer.supervisor import EXECUTORS

REDIS_URL = os.environ.get("SCOTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "SCOTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
EXTRA_URLS = os.environ.get("SCOTER_TEST_CHAOS_URLS", "").split()
IN_CI = os.environ.get("CI") == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.slow` tests run only with SCOTER_LONG=1."""
    if os.environ.get("SCOTER_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="a long chaos run: set SCOTER_LONG=1")
    for item in items:
        if item.get_closest_marker("slow") and item.path.is_relative_to(os.path.dirname(__file__)):
            item.add_marker(skip)


@dataclass(frozen=True)
class Backend:
    """A storage URL for one chaos run, and how to clean up after it."""

    url: str
    drop: Callable[[], None] = lambda: None
    server: bool = False
    """A server backend: its runs are sized smaller."""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _with_param(url: str, key: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{key}={value}"


def _redis() -> Backend:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.ConnectionError as exc:
        _unavailable(f"no Redis server at {REDIS_URL} (set SCOTER_TEST_REDIS_URL): {exc}")
    prefix = f"chaos{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
        client.close()

    return Backend(_with_param(REDIS_URL, "prefix", prefix), drop, server=True)


def _postgres() -> Backend:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}")
    schema = f"chaos{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    return Backend(_with_param(POSTGRES_URL, "schema", schema), drop, server=True)


@functools.cache
def _cluster_url() -> str:
    """A local Redis Cluster of three primaries for this session, stopped at exit."""
    directory = Path(tempfile.mkdtemp(prefix="scoter-cluster-"))
    cluster = local_cluster.LocalCluster(local_cluster.free_ports(3), directory).start()
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    atexit.register(cluster.stop)
    return cluster.url


def _cluster() -> Backend:
    problem = local_cluster.missing()
    if problem:
        _unavailable(f"no Redis Cluster: {problem}")
    url = _cluster_url()
    prefix = f"chaos{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        import redis

        for port in local_cluster.ports_of(url):
            client = redis.Redis(port=port)
            for key in client.scan_iter(f"{prefix}:*", count=1000):
                client.delete(key)
            client.close()

    return Backend(_with_param(url, "prefix", prefix), drop, server=True)


SERVER_BACKENDS: dict[str, Callable[[], Backend]] = {
    "redis": _redis, "postgres": _postgres, "cluster": _cluster,
}  # fmt: skip
BACKEND_IDS = ["sqlite", *SERVER_BACKENDS, *(f"url{i}" for i in range(len(EXTRA_URLS)))]


@pytest.fixture(params=BACKEND_IDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    name: str = request.param
    if name == "sqlite":
        yield Backend(f"sqlite:///{tmp_path_factory.mktemp('queue') / 'chaos.db'}")
        return
    if name.startswith("url"):
        url = EXTRA_URLS[int(name[3:])]
        yield Backend(url, server=urllib.parse.urlsplit(url).scheme != "sqlite")
        return
    if name == "cluster" and os.environ.get("SCOTER_LONG") != "1":
        pytest.skip(
            "the cluster's chaos rounds run with SCOTER_LONG=1; its SIGKILL and slot "
            "migration tests always run (tests/integration/test_redis_cluster.py)"
        )
    opened = SERVER_BACKENDS[name]()
    try:
        yield opened
    finally:
        opened.drop()


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return str(request.param)
