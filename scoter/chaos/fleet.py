"""The consumer processes: `scoter worker` children that the chaos process starts and signals."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from scoter.chaos.evidence import Disruption


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
