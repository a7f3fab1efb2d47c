"""The read commands: `scoter info | periodic | show | dead list`.

They change nothing in the storage, not even a missing schema. Each prints tables, or with
`--json` one JSON document (ASCII, every control character escaped) for scripts. `scoter.cli`
imports this module once the group and the helpers they share are defined, which adds these
commands to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from scoter import cli_coordination as coordination
from scoter import flows_inspect
from scoter.app import Scoter
from scoter.cli import EXIT_NOT_FOUND, app_argument, cli, dead, fail, open_app, shown
from scoter.cli import console as console  # replaced by tests; cli_tasks prints with it too
from scoter.display import one_line
from scoter.periodic import slot_id
from scoter.serializers import to_json
from scoter.states import State
from scoter.storage.base import Storage, TaskInfo

CORRUPT_MARK = "(corrupt)"
"""Marks a task in a table when part of its stored record could not be read."""
RUNNING_SHOWN = 50
"""The most running tasks `scoter info` lists."""
REASONS_SCANNED = 10_000
"""`scoter info` counts the dead reasons of at most this many dead tasks, the oldest."""
LEFT_OUT = frozenset({"payload", "result"})
"""TaskInfo fields a JSON document leaves out: stored bytes (`show --json` decodes both)."""

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(fn)


def print_json(document: object) -> None:
    """`document` as JSON on stdout: ASCII, so no stored text can drive the terminal."""
    click.echo(json.dumps(document, indent=2, default=repr))


def task_document(task: TaskInfo) -> dict[str, Any]:
    fields = dataclasses.fields(task)
    document = {f.name: getattr(task, f.name) for f in fields if f.name not in LEFT_OUT}
    document["state"] = task.state.value
    return document


def plain(value: Any) -> Any:
    """A decoded value as JSON can hold it: the JSON dialect's tagged form, or its repr."""
    try:
        return to_json(value)
    except TypeError:  # a pickled object of a custom class
        return repr(value)


# -- info --------------------------------------------------------------------------------------


@cli.command()
@app_argument
@json_option
@click.option("--watch", is_flag=True, help="Refresh the view until Ctrl-C.")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
    help="Seconds between refreshes of --watch.",
)  # fmt: skip
def info(app: str, as_json: bool, watch: bool, interval: float) -> None:
    """Counts per queue and state, and the tasks running now with their lease holders."""
    if as_json and watch:
        raise click.UsageError("--watch refreshes a view for people: leave out --json")
    the_app = open_app(app)
    if as_json:
        print_json(info_document(the_app))
    elif watch:
        watch_info(the_app, interval)
    else:
        console.print(info_view(the_app))


def info_document(app: Scoter) -> dict[str, Any]:
    storage = app.storage
    counts: dict[str, dict[str, int]] = {}
    for queue in sorted({q for q, _ in storage.counts()} | {app.default_queue}):
        counts[queue] = {state.value: 0 for state in State}
    for (queue, state), n in storage.counts().items():
        counts[queue][state.value] = n
    running = storage.list_tasks(State.RUNNING, limit=RUNNING_SHOWN)
    return {
        "app": app.name, "storage": app.where, "counts": counts,
        "dead_reasons": dead_reasons(storage) if any(c["dead"] for c in counts.values()) else {},
        "running": [task_document(task) for task in running],
        **coordination.info_document(storage),
    }  # fmt: skip


def dead_reasons(storage: Storage) -> dict[str, int]:
    """The dead tasks by reason (error, crashed, expired, revoked, ...), most first; among the
    oldest REASONS_SCANNED."""
    dead = storage.list_tasks(State.DEAD, limit=REASONS_SCANNED)
    return dict(Counter(t.reason or "?" for t in dead).most_common())


def info_view(app: Scoter) -> Group:
    """What `scoter info` shows: counts per queue and state, then the running tasks."""
    storage = app.storage
    counts = storage.counts()
    table = Table()
    table.add_column("queue")
    for state in State:
        table.add_column(state.value, justify="right")
    for queue in sorted({q for q, _ in counts} | {app.default_queue}):
        table.add_row(shown(queue), *(str(counts.get((queue, s), 0)) for s in State))
    parts: list[RenderableType] = [
        Text.assemble(shown(app.name, "bold"), " on ", shown(app.where)),
        table,
    ]
    if any(state is State.DEAD for _, state in counts):
        reasons = ", ".join(f"{reason} {n}" for reason, n in dead_reasons(storage).items())
        parts.append(Text.assemble("dead by reason: ", shown(reasons)))
    running = storage.list_tasks(State.RUNNING, limit=RUNNING_SHOWN)
    if running:
        parts += [running_table(running), Text("e/i/c: errors, interruptions and crashes so far",
                                               style="dim"), *corrupt_note(running)]  # fmt: skip
    return Group(*parts, *coordination.info_parts(storage))


