"""The settings of one chaos run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from scoter.chaos.evidence import SIGKILL
from scoter.chaos.tasks import QUEUE


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
