"""The command line: `scoter worker | info | show | list | revoke | restore | periodic |
dead {list,retry,purge} | migrate | vacuum | demo | chaos | dashboard | check | huey-consumer`
(list, revoke and restore are in scoter.cli_tasks).

Exit codes (constants below): 0 success; 1 an unexpected internal error; 2 wrong usage;
3 a configuration error (bad URL, bad option value, a storage that refuses the credentials or
names no database it has); 4 the app could not be loaded; 5 the task asked for does not exist;
6 a worker's stop overran its deadline; 7 the storage could not be reached (or, for
`scoter check`, the worker asked about is not live and ready).
Every option of `scoter worker` can also come from the SCOTER_* variable named in its help.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from scoter import observe
from scoter.app import Scoter
from scoter.config import redact
from scoter.consumer.supervisor import EXECUTORS, EXIT_RESTART
from scoter.display import one_line, printable
from scoter.exceptions import ConfigurationError, SchemaVersionError
from scoter.loader import AppLoadError, load_app
from scoter.states import State

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_APP = 4
EXIT_NOT_FOUND = 5
EXIT_OVERRUN = 6
"""`scoter worker`: a stop outlived its drain deadline (storage unreachable) with tasks still
unsettled; see Consumer."""
EXIT_UNAVAILABLE = 7
"""The storage could not be reached: an outage, not a configuration error (a worker waits for
its storage instead); `scoter check`: also a worker asked about that is not live and ready."""

PIPED_WIDTH = 1000
"""How wide tables may grow when the output is not a terminal: whole lines, for grep and less."""

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("scoter.cli")


def terminal() -> Console:
    """A console as wide as the terminal; piped, as wide as each line needs ($COLUMNS wins)."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPED_WIDTH if piped else None)


console = terminal()


def fail(message: str, code: int) -> NoReturn:
    click.secho("error: ", fg="red", bold=True, err=True, nl=False)
    click.echo(printable(message, lines=True), err=True)
    sys.exit(code)


def shown(value: object, style: str = "", *, lines: bool = False) -> Text:
    """Stored data (a name, an id, an error) as terminal text: never read as rich markup or
    emoji codes, and its control characters shown as escapes (see scoter.display)."""
    return Text(printable(value, lines=lines), style=style)


def load(path: str) -> Scoter:
    """Load the app and open its storage object (which may not connect yet), turning failures
    into one line and an exit code."""
    try:
        app = load_app(path)
        _ = app.storage
    except AppLoadError as exc:
        fail(str(exc), EXIT_APP)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    return app


def open_app(path: str) -> Scoter:
    """Load the app and reach its storage, creating nothing (no PostgreSQL schema): exit 3
    when the storage refuses its configuration, 7 when it cannot be reached, on one line."""
    app = load(path)
    storage = app.storage
    try:
        storage.check(create=False)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except storage.transient_errors as exc:
        fail(f"cannot reach the storage {app.where}: {_why(exc)}", EXIT_UNAVAILABLE)
    return app


def _why(exc: BaseException) -> str:
    """What went wrong, on one line: the error a storage's own wrapping names, if any."""
    return one_line(exc.__cause__ or exc)


