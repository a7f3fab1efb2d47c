"""`scoter demo`: SIGTERM one consumer and SIGKILL another mid-work, and lose nothing.

The consumers are real `python -m scoter worker scoter.demo:app` processes sharing one SQLite
file in a temporary directory. Each task, once it has run to completion, appends a row to a
second SQLite file (runs.db) that scoter knows nothing about, so the demo can count, on its
own, how many times each task completed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scoter.app import Scoter
from scoter.config import ENV_URL
from scoter.context import TaskContext
from scoter.states import State

ENV_RUNS = "SCOTER_DEMO_RUNS"
"""Where `record_run` writes: the path of runs.db, set by `run_demo` for its consumers."""

LEASE_S = 3.0
DRAIN_TIMEOUT_S = 2.0
POLL_S = 0.2
OVERALL_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = DRAIN_TIMEOUT_S + 10.0
"""How long the final SIGTERM waits for the consumers before it SIGKILLs them."""
SIGTERM_AT = 0.20
SIGKILL_AT = 0.45
PAUSE_RANGE_S = (0.05, 0.3)

app = Scoter("demo")
"""The consumers' app; its storage URL comes from $SCOTER_URL, which `run_demo` sets."""


@app.task(context=True)
def sleep_and_record(n: int, ctx: TaskContext) -> int:
    """Work for 20-150 ms (the same for the same n), then record that this run completed."""
    time.sleep(random.Random(n).uniform(*PAUSE_RANGE_S))
    record_run(ctx.task_id)
    return n


def record_run(task_id: str) -> None:
    """Append (task id, pid, time) to runs.db, one connection per call."""
    with contextlib.closing(sqlite3.connect(os.environ[ENV_RUNS], timeout=30.0)) as db, db:
        db.execute("INSERT INTO runs VALUES (?, ?, ?)", (task_id, os.getpid(), time.time()))


def create_runs_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE runs (task_id TEXT NOT NULL, pid INTEGER, at REAL)")


def count_run_twice(path: Path, killed_pid: int) -> tuple[int, int]:
    """(tasks with two or more completion rows, how many of them the killed pid completed)."""
    query = "SELECT SUM(pid = ?) > 0 FROM runs GROUP BY task_id HAVING COUNT(*) >= 2"
    with contextlib.closing(sqlite3.connect(path, timeout=30.0)) as db:
        rows = db.execute(query, (killed_pid,)).fetchall()
    return len(rows), sum(1 for (by_killed,) in rows if by_killed)


# -- the consumer processes --------------------------------------------------------------------


@dataclass
class ConsumerProcess:
    """One `scoter worker` child, and what happened to it."""

    number: int
    process: subprocess.Popen[bytes]
    signalled_at: float | None = None
    exit_code: int | None = None
    exit_after: float | None = None
    """Seconds from the signal it was sent to its exit."""
    held: int = 0
    """Tasks it was running when it was SIGKILLed."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def __str__(self) -> str:
        return f"consumer {self.number} (pid {self.pid})"


class Fleet:
    """Starts, signals and stops the consumer processes; every child ends with the fleet."""

    def __init__(self, workdir: Path, env: dict[str, str], workers: int) -> None:
        self.workdir = workdir
        self.env = env
        self.workers = workers
        self.members: list[ConsumerProcess] = []
        self._watchers: list[threading.Thread] = []

    def start(self) -> ConsumerProcess:
        number = len(self.members) + 1
        command = [
            sys.executable, "-m", "scoter", "worker", "scoter.demo:app", "-w", str(self.workers),
            "--lease", str(LEASE_S), "--drain-timeout", str(DRAIN_TIMEOUT_S), "-q",
        ]  # fmt: skip
        with (self.workdir / f"consumer-{number}.log").open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env,
            )  # fmt: skip
        member = ConsumerProcess(number, process)
        self.members.append(member)
        return member

    def terminate(self, member: ConsumerProcess) -> None:
        """SIGTERM, timing the exit in a thread so the caller goes on."""
        member.signalled_at = time.monotonic()
        member.process.send_signal(signal.SIGTERM)
        watcher = threading.Thread(target=self._await_exit, args=(member,), daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    def kill(self, member: ConsumerProcess) -> None:
        member.signalled_at = time.monotonic()
        member.process.kill()
        self._await_exit(member)

    @staticmethod
    def _await_exit(member: ConsumerProcess) -> None:
        member.exit_code = member.process.wait()
        assert member.signalled_at is not None
        member.exit_after = time.monotonic() - member.signalled_at

    def stop(self) -> None:
        """SIGTERM every consumer still running and wait; SIGKILL any that outlive the drain."""
        for member in self.members:
            if member.signalled_at is None and member.process.poll() is None:
                self.terminate(member)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for watcher in self._watchers:
            watcher.join(max(0.0, deadline - time.monotonic()))
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL whatever still runs (a last resort, also on Ctrl-C or an error)."""
        for member in self.members:
            if member.process.poll() is None:
                member.process.kill()
            member.process.wait()
        for watcher in self._watchers:
            watcher.join()


