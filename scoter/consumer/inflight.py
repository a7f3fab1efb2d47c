"""The attempts a consumer is running now, by lease token."""

from __future__ import annotations

import threading

from scoter.context import TaskContext


class InFlight:
    """Thread-safe map of lease token → TaskContext, with a wait for "one finished"."""

    def __init__(self) -> None:
        self._by_token: dict[str, TaskContext] = {}
        self._changed = threading.Condition()
        self._wake_below = 0
        """The waiter (the supervisor: one at a time) wants to hear when fewer than this many
        run; 0 when nobody waits, so that a finished attempt wakes nobody needlessly."""

    def __len__(self) -> int:
        return len(self._by_token)

    def add(self, ctx: TaskContext) -> None:
        with self._changed:
            self._by_token[ctx.token] = ctx

    def remove(self, ctx: TaskContext) -> None:
        with self._changed:
            self._by_token.pop(ctx.token, None)
            if len(self._by_token) < self._wake_below:
                self._changed.notify_all()

    def get(self, token: str) -> TaskContext | None:
        return self._by_token.get(token)

    def tokens(self) -> list[str]:
        """Tokens of the attempts whose lease is still ours."""
        with self._changed:
            return [
                token for token, ctx in self._by_token.items()
                if not (ctx.lease_lost or ctx.settled)
            ]  # fmt: skip

    def contexts(self) -> list[TaskContext]:
        with self._changed:
            return list(self._by_token.values())

    def wait_below(self, limit: int, timeout: float) -> bool:
        """Wait up to `timeout` until fewer than `limit` attempts run; True if so."""
        with self._changed:
            self._wake_below = limit
            try:
                return self._changed.wait_for(lambda: len(self._by_token) < limit, timeout)
            finally:
                self._wake_below = 0