def reach(app: Scoter) -> None:
    """Reach the storage as a worker starts: exit 3 when it refuses this configuration, which
    waiting cannot mend. An outage, or a schema at another version (a deploy under way), is
    said here, with where and why, and the consumer waits for it."""
    storage = app.storage
    try:
        storage.check()
    except SchemaVersionError as exc:
        log.warning("%s; waiting for it", exc)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except storage.transient_errors as exc:
        log.warning("cannot reach the storage %s, waiting for it: %s", app.where, _why(exc))


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
    "-v",
    "--verbose",
    is_flag=True,
    envvar="SCOTER_VERBOSE",
    help="Also log when each task is received and started. $SCOTER_VERBOSE",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="SCOTER_QUIET",
    help="Log only warnings and errors. $SCOTER_QUIET",
)
@observe.options
def worker(
    app: str, workers: int, queues: tuple[str, ...], lease: float, heartbeat: float | None,
    drain_timeout: float, executor: str, prefetch: int | None, verbose: bool, quiet: bool,
    log_format: str, **serving: Any,
) -> None:  # fmt: skip
    """Run a consumer: claim tasks of APP and run them until SIGTERM or SIGINT.

    -v logs each task's events (received, started, succeeded, retrying, ...); by default
    from succeeded on.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    observe.configure_logging(level, log_format)
    the_app = load(app)
    if the_app.where.startswith("memory:"):
        log.warning("the storage is memory://, inside this worker's process: no producer in "
                    "another process can reach it; give the app a sqlite:///, redis:// or "
                    "postgresql:// URL (or $SCOTER_URL)")  # fmt: skip
    reach(the_app)
    try:
        consumer = the_app.consumer(
            queues=queues or None, workers=workers, lease=lease, heartbeat=heartbeat,
            drain_timeout=drain_timeout, executor=executor, app_path=app, prefetch=prefetch,
            on_overrun=_exit_overrun,
        )  # fmt: skip
        observe.serve(consumer, **serving)
    except (ValueError, ConfigurationError) as exc:
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


@cli.command(
    "huey-consumer",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)  # fmt: skip
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def huey_consumer(args: tuple[str, ...]) -> None:
    """Run a Huey app (scoter.huey) with huey_consumer's flags: `scoter huey-consumer
    myapp.huey -w 4 -k thread`. `scoter huey-consumer --help` lists them."""
    from scoter.huey.alias import install
    from scoter.huey.bin.huey_consumer import consumer_main

    install()  # an app that still says `from huey import ...` runs on scoter too
    consumer_main(args, prog="scoter huey-consumer")


def _exit_overrun(unsettled: int) -> None:
    """The drain deadline passed with a storage call hanging: leave now, as SIGKILL would."""
    _flush()
    os._exit(EXIT_OVERRUN if unsettled else EXIT_OK)


def _flush() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()


@cli.group()
def dead() -> None:
    """Inspect, retry or purge tasks in the dead-letter state."""


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
    storage = load(app).storage
    upgrade = getattr(storage, "migrate", None)
    if upgrade is None:
        console.print(Text.assemble(shown(redact(storage.url)), " needs no migrations"))
        return
    try:
        applied = upgrade()
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except storage.transient_errors as exc:
        fail(f"cannot reach the storage {storage.url}: {_why(exc)}", EXIT_UNAVAILABLE)
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
@app_argument
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8808,
    show_default=True,
    envvar="SCOTER_DASHBOARD_PORT",
    help="$SCOTER_DASHBOARD_PORT",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="SCOTER_DASHBOARD_HOST",
    help="Address to listen on. $SCOTER_DASHBOARD_HOST",
)
@click.option(
    "--token",
    default=None,
    envvar="SCOTER_DASHBOARD_TOKEN",
    help="Secret that allows retry and purge; without it, read-only. $SCOTER_DASHBOARD_TOKEN",
)
@click.option("--refresh", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              envvar="SCOTER_DASHBOARD_REFRESH", help="Seconds between samples and live "
              "updates. $SCOTER_DASHBOARD_REFRESH")  # fmt: skip
def dashboard(app: str, port: int, host: str, token: str | None, refresh: float) -> None:
    """Serve the web dashboard of APP: queues, throughput, consumers, running and dead tasks."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        from scoter.web import serve
    except ImportError as exc:
        fail(str(exc), EXIT_CONFIG)
    try:
        serve(open_app(app), host=host, port=port, token=token, refresh=refresh)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)


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


@cli.command()
@app_argument
@click.option("--worker", metavar="HOST:PORT", default=None,
              help="Also ask the worker serving --health-port there.")  # fmt: skip
def check(app: str, worker: str | None) -> None:
    """Exit 0 when APP's storage answers (and the worker asked about is live and ready), else
    7 with one line saying why: for scripts and container health checks."""
    from scoter.consumer.health import ask_worker, probe
    from scoter.consumer.supervisor import where

    try:
        storage = load(app).storage
    except Exception as exc:  # the storage could not even be opened
        fail(f"cannot open the storage of {app}: {exc!r}", EXIT_UNAVAILABLE)
    problem = probe(storage) or (ask_worker(worker) if worker else None)
    if problem:
        fail(problem, EXIT_UNAVAILABLE)
    said = f"ok: {where(storage)} answers"
    click.echo(printable(said + (f"; the worker at {worker} is live and ready" if worker else "")))


def main() -> None:
    try:
        cli.main(prog_name="scoter", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


# The read commands live in their own module, which adds them to `cli` when imported: here,
# once everything they share with the other commands is defined.
from scoter import cli_read, cli_tasks  # noqa: E402, F401 - list, revoke and restore too
