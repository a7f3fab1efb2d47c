"""The command line: `scoter worker | info | periodic | dead {list,retry,purge} | vacuum | demo`.

Exit codes (constants below): 0 success; 1 an unexpected internal error; 2 wrong usage;
3 a configuration error (bad URL, bad option value); 4 the app could not be loaded;
5 the task asked for does not exist.
Every option of `scoter worker` can also come from the SCOTER_* variable named in its help.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from scoter.app import Scoter
from scoter.config import redact
from scoter.consumer.supervisor import EXECUTORS, EXIT_RESTART
from scoter.display import LineFormatter, printable
from scoter.exceptions import ConfigurationError
from scoter.loader import AppLoadError, load_app
from scoter.periodic import slot_id
from scoter.states import State
from scoter.storage.base import Storage, TaskInfo
from scoter.storage.coordination import LimitState, LockInfo

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_APP = 4
EXIT_NOT_FOUND = 5
EXIT_OVERRUN = 6
"""`scoter worker`: a stop outlived its drain deadline (storage unreachable) with tasks still
unsettled; see Consumer."""

CORRUPT_MARK = "(corrupt)"
"""Marks a task in a table when part of its stored record could not be read."""

F = TypeVar("F", bound=Callable[..., Any])
console = Console()


def fail(message: str, code: int) -> NoReturn:
    click.secho("error: ", fg="red", bold=True, err=True, nl=False)
    click.echo(printable(message, lines=True), err=True)
    sys.exit(code)


def shown(value: object, style: str = "", *, lines: bool = False) -> Text:
    """Stored data (a name, an id, an error) as terminal text: never read as rich markup or
    emoji codes, and its control characters shown as escapes (see scoter.display)."""
    return Text(printable(value, lines=lines), style=style)


def open_app(path: str) -> Scoter:
    """Load the app and open its storage, turning failures into one line and an exit code."""
    try:
        app = load_app(path)
        _ = app.storage
    except AppLoadError as exc:
        fail(str(exc), EXIT_APP)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    return app


def app_argument(fn: F) -> F:
    return click.argument("app", metavar="APP")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scoter")
def cli() -> None:
    """scoter: a task queue that never loses a task.

    APP is `module.path:app`, the Scoter object your tasks are registered on.
    """


@cli.command()
@app_argument
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    envvar="SCOTER_WORKERS",
    help="Worker threads (tasks run at once). $SCOTER_WORKERS",
)
@click.option(
    "-Q",
    "--queue",
    "queues",
    multiple=True,
    envvar="SCOTER_QUEUES",
    help="Queue to consume; repeat for more. Default: every task's queue. "
    "$SCOTER_QUEUES (space-separated)",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    envvar="SCOTER_LEASE",
    help="Seconds a claim holds without heartbeat. $SCOTER_LEASE",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0.01),
    default=None,
    envvar="SCOTER_HEARTBEAT",
    help="Seconds between lease renewals [lease/3]. $SCOTER_HEARTBEAT",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    envvar="SCOTER_DRAIN_TIMEOUT",
    help="Seconds SIGTERM waits for running tasks. $SCOTER_DRAIN_TIMEOUT",
)
@click.option(
    "-k",
    "--executor",
    type=click.Choice(EXECUTORS),
    default="thread",
    show_default=True,
    envvar="SCOTER_EXECUTOR",
    help="thread; process (CPU-bound tasks, hard time limits); asyncio (async def tasks). "
    "$SCOTER_EXECUTOR",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    default=None,
    envvar="SCOTER_PREFETCH",
    help="Threads: tasks claimed ahead while tasks are short (<50 ms) [4 x workers]; 0: none. "
    "$SCOTER_PREFETCH",
)
@click.option(
    "-v", "--verbose", is_flag=True, envvar="SCOTER_VERBOSE", help="Log every task. $SCOTER_VERBOSE"
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="SCOTER_QUIET",
    help="Log only warnings and errors. $SCOTER_QUIET",
)
def worker(
    app: str, workers: int, queues: tuple[str, ...], lease: float, heartbeat: float | None,
    drain_timeout: float, executor: str, prefetch: int | None, verbose: bool, quiet: bool,
) -> None:  # fmt: skip
    """Run a consumer: claim tasks of APP and run them until SIGTERM or SIGINT."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    the_app = open_app(app)
    try:
        consumer = the_app.consumer(
            queues=queues or None, workers=workers, lease=lease, heartbeat=heartbeat,
            drain_timeout=drain_timeout, executor=executor, app_path=app, prefetch=prefetch,
            on_overrun=_exit_overrun,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc), EXIT_CONFIG)
    code = consumer.run()
    if code == EXIT_RESTART:
        logging.getLogger("scoter.consumer").info("restarting (SIGHUP)")
        _flush()
        os.execv(sys.executable, [sys.executable, "-m", "scoter", *sys.argv[1:]])
    if consumer.abandoned_threads:
        # Released tasks may still be running in worker threads: leave without joining them.
        _flush()
        os._exit(code)
    sys.exit(code)


