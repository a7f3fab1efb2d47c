"""Retry policy and the three budgets of DESIGN G4.

- errors (the task raised) count against `retries`;
- interruptions (released unfinished at shutdown, or `Interrupt` raised) cost no retry but are
  capped by `max_interruptions`, so a task that never finishes is still bounded;
- crashes (the lease expired with no release: SIGKILL, OOM, power cut) count against
  `max_crashes`; the storage's `rescue` applies that one, since no live process is left to.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any


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


BUDGET_FIELDS = ("retries", "retry_delay", "retry_backoff", "timeout")


@dataclass(frozen=True, slots=True)
class Budget:
    """One message's own retries, retry delays and time limit, over its task's (None: the
    task's). It travels in the stored payload, inside the signature, so every backend and
    every consumer applies it; the error budget stays bounded (`retries` is a count)."""

    retries: int | None = None
    """Errors tolerated before the task goes dead, instead of the task's `retries`."""
    retry_delay: float | None = None
    """Seconds before the first retry, instead of the task's `retry_delay`."""
    retry_backoff: float | None = None
    """The factor of each further retry's delay, instead of the task's `retry_backoff`."""
    timeout: float | None = None
    """The time limit of each attempt in seconds, instead of the task's `timeout` (0: none)."""

    def __post_init__(self) -> None:
        wrong = [name for name in BUDGET_FIELDS if not _fits(name, getattr(self, name))]
        if wrong:
            raise ValueError(
                f"invalid per-message budget {wrong}: retries is a count >= 0, retry_delay "
                "and timeout seconds >= 0 (a timeout of 0: none), retry_backoff >= 1.0"
            )

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in BUDGET_FIELDS)

    def over(self, policy: RetryPolicy) -> RetryPolicy:
        """`policy` with this budget's retries, retry_delay and retry_backoff where given."""
        given = {
            name: getattr(self, name)
            for name in ("retries", "retry_delay", "retry_backoff")
            if getattr(self, name) is not None
        }
        return dataclasses.replace(policy, **given) if given else policy

    def encoded(self) -> dict[str, Any]:
        """The fields given, as the payload stores them."""
        return {
            name: getattr(self, name) for name in BUDGET_FIELDS if getattr(self, name) is not None
        }

    @classmethod
    def decoded(cls, stored: object) -> Budget:
        """The budget a payload stored; ValueError when it is not one."""
        if not isinstance(stored, dict) or not set(stored) <= set(BUDGET_FIELDS):
            raise ValueError(f"payload budget is {stored!r}, not a budget")
        return cls(**stored)


def _fits(name: str, value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if name == "retries":
        return isinstance(value, int) and value >= 0
    if name == "retry_backoff":
        return value >= 1.0
    return value >= 0
