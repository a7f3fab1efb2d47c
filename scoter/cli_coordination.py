"""What `scoter info` and `scoter show` say of locks and limits: who holds each lock and until
when; each limited task's limits, and whether its queued tasks wait for them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from scoter.display import printable
from scoter.states import State
from scoter.storage.base import Storage, TaskInfo
from scoter.storage.coordination import LimitState, LockInfo

PERIODS = {1.0: "s", 60.0: "m", 3600.0: "h"}


def shown(value: object) -> Text:
    return Text(printable(value))


def info_parts(storage: Storage) -> list[RenderableType]:
    """The locks and limits tables of `scoter info` (none when there is nothing to show)."""
    parts: list[RenderableType] = []
    locks = storage.locks()
    if locks:
        parts.append(locks_table(locks))
    states = storage.limit_states()
    if states:
        parts.append(limits_table(states))
    return parts


def info_document(storage: Storage) -> dict[str, Any]:
    """The locks and limits of `scoter info --json`."""
    return {
        "locks": [dataclasses.asdict(lock) for lock in storage.locks()],
        "limits": [
            {**dataclasses.asdict(s.limit), "running": s.running, "started": s.started,
             "next_start": s.next_start, "waiting": waiting(s)}
            for s in storage.limit_states()
        ],
    }  # fmt: skip


def locks_table(locks: list[LockInfo]) -> Table:
    table = Table(title="locks")
    for column in ("lock", "held by", "since", "until"):
        table.add_column(column)
    for lock in locks:
        until = _time(lock.expires) if lock.expires is not None else "released by its holder"
        if lock.task_id is not None:
            until += " (renewed with its task's lease)"
        table.add_row(shown(lock.name), shown(lock.holder), _time(lock.acquired_at), until)
    return table


def limits_table(states: list[LimitState]) -> Table:
    table = Table(title="limits")
    for column in ("task", "concurrency", "rate", "queued tasks"):
        table.add_column(column)
    for s in states:
        concurrency = "" if s.limit.concurrency is None else f"{s.running}/{s.limit.concurrency}"
        table.add_row(shown(s.limit.name), concurrency, rate(s), shown(waiting(s) or "run"))
    return table


def rate(state: LimitState) -> str:
    limit = state.limit
    if limit.rate is None or limit.per is None:
        return ""
    unit = PERIODS.get(limit.per, f"{limit.per:g}s")
    return f"{state.started}/{limit.rate} per {unit}"


def waiting(state: LimitState) -> str | None:
    """What a queued task of this name waits for, or None when it may start now."""
    if state.at_concurrency:
        return f"wait: {state.running} of {state.limit.concurrency} running (concurrency limit)"
    if state.next_start is not None:
        left = max(0.0, state.next_start - time.time())
        return f"wait: rate limit {rate(state)} reached; the next starts in {left:.1f} s"
    return None


def task_lines(storage: Storage, info: TaskInfo) -> list[str]:
    """For `scoter show`: the locks the task holds; for a queued task, the limit it waits for."""
    lines = [
        f"holds lock {lock.name} until {_time(lock.expires)} (renewed with its lease)"
        for lock in storage.locks()
        if lock.task_id == info.id
    ]
    if info.state is State.QUEUED:
        lines += [w for s in storage.limit_states([info.name]) if (w := waiting(s))]
    return lines


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"
