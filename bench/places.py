"""A fresh, empty place for every measurement: a new SQLite directory, a new PostgreSQL
database (dropped afterwards), and in Redis a key prefix of its own (scoter and the counter use
it; its keys are deleted afterwards) — or, for a peer whose keys cannot be namespaced from the
command line, a flushed database."""

from __future__ import annotations

import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import settings
from bench.counter import Counter


@dataclass(frozen=True)
class Place:
    """Where one measurement's tasks and completion counter live."""

    backend: str
    url: str
    """sqlite:///dir/queue.db, the Redis URL, or the fresh database's URL."""
    counter: Counter
    prefix: str
    """This place's own namespace (Redis key prefix)."""


@contextmanager
def fresh(backend: str, root: Path, *, flush: bool = False) -> Iterator[Place]:
    """A new empty place of `backend` ("sqlite", "redis", "postgres"), removed afterwards.

    `flush`: empty the whole Redis database first (for peers with fixed key names).
    """
    prefix = f"bench{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(dir=root, prefix="sqlite-") as directory:
            db = f"sqlite:///{directory}"
            yield _open(backend, f"{db}/queue.db", f"{db}/counter.db", prefix)
    elif backend == "redis":
        with _redis(prefix, flush):
            yield _open(backend, settings.REDIS_URL, settings.REDIS_URL, prefix)
    else:
        with _database() as url:
            yield _open(backend, url, url, prefix)


def _open(backend: str, url: str, counter_url: str, prefix: str) -> Place:
    counter = Counter(counter_url, prefix)
    counter.create()
    return Place(backend, url, counter, prefix)


@contextmanager
def _redis(prefix: str, flush: bool) -> Iterator[None]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    if flush:
        client.flushdb()
    try:
        yield
    finally:
        for keys in _batches(client.scan_iter(match=f"{prefix}*", count=1000)):
            client.unlink(*keys)
        client.close()


def _batches(keys: Iterator[bytes], size: int = 1000) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _database() -> Iterator[str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = settings.POSTGRES_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urllib.parse.urlsplit(admin)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_problem(backend: str) -> str | None:
    """Why the backend's server cannot be used, or None when it answers."""
    try:
        if backend == "redis":
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
        elif backend == "postgres":
            import psycopg

            psycopg.connect(settings.POSTGRES_URL, connect_timeout=3).close()
    except Exception as exc:
        return f"{backend} server unreachable: {exc!r}"[:200]
    return None