def _exit_overrun(unsettled: int) -> None:
    """The drain deadline passed with a storage call hanging: leave now, as SIGKILL would."""
    _flush()
    os._exit(EXIT_OVERRUN if unsettled else EXIT_OK)


def _flush() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()


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
    _locks_table(storage.locks())
    _limits_table(storage.limit_states())


def _locks_table(locks: list[LockInfo]) -> None:
    """Who holds each lock, and until when unless renewed."""
    if not locks:
        return
    table = Table(title="locks")
    for column in ("lock", "held by", "since", "until"):
        table.add_column(column)
    for lock in locks:
        until = _time(lock.expires) if lock.expires is not None else "released by its holder"
        if lock.task_id is not None:
            until += " (renewed with its task's lease)"
        table.add_row(shown(lock.name), shown(lock.holder), _time(lock.acquired_at), until)
    console.print(table)


def _limits_table(states: list[LimitState]) -> None:
    """Each limited task: its limits, how near them it is, whether its queued tasks wait."""
    if not states:
        return
    table = Table(title="limits")
    for column in ("task", "concurrency", "rate", "queued tasks"):
        table.add_column(column)
    for s in states:
        concurrency = "" if s.limit.concurrency is None else f"{s.running}/{s.limit.concurrency}"
        table.add_row(shown(s.limit.name), concurrency, _rate(s), shown(_waiting(s) or "run"))
    console.print(table)


def _rate(state: LimitState) -> str:
    limit = state.limit
    if limit.rate is None or limit.per is None:
        return ""
    unit = {1.0: "s", 60.0: "m", 3600.0: "h"}.get(limit.per, f"{limit.per:g}s")
    return f"{state.started}/{limit.rate} per {unit}"


def _waiting(state: LimitState) -> str | None:
    """What a queued task of this name waits for, or None when it may start now."""
    if state.at_concurrency:
        return f"wait: {state.running} of {state.limit.concurrency} running (concurrency limit)"
    if state.next_start is not None:
        left = max(0.0, state.next_start - time.time())
        return f"wait: rate limit {_rate(state)} reached; the next starts in {left:.1f} s"
    return None


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
    storage = open_app(app).storage
    info = storage.get(task_id)
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
    _coordination(storage, info)
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


def _coordination(storage: Storage, info: TaskInfo) -> None:
    """The locks the task holds; for a queued task, the limit it waits for."""
    for lock in storage.locks():
        if lock.task_id == info.id:
            until = _time(lock.expires)
            console.print(Text.assemble("holds lock ", shown(lock.name), f" until {until} "
                                        "(renewed with its lease)"))  # fmt: skip
    if info.state is State.QUEUED:
        for state in storage.limit_states([info.name]):
            waiting = _waiting(state)
            if waiting:
                console.print(shown(waiting), style="yellow")


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


