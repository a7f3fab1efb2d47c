"""The read commands: `scoter info | periodic | show | dead list`.

They change nothing in the storage. `scoter.cli` imports this module once the group and the
helpers they share are defined, which adds these commands to it.
"""

from __future__ import annotations

import datetime as dt
import time

import click
from rich.table import Table
from rich.text import Text

from scoter.cli import EXIT_NOT_FOUND, app_argument, cli, console, dead, fail, open_app, shown
from scoter.config import redact
from scoter.periodic import slot_id
from scoter.states import State
from scoter.storage.base import TaskInfo

CORRUPT_MARK = "(corrupt)"
"""Marks a task in a table when part of its stored record could not be read."""


@cli.command()
@app_argument
def info(app: str) -> None:
    """Counts per queue and state, and the tasks running now with their lease holders."""
    the_app = open_app(app)
    storage = the_app.storage
    counts = storage.counts()
    console.print(Text.assemble(shown(the_app.name, "bold"), " on ", shown(redact(storage.url))))
    table = Table()
    table.add_column("queue")
    for state in State:
        table.add_column(state.value, justify="right")
    for queue in sorted({q for q, _ in counts} | {the_app.default_queue}):
        table.add_row(shown(queue), *(str(counts.get((queue, s), 0)) for s in State))
    console.print(table)
    running = storage.list_tasks(State.RUNNING, limit=50)
    if running:
        held = Table(title="running")
        held.add_column("id", no_wrap=True, min_width=len(running[0].id))
        for column in ("task", "attempt", "e/i/c", "progress", "consumer", "lease expires"):
            held.add_column(column)
        for task in running:
            held.add_row(
                shown(task.id), shown(_name(task)), str(task.attempts), _budgets(task),
                _progress(task), shown(task.consumer or ""), _time(task.lease_expires),
            )  # fmt: skip
        console.print(held)
        console.print("e/i/c: errors, interruptions and crashes so far", style="dim")
        _corrupt_note(running)


@cli.command()
@app_argument
def periodic(app: str) -> None:
    """Each periodic task: its schedule, next slot, last enqueued slot and that slot's state."""
    the_app = open_app(app)
    schedules = sorted(the_app.periodic.values(), key=lambda p: p.name)
    if not schedules:
        console.print(Text.assemble(shown(the_app.name, "bold"), " has no periodic tasks"))
        return
    lasts = the_app.storage.last_slots([p.name for p in schedules])
    table = Table()
    for column in ("task", "schedule", "next slot", "last slot", "its state"):
        table.add_column(column)
    now = int(time.time())
    for p in schedules:
        last = lasts.get(p.name)
        info = None if last is None else the_app.storage.get(slot_id(p.name, last))
        state = "" if last is None else "not enqueued" if info is None else info.state.value
        table.add_row(
            shown(p.name), shown(p.schedule), _slot(p.schedule.following(now)),
            _slot(last), shown(state),
        )  # fmt: skip
    console.print(table)
    console.print("slots in UTC; a last slot not enqueued was skipped or expired", style="dim")


def _slot(slot: int | None) -> str:
    if slot is None:
        return ""
    return dt.datetime.fromtimestamp(slot, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@cli.command()
@app_argument
@click.argument("task_id")
def show(app: str, task_id: str) -> None:
    """One task: its state, budgets, and the outcome of every attempt."""
    info = open_app(app).storage.get(task_id)
    if info is None:
        fail(f"no task {task_id} (never stored, or its result expired)", EXIT_NOT_FOUND)
    console.print(
        Text.assemble(
            shown(info.name, "bold"), " ", shown(info.id), " on queue ", shown(info.queue),
            ": ", shown(info.state, "bold"),
        )
    )  # fmt: skip
    console.print(
        f"attempts {info.attempts}; errors {info.errors}, interruptions {info.interruptions}, "
        f"crashes {info.crashes} (of max {info.max_crashes})"
        + (f"; progress {_progress(info)}" if info.progress else "")
    )
    if info.reason:
        console.print(Text.assemble("dead: ", shown(info.reason)), style="red")
    if info.corrupt:
        console.print(Text.assemble("corrupt record: ", shown(info.corrupt)), style="red")
    if info.suspect:
        console.print("suspect: a consumer died while it ran beside other tasks; it runs alone")
    attempts = Table(title="attempts")
    for column in ("#", "outcome", "at", "consumer", "detail"):
        attempts.add_column(column)
    for entry in info.history:
        at = entry.get("at")
        attempts.add_row(
            shown(entry.get("attempt", "")), shown(entry.get("outcome", "")),
            _time(at if isinstance(at, float) else None), shown(entry.get("consumer") or ""),
            shown(entry.get("detail") or ""),
        )  # fmt: skip
    console.print(attempts)
    if info.error:
        console.print(shown(info.error.rstrip(), lines=True))


def _name(task: TaskInfo) -> str:
    """The task's name, marked when part of its record could not be read."""
    return f"{task.name} {CORRUPT_MARK}" if task.corrupt else task.name


def _corrupt_note(tasks: list[TaskInfo]) -> None:
    if any(task.corrupt for task in tasks):
        console.print(f"{CORRUPT_MARK}: part of the stored record could not be read; "
                      "`scoter show APP ID` says what", style="dim", markup=False)  # fmt: skip


def _budgets(task: TaskInfo) -> str:
    return f"{task.errors}/{task.interruptions}/{task.crashes}"


def _progress(task: TaskInfo) -> str:
    if not task.progress:
        return ""
    done, total = task.progress
    return f"{done}/{total}" + (f" ({100 * done // total}%)" if total else "")


@dead.command("list")
@app_argument
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def dead_list(app: str, queue: str | None, limit: int) -> None:
    """List dead tasks with their reason and last error."""
    storage = open_app(app).storage
    tasks = storage.list_tasks(State.DEAD, queue=queue, limit=limit)
    if not tasks:
        console.print("no dead tasks")
        return
    table = Table(title="dead")
    table.add_column("id", no_wrap=True, min_width=len(tasks[0].id))
    for column in ("task", "queue", "reason", "errors/interruptions/crashes", "last error"):
        table.add_column(column)
    for t in tasks:
        last = (t.error or "").strip().splitlines()[-1:] or [""]
        counters = _budgets(t)
        table.add_row(
            shown(t.id), shown(_name(t)), shown(t.queue), shown(t.reason or ""), counters,
            shown(last[0][:80]),
        )  # fmt: skip
    console.print(table)
    _corrupt_note(tasks)


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):  # a corrupt record's time
        return "?"
