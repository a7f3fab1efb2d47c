"""The Redis storage's connections: the options its clients open them with, and a thread's own
connection, to which it writes commands packed in one write."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,
)
from redis.retry import Retry

from scoter.storage.base import CALL_TIMEOUT_S, CONNECT_TIMEOUT_S

try:
    import hiredis

    HIREDIS = True
except ImportError:  # redis-py without its hiredis extra packs commands in Python
    HIREDIS = False

REFUSED = (AuthenticationError, AuthenticationWrongNumberOfArgsError, NoPermissionError)
"""Errors by which the server refuses this client's credentials or rights."""


class Connection(Protocol):
    """What `RedisStorage` uses of a redis-py connection (whose methods carry no types)."""

    def send_packed_command(self, command: list[bytes]) -> None: ...

    def pack_commands(self, commands: Sequence[tuple[Any, ...]]) -> list[bytes]: ...

    def read_response(self) -> Any: ...

    def disconnect(self) -> None: ...


class Held:
    """A thread's own connection, back to the pool when the thread ends or the storage closes."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        conn = pool.get_connection()
        self.conn = cast(Connection, conn)
        self.pid = os.getpid()
        self.release = weakref.finalize(self, pool.release, conn)
        packer = type(getattr(conn, "_command_packer", None)).__name__
        self.hiredis = HIREDIS and packer == "HiredisRespSerializer"
        """Whether the connection packs commands with hiredis: then so can `send`, without
        redis-py's checks of each argument (a tenth of a bulk enqueue's client time)."""

    def send(self, *commands: tuple[Any, ...]) -> None:
        """Send the commands in one write; their replies are read in order."""
        if self.hiredis:
            self.conn.send_packed_command([b"".join(map(hiredis.pack_command, commands))])
        else:
            self.conn.send_packed_command(self.conn.pack_commands(commands))


def error_of(read: Callable[[], Any]) -> redis.ResponseError | None:
    """The error reply `read()` raised, or None: the reply after it must still be read."""
    try:
        read()
    except redis.ResponseError as exc:
        return exc
    return None


def client_options() -> dict[str, Any]:
    """Options of the clients this storage builds; options in a URL take precedence."""
    return {
        "retry": retry_policy(),
        "socket_timeout": CALL_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
    }


def retry_policy() -> Retry:
    """A few quick retries on a fresh connection: enough to get past connections a server
    restart left dead in the pool, short enough that the consumer's own backoff takes over.
    A call that timed out is not retried: its deadline is the caller's."""
    return Retry(ExponentialBackoff(cap=0.1, base=0.01), 3, (redis.ConnectionError,))


def describe(options: dict[str, Any], prefix: str) -> str:
    """A URL naming the server a client given without one talks to."""
    where = options.get("path") or f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
    return f"redis://{where}/{options.get('db', 0)}?prefix={prefix}"
