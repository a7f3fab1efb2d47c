"""One chaos round, end to end, and the `scoter chaos` command's body."""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from scoter.app import Scoter
from scoter.chaos.checker import Checker, check_drains
from scoter.chaos.evidence import PROBE_TOKEN, Evidence, StallProbe, storage_errors
from scoter.chaos.fleet import Fleet
from scoter.chaos.kill_loop import KillLoop
from scoter.chaos.report import Report, print_report
from scoter.chaos.settings import Settings
from scoter.chaos.tasks import (
    ASYNC_TASKS,
    ENV_RUNS,
    SYNC_TASKS,
    TASK_WEIGHTS,
    create_runs_dir,
    read_runs,
    register,
)
from scoter.config import ENV_URL, redact
from scoter.consumer.supervisor import EXECUTORS
from scoter.states import State
from scoter.task import Message


class Chaos:
    """One run: enqueue, start the fleet, disrupt it, wait for every task, then check."""

    def __init__(self, settings: Settings, workdir: Path, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.workdir = workdir
        self._say = say
        self.rng = random.Random(settings.seed)
        self.report = Report(settings, workdir=workdir)
        self.runs_path = workdir / "runs"
        self.producer = Scoter("chaos", settings.url, default_queue=settings.queue)
        register(self.producer)
        self.fleet = Fleet(self._command(), self._env(), workdir)
        storage, lease = self.producer.storage, settings.lease
        self.probe = StallProbe(lambda: storage.heartbeat([PROBE_TOKEN], lease), lease / 4)
        self.kill_loop = KillLoop(settings, self.fleet, self.rng, self.report, self.say)
        self.ids: list[str] = []
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        """Tell the caller, and log it (wall-clock time, as in the consumers' logs)."""
        self._say(text)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        with (self.workdir / "chaos.log").open("a") as log:
            log.write(f"{stamp},{int(now % 1 * 1000):03d} {now:.3f} {text}\n")

    def _command(self) -> list[str]:
        s = self.settings
        return [
            sys.executable, "-m", "scoter", "worker", "scoter.chaos:app", "-Q", s.queue,
            "-w", str(s.workers), "--lease", str(s.lease), "--drain-timeout", str(s.drain_timeout),
            "-k", s.executor,
        ]  # fmt: skip

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
            self.kill_loop.run(lambda: self.settled() >= len(self.ids))
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
        evidence = Evidence(self.kill_loop.disruptions, exits, self.probe.stalls)
        self.report.stalls = self.probe.stalls
        Checker(self.settings, evidence, self.report).check(infos, runs)
        check_drains(self.settings, self.fleet.members, evidence, self.report)
        self.report.storage_errors = storage_errors(m.log_path for m in self.fleet.members)


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
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
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
