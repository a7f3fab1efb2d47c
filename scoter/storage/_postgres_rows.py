"""PostgreSQL rows read into scoter's records."""

from __future__ import annotations

from typing import Any

from scoter.states import State
from scoter.storage._records import Fields
from scoter.storage.base import Rescued, TaskInfo


def rescued_of(row: tuple[Any, ...]) -> Rescued:
    return Rescued(row[0], row[1], State(row[2]), row[3], row[4])


def task_info(r: dict[str, Any]) -> TaskInfo:
    """The row as inspection reads it (`info_columns`): the column types hold, but times may be
    infinite, the history not a list of attempts, the progress not a pair."""
    f = Fields(r)
    return TaskInfo(
        id=r["id"], name=r["name"], queue=r["queue"], state=State(r["state"]),
        priority=r["priority"], eta=f.time("eta"), attempts=r["attempts"], errors=r["errors"],
        interruptions=r["interruptions"], crashes=r["crashes"], max_crashes=r["max_crashes"],
        consumer=r["consumer"], lease_expires=f.time("lease_expires"), result=r["result"],
        error=r["error"], reason=r["reason"], payload=r["payload"],
        created_at=f.time("created_at") or 0.0, updated_at=f.time("updated_at") or 0.0,
        history=f.history(), progress=f.progress(), suspect=r["suspect"], corrupt=f.corrupt,
    )  # fmt: skip
