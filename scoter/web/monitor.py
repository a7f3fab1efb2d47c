"""What the dashboard samples in the background: counts, running tasks, consumers, throughput.

Storage keeps no count of tasks finished over time and no registry of consumers, so both are
derived here, by one sampler thread per dashboard that every `interval` seconds reads `counts()`
and the running tasks (`list_tasks(RUNNING)`); every page is served from its latest sample, so
that the load on storage does not grow with the number of people watching.

- Throughput: what a queue's `done` and `dead` counts grew by since the sample before counts as
  finished in the minute of the sample. It covers the time this dashboard has been running, and
  a sample in which results expire or tasks are purged or retried counts the growth net of them
  (never below zero): it is a close lower bound, not a ledger.
- Consumers: the holders named by the running tasks' leases (a consumer with no task running
  does not show). A consumer's last sign of life is the latest of its tasks' claims and
  checkpoints (their `updated_at`) and of the samples that saw one of its leases move forward
  (a heartbeat or a new claim): its heartbeat age, to within one sample.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from scoter.states import State
from scoter.storage.base import Storage, TaskInfo

log = logging.getLogger("scoter.web")

MINUTES = 60
"""How many minutes the throughput chart shows."""
RUNNING_LIMIT = 500
"""The most running tasks one sample reads."""
FINISHED = (State.DONE, State.DEAD)


@dataclass(frozen=True, slots=True)
class Consumer:
    """A consumer as its leases show it."""

    name: str
    tasks: int
    """Running tasks it holds (of those sampled)."""
    lease_expires: float | None
    """The soonest expiry of its leases: past it, the rescuer may take its tasks."""
    alive: float | None
    """Its last sign of life: a claim, checkpoint or lease renewal (see the module doc)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One sample of storage."""

    at: float
    counts: dict[tuple[str, State], int] = field(default_factory=dict)
    running: list[TaskInfo] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)
    error: str | None = None
    """Why the last sample failed (its data are then the sample before's)."""

    def queues(self) -> list[str]:
        return sorted({queue for queue, _ in self.counts})


class Throughput:
    """Tasks finished per queue and minute, over the last MINUTES minutes."""

    def __init__(self) -> None:
        self._minutes: dict[int, dict[tuple[str, State], int]] = {}

    def add(
        self, before: dict[tuple[str, State], int], now: dict[tuple[str, State], int], at: float
    ) -> None:
        """Count what `done` and `dead` grew by from sample `before` to sample `now`."""
        minute = int(at // 60)
        bucket = self._minutes.setdefault(minute, {})
        for key in {k for k in now if k[1] in FINISHED}:
            grown = now[key] - before.get(key, 0)
            if grown > 0:
                bucket[key] = bucket.get(key, 0) + grown
        for old in [m for m in self._minutes if m <= minute - MINUTES]:
            del self._minutes[old]

    def series(self, at: float) -> dict[str, object]:
        """The chart's data: the first minute's start (seconds since the epoch) and, per
        queue, the tasks done and dead in each of the MINUTES minutes up to `at`'s."""
        last = int(at // 60)
        first = last - MINUTES + 1
        queues: dict[str, dict[str, list[int]]] = {}
        for minute, bucket in self._minutes.items():
            for (queue, state), n in bucket.items():
                if minute >= first:
                    row = queues.setdefault(queue, {s.value: [0] * MINUTES for s in FINISHED})
                    row[state.value][minute - first] += n
        return {"start": first * 60, "minutes": MINUTES, "queues": dict(sorted(queues.items()))}


class Monitor:
    """The sampler thread and its latest sample; started by `start()` or the first
    `latest()`."""

    def __init__(self, storage: Storage, *, interval: float = 2.0) -> None:
        self.storage = storage
        self.interval = interval
        self.throughput = Throughput()
        self.started = time.time()
        """When sampling began: the throughput chart counts from then."""
        self._latest: Snapshot | None = None
        self._alive: dict[str, tuple[float, float | None]] = {}
        """Each consumer's latest lease expiry seen, and its last sign of life."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the sampler thread, unless it runs already."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scoter-dashboard-sampler", daemon=True
                )
                self._thread.start()

    def latest(self) -> Snapshot:
        """The latest sample; the first call takes one and starts the sampler (a dashboard
        mounted in another app gets no startup event of its own)."""
        self.start()
        return self._latest or self.sample()

    def _run(self) -> None:
        self.sample()
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> Snapshot:
        """Read storage once; on failure keep the data of the sample before, with the error."""
        with self._lock:
            now = time.time()
            before = self._latest
            try:
                counts = self.storage.counts()
                running = self.storage.list_tasks(State.RUNNING, limit=RUNNING_LIMIT)
            except Exception as exc:
                log.warning("dashboard: cannot read storage: %s", exc)
                kept = before or Snapshot(now)
                self._latest = Snapshot(
                    now, kept.counts, kept.running, kept.consumers, f"{type(exc).__name__}: {exc}"
                )
                return self._latest
            if before is not None:
                self.throughput.add(before.counts, counts, now)
            self._latest = Snapshot(now, counts, running, self._consumers(running, now))
            return self._latest

    def _consumers(self, running: Iterable[TaskInfo], now: float) -> list[Consumer]:
        held: dict[str, list[TaskInfo]] = {}
        for task in running:
            held.setdefault(task.consumer or "?", []).append(task)
        seen: dict[str, tuple[float, float | None]] = {}
        found = []
        for name, tasks in sorted(held.items()):
            expiries = [t.lease_expires for t in tasks if t.lease_expires is not None]
            latest = max(expiries, default=0.0)
            last_expiry, alive = self._alive.get(name, (latest, None))
            signs = [t.updated_at for t in tasks if t.updated_at]
            if latest > last_expiry:
                signs.append(now)
            alive = max([*signs, *([alive] if alive else [])], default=None)
            seen[name] = (latest, alive)
            found.append(Consumer(name, len(tasks), min(expiries, default=None), alive))
        self._alive = seen
        return found

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
