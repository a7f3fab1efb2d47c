"""`scoter chaos`: kill consumers at random while they work, then prove nothing was lost.

K real consumer processes (`python -m scoter worker scoter.chaos:app`) share one storage URL and
run N tasks of random length: some plain (they ignore stop requests), some checkpointing with
`ctx.resume` or `ctx.checkpoint` and handing themselves back (`Interrupt`) when asked to stop.
A bounded loop SIGTERMs, SIGKILLs and SIGSTOPs/SIGCONTs random consumers (and, with the
process executor, SIGKILLs their children), restarting the ones it ended. Then it waits for
every task to settle and checks, from side effects that scoter knows nothing about:

- G1: every task succeeded (none lost, none dead);
- duplicates: a task completed more than once only when its first completing run's holder was
  SIGKILLed, its child process killed, or it lost its lease: while SIGSTOPped, or while the
  storage took no writes because a SIGSTOPped consumer held its lock (`StallProbe`);
- G2: no attempt started before the previous one let go (per the task's history), and two runs
  of one task overlapped only after such a lease loss; every lease loss has such a cause;
- G5: a released or rescued task is claimed before any younger task; the hand-off delays after
  SIGTERM (release to next start) and SIGKILL (kill to next start); a crashed holder's task is
  queued again within its lease (plus a rescuer tick);
- G6: a SIGTERMed consumer exits 0 within its drain timeout (plus two seconds).

Each run of a task writes a row to a SQLite file of its process's own (runs-<pid>.db in the
directory $SCOTER_CHAOS_RUNS, so that no process ever waits for another's lock): task id,
attempt, pid, parent pid, its lease's expiry as claimed, start, end and how it ended (NULL
while running, or when its process died first).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from scoter.app import Scoter
from scoter.config import ENV_URL, redact
from scoter.consumer.processes import KILLED_AT_DEADLINE
from scoter.consumer.supervisor import HELD_OFF, HOLD_OFF_S, SCHEDULE_INTERVAL_S
from scoter.context import TaskContext
from scoter.exceptions import Interrupt, LeaseLost
from scoter.states import State
from scoter.storage.base import TaskInfo
from scoter.task import Message

ENV_RUNS = "SCOTER_CHAOS_RUNS"
"""The directory where every run records itself, a file per process; set by `run_chaos`."""
RUNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, task TEXT NOT NULL, attempt "
    "INTEGER, pid INTEGER, ppid INTEGER, expires REAL, started REAL, ended REAL, outcome TEXT)"
)

QUEUE = "chaos"
STEP_S = 0.1
"""How long a checkpointing task works between two checkpoints."""
BUDGET = 10_000
"""max_crashes and max_interruptions of the chaos tasks: a chaos run never exhausts them, so
any dead task is a finding."""

COMPLETED = "completed"
INTERRUPTED = "interrupted"
LEASE_LOST = "lease lost"

# -- the tasks: they run in the consumer processes ---------------------------------------------

app = Scoter("chaos", default_queue=QUEUE)
"""The consumers' app; its storage URL comes from $SCOTER_URL, which `run_chaos` sets."""


def length(key: int) -> float:
    """Seconds task `key` works: mostly short, a quarter up to 1.5 s, one in twenty up to 4 s."""
    rng = random.Random(key)
    kind = rng.random()
    if kind < 0.70:
        return rng.uniform(0.02, 0.3)
    if kind < 0.95:
        return rng.uniform(0.3, 1.5)
    return rng.uniform(1.5, 4.0)


def steps(key: int) -> int:
    return max(1, round(length(key) / STEP_S))


def _runs_db() -> sqlite3.Connection:
    """This process's own runs file. One shared file would let a SIGSTOPped consumer holding
    its write lock stall every task of the fleet (and block an asyncio consumer's loop)."""
    path = Path(os.environ[ENV_RUNS]) / f"runs-{os.getpid()}.db"
    with _runs_created_lock:  # journal_mode=WAL takes no busy timeout: one thread sets it
        if os.getpid() not in _runs_created:
            with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(RUNS_TABLE)
            _runs_created.add(os.getpid())
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process's death
    return db


_runs_created: set[int] = set()
"""The pids whose runs file this process has created (a forked child has its own)."""
_runs_created_lock = threading.Lock()


def _record_start(ctx: TaskContext) -> int:
    row = (ctx.task_id, ctx.attempt, os.getpid(), os.getppid(), ctx.lease.expires, time.time())
    with contextlib.closing(_runs_db()) as db:
        cursor = db.execute(
            "INSERT INTO runs (task, attempt, pid, ppid, expires, started) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )
        return int(cursor.lastrowid or 0)


def _record_end(run_id: int, outcome: str) -> None:
    ended = time.time()
    with contextlib.closing(_runs_db()) as db:
        db.execute("UPDATE runs SET ended = ?, outcome = ? WHERE id = ?", (ended, outcome, run_id))


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, Interrupt):
        return INTERRUPTED
    if isinstance(exc, LeaseLost):
        return LEASE_LOST
    return f"raised {type(exc).__name__}"


@contextlib.contextmanager
def recorded(ctx: TaskContext) -> Iterator[None]:
    """Record this run: its start now, its end and outcome when the block exits."""
    run_id = _record_start(ctx)
    try:
        yield
    except BaseException as exc:  # CancelledError too (asyncio executor)
        _record_end(run_id, _outcome_of(exc))
        raise
    _record_end(run_id, COMPLETED)


def plain(key: int, ctx: TaskContext) -> int:
    """Not cooperative: works its whole length whatever is asked of it."""
    with recorded(ctx):
        time.sleep(length(key))
    return key


def stepwise(key: int, ctx: TaskContext) -> int:
    """Works in steps with `ctx.resume`: checkpoints each, hands itself back when asked."""
    with recorded(ctx):
        for _ in ctx.resume(range(steps(key))):
            time.sleep(STEP_S)
    return key


def careful(key: int, ctx: TaskContext) -> int:
    """Works in steps, `ctx.checkpoint`ing the time done; raises Interrupt when asked to stop."""
    with recorded(ctx):
        done: float = ctx.checkpoint_state or 0.0
        total = length(key)
        while done < total:
            if ctx.stop_requested:
                raise Interrupt()
            time.sleep(min(STEP_S, total - done))
            done += STEP_S
            ctx.checkpoint(done)
    return key


