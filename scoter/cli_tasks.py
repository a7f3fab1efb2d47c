"""Commands on tasks by state and id: `scoter list`, `scoter revoke`, `scoter restore` (part of
the command line in scoter.cli, which registers them)."""

from __future__ import annotations

import click
from rich.table import Table

import scoter.cli_read as read  # bound as a module: scoter.cli imports both, in turn
from scoter.cli import EXIT_USAGE, app_argument, cli, fail, open_app, shown
from scoter.states import State
from scoter.storage.base import Storage, TaskInfo

SCAN_LIMIT = 10_000
"""`list --task` looks among the newest this many tasks in the state whose name contains it."""


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_(
    app: str, state: str, task_name: str | None, queue: str | None, limit: int, as_json: bool
) -> None:
    """List tasks in a state, oldest first (by name: of the newest 10,000 found)."""
    tasks = find(open_app(app).storage, State(state), queue, task_name, limit)
    if as_json:
        read.print_json({state: [read.task_document(t) for t in tasks]})
        return
    if not tasks:
        read.console.print(f"no {state} tasks")
        return
    table = Table(title=state)
    table.add_column("id", no_wrap=True, min_width=len(tasks[0].id))
    for column in ("task", "queue", "eta", "attempt", "e/i/c", "reason", "updated"):
        table.add_column(column)
    for t in tasks:
        table.add_row(
            shown(t.id), shown(read._name(t)), shown(t.queue), read._time(t.eta), str(t.attempts),
            read._budgets(t), shown(t.reason or ""), read._time(t.updated_at),
        )  # fmt: skip
    read.console.print(table)
    read.console.print("e/i/c: errors, interruptions and crashes so far", style="dim")
    for line in read.corrupt_note(tasks):
        read.console.print(line)


def find(
    storage: Storage, state: State, queue: str | None, name: str | None, limit: int
) -> list[TaskInfo]:
    """Up to `limit` tasks in `state` (of `queue`, named `name`), oldest first."""
    if name is None:
        return storage.list_tasks(state, queue=queue, limit=limit)
    found = storage.find_tasks(name, state, limit=SCAN_LIMIT)  # names that contain it
    named = [t for t in found if t.name == name and queue in (None, t.queue)]
    return sorted(named, key=lambda t: t.created_at)[:limit]


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
            read.console.print(shown(f"{task_id}: {what}"))
        return
    try:
        the_app.revoke_all(task_name, revoke_until=until, revoke_once=once)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    which = "its next run" if once else "every run" + (f" for {until:g} s" if until else "")
    read.console.print(shown(f"{task_name}: {which} revoked"))


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
        read.console.print(
            shown(f"{task_name}: " + ("revocation lifted" if lifted else "not revoked"))
        )
        return
    count = the_app.storage.restore(list(ids))
    read.console.print(f"restored {count} task(s)")
