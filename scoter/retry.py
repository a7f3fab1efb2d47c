"""Retry policy and the three budgets of DESIGN G4.

- errors (the task raised) count against `retries`;
- interruptions (released unfinished at shutdown, or `Interrupt` raised) cost no retry but are
  capped by `max_interruptions`, so a task that never finishes is still bounded;
- crashes (the lease expired with no release: SIGKILL, OOM, power cut) count against
  `max_crashes`; the storage's `rescue` applies that one, since no live process is left to.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late a task is tried again."""

    retries: int = 0
    """Errors tolerated before the task goes dead: it runs at most `retries + 1` times."""
    retry_delay: float = 0.0
    """Seconds before the first retry."""
    retry_backoff: float = 1.0
    """Each further retry waits this factor longer (2.0 doubles)."""
    retry_jitter: float = 0.0
    """Add up to this fraction of the delay at random (0.1: up to 10% more)."""
    retry_max_delay: float = 3600.0
    """No retry waits longer than this many seconds."""
    max_crashes: int = 3
    """The task goes dead with reason `crashed` once its lease expired this many times."""
    max_interruptions: int = 20
    """The task goes dead with reason `interrupted` when released more often than this."""

    def __post_init__(self) -> None:
        checks = {
            "retries": self.retries >= 0,
            "retry_delay": self.retry_delay >= 0,
            "retry_backoff": self.retry_backoff >= 1.0,
            "retry_jitter": self.retry_jitter >= 0,
            "retry_max_delay": self.retry_max_delay >= 0,
            "max_crashes": self.max_crashes >= 1,
            "max_interruptions": self.max_interruptions >= 0,
        }
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            raise ValueError(
                f"invalid retry options {wrong}: retries, delays, jitter and max_interruptions "
                "must be >= 0, retry_backoff >= 1.0, max_crashes >= 1"
            )

    def should_retry(self, errors_before: int) -> bool:
        """After an error: True to retry, False when the error budget is spent."""
        return errors_before < self.retries

    def delay(self, errors_before: int) -> float:
        """Seconds to wait before the retry that follows error number `errors_before + 1`."""
        try:
            base = self.retry_delay * self.retry_backoff**errors_before
        except OverflowError:
            base = self.retry_max_delay
        jittered = base + base * self.retry_jitter * random.random()
        return min(jittered, self.retry_max_delay)

    def may_release(self, interruptions_before: int) -> bool:
        """On interruption: True to hand the task back, False when it went round too often."""
        return interruptions_before < self.max_interruptions