async def plain_async(key: int, ctx: TaskContext) -> int:
    with recorded(ctx):
        await asyncio.sleep(length(key))
    return key


async def stepwise_async(key: int, ctx: TaskContext) -> int:
    with recorded(ctx):
        for _ in ctx.resume(range(steps(key))):
            await asyncio.sleep(STEP_S)
    return key


async def careful_async(key: int, ctx: TaskContext) -> int:
    with recorded(ctx):
        done: float = ctx.checkpoint_state or 0.0
        total = length(key)
        while done < total:
            if ctx.stop_requested:
                raise Interrupt()
            await asyncio.sleep(min(STEP_S, total - done))
            done += STEP_S
            ctx.checkpoint(done)
    return key


SYNC_TASKS: tuple[Callable[..., Any], ...] = (plain, stepwise, careful)
ASYNC_TASKS: tuple[Callable[..., Any], ...] = (plain_async, stepwise_async, careful_async)
TASK_WEIGHTS = (2, 1, 1)
"""Half the tasks ignore stop requests; the other half checkpoint and hand themselves back."""


def register(target: Scoter) -> None:
    """Register the chaos tasks on `target` (the consumers' app, or a producer)."""
    for fn in (*SYNC_TASKS, *ASYNC_TASKS):
        target.task(context=True, max_crashes=BUDGET, max_interruptions=BUDGET)(fn)


register(app)


# -- what the run observes -----------------------------------------------------------------------

EXECUTORS = ("thread", "process", "asyncio")
SIGTERM = "SIGTERM"
SIGKILL = "SIGKILL"
SIGSTOP = "SIGSTOP"
CHILD = "child SIGKILL"
KINDS = (SIGTERM, SIGKILL, SIGSTOP, CHILD)
STALL = "storage stall"
"""Not a signal: a time the storage took writes from no one (see `StallProbe`)."""


@dataclass
class Disruption:
    """One signal the chaos loop sent (or, of kind STALL, a storage stall the probe saw)."""

    kind: str
    at: float
    """time.time() when it was sent."""
    consumer: int
    """The pid of the consumer it was aimed at."""
    target: int
    """The pid signalled: the consumer, or (CHILD) one of its children."""
    until: float = math.inf
    """SIGSTOP: when SIGCONT followed."""


@dataclass(frozen=True)
class Run:
    """One execution of a task, as its process recorded it."""

    task: str
    attempt: int
    pid: int
    ppid: int
    expires: float
    """The lease's expiry as claimed: the claim happened `lease` seconds before."""
    started: float
    ended: float | None
    outcome: str | None
    """COMPLETED, INTERRUPTED, LEASE_LOST, "raised X", or None: its process died first."""


def create_runs_dir(path: Path) -> None:
    """An empty directory for the runs files (those of an earlier run there are removed)."""
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("runs-*.db*"):
        leftover.unlink()


def read_runs(path: Path) -> list[Run]:
    """Every run the processes recorded in directory `path`, in the order they started."""
    query = "SELECT task, attempt, pid, ppid, expires, started, ended, outcome FROM runs"
    runs = []
    for file in sorted(path.glob("runs-*.db")):
        with contextlib.closing(sqlite3.connect(file, timeout=60.0)) as db:
            if not db.execute(RUNS_TABLE_EXISTS).fetchone():
                continue  # its process was killed between creating the file and the table
            runs += [Run(*row) for row in db.execute(query)]
    return sorted(runs, key=lambda run: run.started)


RUNS_TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"


# -- the consumer processes ----------------------------------------------------------------------


@dataclass
class Member:
    """One `scoter worker` process of the fleet."""

    number: int
    process: subprocess.Popen[bytes]
    log_path: Path
    terminated: bool = False
    stopped: Disruption | None = None
    exited_at: float | None = None
    """time.time() when it was seen to exit (for a SIGKILL: when the kill was sent)."""
    exit_code: int | None = None
    _ready: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self) -> bool:
        """True once its signal handlers are installed (it logged its start line)."""
        if not self._ready:
            self._ready = "consumer " in self.log_path.read_text(errors="replace")
        return self._ready

    def alive(self) -> bool:
        return self.process.poll() is None


def _executor_option() -> Any:
    """The `-k/--executor` option of `scoter worker`, or None while it has none."""
    from scoter.cli import worker

    return next((p for p in worker.params if p.name == "executor"), None)


def worker_executors() -> set[str]:
    """The executors `scoter worker` accepts (`-k`): {'thread'} until it has the option."""
    option = _executor_option()
    if option is None:
        return {"thread"}
    return set(getattr(option.type, "choices", None) or EXECUTORS)


