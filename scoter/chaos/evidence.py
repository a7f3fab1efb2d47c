"""What the chaos process knows of its disruptions: the signals it sent, the storage stalls
its probe timed, the consumers' exits and the storage errors they logged."""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


STORAGE_ERROR = re.compile(
    r"(?:WARNING|ERROR) (?!scoter\.tasks:)[\w.]+: "
    r"(.*(?:failed, retrying|storage unavailable|could not acknowledge|could not release).*)"
)
"""A consumer's log line of a storage call that failed; group 1 is its message (a task's own
lines, on scoter.tasks, are not: `failed, retrying in` is the task's error)."""


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
        """The last SIGKILL of a child of `consumer` within [start, end]: the parent settles a
        child's death at once, so an attempt settled at `end` died with the latest one (a
        task claimed ahead may wait in the parent while earlier children die)."""
        found = [d for d in self.children_killed if d.consumer == consumer and start <= d.at <= end]
        return max(found, key=lambda d: d.at, default=None)

    def stopped_during(self, pid: int | None, start: float, end: float) -> Disruption | None:
        """A SIGSTOP of `pid` that held it stopped at some time within [start, end]."""
        found = [d for d in self.by_target.get(pid or -1, []) if d.kind == SIGSTOP]
        return next((d for d in found if d.at <= end and d.until >= start), None)

    def exit_of(self, pid: int | None) -> float | None:
        return self.exits.get(pid or -1)
