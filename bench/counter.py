"""The side effect every benchmark task has: it records its completion in a counter.

Completion is counted by this side effect, never by logs or result stores. A counter lives in
Redis (the completion's timestamp pushed on a list: one command, so that the instrument costs
each system as little as it can), or in a SQL table with one row per completion (SQLite in a
file of its own, so it never shares the queue's write lock; PostgreSQL in the measurement's
database).

A task pushes its timestamp with one `RPUSH` written straight to a socket of its thread's own
and waits for the reply: a no-op task's whole cost is mostly the instrument's, and redis-py's
per-command client work (pool checks, a poll of the socket, argument checks) would be most of
it, for every system alike, and squeeze the differences between the queues.

An `async def` task (scoter's asyncio executor, arq) records it with `aincr()`: on Redis the
same `RPUSH` on an asyncio connection of its own while it awaits the reply (connections are
pooled per process, one for each task awaiting one), so that no event loop waits on a socket
and both asyncio systems pay the same instrument; in SQLite the same insert as a sync task's
(a local file: the loop waits for it, as long for every system).

Timestamps are `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC: one clock for every
process of the machine, so the harness can compare them with its own readings.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from bench.settings import ENV_COUNTER, ENV_PREFIX

REDIS_KEY = "done"
"""After the measurement's prefix: `PREFIX:done`, a list of completion times in push order."""
SQL_TABLE = "CREATE TABLE IF NOT EXISTS bench_done (ts DOUBLE PRECISION NOT NULL)"
SQL_INSERT = "INSERT INTO bench_done (ts) VALUES ({})"
SQL_READ = "SELECT count(*), min(ts), max(ts) FROM bench_done"


@dataclass(frozen=True)
class Completions:
    """How many tasks completed, and when the first and the last did (perf_counter)."""

    count: int
    first: float | None
    last: float | None