class Fleet:
    """Starts, signals and stops the consumer processes; every child ends with the fleet."""

    def __init__(self, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.command = command
        self.env = env
        self.workdir = workdir
        self.members: list[Member] = []
        self._watchers: list[threading.Thread] = []

    def start(self) -> Member:
        number = len(self.members) + 1
        log_path = self.workdir / f"consumer-{number}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env,
            )  # fmt: skip
        member = Member(number, process, log_path)
        self.members.append(member)
        return member

    def targets(self) -> list[Member]:
        """Consumers that may be disrupted now: running, ready, not stopping, not stopped."""
        return [
            m for m in self.members
            if not m.terminated and m.stopped is None and m.alive() and m.ready()
        ]  # fmt: skip

    def terminate(self, member: Member) -> None:
        """SIGTERM; a thread notes when it exits, so the caller goes on."""
        member.terminated = True
        member.process.send_signal(signal.SIGTERM)
        watcher = threading.Thread(target=self._await_exit, args=(member,), daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    def kill(self, member: Member) -> None:
        member.terminated = True
        member.exited_at = time.time()
        member.process.kill()
        member.exit_code = member.process.wait()

    @staticmethod
    def _await_exit(member: Member) -> None:
        member.exit_code = member.process.wait()
        member.exited_at = time.time()

    def cont(self, member: Member) -> None:
        """SIGCONT a stopped consumer."""
        if member.stopped is not None:
            member.process.send_signal(signal.SIGCONT)
            member.stopped.until = time.time()
            member.stopped = None

    def cont_due(self, now: float) -> None:
        for member in self.members:
            if member.stopped is not None and member.stopped.until <= now:
                self.cont(member)

    def cont_all(self) -> None:
        for member in self.members:
            self.cont(member)

    def shutdown(self, timeout: float) -> list[Member]:
        """SIGTERM every consumer still running and wait; SIGKILL (and return) any that outlive
        `timeout` seconds."""
        self.cont_all()
        for member in self.members:
            if not member.terminated and member.alive():
                self.terminate(member)
        deadline = time.monotonic() + timeout
        for watcher in self._watchers:
            watcher.join(max(0.0, deadline - time.monotonic()))
        late = [m for m in self.members if m.alive()]
        self.kill_all()
        return late

    def kill_all(self) -> None:
        """SIGKILL whatever still runs (a last resort, also on Ctrl-C or an error)."""
        for member in self.members:
            if member.alive():
                with contextlib.suppress(ProcessLookupError):
                    member.process.send_signal(signal.SIGCONT)
                member.process.kill()
            member.process.wait()
        for watcher in self._watchers:
            watcher.join()


def children_of(pid: int) -> list[int]:
    """The pids of a process's children (`pgrep -P`)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(word) for word in found.stdout.split()]


PROBE_TOKEN = "chaos-probe"
PROBE_INTERVAL_S = 0.1


class StallProbe:
    """Times a write to the storage (a heartbeat of a token nobody holds) ten times a second,
    and records the times it stalled.

    A SIGSTOPped consumer that holds SQLite's write lock stalls the writes of every consumer,
    heartbeats included: leases then expire though no signal reached their holders.
    """

    def __init__(self, write: Callable[[], object], threshold: float) -> None:
        self.write = write
        self.threshold = threshold
        self.stalls: list[Disruption] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stopped.wait(PROBE_INTERVAL_S):
            began = time.time()
            with contextlib.suppress(Exception):  # an error is a stall too, timed the same
                self.write()
            ended = time.time()
            if ended - began > self.threshold:
                stall = Disruption(STALL, began - PROBE_INTERVAL_S, 0, 0, until=ended)
                self.stalls.append(stall)


# -- settings and the report -------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """One chaos run."""

    url: str
    tasks: int = 2000
    consumers: int = 3
    seconds: float = 40.0
    """How long the disruptions go on (less when every task settled earlier)."""
    executor: str = "thread"
    seed: int = 0
    workers: int = 8
    """Tasks each consumer runs at once (`-w`)."""
    lease: float = 2.0
    drain_timeout: float = 1.0
    pause: tuple[float, float] = (0.3, 1.2)
    """Seconds between two disruptions, drawn uniformly."""
    max_disruptions: int = 1000
    settle_timeout: float = 60.0
    """After the disruptions, give up waiting for the tasks once none settled for this long."""
    handoff_limit: float = 1.0
    """G5: a task released (or rescued) starts again within this many seconds, unless no
    consumer had a slot free (no younger task started before it)."""
    clock_slack: float = 0.05
    """Tolerance when comparing times taken by different processes (or a server's clock)."""
    drain_slack: float = 2.0
    """G6: a SIGTERMed consumer exits within drain_timeout + this (releasing, ending children);
    the defaults leave it 5 s (a 25 s drain in Kubernetes' 30 s grace)."""
    claim_slack: float = 0.25
    """Tolerance between a claim's time and its run's start (a busy machine)."""

    queue: str = field(default_factory=lambda: f"{QUEUE}-{uuid.uuid4().hex[:8]}")
    """A queue of this run's own, so that a shared server's other tasks are left alone."""

    @property
    def rescue_interval(self) -> float:
        return self.lease / 6

    def recovery_limit(self, kind: str) -> float:
        """Seconds from a SIGKILL to the task being queued again: the lease, a rescuer tick
        and three seconds of slack (a replacement consumer starting, rescuer threads waiting
        for a core on a loaded 2-core machine); at once for a child."""
        return self.lease + self.rescue_interval + 3.0 if kind == SIGKILL else 1.0


@dataclass
class Handoffs:
    """Delays from a disruption to the next attempt's start."""

    count: int = 0
    worst: float = 0.0
    total: float = 0.0
    slow: int = 0
    """Claimable again but waiting longer than the limit, because no consumer had a free slot."""

    def add(self, delay: float) -> None:
        self.count += 1
        self.worst = max(self.worst, delay)
        self.total += delay

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


UNEXPLAINED = "unexplained"
NOT_ACKED = "(SIGTERMed) released it at the drain deadline instead of acking it"
THREAD_RAN_ON = "released at the drain deadline while its thread ran on"
DRAINING = "while draining after a SIGTERM"
CLAIMED_LATE = "claimed it after its SIGTERM"
PAST_DEADLINE = "ran past the drain deadline, ignoring stop_requested"
CAUSES = {
    SIGKILL: SIGKILL,
    CHILD: CHILD,
    SIGSTOP: "lease lost while SIGSTOPped",
    STALL: "lease lost in a storage stall",
}
"""Duplicate causes, by the disruption that cost the first run its lease."""
MAX_PROBLEMS_SHOWN = 20
MAX_ERRORS_SHOWN = 5


@dataclass
class Report:
    """What a chaos run did and found. `ok` when nothing was lost and nothing is unexplained."""

    settings: Settings
    kills: Counter[str] = field(default_factory=Counter)
    enqueued: int = 0
    done: int = 0
    dead: int = 0
    runs: int = 0
    completions: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    """Extra completions by cause: SIGKILL, CHILD, "lease lost while SIGSTOPped", UNEXPLAINED."""
    overlaps: int = 0
    overlaps_explained: int = 0
    longest_overlap: float = 0.0
    handoffs: dict[str, Handoffs] = field(default_factory=lambda: defaultdict(Handoffs))
    stalls: list[Disruption] = field(default_factory=list)
    """Times the storage took no writes for a while (see `StallProbe`)."""
    dispatch: float = 0.0
    """Longest time from a claim to the task's start (waiting for a worker or child)."""
    worst_drain: float = 0.0
    """Longest time from a SIGTERM to that consumer's exit."""
    chaos_seconds: float = 0.0
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)
    storage_errors: Counter[str] = field(default_factory=Counter)
    """Storage calls the consumers logged as failed (see `storage_errors`), by message."""
    workdir: Path | None = None

    @property
    def lost(self) -> int:
        return self.enqueued - self.done - self.dead

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)


# -- the run ---------------------------------------------------------------------------------