@cli.group()
def dead() -> None:
    """Inspect, retry or purge tasks in the dead-letter state."""


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


def _ids_or_all(ids: tuple[str, ...], all_: bool) -> list[str] | None:
    if bool(ids) == all_:
        raise click.UsageError("give task ids, or --all (not both)")
    return None if all_ else list(ids)


@dead.command("retry")
@app_argument
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every dead task.")
def dead_retry(app: str, ids: tuple[str, ...], all_: bool) -> None:
    """Queue dead tasks again, with fresh budgets."""
    wanted = _ids_or_all(ids, all_)
    count = open_app(app).storage.requeue_dead(wanted)
    console.print(f"queued {count} dead task(s) again")


@dead.command("purge")
@app_argument
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every dead task.")
def dead_purge(app: str, ids: tuple[str, ...], all_: bool) -> None:
    """Delete dead tasks for good."""
    wanted = _ids_or_all(ids, all_)
    count = open_app(app).storage.purge(State.DEAD, wanted)
    console.print(f"purged {count} dead task(s)")


@cli.command()
@app_argument
def migrate(app: str) -> None:
    """Create APP's storage schema, or upgrade it to this scoter's version (PostgreSQL)."""
    storage = open_app(app).storage
    upgrade = getattr(storage, "migrate", None)
    if upgrade is None:
        console.print(Text.assemble(shown(redact(storage.url)), " needs no migrations"))
        return
    try:
        applied = upgrade()
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    console.print(f"applied {', '.join(applied)}" if applied else "the schema is up to date")


@cli.command()
@app_argument
def vacuum(app: str) -> None:
    """Give the space of deleted tasks back to the system (SQLite): the file shrinks to its
    data, and from then on gives space back as tasks are deleted.

    It holds the database's write lock while it runs, about as long as copying the file
    takes: stop the consumers first, or they wait (their calls give up after 30 s, and are
    retried). It needs that much free disk space again while it runs.
    """
    storage = open_app(app).storage
    rebuild = getattr(storage, "vacuum", None)
    if rebuild is None:
        console.print(
            f"{storage.url} needs no vacuum: only SQLite keeps the space of deleted tasks"
        )
        return
    before, after = rebuild()
    console.print(f"{storage.url}: {before / 2**20:,.1f} MiB before, {after / 2**20:,.1f} MiB now")


@cli.command()
@click.option("--tasks", type=click.IntRange(min=10), default=300, show_default=True)
@click.option("--consumers", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True)
def demo(tasks: int, consumers: int, workers: int) -> None:
    """Show the promise: kill consumers mid-work (SIGTERM, SIGKILL) and lose nothing."""
    from scoter.demo import run_demo

    sys.exit(run_demo(tasks=tasks, consumers=consumers, workers=workers, console=console))


@cli.command()
@click.option("--url", default=None, help="Storage URL. [default: a new SQLite file in a temp dir]")
@click.option("--tasks", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--consumers", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0), default=40.0, show_default=True,
              help="How long the signals go on.")  # fmt: skip
@click.option("--executor", type=click.Choice(EXECUTORS), default="thread", show_default=True)
@click.option("--seed", type=int, default=None, help="Seed of the random choices. [default: new]")
def chaos(
    url: str | None, tasks: int, consumers: int, seconds: float, executor: str, seed: int | None
) -> None:
    """SIGTERM, SIGKILL, SIGSTOP random consumers; exit 1 on a loss or an unexplained rerun."""
    from scoter.chaos import main

    try:
        code = main(console, url=url, tasks=tasks, consumers=consumers, seconds=seconds,
                    executor=executor, seed=seed)  # fmt: skip
    except ValueError as exc:
        fail(str(exc), EXIT_CONFIG)
    sys.exit(code)


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    try:
        return dt.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):  # a corrupt record's time
        return "?"


def main() -> None:
    try:
        cli.main(prog_name="scoter", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
