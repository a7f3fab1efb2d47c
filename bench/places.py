"""A fresh, empty place for every measurement: a new SQLite directory, a flushed Redis
database, a new PostgreSQL database (dropped afterwards)."""

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


@contextmanager
def fresh(backend: str, root: Path) -> Iterator[Place]:
    """A new empty place of `backend` ("sqlite", "redis", "postgres"), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(dir=root, prefix="sqlite-") as directory:
            yield _open(
                backend, f"sqlite:///{directory}/queue.db", f"sqlite:///{directory}/counter.db"
            )
    elif backend == "redis":
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        yield _open(backend, settings.REDIS_URL, settings.REDIS_URL)
    else:
        with _database() as url:
            yield _open(backend, url, url)


def _open(backend: str, url: str, counter_url: str) -> Place:
    counter = Counter(counter_url)
    counter.create()
    return Place(backend, url, counter)


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
