"""Commands on tasks by state and id: `scoter list`, `scoter revoke`, `scoter restore` (part of
the command line in scoter.cli, which registers them)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import click
from rich.table import Table

import scoter.cli as base
from scoter.cli import (
    EXIT_USAGE,
    _budgets,
    _corrupt_note,
    _name,
    _time,
    app_argument,
    cli,
    fail,
    open_app,
    shown,
)
from scoter.states import State
from scoter.storage.base import Storage, TaskInfo

SCAN_LIMIT = 10_000
"""`list --task` looks at the newest this many tasks of a state whose name contains the name,
the reasons of `info` at the oldest this many dead tasks."""


@cli.command("list")
@app_argument
@click.option(
    "--state",
    type=click.Choice([s.value for s in State]),
    default=State.QUEUED.value,
    show_default=True,
)
@click.option("--task", "task_name", default=None, help="Only tasks of this name.")
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per task, in a list.")
def list_(
    app: str, state: str, task_name: str | None, queue: str | None, limit: int, as_json: bool
) -> None:
    """List tasks in a state, oldest first (by name: of the newest 10,000 found)."""
    storage = open_app(app).storage
    tasks = find(storage, State(state), queue, task_name, limit)
    if as_json:
        click.echo(json.dumps([_as_json(t) for t in tasks], indent=1))
        return
    if not tasks:
        base.console.print(f"no {state} tasks")
        return
    table = Table(title=state)
    table.add_column("id", no_wrap=True, min_width=len(tasks[0].id))
    for column in ("task", "queue", "eta", "attempt", "e/i/c", "reason", "updated"):
        table.add_column(column)
    for t in tasks:
        table.add_row(
            shown(t.id), shown(_name(t)), shown(t.queue), _time(t.eta), str(t.attempts),
            _budgets(t), shown(t.reason or ""), _time(t.updated_at),
        )  # fmt: skip
    base.console.print(table)
    base.console.print("e/i/c: errors, interruptions and crashes so far", style="dim")
    _corrupt_note(tasks)


def find(
    storage: Storage, state: State, queue: str | None, name: str | None, limit: int
) -> list[TaskInfo]:
    """Up to `limit` tasks in `state` (of `queue`, named `name`), oldest first."""
    if name is None:
        return storage.list_tasks(state, queue=queue, limit=limit)
    found = storage.find_tasks(name, state, limit=SCAN_LIMIT)  # names that contain it
    named = [t for t in found if t.name == name and queue in (None, t.queue)]
    return sorted(named, key=lambda t: t.created_at)[:limit]


def _as_json(t: TaskInfo) -> dict[str, Any]:
    return {
        "id": t.id, "task": t.name, "queue": t.queue, "state": t.state.value,
        "priority": t.priority, "eta": t.eta, "attempts": t.attempts, "errors": t.errors,
        "interruptions": t.interruptions, "crashes": t.crashes, "reason": t.reason,
        "error": t.error, "consumer": t.consumer, "lease_expires": t.lease_expires,
        "created_at": t.created_at, "updated_at": t.updated_at, "corrupt": t.corrupt,
    }  # fmt: skip


def dead_reasons(storage: Storage) -> str:
    """`error 2, revoked 1`: the dead tasks by reason (among the oldest SCAN_LIMIT)."""
    dead = storage.list_tasks(State.DEAD, limit=SCAN_LIMIT)
    counted = Counter(t.reason or "?" for t in dead).most_common()
    text = ", ".join(f"{reason} {n}" for reason, n in counted)
    return text + (f" (of the oldest {SCAN_LIMIT:,})" if len(dead) == SCAN_LIMIT else "")


@cli.command()
@app_argument
@click.argument("ids", nargs=-1)
@click.option("--task", "task_name", default=None, help="Revoke every run of this task name.")
@click.option(
    "--until", type=click.FloatRange(min=0, min_open=True), default=None,
    help="With --task: only for this many seconds.",
)  # fmt: skip
@click.option("--once", is_flag=True, help="With --task: only its next run.")
def revoke(
    app: str, ids: tuple[str, ...], task_name: str | None, until: float | None, once: bool
) -> None:
    """Revoke tasks by id (waiting: they never run; running: asked to stop, they end
    revoked), or with --task every run of a task name not started yet."""
    the_app = open_app(app)
    if bool(ids) == (task_name is not None):
        fail("give task ids, or --task NAME (not both)", EXIT_USAGE)
    if task_name is None:
        if until is not None or once:
            fail("--until and --once go with --task", EXIT_USAGE)
        found = the_app.storage.revoke(list(ids))
        for task_id in ids:
            state = found.get(task_id)
            what = "not live: left as it is" if state is None else f"revoked ({state.value})"
            base.console.print(shown(f"{task_id}: {what}"))
        return
    try:
        the_app.revoke_all(task_name, revoke_until=until, revoke_once=once)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    which = "its next run" if once else "every run" + (f" for {until:g} s" if until else "")
    base.console.print(shown(f"{task_name}: {which} revoked"))


@cli.command()
@app_argument
@click.argument("ids", nargs=-1)
@click.option("--task", "task_name", default=None, help="Lift the revocation of a task name.")
def restore(app: str, ids: tuple[str, ...], task_name: str | None) -> None:
    """Queue revoked tasks again by id, or lift a task name's revocation (--task)."""
    the_app = open_app(app)
    if bool(ids) == (task_name is not None):
        fail("give task ids, or --task NAME (not both)", EXIT_USAGE)
    if task_name is not None:
        try:
            lifted = the_app.restore_all(task_name)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        base.console.print(
            shown(f"{task_name}: " + ("revocation lifted" if lifted else "not revoked"))
        )
        return
    count = the_app.storage.restore(list(ids))
    base.console.print(f"restored {count} task(s)")
