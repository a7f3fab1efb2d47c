"""PostgreSQL-only tasks of the integration tests, added to integration_app's app.

Run with `scoter worker postgres_app:app`. `pay` has an effect — a row in an `effects` table
next to scoter's own, written with a connection of the task's own — and marks itself done in
the same transaction, so each task's row exists exactly once, however often it runs.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from typing import Any

import psycopg
from integration_app import app, record

from scoter import LeaseLost, TaskContext

__all__ = ["app", "effects_table", "pay", "server_url"]


def server_url() -> str:
    """$SCOTER_URL without scoter's own options: what psycopg connects to."""
    parts = urllib.parse.urlsplit(os.environ["SCOTER_URL"])
    libpq = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "schema"]
    return parts._replace(query=urllib.parse.urlencode(libpq)).geturl()


def effects_table() -> str:
    parts = urllib.parse.urlsplit(os.environ["SCOTER_URL"])
    return f"{dict(urllib.parse.parse_qsl(parts.query))['schema']}.effects"


def create_effects_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"CREATE TABLE {effects_table()} (task text, attempt int, pid int)")


@app.task(context=True)
def pay(seconds: float, first_attempt_only: bool, ctx: TaskContext) -> None:
    """Sleeps (on every attempt, or on the first only), then writes its effect and completes."""
    record("started", ctx)
    if ctx.attempt == 1 or not first_attempt_only:
        time.sleep(seconds)
    try:
        with psycopg.connect(server_url(), autocommit=True) as conn, conn.transaction():
            conn.execute(
                f"INSERT INTO {effects_table()} VALUES (%s, %s, %s)",
                (ctx.task_id, ctx.attempt, os.getpid()),
            )
            ctx.complete_in(conn)
    except LeaseLost:
        record("refused", ctx)
        raise
    record("finished", ctx)