# -- the demo ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    enqueued: int
    done: int
    dead: int
    lost: int
    ran_twice: int
    ran_twice_after_kill: int
    """Of those, how many the SIGKILL'd consumer had completed before it died."""
    seconds: float


class Demo:
    """One run: enqueue, disrupt the consumers while they work, then count."""

    def __init__(self, workdir: Path, tasks: int, consumers: int, workers: int, console: Console):
        self.workdir = workdir
        self.total = tasks
        self.consumers = consumers
        self.console = console
        self.runs_path = workdir / "runs.db"
        url = f"sqlite:///{workdir / 'demo.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCOTER_")}
        env.update({ENV_URL: url, ENV_RUNS: str(self.runs_path)})
        self.fleet = Fleet(workdir, env, workers)
        self.producer = Scoter("demo", url)
        self.task = self.producer.task(context=True, name=sleep_and_record.name)(
            sleep_and_record.fn
        )
        self.ids: list[str] = []
        self.started = time.monotonic()
        self.terminated: ConsumerProcess | None = None
        self.killed: ConsumerProcess | None = None

    def run(self) -> Outcome:
        create_runs_db(self.runs_path)
        self.ids = [result.id for result in self.task.map([i] for i in range(self.total))]
        self.started = time.monotonic()
        self.say(f"enqueued {self.total} tasks; starting {self.consumers} consumers")
        try:
            for _ in range(self.consumers):
                self.fleet.start()
            self.watch()
            self.say("stopping the remaining consumers (SIGTERM)")
            self.fleet.stop()
        finally:
            self.fleet.kill_all()
        outcome = self.count()
        self.producer.storage.close()
        return outcome

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/dim]  {message}")

    def watch(self) -> None:
        """Show progress until every task is done or dead, disrupting consumers on the way."""
        columns = (
            TextColumn("tasks done"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        )  # fmt: skip
        deadline = self.started + OVERALL_TIMEOUT_S
        with Progress(*columns, console=self.console, transient=False) as progress:
            bar = progress.add_task("tasks", total=self.total)
            while time.monotonic() < deadline:
                done, dead = self.settled()
                progress.update(bar, completed=done + dead)
                self.disrupt(done + dead)
                if done + dead >= self.total:
                    return
                time.sleep(POLL_S)
        self.say(f"[red]gave up waiting after {OVERALL_TIMEOUT_S:.0f} s[/red]")

    def settled(self) -> tuple[int, int]:
        """(done, dead) counts, over every queue."""
        counts = self.producer.storage.counts()
        done = sum(n for (_, state), n in counts.items() if state is State.DONE)
        dead = sum(n for (_, state), n in counts.items() if state is State.DEAD)
        return done, dead

    def disrupt(self, finished: int) -> None:
        """Past each threshold, signal the consumer as soon as it has tasks in hand."""
        first, second = self.fleet.members[0], self.fleet.members[1]
        if self.terminated is None and finished >= SIGTERM_AT * self.total and self.busy(first):
            self.sigterm(first)
        if self.killed is None and finished >= SIGKILL_AT * self.total and self.busy(second):
            self.sigkill(second)

    def sigterm(self, member: ConsumerProcess) -> None:
        self.terminated = member
        self.fleet.terminate(member)
        self.say(f"[yellow]SIGTERM[/yellow] → {member}: it drains and hands off the rest")
        self.replace()

    def sigkill(self, member: ConsumerProcess) -> None:
        self.killed = member
        self.fleet.kill(member)
        member.held = self.held_by(member)
        self.say(
            f"[red]SIGKILL[/red] → {member}, running {member.held} task(s): they come back "
            f"when their {LEASE_S:.0f} s lease expires"
        )
        self.replace()

    def busy(self, member: ConsumerProcess) -> bool:
        return member.signalled_at is None and self.held_by(member) > 0

    def held_by(self, member: ConsumerProcess) -> int:
        """Tasks still leased to this consumer (its consumer id is host:pid:suffix)."""
        running = self.producer.storage.list_tasks(State.RUNNING, limit=self.total)
        return sum(1 for t in running if f":{member.pid}:" in (t.consumer or ""))

    def replace(self) -> None:
        member = self.fleet.start()
        self.say(f"started {member} to replace it")

    def count(self) -> Outcome:
        storage = self.producer.storage
        states = [info.state if info else None for info in map(storage.get, self.ids)]
        done = states.count(State.DONE)
        dead = states.count(State.DEAD)
        killed_pid = self.killed.pid if self.killed else -1
        twice, after_kill = count_run_twice(self.runs_path, killed_pid)
        return Outcome(
            enqueued=len(self.ids), done=done, dead=dead, lost=len(self.ids) - done - dead,
            ran_twice=twice, ran_twice_after_kill=after_kill,
            seconds=time.monotonic() - self.started,
        )  # fmt: skip


# -- the report --------------------------------------------------------------------------------


def sigterm_text(member: ConsumerProcess | None) -> str:
    if member is None:
        return "not sent (finished first)"
    if member.exit_after is None:
        return f"{member}: still running"
    return f"{member}: exit code {member.exit_code}, drained in {member.exit_after:.2f} s"


def sigkill_text(member: ConsumerProcess | None) -> str:
    if member is None:
        return "not sent (finished first)"
    return f"{member}: killed while it ran {member.held} task(s)"


def ran_twice_text(outcome: Outcome) -> str:
    twice, after_kill = outcome.ran_twice, outcome.ran_twice_after_kill
    if twice == after_kill:
        return f"{twice}" + (" (each first completed by the SIGKILL'd consumer)" if twice else "")
    return f"[bold red]{twice}[/bold red] ({twice - after_kill} not completed by it)"


def report(demo: Demo, outcome: Outcome) -> Table:
    def number(n: int, bad: bool = False) -> str:
        return f"[bold red]{n}[/bold red]" if bad else str(n)

    table = Table(title="scoter demo", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("enqueued", number(outcome.enqueued))
    table.add_row("succeeded", number(outcome.done))
    table.add_row("dead", number(outcome.dead, outcome.dead > 0))
    table.add_row("lost", number(outcome.lost, outcome.lost > 0))
    table.add_row("ran twice", ran_twice_text(outcome))
    table.add_row("SIGTERM'd", sigterm_text(demo.terminated))
    table.add_row("SIGKILL'd", sigkill_text(demo.killed))
    table.add_row("total time", f"{outcome.seconds:.1f} s")
    return table


DUPLICATES_NOTE = (
    "[dim]A task can run twice only after the SIGKILL: it had finished, but its consumer died "
    "before storing the ack, so scoter ran it again once its {lease:.0f} s lease expired. That "
    "is at-least-once delivery: no second run starts while the first holder's lease lives, so "
    "any overlap is bounded by the lease. The SIGTERM causes none: that consumer finishes its "
    "tasks, or hands them back unfinished, before it exits.[/dim]"
)


def verdict(demo: Demo, outcome: Outcome) -> tuple[bool, str]:
    """(success, one line) for the end of the run."""
    term = demo.terminated
    if outcome.lost:
        return False, f"[bold red]{outcome.lost} task(s) lost[/bold red]"
    if term is not None and term.exit_code != 0:
        return False, f"[bold red]the SIGTERM'd consumer exited with {term.exit_code}[/bold red]"
    signals = " and ".join(
        name for name, sent in (("a SIGTERM", term), ("a SIGKILL", demo.killed)) if sent
    )
    through = f", through {signals}" if signals else ""
    return True, (
        f"[bold green]nothing lost: all {outcome.enqueued} tasks ended done or dead"
        f"{through}[/bold green]"
    )


def run_demo(*, tasks: int = 300, consumers: int = 3, workers: int = 4, console: Console) -> int:
    """Run the demo; 0 when nothing was lost and the SIGTERM'd consumer exited 0, else 1."""
    workdir = Path(tempfile.mkdtemp(prefix="scoter-demo-"))
    console.print(
        f"[bold]scoter demo[/bold]: {tasks} tasks, {consumers} consumers x {workers} threads\n"
        f"SQLite files and logs in {workdir}\n"
        f"When {SIGTERM_AT:.0%} are done, consumer 1 gets SIGTERM; at {SIGKILL_AT:.0%}, "
        "consumer 2 gets SIGKILL. Each is replaced.\n",
        highlight=False,
    )
    demo = Demo(workdir, tasks, consumers, workers, console)
    try:
        outcome = demo.run()
    except BaseException:
        console.print(f"interrupted; the database and the consumers' logs are in {workdir}")
        raise
    console.print()
    console.print(report(demo, outcome))
    console.print(DUPLICATES_NOTE.format(lease=LEASE_S))
    ok, line = verdict(demo, outcome)
    console.print(line)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        console.print(f"the database and the consumers' logs are kept in {workdir}")
    return 0 if ok else 1