class Counter:
    """One counter, named by a URL (and a key prefix in Redis); a connection per thread.

    In SQLite the threads of a process take turns on the insert, so that they wait on a lock
    rather than in SQLite's busy handler, which sleeps for milliseconds: the instrument must
    not be what limits a consumer.
    """

    def __init__(self, url: str, prefix: str = "bench") -> None:
        self.url = url
        self.prefix = prefix
        scheme = url.split(":", 1)[0]
        self.kind = "redis" if scheme == "rediss" else scheme
        self.key = f"{prefix}:{REDIS_KEY}"
        self._local = threading.local()
        self._insert_lock = threading.Lock()

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _connect(self) -> Any:
        if self.kind == "redis":
            import redis

            return redis.Redis.from_url(self.url)
        if self.kind == "sqlite":
            db = sqlite3.connect(self.url[len("sqlite:///") :], timeout=60, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            return db
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def create(self) -> None:
        """Make the counter exist, at zero."""
        if self.kind != "redis":
            self._conn().execute(SQL_TABLE)

    def incr(self) -> None:
        """Record one completion, now."""
        now = time.perf_counter()
        if self.kind == "redis":
            self._pusher().push(repr(now).encode())
            return
        conn = self._conn()
        if self.kind == "sqlite":
            with self._insert_lock:
                conn.execute(SQL_INSERT.format("?"), (now,))
        else:
            conn.execute(SQL_INSERT.format("%s"), (now,))

    def _pusher(self) -> RedisPusher:
        pusher = getattr(self._local, "pusher", None)
        if pusher is None:
            pusher = self._local.pusher = RedisPusher(self.url, self.key)
        return pusher

    def read(self) -> Completions:
        conn = self._conn()
        if self.kind == "redis":
            pipe = conn.pipeline(transaction=False)
            count, first, last = (
                pipe.llen(self.key).lindex(self.key, 0).lindex(self.key, -1).execute()
            )
            return Completions(int(count), _float(first), _float(last))
        count, first, last = conn.execute(SQL_READ).fetchone()
        return Completions(int(count), first, last)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        pusher = getattr(self._local, "pusher", None)
        if pusher is not None:
            pusher.close()
            self._local.pusher = None


class RedisPusher:
    """`RPUSH key value` on a connection of its own, in Redis's wire protocol (RESP)."""

    def __init__(self, url: str, key: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"the counter speaks plain TCP: use a redis:// URL, not {url}")
        self._sock = socket.create_connection((parts.hostname or "localhost", parts.port or 6379))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.password:
            self._call(_resp(b"AUTH", *_words(parts.username, parts.password)))
        db = parts.path.strip("/")
        if db and db != "0":
            self._call(_resp(b"SELECT", db.encode()))
        self._key = key.encode()
        self._head = b"*3\r\n" + _bulk(b"RPUSH") + _bulk(self._key)

    def push(self, value: bytes) -> None:
        self._call(self._head + _bulk(value))

    def drop(self) -> None:
        """Delete the key."""
        self._call(_resp(b"DEL", self._key))

    def _call(self, command: bytes) -> bytes:
        self._sock.sendall(command)
        reply = self._sock.recv(256)
        while not reply.endswith(b"\r\n"):
            more = self._sock.recv(256)
            if not more:
                raise ConnectionError("the Redis server closed the counter's connection")
            reply += more
        if reply.startswith(b"-"):
            raise RuntimeError(f"the counter's Redis command failed: {reply.decode().strip()}")
        return reply

    def close(self) -> None:
        self._sock.close()


class AsyncRedisPusher:
    """`RPUSH key value` in RESP on an asyncio connection of its own (one awaiter at a time)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str):
        self._reader = reader
        self._writer = writer
        self._head = b"*3\r\n" + _bulk(b"RPUSH") + _bulk(key.encode())

    @classmethod
    async def connect(cls, url: str, key: str) -> AsyncRedisPusher:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"the counter speaks plain TCP: use a redis:// URL, not {url}")
        host, port = parts.hostname or "localhost", parts.port or 6379
        pusher = cls(*await asyncio.open_connection(host, port), key)
        pusher._writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        if parts.password:
            await pusher._call(_resp(b"AUTH", *_words(parts.username, parts.password)))
        db = parts.path.strip("/")
        if db and db != "0":
            await pusher._call(_resp(b"SELECT", db.encode()))
        return pusher

    async def push(self, value: bytes) -> None:
        await self._call(self._head + _bulk(value))

    async def _call(self, command: bytes) -> None:
        self._writer.write(command)
        reply = await self._reader.readuntil(b"\r\n")
        if reply.startswith(b"-"):
            raise RuntimeError(f"the counter's Redis command failed: {reply.decode().strip()}")

    def close(self) -> None:
        self._writer.close()


def _resp(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(map(_bulk, words))


def _bulk(word: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(word), word)


def _words(username: str | None, password: str) -> list[bytes]:
    """AUTH's arguments from a URL's user info (percent-encoded)."""
    words = (username, password) if username else (password,)
    return [urllib.parse.unquote(w).encode() for w in words]


def _float(value: bytes | None) -> float | None:
    return None if value is None else float(value)


_task_counter: Counter | None = None


def incr() -> None:
    """What a benchmark task does: record its completion in $BENCH_COUNTER."""
    global _task_counter
    if _task_counter is None:
        _task_counter = Counter(os.environ[ENV_COUNTER], os.environ.get(ENV_PREFIX, "bench"))
    _task_counter.incr()


_idle_pushers: list[AsyncRedisPusher] = []


async def aincr() -> None:
    """What an `async def` benchmark task does: `incr()` without waiting on Redis in the loop.
    The pushers belong to the one event loop of the process that runs the tasks."""
    url = os.environ[ENV_COUNTER]
    if not url.startswith("redis"):
        incr()
        return
    now = time.perf_counter()
    if _idle_pushers:
        pusher = _idle_pushers.pop()
    else:
        key = f"{os.environ.get(ENV_PREFIX, 'bench')}:{REDIS_KEY}"
        pusher = await AsyncRedisPusher.connect(url, key)
    await pusher.push(repr(now).encode())
    _idle_pushers.append(pusher)