def running_table(running: list[TaskInfo]) -> Table:
    held = Table(title="running")
    held.add_column("id", no_wrap=True, min_width=len(running[0].id))
    for column in ("task", "attempt", "e/i/c", "progress", "consumer", "lease expires"):
        held.add_column(column)
    for task in running:
        held.add_row(
            shown(task.id), shown(_name(task)), str(task.attempts), _budgets(task),
            _progress(task), shown(task.consumer or ""), _time(task.lease_expires),
        )  # fmt: skip
    return held


def watch_info(app: Scoter, interval: float) -> None:
    """`info_view` redrawn every `interval` seconds until Ctrl-C; a storage outage is shown
    in the view and waited for."""
    with Live(console=console, auto_refresh=False, transient=False) as live:
        try:
            while True:
                live.update(watched(app, interval), refresh=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            pass


def watched(app: Scoter, interval: float) -> RenderableType:
    when = dt.datetime.now().strftime("%H:%M:%S")
    footer = Text(f"{when}, every {interval:g} s; Ctrl-C to stop", style="dim")
    try:
        return Group(info_view(app), footer)
    except app.storage.transient_errors as exc:
        error = Text(f"cannot reach the storage {app.where}: {one_line(exc)}", style="red")
        return Group(error, footer)


# -- periodic ----------------------------------------------------------------------------------


@cli.command()
@app_argument
@json_option
def periodic(app: str, as_json: bool) -> None:
    """Each periodic task: its schedule, next slot, last enqueued slot and that slot's state."""
    the_app = open_app(app)
    rows = periodic_rows(the_app)
    if as_json:
        print_json({"app": the_app.name, "periodic": rows})
    elif not rows:
        console.print(Text.assemble(shown(the_app.name, "bold"), " has no periodic tasks"))
    else:
        table = Table()
        for column in ("task", "schedule", "next slot", "last slot", "its state"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                shown(row["task"]), shown(row["schedule"]), _slot(row["next_slot"]),
                _slot(row["last_slot"]), shown(row["state"] or ""),
            )  # fmt: skip
        console.print(table)
        console.print("slots in UTC; a last slot not enqueued was skipped or expired", style="dim")


def periodic_rows(app: Scoter) -> list[dict[str, Any]]:
    schedules = sorted(app.periodic.values(), key=lambda p: p.name)
    lasts = app.storage.last_slots([p.name for p in schedules]) if schedules else {}
    now = int(time.time())
    rows = []
    for p in schedules:
        last = lasts.get(p.name)
        info = None if last is None else app.storage.get(slot_id(p.name, last))
        state = None if last is None else "not enqueued" if info is None else info.state.value
        if info is not None and info.reason:
            state = f"{state} ({info.reason})"
        rows.append({
            "task": p.name, "schedule": str(p.schedule),
            "next_slot": p.schedule.following(now), "last_slot": last, "state": state,
        })  # fmt: skip
    return rows


def _slot(slot: int | None) -> str:
    if slot is None:
        return ""
    return dt.datetime.fromtimestamp(slot, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# -- show --------------------------------------------------------------------------------------


@cli.command()
@app_argument
@click.argument("task_id")
@json_option
def show(app: str, task_id: str, as_json: bool) -> None:
    """One task: its state, budgets, arguments, its place in a pipeline or chord, every
    attempt, and its last traceback. A chord's id not stored as a task yet (its callback)
    shows the chord's countdown."""
    the_app = open_app(app)
    info = the_app.storage.get(task_id)
    if info is None:
        _show_chord(the_app, task_id, as_json)
        return
    arguments = _arguments(the_app, info)
    flow = flows_inspect.describe(the_app, info)
    coordinated = coordination.task_lines(the_app.storage, info)
    if as_json:
        document = task_document(info)
        document["coordination"] = coordinated
        if isinstance(arguments, str):
            document["arguments_error"] = arguments
        else:
            document["args"], document["kwargs"] = plain(list(arguments[0])), plain(arguments[1])
        if flow:
            document["flow"] = flow
        print_json(document)
        return
    console.print(show_view(info, arguments, flow))
    for line in coordinated:
        console.print(shown(line), style="yellow")
    if info.error:  # whole lines, which the terminal wraps: copied, they stay whole
        console.print(shown(info.error.rstrip(), lines=True), soft_wrap=True)


def _show_chord(app: Scoter, chord_id: str, as_json: bool) -> None:
    """The countdown of a chord whose callback is not stored yet; fails when there is none."""
    if app.storage.chord_info(chord_id) is None:
        fail(
            f"no task {chord_id} (never stored, or its result expired; a pipeline's next step "
            "or a chord's callback is stored once what comes before it finished)",
            EXIT_NOT_FOUND,
        )
    lines = [
        *flows_inspect.describe_chord(app, chord_id),
        "its callback, with this id, is stored with the ack of its last member",
    ]
    if as_json:
        print_json({"chord": chord_id, "flow": lines})
        return
    for line in lines:
        console.print(shown(line))


def _arguments(app: Scoter, info: TaskInfo) -> tuple[tuple[Any, ...], dict[str, Any]] | str:
    """The task's decoded arguments, or why they cannot be shown."""
    try:
        return app.decode_message(info.payload)
    except Exception as exc:  # undecodable, unsigned, or signed with another key
        return f"cannot decode them: {one_line(exc)}"


def show_view(
    info: TaskInfo,
    arguments: tuple[tuple[Any, ...], dict[str, Any]] | str,
    flow: list[str] | None = None,
) -> Group:
    """`scoter show` of a task; `flow`: its place in a flow (`flows_inspect.describe`)."""
    title = Text.assemble(
        shown(info.name, "bold"), " ", shown(info.id), " on queue ", shown(info.queue), ": ",
        shown(info.state, "bold"),
    )  # fmt: skip
    parts: list[RenderableType] = [
        title,
        *(shown(line) for line in flow or ()),
        Text(
            f"attempts {info.attempts}; errors {info.errors}, interruptions "
            f"{info.interruptions}, crashes {info.crashes} (of max {info.max_crashes})"
            + (f"; progress {_progress(info)}" if info.progress else "")
        ),
        Text.assemble("arguments: ", shown(_call(info.name, arguments))),
    ]
    if info.reason:
        parts.append(Text.assemble("dead: ", shown(info.reason), style="red"))
    if info.corrupt:
        parts.append(Text.assemble("corrupt record: ", shown(info.corrupt), style="red"))
    if info.suspect:
        parts.append(
            Text("suspect: a consumer died while it ran beside other tasks; it runs alone")
        )
    parts.append(attempts_table(info))
    return Group(*parts)


def _call(name: str, arguments: tuple[tuple[Any, ...], dict[str, Any]] | str) -> str:
    if isinstance(arguments, str):
        return arguments
    args, kwargs = arguments
    shown_args = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown_args)})"


