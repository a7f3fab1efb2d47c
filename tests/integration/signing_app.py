"""The app the signing tests run in real `scoter worker` processes.

Keys come from $SCOTER_SECRET_KEYS, the serializer from $SCOTER_TEST_SERIALIZER, storage from
$SCOTER_URL. Tasks record their calls in the SQLite file named by $SCOTER_TEST_RUNS.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from scoter import Scoter, TaskContext
from scoter.config import secret_keys_from_env

app = Scoter(
    "signing",
    serializer=os.environ.get("SCOTER_TEST_SERIALIZER", "json"),
    secret_keys=secret_keys_from_env(),
)


def record(task: str, argument: str) -> None:
    with sqlite3.connect(os.environ["SCOTER_TEST_RUNS"], timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS calls (task TEXT, argument TEXT)")
        db.execute("INSERT INTO calls VALUES (?, ?)", (task, argument))


@app.task
def greet(user: str) -> str:
    record("greet", user)
    return f"hello {user}"


@app.task
def purge_user(user: str) -> None:
    record("purge_user", user)


@app.task(context=True)
def resumable(ctx: TaskContext) -> Any:
    state = ctx.checkpoint_state
    record("resumable", repr(state))
    return state
