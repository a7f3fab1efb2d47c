"""Tasks as the dashboard's JSON API shows them."""

from __future__ import annotations

from typing import Any

from scoter.storage.base import TaskInfo
from scoter.web.markup import preview


def task_json(task: TaskInfo, *, full: bool = False) -> dict[str, Any]:
    """A task's stored record as JSON: times in seconds since the epoch; with `full`, its
    history and its message and result as text (when they are UTF-8)."""
    out: dict[str, Any] = {
        "id": task.id, "name": task.name, "queue": task.queue, "state": task.state.value,
        "priority": task.priority, "eta": task.eta, "attempts": task.attempts,
        "errors": task.errors, "interruptions": task.interruptions, "crashes": task.crashes,
        "max_crashes": task.max_crashes, "consumer": task.consumer,
        "lease_expires": task.lease_expires, "progress": task.progress, "reason": task.reason,
        "error": task.error, "created_at": task.created_at, "updated_at": task.updated_at,
        "suspect": task.suspect, "corrupt": task.corrupt,
    }  # fmt: skip
    if full:
        out["history"] = task.history
        out["payload"] = preview(task.payload)
        out["result"] = preview(task.result)
    return out