class Chaos:
    """One run: enqueue, start the fleet, disrupt it, wait for every task, then check."""

    def __init__(self, settings: Settings, workdir: Path, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.workdir = workdir
        self._say = say
        self.rng = random.Random(settings.seed)
        self.runs_path = workdir / "runs"
        self.producer = Scoter("chaos", settings.url, default_queue=settings.queue)
        register(self.producer)
        self.fleet = Fleet(self._command(), self._env(), workdir)
        storage, lease = self.producer.storage, settings.lease
        self.probe = StallProbe(lambda: storage.heartbeat([PROBE_TOKEN], lease), lease / 4)
        self.disruptions: list[Disruption] = []
        self.ids: list[str] = []
        self.started = time.monotonic()
        self.report = Report(settings, workdir=workdir)

    def say(self, text: str) -> None:
        """Tell the caller, and log it (wall-clock time, as in the consumers' logs)."""
        self._say(text)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        with (self.workdir / "chaos.log").open("a") as log:
            log.write(f"{stamp},{int(now % 1 * 1000):03d} {now:.3f} {text}\n")

    def _command(self) -> list[str]:
        s = self.settings
        command = [
            sys.executable, "-m", "scoter", "worker", "scoter.chaos:app", "-Q", s.queue,
            "-w", str(s.workers), "--lease", str(s.lease), "--drain-timeout", str(s.drain_timeout),
        ]  # fmt: skip
        if _executor_option() is not None:
            command += ["-k", s.executor]
        return command

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCOTER_")}
        env.update({ENV_URL: self.settings.url, ENV_RUNS: str(self.runs_path)})
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def run(self) -> Report:
        create_runs_dir(self.runs_path)
        self.enqueue()
        self.started = time.monotonic()
        self.probe.start()
        try:
            for _ in range(self.settings.consumers):
                self.fleet.start()
            self.disrupt()
            self.settle()
            self.stop_fleet()
        finally:
            self.fleet.kill_all()
            self.probe.stop()
        self.report.duration = time.monotonic() - self.started
        self.check()
        self.producer.storage.close()
        return self.report

    def enqueue(self) -> None:
        tasks = ASYNC_TASKS if self.settings.executor == "asyncio" else SYNC_TASKS
        names = [fn.__name__ for fn in tasks]
        messages = [
            Message(name, (self.rng.randrange(2**31),), queue=self.settings.queue)
            for name in self.rng.choices(names, TASK_WEIGHTS, k=self.settings.tasks)
        ]
        for batch in range(0, len(messages), 1000):
            self.producer.enqueue_many(messages[batch : batch + 1000])
        self.ids = [m.id for m in messages]
        self.report.enqueued = len(self.ids)
        self.say(f"enqueued {len(self.ids)} tasks on {redact(self.settings.url)}")

    def settled(self) -> int:
        """How many of this run's tasks are done or dead."""
        counts = self.producer.storage.counts()
        queue = self.settings.queue
        return counts.get((queue, State.DONE), 0) + counts.get((queue, State.DEAD), 0)

    # -- disrupting ----------------------------------------------------------------------------

    def disrupt(self) -> None:
        """Disrupt a random consumer every few tenths of a second, until time or work runs out."""
        s = self.settings
        began = time.monotonic()
        deadline = began + s.seconds
        next_at = time.monotonic() + self.rng.uniform(*s.pause)
        next_look = 0.0
        while time.monotonic() < deadline and len(self.disruptions) < s.max_disruptions:
            now = time.monotonic()
            self.fleet.cont_due(time.time())
            if now >= next_look:
                if self.settled() >= len(self.ids):
                    break
                next_look = now + 0.5
            if now >= next_at:
                self.disrupt_one()
                next_at = now + self.rng.uniform(*s.pause)
            time.sleep(0.02)
        self.fleet.cont_all()
        self.report.chaos_seconds = time.monotonic() - began
        self.say(f"stopped disrupting after {len(self.disruptions)} signals")

    def disrupt_one(self) -> None:
        targets = self.fleet.targets()
        if not targets:
            return
        kinds = KINDS if self.settings.executor == "process" else KINDS[:3]
        actions = {SIGTERM: self.sigterm, SIGKILL: self.sigkill, SIGSTOP: self.sigstop,
                   CHILD: self.kill_child}  # fmt: skip
        actions[self.rng.choice(kinds)](self.rng.choice(targets))

    def note(self, disruption: Disruption, detail: str = "") -> None:
        self.disruptions.append(disruption)
        self.report.kills[disruption.kind] += 1
        self.say(f"{disruption.kind} → pid {disruption.target}{detail}")

    def sigterm(self, member: Member) -> None:
        """SIGTERM (it drains and exits), and start a replacement at once."""
        self.note(Disruption(SIGTERM, time.time(), member.pid, member.pid))
        self.fleet.terminate(member)
        self.replace()

    def sigkill(self, member: Member) -> None:
        self.note(Disruption(SIGKILL, time.time(), member.pid, member.pid))
        self.fleet.kill(member)
        self.replace()

    def replace(self) -> None:
        member = self.fleet.start()
        self.say(f"started consumer {member.number} (pid {member.pid})")

    def sigstop(self, member: Member) -> None:
        """SIGSTOP for up to two leases; `Fleet.cont_due` sends the SIGCONT."""
        pause = self.rng.uniform(0.1, 2 * self.settings.lease)
        now = time.time()
        member.stopped = Disruption(SIGSTOP, now, member.pid, member.pid, until=now + pause)
        member.process.send_signal(signal.SIGSTOP)
        self.note(member.stopped, f" for {pause:.1f} s")

    def kill_child(self, member: Member) -> None:
        """SIGKILL one of the consumer's child processes, if it has any."""
        children = children_of(member.pid)
        if not children:
            return
        child = self.rng.choice(children)
        disruption = Disruption(CHILD, time.time(), member.pid, child)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.note(disruption, f" (child of {member.pid})")

    # -- ending ------------------------------------------------------------------------------

    def settle(self) -> None:
        """Wait while tasks keep settling; give up after `settle_timeout` s with none settled."""
        settled, progress_at = self.settled(), time.monotonic()
        while settled < len(self.ids):
            if time.monotonic() - progress_at > self.settings.settle_timeout:
                self.report.problem(
                    f"gave up waiting after {self.settings.settle_timeout:.0f} s in which no "
                    f"task settled: {len(self.ids) - settled} task(s) neither done nor dead"
                )
                return
            time.sleep(0.2)
            now_settled = self.settled()
            if now_settled > settled:
                settled, progress_at = now_settled, time.monotonic()
        self.say("every task settled")

    def stop_fleet(self) -> None:
        late = self.fleet.shutdown(self.settings.drain_timeout + 10.0)
        for member in late:
            self.report.problem(f"consumer pid {member.pid} outlived SIGTERM; SIGKILLed")
        self.say("stopped the consumers (SIGTERM)")

    def check(self) -> None:
        infos = {task_id: self.producer.storage.get(task_id) for task_id in self.ids}
        runs = read_runs(self.runs_path)
        exits = {m.pid: m.exited_at for m in self.fleet.members if m.exited_at is not None}
        evidence = Evidence(self.disruptions, exits, self.probe.stalls)
        self.report.stalls = self.probe.stalls
        Checker(self.settings, evidence, self.report).check(infos, runs)
        check_drains(self.settings, self.fleet.members, evidence, self.report)
        self.report.storage_errors = storage_errors(m.log_path for m in self.fleet.members)


# -- the checks ----------------------------------------------------------------------------------


STORAGE_ERROR = re.compile(
    r"(?:WARNING|ERROR) [\w.]+: "
    r"(.*(?:failed, retrying|storage unavailable|could not acknowledge|could not release).*)"
)
"""A consumer's log line of a storage call that failed; group 1 is its message."""


def storage_errors(logs: Iterable[Path]) -> Counter[str]:
    """The failed storage calls in the consumers' logs, by message (ids and numbers hidden):
    not a check (a broker restart makes them on purpose), what to read when one fails."""
    found: Counter[str] = Counter()
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            if match := STORAGE_ERROR.search(line):
                found[re.sub(r"[0-9a-f]{32}|\d+", "N", match[1])[:200]] += 1
    return found


def _meet(a: Disruption, b: Disruption) -> bool:
    """Whether two periods [at, until] overlap."""
    return a.at <= b.until and b.at <= a.until


def holder_pid(consumer: object) -> int | None:
    """The pid in a consumer id ("host:pid:suffix")."""
    if not isinstance(consumer, str):
        return None
    parts = consumer.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


class Evidence:
    """What was done to which process, and when each consumer ended."""

    def __init__(
        self,
        disruptions: Sequence[Disruption],
        exits: dict[int, float],
        stalls: Sequence[Disruption] = (),
    ) -> None:
        self.disruptions = disruptions
        self.by_target: dict[int, list[Disruption]] = defaultdict(list)
        for d in disruptions:
            self.by_target[d.target].append(d)
        self.children_killed = [d for d in disruptions if d.kind == CHILD]
        self.stops = [d for d in disruptions if d.kind == SIGSTOP]
        self.exits = exits
        """pid → when that consumer exited."""
        self.stalls = [s for s in stalls if any(_meet(s, stop) for stop in self.stops)]
        """The storage stalls that happened while some consumer was SIGSTOPped."""

    def stalled_during(self, start: float, end: float, at_least: float) -> Disruption | None:
        """A stall of `at_least` seconds (while a consumer was SIGSTOPped) within [start, end]."""
        window = Disruption(STALL, start, 0, 0, until=end)
        found = (s for s in self.stalls if s.until - s.at >= at_least and _meet(s, window))
        return next(found, None)

    def stalled_seconds(self, start: float, end: float) -> float:
        """How long the storage stalled (while a consumer was SIGSTOPped) within [start, end]."""
        return sum(max(0.0, min(s.until, end) - max(s.at, start)) for s in self.stalls)

    def signalled(self, kind: str, pid: int | None, start: float, end: float) -> Disruption | None:
        """The first `kind` sent to `pid` within [start, end]."""
        found = [d for d in self.by_target.get(pid or -1, []) if d.kind == kind]
        return next((d for d in found if start <= d.at <= end), None)

    def child_killed(self, pid: int, start: float, end: float) -> Disruption | None:
        """The SIGKILL of child process `pid` within [start, end]."""
        return self.signalled(CHILD, pid, start, end)

    def child_of_killed(self, consumer: int | None, start: float, end: float) -> Disruption | None:
        """A SIGKILL of any child of `consumer` within [start, end]."""
        found = (d for d in self.children_killed if d.consumer == consumer)
        return next((d for d in found if start <= d.at <= end), None)

    def stopped_during(self, pid: int | None, start: float, end: float) -> Disruption | None:
        """A SIGSTOP of `pid` that held it stopped at some time within [start, end]."""
        found = [d for d in self.by_target.get(pid or -1, []) if d.kind == SIGSTOP]
        return next((d for d in found if d.at <= end and d.until >= start), None)

    def exit_of(self, pid: int | None) -> float | None:
        return self.exits.get(pid or -1)


@dataclass
class Attempt:
    """One attempt of a task: its run (if it got to record one) and its history entry."""

    number: int
    run: Run | None = None
    entry: dict[str, object] | None = None
    claimable_from: float = 0.0
    """When the task became claimable for this attempt (the previous attempt's end)."""

    @property
    def outcome(self) -> str | None:
        return None if self.entry is None else str(self.entry.get("outcome"))

    @property
    def settled_at(self) -> float | None:
        at = None if self.entry is None else self.entry.get("at")
        return float(at) if isinstance(at, (int, float)) else None

    @property
    def claimable_again(self) -> float | None:
        """When the next attempt could first be claimed: as this one let go, or after the
        hold-off of a task handed back while its thread ran on, and a promotion tick."""
        settled = self.settled_at
        if settled is not None and self.entry and HELD_OFF in str(self.entry.get("detail")):
            return settled + HOLD_OFF_S + SCHEDULE_INTERVAL_S
        return settled

    @property
    def holder(self) -> int | None:
        """The pid of the consumer that held the attempt, from its history entry."""
        return holder_pid(None if self.entry is None else self.entry.get("consumer"))


def attempts_of(info: TaskInfo, runs: Sequence[Run]) -> tuple[list[Attempt], list[str]]:
    """The task's attempts, 1..info.attempts, and what is inconsistent in the records."""
    attempts = [Attempt(n) for n in range(1, max(info.attempts, 0) + 1)]
    problems = []
    for entry in info.history:
        number = entry.get("attempt")
        if not isinstance(number, int) or not 1 <= number <= len(attempts):
            problems.append(f"history entry for an attempt that was never claimed: {entry}")
        elif attempts[number - 1].entry is not None:
            problems.append(f"two history entries for attempt {number}")
        else:
            attempts[number - 1].entry = entry
    for run in runs:
        if not 1 <= run.attempt <= len(attempts):
            problems.append(f"a run of attempt {run.attempt}, never claimed")
        elif attempts[run.attempt - 1].run is not None:
            problems.append(f"two runs of attempt {run.attempt}")
        else:
            attempts[run.attempt - 1].run = run
    for before, after in itertools.pairwise(attempts):
        after.claimable_from = before.settled_at or info.created_at
    if attempts:
        attempts[0].claimable_from = info.created_at
    return attempts, problems


class Checker:
    """Turns the task records, the runs and the disruptions into the report's findings."""

    def __init__(self, settings: Settings, evidence: Evidence, report: Report) -> None:
        self.settings = settings
        self.evidence = evidence
        self.report = report
        self.fresh_claims: list[float] = []

    def check(self, infos: dict[str, TaskInfo | None], runs: Sequence[Run]) -> None:
        by_task: dict[str, list[Run]] = defaultdict(list)
        for run in runs:
            by_task[run.task].append(run)
        self.fresh_claims = sorted(self.claimed(run) for run in runs if run.attempt == 1)
        for run in runs:
            self.report.dispatch = max(self.report.dispatch, run.started - self.claimed(run))
        self.report.runs = len(runs)
        self.report.completions = sum(run.outcome == COMPLETED for run in runs)
        unknown = set(by_task) - set(infos)
        if unknown:
            self.report.problem(f"{len(unknown)} run(s) of tasks this run never enqueued")
        for task_id, info in infos.items():
            self.task(task_id, info, by_task.get(task_id, []))

    def claimed(self, run: Run) -> float:
        return run.expires - self.settings.lease

    def task(self, task_id: str, info: TaskInfo | None, runs: list[Run]) -> None:
        if info is None or info.state not in (State.DONE, State.DEAD):
            state = "missing" if info is None else info.state.value
            self.report.problem(f"task {task_id}: lost ({state})")
            return
        if info.state is State.DEAD:
            self.report.dead += 1
            self.report.problem(f"task {task_id}: dead ({info.reason}): {info.error}")
        else:
            self.report.done += 1
        attempts, problems = attempts_of(info, runs)
        for text in problems:
            self.report.problem(f"task {task_id}: {text}")
        self.order(task_id, attempts)
        self.crashes(task_id, attempts)
        self.completions(task_id, info, attempts)
        self.overlaps(task_id, attempts)
        self.handoffs(task_id, attempts)

    # G2: attempt n+1 is claimed only once attempt n let go (settled, or its lease rescued).
    def order(self, task_id: str, attempts: list[Attempt]) -> None:
        for before, after in itertools.pairwise(attempts):
            if before.settled_at is None:
                self.report.problem(f"task {task_id}: attempt {before.number} has no outcome")
            elif after.run and after.run.started < before.settled_at - self.settings.clock_slack:
                self.report.problem(
                    f"task {task_id}: attempt {after.number} started "
                    f"{before.settled_at - after.run.started:.3f} s before attempt "
                    f"{before.number} let go (G2)"
                )

    # A lease is lost only to a SIGKILL, a killed child or a SIGSTOP of its holder.
    def crashes(self, task_id: str, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            if attempt.outcome == "crashed" and self.crash_cause(attempt) is None:
                self.report.problem(
                    f"task {task_id}: attempt {attempt.number}: {self.lost_how(attempt)}"
                )

    def lost_how(self, attempt: Attempt) -> str:
        """What ended an attempt whose end has no accepted cause, for a problem's text."""
        settled = attempt.settled_at if attempt.settled_at is not None else math.inf
        run, holder = attempt.run, attempt.holder
        if attempt.outcome == "interrupted" and run is not None:
            if run.ended is None or run.ended > settled:
                return f"it was {THREAD_RAN_ON}, until it ended or its process exited"
            return f"it completed {settled - run.ended:.3f} s before its consumer {NOT_ACKED}"
        if attempt.outcome != "crashed":
            return f"it ended {attempt.outcome}"
        if cause := self.crash_cause(attempt):
            return f"its holder pid {holder} lost its lease to a {cause.kind}, yet it ran on"
        term = self.evidence.signalled(SIGTERM, holder, 0.0, settled)
        if term is not None and run is not None and self.claimed(run) > term.at:
            return (
                f"its holder pid {holder} {CLAIMED_LATE} ({self.claimed(run) - term.at:.2f} s "
                "after it: a follow-up claim landing while it stopped), then exited without "
                "releasing it: it came back only when the lease expired"
            )
        if term is not None:
            return (
                f"its holder pid {holder} lost its lease {DRAINING} ({settled - term.at:.2f} s "
                "after it), with no storage stall: it neither heartbeated nor released in time"
            )
        return (
            f"its holder pid {holder} lost its lease at {settled:.3f} with no SIGKILL or "
            "SIGSTOP of it, nor a storage stall: a heartbeat or a release failed"
        )

    def crash_cause(self, attempt: Attempt) -> Disruption | None:
        """The disruption that cost a crashed attempt its lease, or None."""
        settled = attempt.settled_at
        if attempt.outcome != "crashed" or settled is None:
            return None
        window = (attempt.claimable_from, settled)
        run = attempt.run
        if run is not None and (child := self.evidence.child_killed(run.pid, *window)):
            return child
        if kill := self.evidence.signalled(SIGKILL, attempt.holder, *window):
            return kill
        lease_start = settled - self.settings.lease - self.settings.clock_slack
        if stop := self.evidence.stopped_during(attempt.holder, lease_start, settled):
            return stop
        heartbeat = self.settings.lease / 3
        if stall := self.evidence.stalled_during(lease_start, settled, heartbeat):
            return stall
        if run is None:  # killed before it recorded its start: which child ran it is unknown
            return self.evidence.child_of_killed(attempt.holder, *window)
        return None

    # G1 and duplicates.
    def completions(self, task_id: str, info: TaskInfo, attempts: list[Attempt]) -> None:
        acked = [a for a in attempts if a.outcome == "succeeded"]
        if info.state is State.DONE and len(acked) != 1:
            self.report.problem(f"task {task_id}: done with {len(acked)} succeeded attempts")
        for attempt in acked:
            if attempt.run is None or attempt.run.outcome != COMPLETED:
                self.report.problem(
                    f"task {task_id}: attempt {attempt.number} was acked without completing"
                )
        for attempt in attempts:
            if attempt.run and attempt.run.outcome == COMPLETED and attempt not in acked:
                self.duplicate(task_id, attempt)

    def duplicate(self, task_id: str, attempt: Attempt) -> None:
        """A run that completed without being acked: the task ran again after it."""
        cause = self.crash_cause(attempt)
        if cause is None and self.finished_past_deadline(attempt):
            self.report.duplicates[PAST_DEADLINE] += 1
            return
        self.report.duplicates[CAUSES[cause.kind] if cause else UNEXPLAINED] += 1
        if cause is not None:
            return
        self.report.problem(
            f"task {task_id}: attempt {attempt.number} completed but ran again: "
            f"{self.lost_how(attempt)}"
        )

    def finished_past_deadline(self, attempt: Attempt) -> bool:
        """Whether a task that ran on past the drain deadline finished just as it was handed
        back: in its thread after the release (held off until the process exited), or in a
        child killed at the deadline before its result reached the parent."""
        run, settled = attempt.run, attempt.settled_at
        if run is None or run.ended is None or settled is None or attempt.entry is None:
            return False
        detail = str(attempt.entry.get("detail"))
        if KILLED_AT_DEADLINE in detail:
            return True
        return HELD_OFF in detail and run.ended >= settled - self.settings.clock_slack

    # G2: two runs of one task at the same time only after a lease loss while stopped.
    def overlaps(self, task_id: str, attempts: list[Attempt]) -> None:
        ran = [a for a in attempts if a.run is not None]
        for i, earlier in enumerate(ran):
            end = self.end_of(earlier)
            for later in ran[i + 1 :]:
                assert later.run is not None
                overlap = end - later.run.started
                if overlap > self.settings.clock_slack:
                    self.overlap(task_id, earlier, later, overlap)

    def overlap(self, task_id: str, earlier: Attempt, later: Attempt, seconds: float) -> None:
        self.report.overlaps += 1
        self.report.longest_overlap = max(self.report.longest_overlap, seconds)
        cause = self.crash_cause(earlier)
        if cause is not None and cause.kind in (SIGSTOP, STALL):
            self.report.overlaps_explained += 1
            return
        run = earlier.run
        assert run is not None
        self.report.problem(
            f"task {task_id}: attempts {earlier.number} ({earlier.outcome}, pid {run.pid}) and "
            f"{later.number} ran at the same time for {seconds:.3f} s; the first: "
            f"{self.lost_how(earlier)} (G2)"
        )

    def end_of(self, attempt: Attempt) -> float:
        """When the attempt's run stopped: recorded, or when its process was killed or exited."""
        run = attempt.run
        assert run is not None
        if run.ended is not None:
            return run.ended
        child = self.evidence.child_killed(run.pid, run.started, math.inf)
        if child is not None:
            return child.at
        kill = self.evidence.signalled(SIGKILL, attempt.holder, run.started, math.inf)
        if kill is not None:
            return kill.at
        if run.pid != attempt.holder and attempt.settled_at is not None:
            return attempt.settled_at  # a child process ended by its parent, which then settled
        exited = self.evidence.exit_of(run.pid)
        return exited if exited is not None else math.inf

    # G5: how soon another consumer took over.
    def handoffs(self, task_id: str, attempts: list[Attempt]) -> None:
        """Measured to the next attempt's start; not when that attempt died unrecorded."""
        for attempt, following in itertools.pairwise(attempts):
            origin = self.handoff_origin(attempt)
            claimable = attempt.claimable_again
            if origin is None or claimable is None:
                continue
            kind, signalled = origin
            self.check_recovery(task_id, attempt, kind, signalled)
            if following.run is None:
                continue
            handoffs = self.report.handoffs[kind]
            handoffs.add(following.run.started - signalled)
            waited = self.claimed(following.run) - claimable
            if waited > self.settings.handoff_limit:
                self.check_passed_over(task_id, attempt, claimable, waited, handoffs)

    def handoff_origin(self, attempt: Attempt) -> tuple[str, float] | None:
        """(kind, when) of the signal that ended the attempt and started its hand-off."""
        if attempt.outcome == "interrupted" and attempt.settled_at is not None:
            return SIGTERM, attempt.settled_at
        cause = self.crash_cause(attempt)
        if cause is None or cause.kind in (SIGSTOP, STALL):
            return None
        return cause.kind, cause.at

    def check_recovery(self, task_id: str, attempt: Attempt, kind: str, signalled: float) -> None:
        """G5: a crashed holder's task is queued again as soon as its lease expires."""
        assert attempt.settled_at is not None
        took = attempt.settled_at - signalled
        stalled = self.evidence.stalled_seconds(signalled, attempt.settled_at)
        limit = self.settings.recovery_limit(kind) + stalled
        if took > limit:
            self.report.problem(
                f"task {task_id}: queued again {took:.2f} s after the {kind} of its holder "
                f"(limit {limit:.2f} s, G5)"
            )

    def check_passed_over(
        self, task_id: str, attempt: Attempt, claimable: float, waited: float, handoffs: Handoffs
    ) -> None:
        """A task claimable again waits only while no consumer has a free slot: then no task
        younger than it (a first attempt) may start before it (G5, "claimable at once")."""
        slack = self.settings.claim_slack
        start, end = claimable + slack, claimable + waited - slack
        fresh = self.fresh_claims
        younger = bisect.bisect_left(fresh, end) - bisect.bisect_right(fresh, start)
        if younger <= 0:
            handoffs.slow += 1
            return
        self.report.problem(
            f"task {task_id}: claimable again after attempt {attempt.number} "
            f"({attempt.outcome}), yet it waited {waited:.2f} s to be claimed while {younger} "
            "younger task(s) were claimed before it (G5)"
        )


def check_drains(
    settings: Settings, members: Sequence[Member], evidence: Evidence, report: Report
) -> None:
    """G6: a SIGTERMed consumer exits 0 within its drain timeout (plus `drain_slack`), plus
    the time the storage stalled meanwhile: its releases wait for a write lock that a
    SIGSTOPped consumer holds."""
    sent = {d.target: d.at for d in evidence.disruptions if d.kind == SIGTERM}
    for member in members:
        if member.pid not in sent or member.exited_at is None:
            continue
        drain = member.exited_at - sent[member.pid]
        report.worst_drain = max(report.worst_drain, drain)
        if member.exit_code != 0:
            report.problem(f"consumer pid {member.pid} exited {member.exit_code} after SIGTERM")
        stalled = evidence.stalled_seconds(sent[member.pid], member.exited_at)
        if drain > settings.drain_timeout + settings.drain_slack + stalled:
            report.problem(f"consumer pid {member.pid} took {drain:.2f} s to drain (G6)")


# -- printing --------------------------------------------------------------------------------


def _bad(text: str, bad: bool) -> str:
    return f"[bold red]{text}[/bold red]" if bad else text


def _handoff_text(handoffs: Handoffs, limit: float) -> str:
    if not handoffs.count:
        return "none"
    text = f"worst {handoffs.worst:.3f} s, mean {handoffs.mean:.3f} s over {handoffs.count}"
    if handoffs.slow:
        text += f"; {handoffs.slow} waited over {limit:.1f} s for a free slot"
    return text


def report_table(report: Report) -> Table:
    s = report.settings
    table = Table(title=f"scoter chaos: {s.executor} executor", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("storage", redact(s.url))
    table.add_row("tasks", f"{report.enqueued} on {s.consumers} consumers x {s.workers}")
    kills = ", ".join(f"{report.kills[k]} {k}" for k in KINDS if k in report.kills) or "none"
    table.add_row("signals", f"{kills} over {report.chaos_seconds:.1f} s (seed {s.seed})")
    table.add_row("succeeded", str(report.done))
    table.add_row("dead", _bad(str(report.dead), report.dead > 0))
    table.add_row("lost", _bad(str(report.lost), report.lost != 0))
    table.add_row("runs", f"{report.runs} started, {report.completions} completed")
    table.add_row("duplicates", _duplicates_text(report))
    table.add_row("overlaps", _overlaps_text(report))
    for kind in (SIGTERM, SIGKILL, CHILD):
        if kind != CHILD or report.handoffs[kind].count:
            text = _handoff_text(report.handoffs[kind], s.handoff_limit)
            table.add_row(f"hand-off after {kind}", text)
    table.add_row("storage stalls", _stalls_text(report))
    table.add_row("storage errors logged", str(sum(report.storage_errors.values())))
    table.add_row("claim to start", f"worst {report.dispatch:.3f} s")
    table.add_row("drain after SIGTERM", f"worst {report.worst_drain:.2f} s")
    table.add_row("total time", f"{report.duration:.1f} s")
    return table


def _stalls_text(report: Report) -> str:
    if not report.stalls:
        return "none"
    longest = max(s.until - s.at for s in report.stalls)
    threshold = report.settings.lease / 4
    return f"{len(report.stalls)} over {threshold:.1f} s, longest {longest:.2f} s"


def _duplicates_text(report: Report) -> str:
    total = sum(report.duplicates.values())
    if not total:
        return "0"
    causes = ", ".join(
        _bad(f"{n} {cause}", cause == UNEXPLAINED) for cause, n in sorted(report.duplicates.items())
    )
    return f"{total} ({causes})"


def _overlaps_text(report: Report) -> str:
    if not report.overlaps:
        return "0"
    unexplained = report.overlaps - report.overlaps_explained
    text = (
        f"{report.overlaps}, longest {report.longest_overlap:.2f} s "
        f"({report.overlaps_explained} after a lease lost to a SIGSTOP or storage stall"
    )
    return text + (_bad(f", {unexplained} unexplained)", True) if unexplained else ")")


def print_report(report: Report, console: Console) -> None:
    console.print(report_table(report))
    for text in report.problems[:MAX_PROBLEMS_SHOWN]:
        console.print(f"[red]✗[/red] {text}", highlight=False)
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        console.print(f"… and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problem(s)")
    for text, count in report.storage_errors.most_common(MAX_ERRORS_SHOWN):
        line = f"[yellow]![/yellow] {count} x a storage call failed: {text}"
        console.print(line, highlight=False)
    if report.ok:
        console.print(
            f"[bold green]nothing lost, nothing unexplained: all {report.enqueued} tasks "
            "succeeded[/bold green]"
        )


# -- entry points ----------------------------------------------------------------------------


def run_chaos(
    url: str | None = None,
    *,
    tasks: int = 2000,
    consumers: int = 3,
    seconds: float = 40.0,
    executor: str = "thread",
    seed: int | None = None,
    say: Callable[[str], None] | None = None,
    workdir: Path | None = None,
    **options: Any,
) -> Report:
    """Run one chaos round; see the module's docstring. `options`: any other `Settings` field.

    Files (a default SQLite queue, the runs, chaos.log of the signals sent, the consumers' logs)
    go to `workdir`, by default a temporary directory that is removed when the run is ok and
    kept (report.workdir) when not.
    """
    if executor not in worker_executors():
        raise ValueError(f"`scoter worker` has no {executor!r} executor (-k) yet")
    keep = workdir is not None
    directory = workdir or Path(tempfile.mkdtemp(prefix="scoter-chaos-"))
    directory.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        url=url or f"sqlite:///{directory / 'chaos.db'}", tasks=tasks, consumers=consumers,
        seconds=seconds, executor=executor,
        seed=seed if seed is not None else random.randrange(10**6), **options,
    )  # fmt: skip
    report = Chaos(settings, directory, say or (lambda _: None)).run()
    if report.ok and not keep:
        shutil.rmtree(directory, ignore_errors=True)
        report.workdir = None
    return report


def main(console: Console, **arguments: Any) -> int:
    """`scoter chaos`: run, print the report; 0 when nothing was lost or unexplained, else 1."""
    started = time.monotonic()

    def say(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim]  {text}", highlight=False)

    report = run_chaos(say=say, **arguments)
    console.print()
    print_report(report, console)
    if report.workdir is not None:
        console.print(f"the runs and the consumers' logs are kept in {report.workdir}")
    return 0 if report.ok else 1


__all__ = ["Report", "Settings", "app", "main", "print_report", "run_chaos"]
