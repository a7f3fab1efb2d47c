"""Connecting to PostgreSQL: libpq options, the pool's connections, and the server's address
as it may be shown."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from scoter.config import redact

Connection = psycopg.Connection[Any]

REFUSALS = (
    "does not exist", "password authentication failed", "no password supplied",
    "no pg_hba.conf entry", "permission denied", "SSL was required", "does not support SSL",
)  # fmt: skip
"""What libpq says when a server refuses a connection for its configuration."""
KEEPALIVES = {
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
}  # fmt: skip
"""libpq's TCP keepalives, unless the URL sets them: a server gone silent is noticed while a
connection waits."""


def configure(conn: Connection) -> None:
    """Plan each prepared query once: left to choose, PostgreSQL plans a claim afresh every
    time (as long as it takes to run it), its generic plan costed for 10 queues."""
    conn.execute("SET plan_cache_mode = force_generic_plan")


def check_connection(conn: object) -> None:
    if not isinstance(conn, psycopg.Connection):
        raise TypeError(f"expected a psycopg 3 connection (psycopg.Connection), not {conn!r}")


def pool_conninfo(pool: ConnectionPool[Any] | None) -> str:
    if pool is None:
        return ""
    conninfo = pool.conninfo
    return conninfo if isinstance(conninfo, str) else str(conninfo())


def pool_kwargs(pool: ConnectionPool[Any]) -> dict[str, Any]:
    kwargs = pool.kwargs
    return dict(kwargs() if callable(kwargs) else kwargs or {})


def display_url(conninfo: str) -> str:
    """A postgresql:// URL naming the server without any password: safe to log."""
    if "://" in conninfo:
        return redact(conninfo)
    params = conninfo_to_dict(conninfo)
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


class Unreachable(psycopg.OperationalError):
    """No connection to the server could be opened: the call sent nothing."""


def reason(exc: Exception) -> str:
    """libpq's error on one line, without psycopg's `connection failed:` in front."""
    return " ".join(str(exc).split()).removeprefix("connection failed: ")
