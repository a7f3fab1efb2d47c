"""Claims under concurrency and rate limits: the choice every backend's claim makes (the Redis
scripts make it in Lua, the same way: claim_limited in lib.lua)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from scoter.storage.coordination import LIMITS_REFRESH_S, LimitState, TaskLimit

K = TypeVar("K")


def allowances(states: Iterable[LimitState]) -> dict[str, int]:
    """How many tasks of each limited name one claim may lease now."""
    allowed: dict[str, int] = {}
    for s in states:
        left = []
        if s.limit.concurrency is not None:
            left.append(s.limit.concurrency - s.running)
        if s.limit.rate is not None:
            left.append(s.limit.rate - s.started)
        allowed[s.limit.name] = max(0, min(left, default=0))
    return allowed


def pick(
    first: Callable[[list[str], list[K], int], list[tuple[K, str]]],
    allowed: dict[str, int],
    n: int,
) -> list[K]:
    """Up to `n` queued tasks in claim order (priority, then age), each limited name's within
    its allowance. `first(full, picked, k)` returns (key, name) of the first `k` queued tasks
    whose name is not in `full` and whose key is not in `picked`.

    A pass that had to leave a task of a name that ran out of allowance asks again, without
    that name: at most one pass more than there are limited names.
    """
    left = dict(allowed)
    full = [name for name, a in left.items() if a <= 0]
    picked: list[K] = []
    while len(picked) < n:
        skipped = False
        for key, name in first(full, picked, n - len(picked)):
            a = left.get(name)
            if a is None:
                picked.append(key)
            elif a <= 0:
                skipped = True
            else:
                picked.append(key)
                left[name] = a - 1
                if a == 1:
                    full.append(name)
        if not skipped:
            break
    return picked


def state(limit: TaskLimit, running: int, started: int, oldest: float | None) -> LimitState:
    """A name's LimitState from its running tasks and its claims in the window (`oldest`:
    the time of the oldest of those)."""
    at_rate = limit.rate is not None and started >= limit.rate and oldest is not None
    next_start = oldest + (limit.per or 0.0) if at_rate and oldest is not None else None
    return LimitState(limit, running, started if limit.rate is not None else 0, next_start)


def row(limit: TaskLimit) -> tuple[str, int | None, int | None, float | None]:
    """A limit as its stored columns."""
    return limit.name, limit.concurrency, limit.rate, limit.per


def limited(limit: TaskLimit) -> bool:
    return limit.concurrency is not None or limit.rate is not None


class Known:
    """Whether any limit is stored, as this process last read it (at most LIMITS_REFRESH_S
    ago): the claims of a backend without limits then take the fast path."""

    def __init__(self, read: Callable[[], bool]) -> None:
        self._read = read
        self._any = False
        self._at = float("-inf")

    def any(self) -> bool:
        now = time.monotonic()
        if now - self._at >= LIMITS_REFRESH_S:
            self._any = self._read()
            self._at = now
        return self._any

    def forget(self) -> None:
        """Read again at the next claim (this process just stored limits)."""
        self._at = float("-inf")


def as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def rate_key(key: str) -> str:
    """Where `take_rate` counts the uses of `key`: apart from task names, which no '@' starts."""
    return f"@{key}"


def earliest(expires: float | None, lease: float | None) -> float | None:
    """When a lock is freed unless renewed: its own expiry or its lease's, the earlier."""
    return min((t for t in (expires, lease) if t is not None), default=None)