def attempts_table(info: TaskInfo) -> Table:
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
    return attempts


# -- dead list ---------------------------------------------------------------------------------


@dead.command("list")
@app_argument
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def dead_list(app: str, queue: str | None, limit: int, as_json: bool) -> None:
    """List dead tasks with their reason and last error."""
    tasks = open_app(app).storage.list_tasks(State.DEAD, queue=queue, limit=limit)
    if as_json:
        print_json({"dead": [task_document(task) for task in tasks]})
        return
    if not tasks:
        console.print("no dead tasks")
        return
    table = Table(title="dead")
    table.add_column("id", no_wrap=True, min_width=len(tasks[0].id))
    for column in ("task", "queue", "reason", "errors/interruptions/crashes", "last error"):
        table.add_column(column)
    for t in tasks:
        last = (t.error or "").strip().splitlines()[-1:] or [""]
        table.add_row(
            shown(t.id), shown(_name(t)), shown(t.queue), shown(t.reason or ""), _budgets(t),
            shown(last[0]),
        )  # fmt: skip
    console.print(table, *corrupt_note(tasks))


# -- shared ------------------------------------------------------------------------------------


def _name(task: TaskInfo) -> str:
    """The task's name, marked when part of its record could not be read."""
    return f"{task.name} {CORRUPT_MARK}" if task.corrupt else task.name


def corrupt_note(tasks: list[TaskInfo]) -> list[Text]:
    if not any(task.corrupt for task in tasks):
        return []
    note = "part of the stored record could not be read; `scoter show APP ID` says what"
    return [Text(f"{CORRUPT_MARK}: {note}", style="dim")]


def _budgets(task: TaskInfo) -> str:
    return f"{task.errors}/{task.interruptions}/{task.crashes}"


def _progress(task: TaskInfo) -> str:
    if not task.progress:
        return ""
    done, total = task.progress
    return f"{done}/{total}" + (f" ({100 * done // total}%)" if total else "")


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):  # a corrupt record's time
        return "?"
