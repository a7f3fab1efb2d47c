"""Consumer processes: start them in a session of their own, watch their memory and CPU
through /proc (the leader and every descendant), stop them."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
STOP_WAIT_S = 10.0
SAMPLE_S = 0.05
PIDS_EVERY_S = 0.5
"""How often the memory sampler looks for the consumers' processes again: a scan of /proc
costs ~3 ms here, which every 50 ms would take 6 % of a core from the drain it measures."""
REPO = Path(__file__).resolve().parent.parent


class Consumer:
    """One consumer process (and whatever it forks), started from `argv` with `env` added."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self._log = log.open("ab")
        full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            argv,
            env=full_env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        """The leader and every live process of its session."""
        return session_pids(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM to the leader (each peer's graceful stop), then SIGKILL what is left."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_WAIT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()


def command_line(argv: list[str], env: dict[str, str]) -> str:
    """The command as a user would type it, with its environment."""
    words = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    program = Path(argv[0]).name
    args = argv[1:]
    if program.startswith("python") and args[:1] == ["-m"]:
        program, args = args[1], args[2:]
    return " ".join([*words, program, *map(shlex.quote, args)])


def session_pids(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[3]) == sid:
                found.append(int(entry.name))
    return found


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from the state field on (index 0 is the state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of the live processes so far: every thread's to the nanosecond
    (/proc/PID/task/TID/schedstat; utime and stime count 10 ms ticks, too coarse for 1 %),
    plus the ticks of children they reaped (a forked worker that came and went)."""
    ns, ticks = 0, 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    ns += int((task / "schedstat").read_text().split()[0])
        fields = _stat(pid)
        if fields:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ns / 1e9 + ticks / TICK


class PeakMemory:
    """Samples the summed RSS of consumers' process trees until stopped; keeps the peak."""

    def __init__(self, consumers: list[Consumer]) -> None:
        self.consumers = consumers
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pids: list[int] = []
        found_at = -PIDS_EVERY_S
        while not self._stop.wait(SAMPLE_S):
            if time.monotonic() - found_at >= PIDS_EVERY_S:
                pids = [pid for c in self.consumers for pid in c.pids()]
                found_at = time.monotonic()
            self.peak = max(self.peak, rss_bytes(pids))


def idle_cpu_percent(consumer: Consumer, seconds: float) -> float:
    """Percent of one core the consumer's processes use over `seconds` of doing nothing."""
    before, start = cpu_seconds(consumer.pids()), time.perf_counter()
    time.sleep(seconds)
    used = cpu_seconds(consumer.pids()) - before
    return max(0.0, 100.0 * used / (time.perf_counter() - start))
