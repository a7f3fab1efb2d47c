"""SQLite rows to and from scoter's records: parameters of the writes, and the reads of a
row that check each value (a corrupt one is reported, never raised on)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import NoneType
from typing import Any

from scoter.states import CORRUPT, State
from scoter.storage._records import COUNTER_MAX, Fields
from scoter.storage.base import NewTask, Rescued, TaskInfo

LEASE_COLUMNS = (
    "lease_token", "id", "name", "queue", "payload", "attempts", "errors", "interruptions",
    "crashes", "checkpoint", "suspect", "priority", "seq", "max_crashes",
)  # fmt: skip
"""What a claim returns of each row."""
LEASE_TYPES = frozenset(
    (str, str, str, str, bytes, int, int, int, int, checkpoint, int, int, int, int)
    for checkpoint in (bytes, NoneType)
)
"""The types of a claimed row that needs no closer look (see `lease_problems`)."""


def enqueue_rows(tasks: Sequence[NewTask], now: float, restart: bool) -> list[dict[str, Any]]:
    """The parameters of the `enqueue` statement, one dict per task."""
    return [
        {"id": t.id, "name": t.name, "queue": t.queue, "payload": t.payload,
         "priority": t.priority, "eta": t.eta, "max_crashes": t.max_crashes, "now": now,
         "restart": restart}
        for t in tasks
    ]  # fmt: skip


def taken(rows: list[Any]) -> tuple[int, Any]:
    """How many rows a batch returned, and the last of their keys (the first column)."""
    return len(rows), max((row[0] for row in rows), default=None)


def rescued(row: tuple[Any, ...]) -> Rescued:
    fields = Fields({"id": row[0], "name": row[1], "crashes": row[3]})
    crashes = fields.integer("crashes")
    return Rescued(fields.text("id"), fields.text("name"), State(row[2]), crashes, bool(row[4]))


@contextmanager
def text_as_stored(db: sqlite3.Connection) -> Iterator[None]:
    """Read text that is not UTF-8 with surrogate escapes (`Fields` tells it apart)."""
    db.text_factory = escaped
    try:
        yield
    finally:
        db.text_factory = str


@contextmanager
def as_is() -> Iterator[None]:
    yield


def escaped(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def lease_problems(row: tuple[Any, ...]) -> list[str]:
    """What makes a claimed row unfit to run (see LEASE_COLUMNS): none for most, at the cost
    of a look at its types and counters."""
    r = row
    if (
        tuple(map(type, r)) in LEASE_TYPES
        and r[1].isascii() and r[2].isascii() and r[3].isascii()
        and 0 < r[5] <= COUNTER_MAX and 0 <= r[6] <= COUNTER_MAX
        and 0 <= r[7] <= COUNTER_MAX and 0 <= r[8] <= COUNTER_MAX
    ):  # fmt: skip
        return []
    fields = Fields(dict(zip(LEASE_COLUMNS, row, strict=True)))
    for name in ("id", "name", "queue"):
        fields.text(name)
    fields.blob("payload")
    fields.integer("attempts", 1, COUNTER_MAX)
    for name in ("errors", "interruptions", "crashes"):
        fields.counter(name)
    fields.optional_blob("checkpoint")
    for name in ("suspect", "priority", "max_crashes"):
        fields.integer(name)
    return fields.problems


def statements(script: str) -> list[str]:
    """The statements of a schema script, each ending with ';' at the end of a line."""
    return [s for s in script.split(";\n") if s.strip()]


def task_info(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> TaskInfo:
    """The row as inspection reads it, field by field: what cannot be read is marked in
    `corrupt` (a state this scoter does not know reads as dead, reason `corrupt`)."""
    f = Fields(dict(zip((d[0] for d in cursor.description), row, strict=True)))
    state = f.state()
    unknown_state = bool(f.problems)
    return TaskInfo(
        id=f.text("id"), name=f.text("name"), queue=f.text("queue"), state=state,
        priority=f.integer("priority"), eta=f.time("eta"), attempts=f.integer("attempts"),
        errors=f.integer("errors"), interruptions=f.integer("interruptions"),
        crashes=f.integer("crashes"), max_crashes=f.integer("max_crashes"),
        consumer=f.optional_text("consumer"), lease_expires=f.time("lease_expires"),
        result=f.optional_blob("result"), error=f.optional_text("error"),
        reason=CORRUPT if unknown_state else f.optional_text("reason"), payload=f.blob("payload"),
        created_at=f.time("created_at") or 0.0, updated_at=f.time("updated_at") or 0.0,
        history=f.history(), progress=f.progress(), suspect=bool(f.integer("suspect")),
        corrupt=f.corrupt,
    )  # fmt: skip
